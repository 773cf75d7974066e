// Expiry across real nodes on loopback (docs/PROTOCOL.md, "Expiry"): the
// expiry travels with the version, every node hides the key from the same
// millisecond on, and the tombstones it becomes are collected by the usual
// rule; a node of wire version 3 is sent the tombstone instead, and the
// digests still agree.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "state/state.h"
#include "support/node_harness.h"
#include "support/store_harness.h"
#include "wavekv/node.h"

namespace wavekv {
namespace {

using test::config_for;
using test::eventually;
using test::temp_dir;

Status put_expiring(Node& n, const std::string& key, const std::string& value,
                    uint64_t expires_ms) {
  WriteBatch b;
  b.put(key, value, expires_ms);
  return n.store().write(b);
}

TEST(ExpiryCluster, AKeyExpiresOnEveryNodeAtItsTimeAndItsTombstoneIsCollected) {
  std::vector<std::string> dirs;
  std::vector<std::unique_ptr<Node>> nodes;
  for (int i = 0; i < 3; i++) {
    dirs.push_back(temp_dir("expiry" + std::to_string(i)));
    NodeConfig c =
        config_for(dirs.back(), nodes.empty() ? std::vector<std::string>{}
                                              : std::vector<std::string>{nodes[0]->peer_address()});
    c.replica.tombstone_grace_ms = 0;
    c.store.expire_interval_ms = 10;
    auto n = Node::start(c);
    ASSERT_TRUE(n) << n.status().to_string();
    nodes.push_back(std::move(*n));
  }
  ASSERT_TRUE(eventually([&] {
    for (auto& n : nodes)
      if (n->status().members.size() != 2) return false;
    return true;
  }));
  const uint64_t expires = nodes[0]->store().now_ms() + 1500;
  ASSERT_TRUE(put_expiring(*nodes[0], "session", "token", expires));
  ASSERT_TRUE(nodes[0]->store().put("plain", "v"));
  ASSERT_TRUE(eventually([&] {
    for (auto& n : nodes) {
      auto e = n->store().get_entry("session");
      if (!e || e->expires_ms != expires || !n->store().get("plain").is_ok()) return false;
    }
    return true;
  })) << "the expiry replicates with the value";
  // Read before the expiry (if this machine kept up), every node serves it;
  // after, none does.
  for (auto& n : nodes)
    if (n->store().now_ms() < expires) {
      EXPECT_TRUE(n->store().get("session").is_ok());
    }
  ASSERT_TRUE(eventually([&] {
    for (auto& n : nodes)
      if (n->store().get("session").is_ok()) return false;
    return true;
  }));
  for (auto& n : nodes) EXPECT_GT(n->store().now_ms(), expires);
  ASSERT_TRUE(eventually([&] {
    for (auto& n : nodes)
      if (n->store().get_entry("session").has_value() || n->status().store.expired_keys != 1)
        return false;
    return true;
  })) << "each node expired it once, and tombstone GC collected it on every node";
  EXPECT_TRUE(eventually([&] {
    const uint64_t d = nodes[0]->status().digest;
    for (auto& n : nodes)
      if (n->status().digest != d) return false;
    return true;
  }));
  for (auto& n : nodes) EXPECT_EQ(test::value_of(n->store(), "plain"), "v");
  for (auto& n : nodes) (void)n->stop();
  for (auto& d : dirs) std::filesystem::remove_all(d);
}

// A rolling upgrade with expiry in use: a node that speaks at most wire
// version 3 cannot hold an expiry, and a frame in version 3 could carry an
// expiring key only as a tombstone. Such frames go in version 4 alone (a
// newer peer taken for an older one must not lose the key), so the old node
// drops them: what it lacks of that stream waits for its upgrade, and then
// arrives with the expiry. Its own writes keep flowing to the new node.
TEST(RollingUpgrade, AnExpiringKeyWaitsForTheOldNodesUpgradeAndThenArrivesWhole) {
  const std::string d0 = temp_dir("ttl-upgrade0"), d1 = temp_dir("ttl-upgrade1");
  auto n0 = Node::start(config_for(d0, {}));
  ASSERT_TRUE(n0) << n0.status().to_string();
  NodeConfig old = config_for(d1, {(*n0)->peer_address()});
  old.max_wire_version = 3;
  auto n1 = Node::start(old);
  ASSERT_TRUE(n1) << n1.status().to_string();
  ASSERT_TRUE((*n0)->store().put("before", "b"));
  ASSERT_TRUE(eventually([&] { return (*n1)->store().get("before").is_ok(); }));
  const uint64_t expires = (*n0)->store().now_ms() + 3'600'000;
  ASSERT_TRUE(put_expiring(**n0, "cache", "v", expires));
  ASSERT_TRUE((*n1)->store().put("from-old", "o"));
  ASSERT_TRUE(eventually([&] { return (*n0)->store().get("from-old").is_ok(); }))
      << "the old node's writes reach the new one";
  EXPECT_FALSE((*n1)->store().get_entry("cache").has_value())
      << "no tombstone stands in for the expiring key";

  ASSERT_TRUE((*n1)->stop());
  n1 = Node::start(config_for(d1, {(*n0)->peer_address()}));
  ASSERT_TRUE(n1) << n1.status().to_string();
  ASSERT_TRUE(eventually([&] { return (*n1)->store().get("cache").is_ok(); }));
  EXPECT_EQ((*n1)->store().get_entry("cache")->expires_ms, expires);
  EXPECT_TRUE(eventually([&] { return (*n0)->status().digest == (*n1)->status().digest; }));
  (void)(*n0)->stop();
  (void)(*n1)->stop();
  std::filesystem::remove_all(d0);
  std::filesystem::remove_all(d1);
}

// Should a frame in an older version ever have made a tombstone of an
// expiring value on a node that speaks version 4, the value in its full
// form, sent again (bucket repair, a bootstrap), replaces it.
TEST(StateExpiryForms, TheFormThatKnowsTheExpiryReplacesTheTombstoneAnOldFrameMade) {
  State s(1, 1);
  const Meta m{7, 1, timestamp_from_millis(1'750'000'000'000ull), 7};
  OpSetEntry downgraded{"k", Entry{"", true, m, 0}};
  OpSetEntry full{"k", Entry{"v", false, m, 1'750'000'100'000ull}};
  ASSERT_TRUE(s.apply(downgraded).changed);
  const auto digest = s.digest();
  EXPECT_TRUE(s.apply(full).changed);
  EXPECT_EQ(s.kv().at("k"), full.entry);
  EXPECT_EQ(s.digest(), digest);
  EXPECT_FALSE(s.apply(downgraded).changed) << "and not the other way";
  OpSetEntry real_delete{"j", Entry{"", true, m, 0}};
  OpSetEntry other{"j", Entry{"v", false, Meta{7, 1, m.timestamp - 1, 7}, 1}};
  ASSERT_TRUE(s.apply(real_delete).changed);
  EXPECT_FALSE(s.apply(other).changed) << "an older version with an expiry is still older";
}

}  // namespace
}  // namespace wavekv
