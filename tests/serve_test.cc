// `wavekv serve` as real processes on loopback: discovery from a chain of
// --peers, convergence of writes made on every node, kill -9 and restart with
// nothing acknowledged lost, a wiped node re-bootstrapping, deletes that stay
// deleted, Debian's redis-cli talking to the RESP port, and a network partition
// made with TCP proxies (tcp_proxy.h) that heals. Every node listens on port 0
// and says what it got in its --ready-file; a node that re-bootstraps keeps it.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "http/client.h"
#include "store/wal.h"
#include "support/resp_client.h"
#include "support/serve_node.h"
#include "support/store_harness.h"
#include "support/tcp_proxy.h"
#include "support/test_util.h"
#include "wavekv/security.h"

namespace wavekv {
namespace {

using test::del;
using test::eventually;
using test::get;
using test::port_of;
using test::put;
using test::ScratchNodes;
using test::ServeNode;
using test::status;

class ServeCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = std::filesystem::temp_directory_path() /
            ("wavekv-serve-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(base_);
    std::filesystem::create_directories(base_);
    for (int i = 0; i < 3; i++) {
      ServeNode n;
      n.dir = (base_ / ("node" + std::to_string(i))).string();
      if (i > 0) n.seeds = nodes_[i - 1].peer;  // a chain: 2 knows 1, 1 knows 0
      n.extra = extra_;
      ASSERT_TRUE(n.start());
      nodes_.push_back(n);
    }
  }
  void TearDown() override {
    for (auto& n : nodes_)
      if (n.pid > 0) n.stop(SIGKILL);
    if (!HasFailure()) std::filesystem::remove_all(base_);
  }
  // Every node returns `want` for every key.
  bool all_agree(const std::map<std::string, std::string>& want) {
    for (auto& n : nodes_)
      for (const auto& [k, v] : want)
        if (get(n, k) != v) return false;
    return true;
  }
  std::filesystem::path base_;
  std::vector<ServeNode> nodes_;
  std::vector<std::string> extra_;  // flags every node starts with
};

TEST_F(ServeCluster, ChainDiscoversKill9RestartAndWipeLoseNothingAcknowledged) {
  std::map<std::string, std::string> want;
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < 30; k++) {
      std::string key = "n" + std::to_string(i) + "-" + std::to_string(k);
      ASSERT_TRUE(put(nodes_[i], key, "v" + key));
      want[key] = "v" + key;
    }
  ASSERT_TRUE(del(nodes_[0], "n1-0"));
  want["n1-0"] = "<absent>";
  ASSERT_TRUE(eventually([&] { return all_agree(want); })) << "writes on all nodes converge";
  EXPECT_EQ(status(nodes_[2])["members"].size(), 2u) << "node 2 started knowing only node 1";

  // kill -9 node 2 under write load: every write it acknowledged survives.
  std::thread writer([&] {
    for (int k = 0; k < 200; k++) {
      std::string key = "load-" + std::to_string(k);
      if (put(nodes_[2], key, "w")) want[key] = "w";
      if (k == 100) nodes_[2].stop(SIGKILL);
      if (nodes_[2].pid < 0) break;
    }
  });
  writer.join();
  if (nodes_[2].pid > 0) nodes_[2].stop(SIGKILL);
  ASSERT_TRUE(put(nodes_[0], "while-2-down", "d"));
  want["while-2-down"] = "d";
  ASSERT_TRUE(nodes_[2].start());
  EXPECT_TRUE(eventually([&] { return all_agree(want); }))
      << "after kill -9 and restart nothing acknowledged is lost and node 2 catches up";

  // A wiped node bootstraps back from the others; the delete stays.
  EXPECT_EQ(nodes_[1].stop(SIGTERM), 0) << "graceful shutdown exits 0";
  std::filesystem::remove_all(nodes_[1].dir);
  ASSERT_TRUE(nodes_[1].start());
  EXPECT_TRUE(eventually([&] { return all_agree(want); })) << "wiped node 1 re-bootstraps";
}

// Tombstone GC on real processes, with a 500 ms grace: once every member
// covers the delete, every node forgets the tombstone, and the key stays
// deleted, also across a kill -9 and restart of a node.
class ServeTombstoneGc : public ServeCluster {
 public:
  ServeTombstoneGc() { extra_ = {"--tombstone-grace-ms", "500"}; }
};

