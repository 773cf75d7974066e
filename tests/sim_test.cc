// Deterministic simulation of whole clusters (tests/sim): convergence,
// durability of acknowledged writes and no resurrection, under faults.
#include <gtest/gtest.h>

#include <cstdlib>

#include "sim/cluster.h"
#include "sim/scenario.h"

namespace wavekv::sim {
namespace {

SimOptions quiet(int nodes) {
  SimOptions o;
  o.nodes = nodes;
  o.replica.sync_interval_ms = 200;
  return o;
}

TEST(Sim, WritesOnEveryNodeConverge) {
  Cluster c(quiet(3));
  for (int i = 0; i < 30; i++) ASSERT_TRUE(c.put(i % 3, "k" + std::to_string(i % 7), "v"));
  ASSERT_TRUE(c.del(1, "k3"));
  EXPECT_GE(c.run_until_converged(10'000), 0);
  EXPECT_EQ(c.check_model(), "");
}

TEST(Sim, ANewNodePointedAtOneMemberLearnsTheRest) {
  Cluster c(quiet(5));  // node i's only seed is node i-1
  c.run_for(5'000);
  for (int i = 0; i < 5; i++) {
    size_t peers = 0;
    c.store(i).read_state([&](const State& s) { peers = s.peers().size(); });
    EXPECT_EQ(peers, 4u) << "node " << i << " should know every other member";
  }
}

TEST(Sim, PushDeliversFasterThanTheSyncInterval) {
  SimOptions o = quiet(3);
  o.replica.sync_interval_ms = 10'000;
  Cluster c(o);
  c.run_for(25'000);  // discovery over two rounds
  ASSERT_TRUE(c.put(0, "fast", "1"));
  c.run_for(200);
  for (int i = 1; i < 3; i++) {
    std::optional<Entry> e = c.store(i).get_entry("fast");
    EXPECT_TRUE(e.has_value()) << "node " << i << " should have the pushed write within 200 ms";
  }
}

TEST(Sim, OneWayReachablePairConvergesThroughAThirdNode) {
  Cluster c(quiet(3));
  c.run_for(3'000);
  c.cut(0, 1);  // 0 cannot reach 1, and 1 cannot reach 0
  c.cut(1, 0);
  ASSERT_TRUE(c.put(0, "from0", "x"));
  ASSERT_TRUE(c.put(1, "from1", "y"));
  EXPECT_GE(c.run_until_converged(20'000), 0) << "entries must be relayed through node 2";
  EXPECT_EQ(c.check_model(), "");
}

TEST(Sim, WipedNodeRebootstrapsWithoutReusingSeqs) {
  Cluster c(quiet(3));
  for (int i = 0; i < 20; i++) ASSERT_TRUE(c.put(2, "k" + std::to_string(i), "old"));
  ASSERT_GE(c.run_until_converged(10'000), 0);
  c.wipe(2);
  ASSERT_TRUE(c.put(2, "after-wipe", "new"));
  EXPECT_GE(c.run_until_converged(20'000), 0);
  EXPECT_EQ(c.check_model(), "");
  EXPECT_TRUE(c.store(0).get_entry("after-wipe").has_value())
      << "peers that covered the old incarnation's seqs must still pull the new write";
}

uint64_t seeds_from_env(uint64_t fallback) {
  const char* env = std::getenv("WAVEKV_SIM_SEEDS");
  return env != nullptr ? std::strtoull(env, nullptr, 10) : fallback;
}

TEST(Sim, RandomFaultScenariosHoldTheModel) {
  const uint64_t seeds = seeds_from_env(40);
  for (uint64_t seed = 1; seed <= seeds; seed++) {
    ScenarioResult r = run_fault_scenario(seed, 4, 6'000);
    EXPECT_EQ(r.failure, "") << "reproduce: build/tests/sim --seed " << seed
                             << " --nodes 4 --fault-ms 6000";
  }
}

}  // namespace
}  // namespace wavekv::sim
