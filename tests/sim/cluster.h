// A whole WaveKV cluster in one process, driven by a seeded PRNG: real store
// code on the fault-injecting testing::MemFileSystem, the node's real replica
// Driver (node/driver.h, around the real Replica state machine) over a
// simulated Transport, and a network that drops, duplicates, delays, reorders
// and partitions. Any run replays exactly from its seed.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "node/driver.h"
#include "replication/replica.h"
#include "store/store_internal.h"
#include "testing/mem_fs.h"

namespace wavekv::sim {

struct SimOptions {
  uint64_t seed = 1;
  int nodes = 3;
  uint64_t tick_ms = 10;
  double drop = 0.0;       // probability a message is lost
  double duplicate = 0.0;  // probability a message is delivered twice
  uint64_t min_delay_ms = 1;
  uint64_t max_delay_ms = 20;               // uniform; reordering follows from it
  ReplicaConfig replica;                    // address and seeds are filled per node
  bool chain_seeds = true;                  // node i knows only node i-1 at start
  std::map<int, uint64_t> max_value_bytes;  // per node, where not the store's default
};

struct AckedWrite {
  std::string key;
  Entry entry;
  int node = 0;
};

class Cluster {
 public:
  explicit Cluster(SimOptions options);
  ~Cluster();

  // Advances simulated time by `ms`, delivering messages and ticking nodes.
  void run_for(uint64_t ms);
  // Runs until every up node holds the same state, at most `max_ms`. Returns
  // the simulated milliseconds it took, or -1 if it did not converge.
  int64_t run_until_converged(uint64_t max_ms);
  bool converged();

  // A client write on node `i`; recorded in the model if acknowledged.
  // `ttl_ms` != 0: the value expires that long after node i's clock says now.
  bool put(int i, const std::string& key, const std::string& value, uint64_t ttl_ms = 0);
  bool del(int i, const std::string& key);

  void crash(int i);    // power cut: unsynced bytes lost, process gone
  void restart(int i);  // reopen the same data directory
  void wipe(int i);     // new empty data directory, same node id
  void cut(int from, int to) { cut_.insert({from, to}); }  // one-way
  void heal() { cut_.clear(); }
  void partition(const std::set<int>& side);  // both ways between side and the rest
  void set_clock_skew(int i, int64_t ms);

  // Checks the reference model: convergence of contents, every acknowledged
  // write present unless superseded by LWW, no deleted key resurrected.
  // Returns an empty string if all holds, else what failed.
  std::string check_model();
  // Claims are exact: for every acknowledged write whose (stream, seq) an up
  // node's version vector covers, that node holds the key at that version or a
  // newer one (or, with tombstone GC on, not at all). Tombstone GC is sound
  // only if this holds. Returns an empty string, or the first violation.
  std::string check_claims();
  // No node's version of a key ever goes back in LWW order (an expired or
  // deleted key whose tombstone was collected included: an older version
  // must not come back), unless the node lost its disk. Call it often: it
  // compares with what each node held at the previous call.
  std::string check_versions_only_advance();
  // What differs between the up nodes: a few keys and every version vector.
  std::string describe_divergence();

  int size() const { return static_cast<int>(nodes_.size()); }
  bool up(int i) const { return nodes_[i]->store != nullptr; }
  ReplicatedStore& store(int i) { return *nodes_[i]->store; }
  DriverReport stats(int i) const { return nodes_[i]->driver->report(); }
  uint64_t now_ms() const { return now_ms_; }
  uint64_t bytes_sent(int i) const { return nodes_[i]->bytes_sent; }
  uint64_t messages_dropped() const { return dropped_; }
  uint64_t tombstones_dropped() const;
  uint64_t rebootstraps() const { return rebootstraps_; }

 private:
  class NodeClock;
  class NodeTransport;
  struct Node {
    NodeId id = 0;
    std::string address;
    std::shared_ptr<testing::MemFileSystem> fs;
    std::shared_ptr<NodeClock> clock;
    std::unique_ptr<NodeTransport> transport;
    std::unique_ptr<ReplicatedStore> store;
    std::unique_ptr<Driver> driver;  // null while the node is down
    ReplicaConfig replica_config;
    uint64_t bytes_sent = 0;
  };
  struct InFlight {
    uint64_t deliver_at = 0;
    uint64_t order = 0;
    int to = 0;
    std::string bytes;
    bool operator>(const InFlight& o) const {
      return std::tie(deliver_at, order) > std::tie(o.deliver_at, o.order);
    }
  };

  void open(int i);
  void close(int i);  // drops the driver and the store (the disk stays)
  // Puts a frame node `from` sent on the network, with the drop, cut,
  // duplicate and delay faults.
  void post(int from, const std::string& address, std::string bytes);
  void step(int i);
  void deliver(const InFlight& m);
  uint64_t node_now(int i) const;

  SimOptions options_;
  std::mt19937_64 rng_;
  uint64_t now_ms_ = 1'000'000;
  uint64_t order_ = 0;
  uint64_t dropped_ = 0;
  uint64_t tombstones_dropped_ = 0;  // by drivers closed since
  uint64_t rebootstraps_ = 0;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::map<std::string, int> by_address_;
  std::set<std::pair<int, int>> cut_;
  std::priority_queue<InFlight, std::vector<InFlight>, std::greater<>> network_;
  std::vector<AckedWrite> acked_;
  std::set<int> wiped_since_write_;  // writes acked by a wiped node may be lost
  // Per node, the newest version of each key it has held since its disk was
  // last wiped (check_versions_only_advance).
  std::vector<std::map<std::string, Meta>> newest_held_;
};

}  // namespace wavekv::sim