TEST_F(ServeTombstoneGc, EveryNodeForgetsTheTombstoneAndTheKeyStaysDeleted) {
  ASSERT_TRUE(put(nodes_[0], "gone", "x"));
  ASSERT_TRUE(put(nodes_[2], "kept", "k"));
  ASSERT_TRUE(eventually([&] { return all_agree({{"gone", "x"}, {"kept", "k"}}); }));
  ASSERT_TRUE(del(nodes_[1], "gone"));
  auto forgotten = [&] {
    for (auto& n : nodes_) {
      nlohmann::json s = status(n);
      if (s.empty() || s["storage"]["tombstones"] != 0 ||
          s["replication"]["tombstones_dropped"] < 1)
        return false;
    }
    return true;
  };
  ASSERT_TRUE(eventually(forgotten, 30))
      << "every node collected the tombstone; node 0: " << status(nodes_[0]).dump()
      << "\nnode 1: " << status(nodes_[1]).dump() << "\nnode 2: " << status(nodes_[2]).dump();
  EXPECT_TRUE(all_agree({{"gone", "<absent>"}, {"kept", "k"}}));
  nodes_[2].stop(SIGKILL);
  ASSERT_TRUE(nodes_[2].start());
  ASSERT_TRUE(eventually([&] { return get(nodes_[2], "kept") == "k"; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // five sync rounds
  EXPECT_TRUE(all_agree({{"gone", "<absent>"}, {"kept", "k"}}));
  for (auto& n : nodes_) EXPECT_EQ(status(n)["replication"]["rebootstraps_needed"], 0);
}

TEST_F(ServeCluster, RedisCliWritesReplicate) {
  std::string cmd = "redis-cli -p " + std::to_string(port_of(nodes_[0].resp)) +
                    " SET from-redis hello > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "redis-cli must be installed (scripts/setup.sh)";
  EXPECT_TRUE(eventually([&] { return all_agree({{"from-redis", "hello"}}); }));
}

// A network partition through TCP proxies the test controls. Every node
// advertises its proxy's address (and seeds are proxy addresses), so no node
// ever learns a real peer port and all peer traffic passes a proxy. Cut
// {node 1} | {nodes 2, 3}: writes and deletes on both sides, including on
// keys both sides hold; the sides diverge while cut; after restoring, the
// cluster converges within a bounded time to identical contents, and no
// deleted key comes back. The peers run mutual TLS (docs/SECURITY.md,
// "Peers"), so the proxies cannot read who is dialing from the bytes: they
// find the dialing process of each connection instead.
class ServePartition : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = std::filesystem::temp_directory_path() /
            ("wavekv-partition-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(base_);
    std::filesystem::create_directories(base_);
    const std::string certs = (base_ / "certs").string();
    ASSERT_TRUE(init_ca({certs}).is_ok());
    std::map<pid_t, uint64_t> processes;
    for (int i = 0; i < 3; i++) {
      const std::string name = "n" + std::to_string(i + 1);
      ASSERT_TRUE(
          issue_node_cert({certs, name, static_cast<NodeId>(i + 1), {"127.0.0.1"}}).is_ok());
      proxies_.push_back(std::make_unique<test::TcpProxy>());
      ASSERT_TRUE(proxies_.back()->ok());
      ServeNode n;
      n.dir = (base_ / ("node" + std::to_string(i))).string();
      n.id = std::to_string(i + 1);  // the proxies tell senders apart by node id
      n.advertise = proxies_.back()->address();
      n.sync_interval_ms = "100";
      n.extra = {"--certs-dir", certs, "--name", name};
      if (i > 0) n.seeds = nodes_[i - 1].advertise;
      ASSERT_TRUE(n.start());
      // The ready file gives the port the node bound, not the one it advertises.
      proxies_.back()->forward_to(port_of(n.peer));
      processes[n.pid] = n.node_id;
      for (auto& p : proxies_) p->identify_by_process(processes);
      nodes_.push_back(n);
    }
  }
  void TearDown() override {
    for (auto& n : nodes_)
      if (n.pid > 0) n.stop(SIGKILL);
    proxies_.clear();
    if (!HasFailure()) std::filesystem::remove_all(base_);
  }

  // What a node's HTTP API shows of its contents and membership.
  struct View {
    std::string listing;  // GET /v1/kv: keys, values and version stamps
    std::string digest;   // covers tombstones too
    std::vector<std::string> member_addresses;
  };
  std::optional<View> view(const ServeNode& n) {
    auto list = http::http_request(n.http, "GET", "/v1/kv?limit=10000", "", 5000);
    auto status = http::http_request(n.http, "GET", "/v1/status", "", 5000);
    if (!list || !status || list->status != 200 || status->status != 200) return std::nullopt;
    auto s = nlohmann::json::parse(status->body);
    View v{list->body, s["digest"].get<std::string>(), {}};
    for (const auto& m : s["members"]) v.member_addresses.push_back(m["address"]);
    return v;
  }
  bool identical_everywhere() {
    auto first = view(nodes_[0]);
    if (!first) return false;
    for (size_t i = 1; i < nodes_.size(); i++) {
      auto v = view(nodes_[i]);
      if (!v || v->listing != first->listing || v->digest != first->digest) return false;
    }
    return true;
  }
  bool agree(const std::vector<size_t>& which, const std::map<std::string, std::string>& want) {
    for (size_t i : which)
      for (const auto& [k, v] : want)
        if (get(nodes_[i], k) != v) return false;
    return true;
  }

  std::filesystem::path base_;
  std::vector<std::unique_ptr<test::TcpProxy>> proxies_;
  std::vector<ServeNode> nodes_;
};

TEST_F(ServePartition, HealsAndConvergesWithDeletesStayingDeleted) {
  const std::vector<size_t> all = {0, 1, 2}, side_a = {0}, side_b = {1, 2};
  for (const char* k : {"del-on-a", "del-on-b", "put-a-then-del-b", "put-b-then-del-a", "kept"})
    ASSERT_TRUE(put(nodes_[0], k, "before"));
  ASSERT_TRUE(eventually([&] {
    return agree(all, {{"del-on-a", "before"}, {"kept", "before"}}) && identical_everywhere();
  }));
  // Everyone knows both others, and only by their proxy addresses.
  ASSERT_TRUE(eventually([&] {
    for (auto& n : nodes_) {
      auto v = view(n);
      if (!v || v->member_addresses.size() != 2) return false;
    }
    return true;
  }));
  for (auto& n : nodes_) {
    auto v = view(n);
    ASSERT_TRUE(v);
    for (const auto& address : v->member_addresses)
      EXPECT_TRUE(address == proxies_[0]->address() || address == proxies_[1]->address() ||
                  address == proxies_[2]->address())
          << "a node dials " << address << ", not a proxy: it would bypass the partition";
  }

  // Cut {1} | {2, 3}: node 1 (id 1) hears nobody, and nobody hears it.
  proxies_[0]->cut({2, 3});
  proxies_[1]->cut({1});
  proxies_[2]->cut({1});

  // Both sides write and delete, each on keys both sides hold. Where both
  // touch a key, the later write wins by LWW, so the sides go 50 ms apart.
  ASSERT_TRUE(put(nodes_[0], "only-a", "a"));
  ASSERT_TRUE(del(nodes_[0], "del-on-a"));
  ASSERT_TRUE(put(nodes_[0], "put-a-then-del-b", "a"));
  ASSERT_TRUE(put(nodes_[1], "put-b-then-del-a", "b"));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(put(nodes_[1], "only-b", "b"));
  ASSERT_TRUE(del(nodes_[2], "del-on-b"));
  ASSERT_TRUE(del(nodes_[1], "put-a-then-del-b"));
  ASSERT_TRUE(del(nodes_[0], "put-b-then-del-a"));

  // Side B still replicates within itself...
  ASSERT_TRUE(eventually(
      [&] {
        return agree(side_b, {{"only-b", "b"}, {"del-on-b", "<absent>"}});
      },
      10))
      << "nodes 2 and 3 talk to each other through the cut";
  // ...and the sides stay apart for ten sync rounds.
  const std::map<std::string, std::string> a_sees = {
      {"only-a", "a"}, {"only-b", "<absent>"}, {"del-on-a", "<absent>"}, {"del-on-b", "before"}};
  const std::map<std::string, std::string> b_sees = {
      {"only-a", "<absent>"}, {"only-b", "b"}, {"del-on-a", "before"}, {"del-on-b", "<absent>"}};
  for (int i = 0; i < 10; i++) {
    ASSERT_TRUE(agree(side_a, a_sees)) << "node 1 learned something across the cut";
    ASSERT_TRUE(agree(side_b, b_sees)) << "nodes 2, 3 learned something across the cut";
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GT(proxies_[0]->refused() + proxies_[1]->refused() + proxies_[2]->refused(), 0u);

  for (auto& p : proxies_) p->restore();
  const std::map<std::string, std::string> want = {{"only-a", "a"},
                                                   {"only-b", "b"},
                                                   {"del-on-a", "<absent>"},
                                                   {"del-on-b", "<absent>"},
                                                   {"put-a-then-del-b", "<absent>"},
                                                   {"put-b-then-del-a", "<absent>"},
                                                   {"kept", "before"}};
  auto healed = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return agree(all, want) && identical_everywhere(); }, 10))
      << "the cluster converges within 10 s of the partition healing";
  std::fprintf(stderr, "converged %lld ms after the partition healed\n",
               static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - healed)
                                          .count()));
  // Deletes never come back: not over further sync, push and digest rounds.
  for (int i = 0; i < 10; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_TRUE(agree(all, want)) << "a deleted key came back";
  }
  EXPECT_TRUE(identical_everywhere());
}

