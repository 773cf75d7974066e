// The replication views of State: the (origin, seq) index, the bucketed
// digest and the version vector.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>

#include "state/state.h"
#include "store/snapshot.h"
#include "testing/mem_fs.h"

namespace wavekv {
namespace {

OpSetEntry set(std::string key, NodeId node, uint64_t seq, Timestamp ts, bool tomb = false) {
  return OpSetEntry{std::move(key),
                    Entry{tomb ? "" : "v" + std::to_string(seq), tomb, Meta{node, seq, ts, node}}};
}

// The digest recomputed from scratch: what the incremental one must equal.
std::array<uint64_t, State::kBuckets> digest_from_scratch(const State& s) {
  std::array<uint64_t, State::kBuckets> d{};
  for (const auto& [k, e] : s.kv()) d[State::bucket_of(k)] ^= State::version_hash(k, e);
  return d;
}

// Every (origin, seq) in the index, in index order.
std::vector<std::pair<NodeId, uint64_t>> index_pairs(const State& s) {
  std::vector<std::pair<NodeId, uint64_t>> out;
  for (const auto& [origin, seqs] : s.index())
    for (const auto& [seq, key] : seqs) {
      EXPECT_EQ(s.kv().at(*key).meta, (Meta{origin, seq, s.kv().at(*key).meta.timestamp, origin}));
      out.emplace_back(origin, seq);
    }
  return out;
}

TEST(StateIndex, HoldsOnlyCurrentVersions) {
  State s(1, 1);
  s.apply(set("a", 2, 1, 100));
  s.apply(set("b", 2, 2, 101));
  s.apply(set("a", 3, 1, 102));  // supersedes (2,1)
  s.apply(set("b", 3, 2, 50));   // loses to (2,2): not indexed
  using P = std::pair<NodeId, uint64_t>;
  EXPECT_EQ(index_pairs(s), (std::vector<P>{{2, 2}, {3, 1}}));
  s.apply(set("a", 2, 3, 200, /*tomb=*/true));
  EXPECT_EQ(index_pairs(s), (std::vector<P>{{2, 2}, {2, 3}})) << "tombstones are indexed";
  s.apply(OpDropTombstone{"a", Meta{2, 3, 200, 2}});
  EXPECT_EQ(index_pairs(s), (std::vector<P>{{2, 2}})) << "a dropped tombstone leaves the index";
}

TEST(StateIndex, DigestStaysEqualToARecomputationUnderRandomOps) {
  std::mt19937_64 rng(7);
  State s(1, 1);
  for (int i = 0; i < 3000; i++) {
    std::string key = "k" + std::to_string(rng() % 50);
    NodeId node = 1 + rng() % 3;
    if (rng() % 10 == 0) {
      auto it = s.kv().find(key);
      if (it != s.kv().end() && it->second.tombstone)
        s.apply(OpDropTombstone{key, it->second.meta});
      continue;
    }
    s.apply(set(key, node, 1 + rng() % 1000, rng() % 5000, rng() % 4 == 0));
    ASSERT_EQ(s.digest(), digest_from_scratch(s)) << "after op " << i;
  }
}

TEST(StateIndex, SameOpsInAnotherOrderGiveTheSameDigestAndOneChangedKeyOneBucket) {
  std::vector<OpSetEntry> ops;
  for (int i = 0; i < 200; i++)
    ops.push_back(set("k" + std::to_string(i % 40), 1 + i % 3, i + 1, 1000 + (i * 37) % 500));
  State a(9, 9), b(9, 9);
  for (const auto& op : ops) a.apply(op);
  std::mt19937_64 rng(3);
  std::shuffle(ops.begin(), ops.end(), rng);
  for (const auto& op : ops) b.apply(op);
  EXPECT_EQ(a.digest(), b.digest());
  b.apply(set("k7", 5, 1, 99999));
  int differing = 0;
  for (size_t i = 0; i < State::kBuckets; i++) differing += a.digest()[i] != b.digest()[i];
  EXPECT_EQ(differing, 1);
  EXPECT_NE(a.digest()[State::bucket_of("k7")], b.digest()[State::bucket_of("k7")]);
}

TEST(StateIndex, CopyRebuildsTheIndexAgainstItsOwnKeys) {
  auto original = std::make_unique<State>(1, 1);
  original->apply(set("a", 2, 1, 100));
  original->apply(set("b", 2, 2, 100));
  State copy(*original);
  original.reset();  // the copy's index must not point into the dead original
  EXPECT_EQ(*copy.index().at(2).at(1), "a");
  EXPECT_EQ(*copy.index().at(2).at(2), "b");
}

TEST(StateAcks, AdoptionTakesThePerOriginMax) {
  State s(1, 1);
  s.apply(set("mine", 1, 4, 100));  // own write: next_seq 5
  s.apply(OpAdoptAcks{{{2, 10}, {3, 4}}});
  s.apply(OpAdoptAcks{{{2, 7}, {3, 9}}});
  EXPECT_EQ(s.acks(), (VersionVector{{1, 4}, {2, 10}, {3, 9}}));
}

// docs/PROTOCOL.md, "Incarnations": the own stream counts only writes of this
// incarnation. An entry of our node id from an earlier incarnation (a different
// stream) does not move next_seq; a new stream starts again at seq 1 and keeps
// claiming the old stream up to what survived.
TEST(StateAcks, OwnStreamIsTheIncarnationNotTheNodeId) {
  State s(1, 77);
  OpSetEntry old_incarnation = set("old", 1, 500, 100);  // node 1, stream 1
  s.apply(old_incarnation);
  EXPECT_EQ(s.next_seq(), 1u) << "another incarnation's seq is not ours to continue";
  OpSetEntry mine = set("mine", 1, 4, 100);
  mine.entry.meta.incarnation = 77;
  s.apply(mine);
  EXPECT_EQ(s.next_seq(), 5u);
  EXPECT_EQ(s.acks(), (VersionVector{{77, 4}})) << "claims its own stream, not node 1's old one";

  s.begin_stream(88);
  EXPECT_EQ(s.next_seq(), 1u) << "a new stream starts at seq 1";
  EXPECT_EQ(s.acks(), (VersionVector{{77, 4}})) << "the old stream up to what survived";
  mine.key = "new";
  mine.entry.meta.incarnation = 88;
  mine.entry.meta.seq = 1;
  s.apply(mine);
  EXPECT_EQ(s.acks(), (VersionVector{{77, 4}, {88, 1}}));
}

TEST(StateAcks, SnapshotKeepsAdoptedAcks) {
  State s(1, 1);
  s.apply(set("k", 2, 3, 100));
  s.apply(OpAdoptAcks{{{2, 3}, {4, 8}}});
  auto fs = std::make_shared<testing::MemFileSystem>();
  ASSERT_TRUE(fs->create_dirs("/d"));
  ASSERT_TRUE(write_snapshot(*fs, "/d", 1, encode_snapshot(s, 1)));
  State loaded(1, 1);
  auto r = load_snapshot(*fs, "/d/" + snapshot_name(1), loaded);
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(loaded.acks(), s.acks());
  EXPECT_EQ(loaded.digest(), s.digest());
}

}  // namespace
}  // namespace wavekv
