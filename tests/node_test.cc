// The node end to end in one process: real TCP on loopback, real stores in
// temporary directories, three Nodes.
#include "wavekv/node.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

#include "monitoring/node_status.h"
#include "support/node_harness.h"
#include "support/resp_client.h"
#include "support/test_util.h"

namespace wavekv {
namespace {

using test::config_for;
using test::eventually;
using test::temp_dir;

// Issue 4: a three-node cluster where each node knows only one other at start
// finds the rest, and writes on every node converge everywhere.
//
// The test once crashed in CI: it took "59 live keys on every node" for
// convergence, but a node also has 59 while it still misses one of the 60
// keys and the delete of another; the check after it then read value() of
// an absent key (undefined in a release build). Converged now means every
// key is there and the deleted one is not, and no check reads value() blind.
TEST(Node, ThreeNodesInAChainDiscoverEachOtherAndConverge) {
  std::vector<std::unique_ptr<Node>> nodes;
  std::vector<std::string> dirs;
  for (int i = 0; i < 3; i++) {
    dirs.push_back(temp_dir("chain" + std::to_string(i)));
    std::vector<std::string> peers;
    if (i > 0) peers.push_back(nodes[i - 1]->peer_address());
    auto n = Node::start(config_for(dirs.back(), peers));
    ASSERT_TRUE(n) << n.status().to_string();
    nodes.push_back(std::move(n).value());
  }
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < 20; k++)
      ASSERT_TRUE(nodes[i]->store().put("n" + std::to_string(i) + "-" + std::to_string(k), "v"));
  ASSERT_TRUE(nodes[1]->store().del("n0-0"));
  auto converged = [](Node& n) {
    if (n.status().members.size() != 2 || n.store().get("n0-0").is_ok()) return false;
    for (int i = 0; i < 3; i++)
      for (int k = i == 0 ? 1 : 0; k < 20; k++)
        if (!n.store().get("n" + std::to_string(i) + "-" + std::to_string(k)).is_ok()) return false;
    return true;
  };
  EXPECT_TRUE(eventually([&] {
    for (auto& n : nodes)
      if (!converged(*n)) return false;
    return true;
  })) << monitoring::to_json(nodes[0]->status()).dump()
      << "\n"
      << monitoring::to_json(nodes[2]->status()).dump();
  for (auto& n : nodes) {
    EXPECT_EQ(n->status().store.live_keys, 59u);
    auto v = n->store().get("n2-19");
    EXPECT_TRUE(v.is_ok() && *v == "v");
    EXPECT_EQ(n->store().get("n0-0").status().code(), Code::kNotFound) << "the delete replicated";
  }
  for (const MemberStatus& m : nodes[0]->status().members) {
    EXPECT_NE(m.id, 0u);
    EXPECT_FALSE(m.address.empty());
  }
  for (auto& n : nodes) EXPECT_TRUE(n->stop());
  for (auto& d : dirs) std::filesystem::remove_all(d);
}

// Keyspace notifications come from the store's changes, not from RESP
// commands: a write that replicated in from another node is announced on
// this node's RESP port like a local one.
TEST(Node, ReplicatedChangesAreAnnouncedToRespSubscribers) {
  const std::string d0 = temp_dir("notify0"), d1 = temp_dir("notify1");
  auto n0 = Node::start(config_for(d0, {}));
  ASSERT_TRUE(n0) << n0.status().to_string();
  NodeConfig c1 = config_for(d1, {(*n0)->peer_address()});
  c1.resp_listen = "127.0.0.1:0";
  c1.resp_notify_keyspace_events = "E$g";
  auto n1 = Node::start(c1);
  ASSERT_TRUE(n1) << n1.status().to_string();
  const std::string resp = (*n1)->resp_address();
  test::Client sub(static_cast<uint16_t>(std::stoi(resp.substr(resp.rfind(':') + 1))));
  ASSERT_EQ(sub.call({"SUBSCRIBE", "__keyevent@0__:set", "__keyevent@0__:del"}).substr(0, 11),
            "[subscribe,");
  ASSERT_EQ(sub.read().show(), "[subscribe, __keyevent@0__:del, 2]");
  ASSERT_TRUE((*n0)->store().put("from-n0", "v"));
  EXPECT_EQ(sub.read().show(), "[message, __keyevent@0__:set, from-n0]");
  ASSERT_TRUE((*n0)->store().del("from-n0"));
  EXPECT_EQ(sub.read().show(), "[message, __keyevent@0__:del, from-n0]");
  EXPECT_TRUE((*n1)->stop());
  EXPECT_TRUE((*n0)->stop());
  std::filesystem::remove_all(d0);
  std::filesystem::remove_all(d1);
}

// A node restarted on its data directory keeps what it had and catches up on
// what it missed while down.
TEST(Node, RestartedNodeCatchesUp) {
  auto dir_a = temp_dir("restart-a"), dir_b = temp_dir("restart-b");
  auto a = Node::start(config_for(dir_a, {}));
  ASSERT_TRUE(a);
  auto b = Node::start(config_for(dir_b, {(*a)->peer_address()}));
  ASSERT_TRUE(b);
  ASSERT_TRUE((*b)->store().put("early", "1"));
  ASSERT_TRUE(eventually([&] { return (*a)->store().get("early").is_ok(); }));
  ASSERT_TRUE((*b)->stop());
  b->reset();
  ASSERT_TRUE((*a)->store().put("while-down", "2"));
  // On a new port (port 0 again: the old one may be taken by now); A learns
  // it when B next talks to it.
  auto b2 = Node::start(config_for(dir_b, {(*a)->peer_address()}));
  ASSERT_TRUE(b2) << b2.status().to_string();
  auto early = (*b2)->store().get("early");
  EXPECT_TRUE(early.is_ok() && *early == "1");
  EXPECT_TRUE(eventually([&] { return (*b2)->store().get("while-down").is_ok(); }));
  EXPECT_TRUE((*b2)->stop());
  EXPECT_TRUE((*a)->stop());
  std::filesystem::remove_all(dir_a);
  std::filesystem::remove_all(dir_b);
}

// Issue 11: a node whose store takes smaller values than its peer's stored
// the larger ones that peer replicated (the replica and the decoder had
// limits of their own). Node::start now derives them from the store's.
TEST(Node, APeersValueOverThisStoresLimitIsNeverStored) {
  auto dir_a = temp_dir("limit-a"), dir_b = temp_dir("limit-b");
  auto a = Node::start(config_for(dir_a, {}));
  ASSERT_TRUE(a) << a.status().to_string();
  NodeConfig cb = config_for(dir_b, {(*a)->peer_address()});
  cb.store.max_value_bytes = 100;  // the replica's limit is left at its (larger) default
  auto b = Node::start(cb);
  ASSERT_TRUE(b) << b.status().to_string();
  ASSERT_TRUE((*a)->store().put("fits", std::string(100, 'v')));
  ASSERT_TRUE(eventually([&] { return (*b)->store().get("fits").is_ok(); }));
  ASSERT_TRUE((*a)->store().put("over", std::string(101, 'v')));
  ASSERT_TRUE(eventually([&] {
    const NodeStatus s = (*b)->status();
    return s.replication.entries_quarantined > 0;  // covered, not stored: no stall
  }));
  EXPECT_EQ((*b)->status().driver.decode_errors, 0u);
  EXPECT_EQ((*b)->store().get("over").status().code(), Code::kNotFound);
  EXPECT_TRUE((*b)->stop());
  EXPECT_TRUE((*a)->stop());
  std::filesystem::remove_all(dir_a);
  std::filesystem::remove_all(dir_b);
}

// Every log line of a node goes to the embedder's sink, the start line with
// the node's id as a field.
TEST(Node, LogsThroughTheConfiguredSink) {
  auto dir = temp_dir("log-sink");
  std::mutex mu;
  std::vector<LogRecord> records;
  NodeConfig c = config_for(dir, {});
  c.log = [&](const LogRecord& r) {
    std::lock_guard lock(mu);
    records.push_back(r);
  };
  auto n = Node::start(c);
  ASSERT_TRUE(n) << n.status().to_string();
  const std::string id = std::to_string((*n)->store().node_id());
  EXPECT_TRUE((*n)->stop());
  std::lock_guard lock(mu);
  const LogRecord* start = nullptr;
  for (const auto& r : records)
    if (r.message == "node started") start = &r;
  ASSERT_NE(start, nullptr) << records.size() << " records, none the start line";
  EXPECT_EQ(start->level, LogLevel::kInfo);
  EXPECT_EQ(start->component, "node");
  bool has_id = false, has_peer = false;
  for (const auto& f : start->fields) {
    has_id |= f.key == "node" && f.value == id;
    has_peer |= f.key == "peer" && f.value == (*n)->peer_address();
  }
  EXPECT_TRUE(has_id) << "node=" << id;
  EXPECT_TRUE(has_peer);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace wavekv