// docs/PROTOCOL.md, "Future timestamps", end to end: node 1 wrote "k" while its
// clock ran an hour ahead. Its status counts the poisoned key, node 2 refuses
// the version, and node 2's own write of "k" loses on node 1. Stopped, `wavekv
// repair-timestamps`, restarted: the key replicates, and the next write from a
// correct clock wins everywhere.
TEST(ServeFutureTimestamps, RepairedKeyReplicatesAndCanBeWrittenAgain) {
  ScratchNodes scratch("future-serve-test", 2);
  std::vector<ServeNode>& nodes = scratch.nodes;
  for (int i = 0; i < 2; i++) {
    nodes[i].id = std::to_string(i + 1);
    nodes[i].sync_interval_ms = "100";
  }
  {
    Config c;
    c.data_dir = nodes[0].dir;
    c.node_id = 1;
    c.clock = std::make_shared<test::FakeClock>(system_clock()->now_ms() + 3600 * 1000);
    auto store = Store::open(c);
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    ASSERT_TRUE((*store)->put("k", "from-the-future").is_ok());
    ASSERT_TRUE((*store)->close().is_ok());
  }
  ASSERT_TRUE(nodes[0].start());
  nodes[1].seeds = nodes[0].peer;
  ASSERT_TRUE(nodes[1].start());
  EXPECT_EQ(status(nodes[0])["poisoned_keys"], 1);
  EXPECT_EQ(status(nodes[1])["poisoned_keys"], 0);
  ASSERT_TRUE(eventually(
      [&] { return status(nodes[1])["replication"]["entries_rejected"].get<uint64_t>() > 0; }, 10))
      << "node 2 refuses the future version";
  ASSERT_TRUE(put(nodes[1], "k", "from-node-2"));
  ASSERT_TRUE(put(nodes[1], "marker", "m"));
  ASSERT_TRUE(eventually([&] { return get(nodes[0], "marker") == "m"; }, 10));
  EXPECT_EQ(get(nodes[0], "k"), "from-the-future") << "a correct clock's write loses there";
  EXPECT_EQ(get(nodes[1], "k"), "from-node-2");

  ASSERT_EQ(nodes[0].stop(SIGTERM), 0);
  std::string cmd = std::string(WAVEKV_BINARY) + " repair-timestamps --data-dir " + nodes[0].dir +
                    " > " + nodes[0].dir + ".repair.log 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  ASSERT_TRUE(nodes[0].start());
  // The rewritten version is stamped now, after node 2's write: it wins.
  EXPECT_TRUE(eventually(
      [&] {
        return get(nodes[0], "k") == "from-the-future" && get(nodes[1], "k") == "from-the-future";
      },
      10));
  EXPECT_EQ(status(nodes[0])["poisoned_keys"], 0);
  ASSERT_TRUE(put(nodes[1], "k", "again-from-node-2"));
  EXPECT_TRUE(eventually(
      [&] {
        return get(nodes[0], "k") == "again-from-node-2" &&
               get(nodes[1], "k") == "again-from-node-2";
      },
      10))
      << "the key takes writes from a correct clock again";
}

