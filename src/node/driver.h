// The replica driver: the glue between the pure Replica and the world, run by
// the node's worker thread and by the simulator alike. It decodes peer frames
// from a bounded inbound queue, calls the replica under one consistent view
// of the state, persists the effects and only then sends them (the ordering
// contract in replication/replica.h), and ticks the replica when due.
//
// No threads, waits or clocks inside: the wall time (ms, on the node's clock)
// and random bits come in as arguments to step(), so a seeded caller gets the
// same run every time. enqueue(), local_write_committed(), has_work() and
// report() may be called from any thread; step() from one thread only (the
// worker), the first to call it.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "node/clock_monitor.h"
#include "replication/messages.h"
#include "replication/replica.h"
#include "store/store_internal.h"
#include "wavekv/log.h"
#include "wavekv/transport.h"

namespace wavekv {

struct DriverConfig {
  // Complete: address and seeds filled in. Its max_key_bytes and
  // max_value_bytes also bound what the decoder accepts; they should be the
  // store's own limits (NodeConfig derives them so).
  ReplicaConfig replica;
  uint64_t tick_ms = 10;             // the replica's clock granularity
  size_t max_inbound_frames = 4096;  // frames waiting for step(); beyond: dropped
  // The newest wire version spoken (NodeConfig::max_wire_version); frames in
  // a newer one are refused as the previous release's decoder refuses them.
  uint8_t max_wire_version = kWireVersion;
  // Where the driver reports what an operator should see. Null: silent.
  // Called from step().
  std::function<void(LogLevel level, const std::string& msg)> log;
};

// The driver's counters, copied at the end of each step().
struct DriverReport {
  ReplicaStats replica;
  std::map<NodeId, uint64_t> last_seen;       // when each peer was last heard from
  uint64_t decode_errors = 0;                 // peer frames that failed to decode
  uint64_t persist_errors = 0;                // effects whose persist failed (nothing sent)
  uint64_t inbound_dropped = 0;               // frames refused by a full inbound queue
  std::vector<std::string> quarantined_keys;  // the last few (Replica::quarantined_keys)
  // Frames whose `from` is not the node id the sender's certificate binds
  // (mutual TLS): refused whole.
  uint64_t impersonations_refused = 0;
  // The clock offset check (ClockMonitor): what the peers' clocks say, and
  // whether client writes are refused because of it.
  ClockReading clock;
  bool clock_refusing_writes = false;
  uint64_t wire_v2_frames = 0;     // frames received in wire version 2 (no clock)
  uint64_t wire_older_frames = 0;  // frames received in any version before kWireVersion
};

struct StepResult {
  // The wall ms at which step() wants to run again if no work comes first.
  uint64_t next_step_ms = 0;
  // A peer said this node must wipe its data and bootstrap again. From then
  // on the driver stays quiet (see step()) and this stays true.
  bool rebootstrap = false;
};

class Driver {
 public:
  Driver(ReplicatedStore& store, Transport& transport, DriverConfig config);

  // Queues one frame from a peer, with what the transport knows of the
  // sender. False (and counted) if the queue is full.
  // `received_ms` is when it arrived by this node's clock (0: when step()
  // handles it); the clock offset check measures against it.
  bool enqueue(std::string frame, PeerIdentity from = {}, uint64_t received_ms = 0);
  // A local write committed: the next step() ticks at once, so its push
  // leaves now rather than at the next tick. True only for the call that set
  // the flag (one wakeup per step at most).
  bool local_write_committed();
  // Frames are queued or a local write is waiting: step() has work now.
  bool has_work() const;

  // Handles every queued frame, then ticks the replica if it is due. Once a
  // rebootstrap is requested it only discards frames: this node's data may
  // hold versions deleted elsewhere, and must not spread while it waits to
  // be wiped.
  StepResult step(uint64_t now_ms, uint64_t random);

  DriverReport report() const;

 private:
  // Persist, then send (the ordering contract).
  void execute(Effects fx, uint64_t now_ms);
  void handle_frame(const std::string& frame, const PeerIdentity& from, uint64_t received_ms,
                    uint64_t now_ms);
  // The wire version for a message to `address` (docs/FORMAT.md, "Wire
  // versions"), and what a frame from it says.
  // `expiry`: the message has entries with an expiry.
  uint8_t wire_version_for(const std::string& address, uint64_t now_ms, bool expiry = false);
  void heard_version(const std::string& address, uint8_t version, uint64_t now_ms);
  // Refuses or allows client writes as the clock reading says.
  void check_clock(uint64_t now_ms);
  void tick(uint64_t now_ms, uint64_t random, bool push_owed);

  ReplicatedStore& store_;
  Transport& transport_;
  const DriverConfig config_;
  const DecodeLimits limits_;

  mutable std::mutex mu_;  // guards the fields up to report_
  struct Inbound {
    std::string frame;
    PeerIdentity from;
    uint64_t received_ms = 0;
  };
  std::deque<Inbound> inbound_;
  uint64_t inbound_dropped_ = 0;
  bool local_write_ = false;  // a local write committed since step() last looked
  DriverReport report_;       // published copy

  // Worker only.
  std::thread::id worker_;
  Replica replica_;
  uint64_t next_tick_ms_ = 0;  // 0: tick at the first step
  bool rebootstrap_ = false;   // set by execute(); never cleared
  uint64_t decode_errors_ = 0;
  uint64_t persist_errors_ = 0;
  uint64_t impersonations_refused_ = 0;
  ClockMonitor clock_;
  bool clock_refusing_writes_ = false;
  struct PeerWire {
    std::array<uint64_t, kWireVersion + 1> last_ms{};  // when a frame of each version last came
    uint64_t sends = 0;
  };
  std::map<std::string, PeerWire> wire_;          // by address, at most kMaxWireAddresses
  PeerWire& wire_of(const std::string& address);  // made if new; a full table starts over
  uint64_t wire_v2_frames_ = 0;
  uint64_t wire_older_frames_ = 0;
};

}  // namespace wavekv
