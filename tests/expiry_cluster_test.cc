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
// version 3 cannot hold an expiry, so it is sent the tombstone the value
// becomes (it never serves the key past its expiry; it misses it before).
// The digests agree all along, so anti-entropy does not fight over it.
TEST(RollingUpgrade, AVersion3NodeGetsTheTombstoneOfAnExpiringKeyAndTheDigestsAgree) {
  const std::string d0 = temp_dir("ttl-upgrade0"), d1 = temp_dir("ttl-upgrade1");
  auto n0 = Node::start(config_for(d0, {}));
  ASSERT_TRUE(n0) << n0.status().to_string();
  NodeConfig old = config_for(d1, {(*n0)->peer_address()});
  old.max_wire_version = 3;
  auto n1 = Node::start(old);
  ASSERT_TRUE(n1) << n1.status().to_string();
  const uint64_t expires = (*n0)->store().now_ms() + 3'600'000;
  ASSERT_TRUE(put_expiring(**n0, "cache", "v", expires));
  ASSERT_TRUE((*n0)->store().put("plain", "p"));
  ASSERT_TRUE((*n1)->store().put("from-old", "o"));
  ASSERT_TRUE(eventually([&] {
    auto e = (*n1)->store().get_entry("cache");
    return e && (*n1)->store().get("plain").is_ok() && (*n0)->store().get("from-old").is_ok();
  }));
  auto on_old = (*n1)->store().get_entry("cache");
  ASSERT_TRUE(on_old);
  EXPECT_TRUE(on_old->tombstone) << "version 3 carries no expiry: the tombstone goes instead";
  EXPECT_EQ(on_old->expires_ms, 0u);
  EXPECT_EQ(on_old->meta, (*n0)->store().get_entry("cache")->meta) << "the same version";
  EXPECT_EQ(test::value_of((*n0)->store(), "cache"), "v") << "the new node still serves it";
  EXPECT_TRUE(eventually([&] { return (*n0)->status().digest == (*n1)->status().digest; }))
      << "an expiring value and its tombstone hash alike";
  EXPECT_GT((*n0)->status().clock.wire_older_frames, 0u);
  (void)(*n0)->stop();
  (void)(*n1)->stop();
  std::filesystem::remove_all(d0);
  std::filesystem::remove_all(d1);
}

}  // namespace
}  // namespace wavekv