// A delete that overtakes replication is still the last write. Nodes 0 and 1
// do not know each other yet (neither has the other as a peer), so node 1's
// SETs cannot reach node 0 before node 0's DELs (UNLINKs, GETDELs) of the
// same keys, 2 ms later, through RESP: node 0 holds none of them. Then node 1 restarts with
// node 0 as its seed and they converge: every key is deleted on both, as in
// real time (and by last-writer-wins) the DEL came last.
TEST(ServeCrossNode, ADelUnlinkOrGetdelOfAKeyThisNodeHasNotSeenWinsOverTheEarlierSet) {
  ScratchNodes scratch("cross-del-test", 2);
  std::vector<ServeNode>& nodes = scratch.nodes;
  ASSERT_TRUE(nodes[0].start());
  ASSERT_TRUE(nodes[1].start());
  constexpr int kKeys = 20;
  {
    test::Client on0(port_of(nodes[0].resp)), on1(port_of(nodes[1].resp));
    for (int i = 0; i < kKeys; i++) {
      const std::string key = "k" + std::to_string(i);
      ASSERT_EQ(on1.call({"SET", key, "v"}), "OK");
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      const char* del = i % 3 == 0 ? "DEL" : i % 3 == 1 ? "UNLINK" : "GETDEL";
      ASSERT_EQ(on0.call({del, key}), i % 3 == 2 ? "(nil)" : "0") << "node 0 does not hold " << key;
    }
  }
  ASSERT_EQ(nodes[1].stop(SIGTERM), 0);
  nodes[1].seeds = nodes[0].peer;
  ASSERT_TRUE(nodes[1].start());
  ASSERT_TRUE(put(nodes[0], "m0", "x"));
  ASSERT_TRUE(put(nodes[1], "m1", "x"));
  ASSERT_TRUE(
      eventually([&] { return get(nodes[0], "m1") == "x" && get(nodes[1], "m0") == "x"; }, 20));
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // five sync rounds
  for (int i = 0; i < kKeys; i++) {
    const std::string key = "k" + std::to_string(i);
    EXPECT_EQ(get(nodes[0], key), "<absent>") << key << ": the later DEL wins on node 0";
    EXPECT_EQ(get(nodes[1], key), "<absent>") << key << ": the later DEL wins on node 1";
  }
}

