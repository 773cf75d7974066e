// The clock offset check (docs/PROTOCOL.md, "Clock offset"): ClockMonitor's
// estimate and majority rule, then real nodes over TCP, one with a clock
// ten minutes off, and a rolling upgrade from wire version 2.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "node/clock_monitor.h"
#include "replication/messages.h"
#include "support/node_harness.h"
#include "support/test_util.h"
#include "wavekv/node.h"

namespace wavekv {
namespace {

constexpr uint64_t kT = 1'750'000'000'000ull;

TEST(ClockMonitor, TheEstimateIsTheLeastDelayedSampleOfTheWindow) {
  ClockMonitor m(500, 10'000);
  // A peer 300 ms ahead; its messages took 5, 200 and 40 ms.
  m.observe(2, kT + 300, kT + 5);
  m.observe(2, kT + 1300, kT + 1200);
  m.observe(2, kT + 2300, kT + 2040);
  ClockReading r = m.read(kT + 2100);
  EXPECT_EQ(r.offsets_ms.at(2), 295) << "the 5 ms message, not the last or the mean";
  EXPECT_EQ(r.beyond, 0u);
  EXPECT_FALSE(r.out_of_bounds);
  EXPECT_EQ(r.own_offset_ms, -295) << "this node is behind its one peer";
}

TEST(ClockMonitor, ABoundIsExceededOnlyPastItAndSamplesAgeOutOfTheWindow) {
  ClockMonitor m(500, 10'000);
  m.observe(2, kT + 500, kT);  // exactly at the bound: within
  m.observe(3, kT - 501, kT);  // one past it, behind: beyond
  ClockReading r = m.read(kT);
  EXPECT_EQ(r.offsets_ms.at(2), 500);
  EXPECT_EQ(r.offsets_ms.at(3), -501);
  EXPECT_EQ(r.beyond, 1u);
  EXPECT_FALSE(r.out_of_bounds) << "1 of 2 is not more than half";
  // Peer 3's clock is fixed; its old sample leaves with the window.
  m.observe(3, kT + 6'000, kT + 6'000);
  EXPECT_EQ(m.read(kT + 6'000).offsets_ms.at(3), 0) << "the larger sample wins within the window";
  m.observe(3, kT + 12'000, kT + 12'000);
  m.observe(3, kT + 17'000, kT + 17'000);
  EXPECT_EQ(m.read(kT + 17'000).beyond, 0u);
  // Peer 2, silent since kT, is no longer counted at all.
  EXPECT_EQ(m.read(kT + 17'000).offsets_ms.count(2), 0u);
}

TEST(ClockMonitor, WhenThisNodesClockStepsBackItsEarlierSamplesAreDropped) {
  ClockMonitor m(500, 10'000);
  m.observe(2, kT + 60'000, kT);  // our clock a minute behind the peer's
  m.observe(2, kT + 60'100, kT + 100);
  EXPECT_EQ(m.read(kT + 100).offsets_ms.at(2), 60'000);
  // Our clock is set a minute forward: the same peer is now in step.
  m.observe(2, kT + 60'200, kT + 60'200);
  EXPECT_EQ(m.read(kT + 60'200).offsets_ms.at(2), 0) << "forward: a new window";
  m.observe(2, kT + 60'300, kT + 300);  // and back again: a minute behind
  EXPECT_EQ(m.read(kT + 300).offsets_ms.at(2), 60'000)
      << "back: the in-step sample measured the other clock";
}

TEST(ClockMonitor, OutOfBoundsTakesMoreThanHalfOfThePeers) {
  for (size_t beyond : {1u, 2u, 3u, 4u}) {
    SCOPED_TRACE(std::to_string(beyond) + " of 4 peers beyond");
    ClockMonitor m(500, 10'000);
    for (NodeId p = 1; p <= 4; p++) m.observe(p, p <= beyond ? kT + 60'000 : kT, kT);
    ClockReading r = m.read(kT);
    EXPECT_EQ(r.beyond, beyond);
    EXPECT_EQ(r.out_of_bounds, beyond >= 3) << "2 of 4 is a tie, not a majority";
  }
}

// The store's clock, `offset_ms` off the system clock; settable while it runs.
class OffsetClock final : public Clock {
 public:
  explicit OffsetClock(int64_t offset_ms) : offset_(offset_ms) {}
  uint64_t now_ms() override {
    const int64_t sys = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    return static_cast<uint64_t>(sys + offset_.load());
  }
  void set(int64_t offset_ms) { offset_.store(offset_ms); }

 private:
  std::atomic<int64_t> offset_;
};

using test::config_for;
using test::eventually;
using test::temp_dir;

// Three nodes; node 2's clock runs ten minutes ahead (or behind). Node 2 sees
// both peers beyond the bound and refuses client writes, with a message that
// says why; nodes 0 and 1 each see one of two peers beyond and go on. Once
// node 2's clock is right, it accepts writes again.
class ClockOffsetCluster : public ::testing::TestWithParam<int64_t> {};

TEST_P(ClockOffsetCluster, TheNodeWhoseClockIsOffRefusesClientWritesUntilItIsFixed) {
  const int64_t off = GetParam();
  auto clock = std::make_shared<OffsetClock>(0);
  std::vector<std::unique_ptr<Node>> nodes;
  std::vector<std::string> dirs;
  for (int i = 0; i < 3; i++) {
    dirs.push_back(temp_dir(std::to_string(off) + "-" + std::to_string(i)));
    std::vector<std::string> peers;
    if (i > 0) peers.push_back(nodes[0]->peer_address());
    NodeConfig c = config_for(dirs.back(), peers);
    if (i == 2) c.store.clock = clock;
    auto n = Node::start(c);
    ASSERT_TRUE(n) << n.status().to_string();
    nodes.push_back(std::move(n).value());
  }
  ASSERT_TRUE(nodes[2]->store().put("before", "v"));
  ASSERT_TRUE(eventually([&] {
    for (auto& n : nodes)
      if (n->status().clock.peers != 2) return false;
    return true;
  })) << "every node hears both peers' clocks";
  EXPECT_FALSE(nodes[2]->status().clock.refusing_writes) << "in step, nothing is refused";

  clock->set(off);
  ASSERT_TRUE(eventually([&] { return nodes[2]->status().clock.refusing_writes; }));
  Status st = nodes[2]->store().put("k", "v");
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.to_string();
  EXPECT_NE(st.message().find(off > 0 ? "ahead of its peers'" : "behind its peers'"),
            std::string::npos)
      << st.message();
  const NodeStatus s2 = nodes[2]->status();
  EXPECT_EQ(s2.clock.peers_beyond, 2u);
  const int64_t magnitude = s2.clock.offset_ms < 0 ? -s2.clock.offset_ms : s2.clock.offset_ms;
  EXPECT_GT(magnitude, 590'000) << s2.clock.offset_ms;
  EXPECT_EQ(s2.clock.offset_ms > 0, off > 0);
  for (int i = 0; i < 2; i++) {
    // A sample stays in the window for up to 10 s: an earlier one, nearer in
    // time, can hide a peer that fell behind until it ages out.
    EXPECT_TRUE(eventually([&] { return nodes[i]->status().clock.peers_beyond == 1; }))
        << "node " << i << " sees node 2 beyond the bound";
    EXPECT_FALSE(nodes[i]->status().clock.refusing_writes) << "node " << i << " is not outvoted";
    EXPECT_TRUE(nodes[i]->store().put("on" + std::to_string(i), "v").is_ok());
  }
  if (off > 0) {
    // Replication goes on: node 2 still takes its peers' writes. (Behind by
    // more than the drift bound, it refuses them as stamped in its future,
    // and takes them once its clock is right.)
    EXPECT_TRUE(eventually([&] { return nodes[2]->store().get("on0").is_ok(); }));
  }

  clock->set(0);
  ASSERT_TRUE(eventually([&] { return !nodes[2]->status().clock.refusing_writes; }));
  EXPECT_TRUE(nodes[2]->store().put("k", "v").is_ok());
  EXPECT_TRUE(eventually([&] { return nodes[2]->store().get("on0").is_ok(); }));
  for (auto& n : nodes) (void)n->stop();
  for (auto& d : dirs) std::filesystem::remove_all(d);
}

INSTANTIATE_TEST_SUITE_P(AheadAndBehind, ClockOffsetCluster,
                         ::testing::Values(10 * 60 * 1000, -10 * 60 * 1000),
                         [](const auto& info) { return info.param > 0 ? "Ahead" : "Behind"; });

// A rolling upgrade: a node that speaks only wire version 2 (as the previous
// release does) and one of this build converge; the new one counts the old
// one's frames and has no clock for it. Once the old one is restarted on
// version 3, its clock shows.
TEST(RollingUpgrade, AWireVersion2NodeAndAVersion3NodeConvergeAndTheUpgradeIsNoticed) {
  const std::string d0 = temp_dir("upgrade0"), d1 = temp_dir("upgrade1");
  auto n0 = Node::start(config_for(d0, {}));
  ASSERT_TRUE(n0) << n0.status().to_string();
  NodeConfig old = config_for(d1, {(*n0)->peer_address()});
  old.max_wire_version = 2;
  auto n1 = Node::start(old);
  ASSERT_TRUE(n1) << n1.status().to_string();
  for (int i = 0; i < 30; i++) {
    ASSERT_TRUE((*n0)->store().put("new" + std::to_string(i), "v"));
    ASSERT_TRUE((*n1)->store().put("old" + std::to_string(i), "v"));
  }
  auto holds_all = [](Node& n) {
    for (int i = 0; i < 30; i++)
      if (!n.store().get("new" + std::to_string(i)).is_ok() ||
          !n.store().get("old" + std::to_string(i)).is_ok())
        return false;
    return true;
  };
  EXPECT_TRUE(eventually([&] { return holds_all(**n0) && holds_all(**n1); }))
      << "a version 2 node and a version 3 node converge";
  const NodeStatus s0 = (*n0)->status();
  EXPECT_GT(s0.clock.wire_v2_frames, 0u);
  EXPECT_GE(s0.clock.wire_older_frames, s0.clock.wire_v2_frames);
  ASSERT_EQ(s0.members.size(), 1u);
  EXPECT_FALSE(s0.members[0].clock_offset_ms) << "version 2 carries no clock";
  EXPECT_EQ((*n1)->status().clock.peers, 0u) << "the old node reads no clock";

  ASSERT_TRUE((*n1)->stop());
  n1 = Node::start(config_for(d1, {(*n0)->peer_address()}));
  ASSERT_TRUE(n1) << n1.status().to_string();
  EXPECT_TRUE(eventually([&] {
    const NodeStatus s = (*n0)->status();
    return s.members.size() == 1 && s.members[0].clock_offset_ms.has_value() &&
           (*n1)->status().clock.peers == 1;
  })) << "both read each other's clock after the upgrade";
  ASSERT_TRUE((*n1)->store().put("after", "upgrade"));
  EXPECT_TRUE(eventually([&] { return (*n0)->store().get("after").is_ok(); }));
  (void)(*n0)->stop();
  (void)(*n1)->stop();
  std::filesystem::remove_all(d0);
  std::filesystem::remove_all(d1);
}

}  // namespace
}  // namespace wavekv