// Corruption in the middle of a node's WAL (intact records after it) stops
// `wavekv serve` with the file, the offset and the repair to run; after
// `wavekv check --repair` the node rejoins in a new incarnation and its peer
// sends back everything the cut removed, its own earlier writes included.
TEST(ServeCorruption, ANodeRefusesToStartAndAfterCheckRepairItsPeerSendsBackWhatWasCut) {
  ScratchNodes scratch("corrupt-wal-test", 2);
  std::vector<ServeNode>& nodes = scratch.nodes;
  ASSERT_TRUE(nodes[0].start());
  nodes[1].seeds = nodes[0].peer;
  ASSERT_TRUE(nodes[1].start());
  std::map<std::string, std::string> want;
  for (int i = 0; i < 200; i++) {
    const std::string key = "k" + std::to_string(i);
    ASSERT_TRUE(put(nodes[i % 4 == 0 ? 0 : 1], key, "v" + std::to_string(i)));
    want[key] = "v" + std::to_string(i);
  }
  auto holds_all = [&](const ServeNode& n) {
    for (const auto& [k, v] : want)
      if (get(n, k) != v) return false;
    return true;
  };
  ASSERT_TRUE(eventually([&] { return holds_all(nodes[0]); }, 30)) << "node 0 has node 1's writes";
  nodes[1].stop(SIGKILL);  // no checkpoint: everything is in the WAL

  // Flip a byte of the 20th record of node 1's first segment.
  const std::string wal = nodes[1].dir + "/" + wal_segment_name(1);
  std::string data;
  {
    std::ifstream in(wal, std::ios::binary);
    data.assign(std::istreambuf_iterator<char>(in), {});
  }
  uint64_t pos = kWalHeaderBytes;
  for (int r = 0; r < 20; r++) {
    uint32_t len = 0;
    std::memcpy(&len, data.data() + pos, 4);
    ASSERT_NE(len, 0u) << "fewer than 20 records";
    pos += kRecordHeaderBytes + len;
  }
  data[pos + kRecordHeaderBytes + 9] ^= 0x10;
  {
    std::ofstream out(wal, std::ios::binary | std::ios::trunc);
    out << data;
  }

  EXPECT_FALSE(nodes[1].start()) << "the node started past the corruption";
  std::ifstream log(nodes[1].log());
  const std::string said{std::istreambuf_iterator<char>(log), {}};
  EXPECT_NE(said.find("at byte " + std::to_string(pos) + " of " + wal), std::string::npos) << said;
  EXPECT_NE(said.find("wavekv check --repair"), std::string::npos) << said;

  test::Outcome repair =
      test::run_command(std::string(WAVEKV_BINARY) + " check --repair --data-dir " + nodes[1].dir);
  ASSERT_EQ(repair.exit_code, 0) << repair.out;
  ASSERT_NE(repair.out.find("status: repaired"), std::string::npos) << repair.out;
  test::Outcome cut =
      test::run_command(std::string(WAVEKV_BINARY) + " get --data-dir " + nodes[1].dir + " k199");
  EXPECT_NE(cut.exit_code, 0) << "the cut should have removed node 1's later writes: " << cut.out;
  ASSERT_TRUE(nodes[1].start());
  EXPECT_TRUE(eventually([&] { return holds_all(nodes[1]); }, 30))
      << "node 0 sends back everything the cut removed";
}

// A counter of the node's replication status; 0 when the node does not answer.
uint64_t replication_counter(const ServeNode& n, const char* name) {
  nlohmann::json s = status(n);
  return s.contains("replication") ? s["replication"].value(name, uint64_t{0}) : 0;
}

// Port 0 everywhere, and a node restarted inside its process keeps what it
// reported: node 1 is frozen (SIGSTOP) until nodes 0 and 2 evict it, then
// thawed. Told to re-bootstrap, `wavekv serve` wipes the store and starts the
// node again, on the ports of its first start (whoever read them, peers
// included, still reaches it), and says so again on stdout and in a new
// ready file.
TEST(ServeReadyFile, ARebootstrapKeepsThePortsAndRewritesTheReadyFile) {
  ScratchNodes scratch("ready-test", 3);
  std::vector<ServeNode>& nodes = scratch.nodes;
  for (int i = 0; i < 3; i++) {
    // One expiry for all: node 1 honours the Rebootstrap only from members
    // it has known for its own expiry. Thawed, it evicts no one for the
    // silence it slept through (Replica::on_tick).
    nodes[i].extra = {"--member-expiry-ms", "3000"};
    if (i > 0) nodes[i].seeds = nodes[0].peer;
    ASSERT_TRUE(nodes[i].start());
  }
  ServeNode& n1 = nodes[1];
  const std::string line = " peer=" + n1.peer + " resp=" + n1.resp + " http=" + n1.http + "\n";
  EXPECT_NE(test::file_tail(n1.log()).find("listening node=" + std::to_string(n1.node_id) + line),
            std::string::npos)
      << "the stdout line names what the ready file does";
  ASSERT_TRUE(put(nodes[0], "before", "x"));
  ASSERT_TRUE(eventually([&] {
    for (auto& n : nodes)
      if (status(n)["members"].size() != 2) return false;
    return get(n1, "before") == "x";
  }));
  struct stat first;
  ASSERT_EQ(::stat(n1.ready_file().c_str(), &first), 0);
  const uint64_t old_incarnation = status(n1)["incarnation"];

  ::kill(n1.pid, SIGSTOP);
  EXPECT_TRUE(eventually([&] {
    return replication_counter(nodes[0], "members_evicted") > 0 &&
           replication_counter(nodes[2], "members_evicted") > 0;
  }));
  ::kill(n1.pid, SIGCONT);
  // The same HTTP port answers for a new incarnation, bootstrapped back.
  ASSERT_TRUE(eventually([&] {
    return status(n1).value("incarnation", old_incarnation) != old_incarnation &&
           get(n1, "before") == "x";
  }));
  // The node serves before `serve` writes the file again (it reports what
  // the started node bound), so the new file may come a moment later.
  struct stat second {};
  EXPECT_TRUE(eventually([&] {
    return ::stat(n1.ready_file().c_str(), &second) == 0 && second.st_ino != first.st_ino;
  })) << "the ready file was written again";
  const pid_t pid = n1.pid;
  std::ifstream in(n1.ready_file());
  nlohmann::json ready = nlohmann::json::parse(in);
  EXPECT_EQ(ready["pid"], pid) << "the same process";
  EXPECT_EQ(ready["peer"], n1.peer);
  EXPECT_EQ(ready["resp"], n1.resp);
  EXPECT_EQ(ready["http"], n1.http);
  std::string log = test::file_tail(n1.log(), 1 << 20);
  size_t first_line = log.find(line);
  ASSERT_NE(first_line, std::string::npos);
  EXPECT_NE(log.find(line, first_line + 1), std::string::npos) << "a second 'listening' line";
}

}  // namespace
}  // namespace wavekv
