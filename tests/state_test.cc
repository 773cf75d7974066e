// The core state (src/state/state.h), its ops and their encoding
// (src/state/state_op.h), and the hybrid logical clock (src/state/hlc.h).
#include "state/state.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "state/hlc.h"
#include "state/state_op.h"
#include "support/state_assertions.h"
#include "util/coding.h"

namespace wavekv {
namespace {

constexpr NodeId kSelf = 5;

OpSetEntry value_op(std::string key, std::string value, NodeId node, uint64_t seq, Timestamp ts) {
  OpSetEntry op;
  op.key = std::move(key);
  op.entry.value = std::move(value);
  op.entry.meta = Meta{node, seq, ts, node};
  return op;
}

OpSetEntry tombstone_op(std::string key, NodeId node, uint64_t seq, Timestamp ts) {
  OpSetEntry op;
  op.key = std::move(key);
  op.entry.tombstone = true;
  op.entry.meta = Meta{node, seq, ts, node};
  return op;
}

// Applies `ops` in order to a fresh state and returns the winner of `key`.
Entry winner_of(const std::vector<OpSetEntry>& ops, const std::string& key) {
  State s(kSelf, kSelf);
  for (const auto& op : ops) (void)s.apply(op);
  auto it = s.kv().find(key);
  return it == s.kv().end() ? Entry{} : it->second;
}

// Both orders must agree on the winner, which must be `expected`.
void expect_winner(const OpSetEntry& a, const OpSetEntry& b, const OpSetEntry& expected) {
  EXPECT_EQ(winner_of({a, b}, a.key), expected.entry) << "applying the first op, then the second";
  EXPECT_EQ(winner_of({b, a}, a.key), expected.entry) << "applying the second op, then the first";
}

// --- LWW order ---------------------------------------------------------------

TEST(StateApply, TombstoneOnLowerNodeWithHigherTimestampBeatsValue) {
  auto value = value_op("k", "v", /*node=*/9, /*seq=*/1, /*ts=*/100);
  auto tomb = tombstone_op("k", /*node=*/1, /*seq=*/1, /*ts=*/101);
  expect_winner(value, tomb, tomb);
}

TEST(StateApply, ValueWithHigherTimestampBeatsTombstoneOnHigherNode) {
  auto tomb = tombstone_op("k", /*node=*/9, /*seq=*/50, /*ts=*/100);
  auto value = value_op("k", "v", /*node=*/1, /*seq=*/1, /*ts=*/101);
  expect_winner(tomb, value, value);
}

TEST(StateApply, EqualTimestampsAreDecidedByNodeBeforeSeq) {
  // The lower node has the higher seq; node must decide, not seq.
  auto low_node = value_op("k", "low", /*node=*/1, /*seq=*/99, /*ts=*/100);
  auto high_node = tombstone_op("k", /*node=*/2, /*seq=*/1, /*ts=*/100);
  expect_winner(low_node, high_node, high_node);

  auto low_node_tomb = tombstone_op("k", /*node=*/1, /*seq=*/99, /*ts=*/100);
  auto high_node_value = value_op("k", "high", /*node=*/2, /*seq=*/1, /*ts=*/100);
  expect_winner(low_node_tomb, high_node_value, high_node_value);
}

TEST(StateApply, EqualTimestampAndNodeAreDecidedBySeq) {
  auto older = value_op("k", "older", /*node=*/3, /*seq=*/4, /*ts=*/100);
  auto newer = tombstone_op("k", /*node=*/3, /*seq=*/5, /*ts=*/100);
  expect_winner(older, newer, newer);

  auto older_tomb = tombstone_op("k", /*node=*/3, /*seq=*/4, /*ts=*/100);
  auto newer_value = value_op("k", "newer", /*node=*/3, /*seq=*/5, /*ts=*/100);
  expect_winner(older_tomb, newer_value, newer_value);
}

TEST(StateApply, TimestampDecidesBeforeNodeAndSeq) {
  // The loser has the higher node and the higher seq.
  auto loser = value_op("k", "loser", /*node=*/9, /*seq=*/9, /*ts=*/100);
  auto winner = value_op("k", "winner", /*node=*/1, /*seq=*/1, /*ts=*/101);
  expect_winner(loser, winner, winner);
}

TEST(StateApply, LosingOpReportsNoChangeAndReplacingOpReportsPrevious) {
  State s(kSelf, kSelf);
  auto first = value_op("k", "first", 1, 1, 100);
  auto applied = s.apply(first);
  EXPECT_TRUE(applied.changed) << "a new key is a change";
  EXPECT_FALSE(applied.previous.has_value()) << "there was no previous version";

  applied = s.apply(value_op("k", "older", 1, 2, 99));
  EXPECT_FALSE(applied.changed) << "an older version loses";
  EXPECT_FALSE(applied.previous.has_value());
  EXPECT_EQ(s.kv().at("k"), first.entry);

  auto newer = tombstone_op("k", 2, 1, 101);
  applied = s.apply(newer);
  EXPECT_TRUE(applied.changed);
  ASSERT_TRUE(applied.previous.has_value());
  EXPECT_EQ(*applied.previous, first.entry) << "the replaced version is returned";
  EXPECT_EQ(s.kv().at("k"), newer.entry);
}

// --- Idempotence and commutativity --------------------------------------------

TEST(StateApply, ApplyingEveryOpTwiceEqualsApplyingItOnce) {
  OpSetPeer peer;
  peer.peer = 8;
  peer.meta.address = "10.0.0.8:7000";
  peer.meta.incarnation = 3;
  peer.meta.acked = {{1, 10}, {8, 20}};
  std::vector<StateOp> ops = {
      value_op("a", "1", kSelf, 1, 100),
      value_op("b", "2", 3, 7, 101),
      tombstone_op("a", 3, 8, 102),
      peer,
      OpRemovePeer{9},
      value_op("c", "3", kSelf, 2, 103),
      tombstone_op("c", kSelf, 3, 104),
      OpDropTombstone{"c", Meta{kSelf, 3, 104, kSelf}},
      value_op("a", "old", 1, 1, 50),  // loses
      OpAdoptAcks{{{3, 8}, {4, 2}}},
  };
  State once(kSelf, kSelf);
  State twice(kSelf, kSelf);
  for (const auto& op : ops) {
    (void)once.apply(op);
    (void)twice.apply(op);
    auto again = twice.apply(op);
    EXPECT_FALSE(again.changed) << "the second application of op #" << (&op - ops.data())
                                << " reports no change";
  }
  expect_same_state(once, twice);
}

TEST(StateApply, EveryOrderOfThreeOpsOnAKeyGivesTheSameState) {
  // Each triple mixes values and tombstones, and ties on the timestamp (and on
  // the node) so that every part of the order matters somewhere.
  std::vector<std::array<OpSetEntry, 3>> triples = {
      {value_op("k", "a", 1, 1, 100), tombstone_op("k", 2, 1, 100), value_op("k", "c", 2, 2, 100)},
      {tombstone_op("k", 1, 5, 200), value_op("k", "b", 9, 1, 199), value_op("k", "c", 1, 4, 200)},
      {value_op("k", "a", 3, 1, 300), value_op("k", "b", 3, 2, 300), tombstone_op("k", 2, 9, 300)},
      {value_op("k", "a", kSelf, 7, 5), tombstone_op("k", 1, 1, 6), value_op("k", "b", 1, 2, 4)},
  };
  for (size_t t = 0; t < triples.size(); t++) {
    SCOPED_TRACE("triple " + std::to_string(t));
    std::array<int, 3> order = {0, 1, 2};
    State reference(kSelf, kSelf);
    for (int i : order) (void)reference.apply(triples[t][i]);
    // The reference agrees with the maximum by (timestamp, node, seq).
    const OpSetEntry* best = &triples[t][0];
    for (const auto& op : triples[t]) {
      if (lww_less(best->entry.meta, op.entry.meta)) best = &op;
    }
    EXPECT_EQ(reference.kv().at("k"), best->entry);
    int permutations = 0;
    do {
      State s(kSelf, kSelf);
      for (int i : order) (void)s.apply(triples[t][i]);
      SCOPED_TRACE("order " + std::to_string(order[0]) + std::to_string(order[1]) +
                   std::to_string(order[2]));
      expect_same_state(s, reference);
      permutations++;
    } while (std::next_permutation(order.begin(), order.end()));
    EXPECT_EQ(permutations, 6);
  }
}

// --- next_seq and max_timestamp ----------------------------------------------

TEST(StateApply, NextSeqAdvancesOnlyOnOwnOriginEntriesIncludingLosingOnes) {
  State s(kSelf, kSelf);
  EXPECT_EQ(s.next_seq(), 1u) << "a fresh state issues seq 1 first";

  (void)s.apply(value_op("a", "v", kSelf, 5, 100));
  EXPECT_EQ(s.next_seq(), 6u) << "one past our own seq 5";

  (void)s.apply(value_op("b", "v", /*node=*/kSelf + 1, 1000, 200));
  EXPECT_EQ(s.next_seq(), 6u) << "another origin's seq does not count";

  // Loses to the version at ts 100, but seq 10 was still issued by us.
  auto applied = s.apply(value_op("a", "old", kSelf, 10, 50));
  EXPECT_FALSE(applied.changed);
  EXPECT_EQ(s.next_seq(), 11u) << "a losing own-origin entry still advances next_seq";

  (void)s.apply(tombstone_op("c", kSelf, 3, 300));
  EXPECT_EQ(s.next_seq(), 11u) << "a lower own seq never lowers next_seq";

  (void)s.apply(tombstone_op("c", kSelf, 11, 301));
  EXPECT_EQ(s.next_seq(), 12u) << "tombstones are own-origin entries too";

  OpSetPeer peer;
  peer.peer = kSelf;
  peer.meta.acked = {{kSelf, 500}};
  (void)s.apply(peer);
  (void)s.apply(OpDropTombstone{"c", Meta{kSelf, 11, 301, kSelf}});
  EXPECT_EQ(s.next_seq(), 12u) << "only OpSetEntry moves next_seq";
}

TEST(StateApply, MaxTimestampFollowsEveryEntryIncludingLosingOnes) {
  State s(kSelf, kSelf);
  (void)s.apply(value_op("a", "v", 1, 1, 100));
  EXPECT_EQ(s.max_timestamp(), 100u);
  (void)s.apply(value_op("a", "w", 1, 2, 90));
  EXPECT_EQ(s.max_timestamp(), 100u) << "never lowered";
  (void)s.apply(tombstone_op("b", 2, 1, 500));
  EXPECT_EQ(s.max_timestamp(), 500u);
  s.restore_counters(3, kSelf, 400);
  EXPECT_EQ(s.max_timestamp(), 500u) << "restore_counters only raises";
  EXPECT_EQ(s.next_seq(), 3u);
  s.restore_counters(2, kSelf, 600);
  EXPECT_EQ(s.max_timestamp(), 600u);
  EXPECT_EQ(s.next_seq(), 3u) << "restore_counters only raises next_seq";
  s.restore_counters(50, kSelf + 1, 0);
  EXPECT_EQ(s.next_seq(), 3u) << "a snapshot of another stream says nothing of ours";
}

// --- OpDropTombstone ---------------------------------------------------------

TEST(StateApply, DropTombstoneRemovesOnlyTheExactTombstoneVersion) {
  State s(kSelf, kSelf);
  const Meta old_meta{1, 1, 100, 1};
  (void)s.apply(tombstone_op("k", old_meta.node, old_meta.seq, old_meta.timestamp));
  // A newer tombstone replaces it.
  const Meta new_meta{2, 1, 200, 2};
  (void)s.apply(tombstone_op("k", new_meta.node, new_meta.seq, new_meta.timestamp));

  auto applied = s.apply(OpDropTombstone{"k", old_meta});
  EXPECT_FALSE(applied.changed) << "dropping the older version leaves the newer tombstone";
  ASSERT_TRUE(s.kv().count("k"));
  EXPECT_EQ(s.kv().at("k").meta, new_meta);
  EXPECT_EQ(s.tombstones(), 1u);

  applied = s.apply(OpDropTombstone{"k", Meta{2, 1, 201, 2}});
  EXPECT_FALSE(applied.changed) << "a meta differing only in the timestamp does not match";
  applied = s.apply(OpDropTombstone{"k", Meta{2, 2, 200, 2}});
  EXPECT_FALSE(applied.changed) << "a meta differing only in the seq does not match";
  applied = s.apply(OpDropTombstone{"k", Meta{3, 1, 200, 3}});
  EXPECT_FALSE(applied.changed) << "a meta differing only in the node does not match";
  applied = s.apply(OpDropTombstone{"k", Meta{2, 1, 200, 9}});
  EXPECT_FALSE(applied.changed) << "a meta differing only in the incarnation does not match";
  EXPECT_EQ(s.tombstones(), 1u);

  applied = s.apply(OpDropTombstone{"k", new_meta});
  EXPECT_TRUE(applied.changed) << "the exact version is dropped";
  ASSERT_TRUE(applied.previous.has_value());
  EXPECT_TRUE(applied.previous->tombstone);
  EXPECT_EQ(s.kv().count("k"), 0u);
  EXPECT_EQ(s.tombstones(), 0u);

  applied = s.apply(OpDropTombstone{"absent", new_meta});
  EXPECT_FALSE(applied.changed) << "dropping an absent key changes nothing";
}

TEST(StateApply, DropTombstoneNeverRemovesALiveValue) {
  State s(kSelf, kSelf);
  const Meta m{1, 1, 100};
  (void)s.apply(value_op("k", "alive", m.node, m.seq, m.timestamp));
  auto applied = s.apply(OpDropTombstone{"k", m});
  EXPECT_FALSE(applied.changed) << "a value with the same meta is not a tombstone";
  ASSERT_TRUE(s.kv().count("k"));
  EXPECT_EQ(s.kv().at("k").value, "alive");
  EXPECT_EQ(s.live_keys(), 1u);
}

// --- Counters ----------------------------------------------------------------

void expect_counters_match_kv(const State& s) {
  uint64_t live = 0, tombs = 0, bytes = 0;
  for (const auto& [key, e] : s.kv()) {
    if (e.tombstone) {
      tombs++;
    } else {
      live++;
      bytes += key.size() + e.value.size();
    }
  }
  EXPECT_EQ(s.live_keys(), live) << "live_keys agrees with kv()";
  EXPECT_EQ(s.tombstones(), tombs) << "tombstones agrees with kv()";
  EXPECT_EQ(s.data_bytes(), bytes) << "data_bytes agrees with kv()";
}

TEST(StateApply, CountersTrackLiveKeysTombstonesAndDataBytes) {
  State s(kSelf, kSelf);
  EXPECT_EQ(s.live_keys(), 0u);
  EXPECT_EQ(s.tombstones(), 0u);
  EXPECT_EQ(s.data_bytes(), 0u);

  (void)s.apply(value_op("ab", "xyz", 1, 1, 1));  // 2 + 3
  (void)s.apply(value_op("c", "", 1, 2, 2));      // 1 + 0
  EXPECT_EQ(s.live_keys(), 2u);
  EXPECT_EQ(s.data_bytes(), 6u);
  expect_counters_match_kv(s);

  (void)s.apply(value_op("ab", "q", 1, 3, 3));  // 2 + 1 replaces 2 + 3
  EXPECT_EQ(s.live_keys(), 2u);
  EXPECT_EQ(s.data_bytes(), 4u);
  expect_counters_match_kv(s);

  (void)s.apply(value_op("ab", "a much longer value that loses", 1, 0, 0));
  EXPECT_EQ(s.data_bytes(), 4u) << "a losing version is not counted";

  (void)s.apply(tombstone_op("ab", 1, 4, 4));
  EXPECT_EQ(s.live_keys(), 1u);
  EXPECT_EQ(s.tombstones(), 1u);
  EXPECT_EQ(s.data_bytes(), 1u) << "a tombstone's key is not data";
  expect_counters_match_kv(s);

  (void)s.apply(tombstone_op("new", 1, 5, 5));
  EXPECT_EQ(s.tombstones(), 2u) << "a tombstone for an unseen key is kept and counted";
  EXPECT_EQ(s.live_keys(), 1u);

  (void)s.apply(value_op("new", "back", 1, 6, 6));
  EXPECT_EQ(s.tombstones(), 1u);
  EXPECT_EQ(s.live_keys(), 2u);
  EXPECT_EQ(s.data_bytes(), 1u + 3 + 4);
  expect_counters_match_kv(s);

  (void)s.apply(OpDropTombstone{"ab", Meta{1, 4, 4, 1}});
  EXPECT_EQ(s.tombstones(), 0u);
  EXPECT_EQ(s.live_keys(), 2u);
  expect_counters_match_kv(s);
}

TEST(StateApply, PeersAreSetReplacedAndRemoved) {
  State s(kSelf, kSelf);
  OpSetPeer p;
  p.peer = 8;
  p.meta.address = "a:1";
  p.meta.acked = {{1, 5}};
  EXPECT_TRUE(s.apply(p).changed);
  EXPECT_EQ(s.peers().at(8), p.meta);
  p.meta.acked[1] = 6;
  EXPECT_TRUE(s.apply(p).changed) << "new acks are a change";
  EXPECT_EQ(s.peers().at(8).acked.at(1), 6u);
  EXPECT_TRUE(s.apply(OpRemovePeer{8}).changed);
  EXPECT_TRUE(s.peers().empty());
  EXPECT_FALSE(s.apply(OpRemovePeer{8}).changed) << "removing an absent peer is no change";
}

// --- HybridClock -------------------------------------------------------------

TEST(HybridClockTest, FirstTimestampIsTheWallClock) {
  HybridClock c;
  EXPECT_EQ(c.now(1000), timestamp_from_millis(1000));
  EXPECT_EQ(timestamp_millis(c.last()), 1000u);
}

TEST(HybridClockTest, NeverGoesBackwardsWhenTheWallClockDoes) {
  HybridClock c;
  Timestamp a = c.now(10'000);
  Timestamp b = c.now(5'000);
  Timestamp d = c.now(0);
  EXPECT_GT(b, a);
  EXPECT_GT(d, b);
  EXPECT_EQ(timestamp_millis(d), 10'000u) << "stays on the highest wall time seen";
  Timestamp e = c.now(10'001);
  EXPECT_EQ(e, timestamp_from_millis(10'001)) << "rejoins the wall clock when it passes";
}

TEST(HybridClockTest, ObservedTimestampAheadOfTheWallClockIsExceeded) {
  HybridClock c;
  Timestamp remote = timestamp_from_millis(50'000) + 7;
  c.observe(remote);
  Timestamp t = c.now(1'000);
  EXPECT_GT(t, remote);
  c.observe(timestamp_from_millis(10));
  EXPECT_GT(c.now(1'000), t) << "observing an older timestamp does not move the clock back";
}

TEST(HybridClockTest, ConsecutiveCallsInTheSameMillisecondStrictlyIncrease) {
  HybridClock c;
  Timestamp prev = c.now(7'000);
  for (int i = 0; i < 10'000; i++) {
    Timestamp t = c.now(7'000);
    ASSERT_GT(t, prev) << "call " << i;
    ASSERT_EQ(timestamp_millis(t), 7'000u) << "the logical counter absorbs call " << i;
    prev = t;
  }
}

// --- StateOp encoding --------------------------------------------------------

std::vector<StateOp> all_op_types() {
  OpSetPeer peer;
  peer.peer = UINT64_MAX;
  peer.meta.address = "host.example:7000";
  peer.meta.incarnation = 0xdeadbeefcafeull;
  peer.meta.acked = {{1, 10}, {5, UINT64_MAX}, {UINT64_MAX, 0}};
  OpSetPeer bare;
  bare.peer = 2;
  return {
      value_op(std::string("key\0with nul", 12), std::string("\xff\x00v", 3), 1, 2, 3),
      tombstone_op("gone", UINT64_MAX, UINT64_MAX, UINT64_MAX),
      value_op("", "", 0, 0, 0),
      peer,
      bare,
      OpRemovePeer{77},
      OpDropTombstone{"gone", Meta{UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX}},
      OpDropTombstone{"", Meta{}},
      OpAdoptAcks{{{1, 2}, {UINT64_MAX, UINT64_MAX}}},
      OpAdoptAcks{{{1, 2}}, {{3, 4}, {5, UINT64_MAX}}, UINT64_MAX - 1, 12345},
      OpAdoptAcks{},
  };
}

TEST(StateOpCodec, EveryOpTypeRoundTrips) {
  auto ops = all_op_types();
  std::string enc;
  encode_ops(ops, enc);
  auto dec = decode_ops(enc);
  ASSERT_TRUE(dec) << dec.status().to_string();
  ASSERT_EQ(dec->size(), ops.size());
  for (size_t i = 0; i < ops.size(); i++) {
    EXPECT_EQ((*dec)[i].index(), ops[i].index()) << "op " << i << " keeps its type";
    EXPECT_TRUE((*dec)[i] == ops[i]) << "op " << i << " keeps its fields";
  }
}

// An OpResetClock is 9 bytes (type, u64 floor): the smallest op there is.
TEST(StateOpCodec, BatchesOfTheSmallestOpRoundTrip) {
  for (size_t n : {1, 2, 10}) {
    std::vector<StateOp> ops(n, OpResetClock{});
    std::string enc;
    encode_ops(ops, enc);
    EXPECT_EQ(enc.size(), 4 + 9 * n);
    auto dec = decode_ops(enc);
    ASSERT_TRUE(dec) << n << " OpResetClock: " << dec.status().to_string();
    EXPECT_TRUE(*dec == ops);
  }
}

TEST(StateOpCodec, EmptyBatchRoundTrips) {
  std::string enc;
  encode_ops({}, enc);
  EXPECT_EQ(enc.size(), 4u);
  auto dec = decode_ops(enc);
  ASSERT_TRUE(dec) << dec.status().to_string();
  EXPECT_TRUE(dec->empty());
}

TEST(StateOpCodec, EncodingAppendsToTheOutput) {
  std::string enc = "prefix";
  encode_ops({OpRemovePeer{1}}, enc);
  EXPECT_EQ(enc.substr(0, 6), "prefix");
  auto dec = decode_ops(std::string_view(enc).substr(6));
  ASSERT_TRUE(dec);
  EXPECT_EQ(dec->size(), 1u);
}

TEST(StateOpCodec, EveryTruncationIsRefused) {
  std::string enc;
  encode_ops(all_op_types(), enc);
  for (size_t n = 0; n < enc.size(); n++) {
    auto dec = decode_ops(std::string_view(enc).substr(0, n));
    ASSERT_FALSE(dec) << "a prefix of " << n << " of " << enc.size() << " bytes decoded";
    EXPECT_EQ(dec.status().code(), Code::kCorruption) << "prefix of " << n;
  }
}

TEST(StateOpCodec, TrailingBytesAreRefused) {
  std::string enc;
  encode_ops(all_op_types(), enc);
  enc.push_back('\0');
  auto dec = decode_ops(enc);
  ASSERT_FALSE(dec);
  EXPECT_EQ(dec.status().code(), Code::kCorruption);
}

TEST(StateOpCodec, CountLargerThanTheBytesCanHoldIsRefused) {
  std::string one;
  encode_ops({OpRemovePeer{1}}, one);
  for (uint32_t count : {2u, 1000u, 0x7fffffffu, UINT32_MAX}) {
    std::string enc = one;
    std::string c;
    put_u32(c, count);
    enc.replace(0, 4, c);
    auto dec = decode_ops(enc);
    ASSERT_FALSE(dec) << "count " << count << " with one op present";
    EXPECT_EQ(dec.status().code(), Code::kCorruption);
  }
}

TEST(StateOpCodec, AckCountLargerThanTheBytesCanHoldIsRefused) {
  OpSetPeer p;
  p.peer = 1;
  p.meta.acked = {{1, 1}};
  std::string enc;
  encode_ops({p}, enc);
  // The ack count is the u32 just before the one (origin, seq) pair.
  size_t at = enc.size() - 16 - 4;
  ASSERT_EQ(load_u32(enc.data() + at), 1u);
  std::string c;
  put_u32(c, UINT32_MAX);
  enc.replace(at, 4, c);
  auto dec = decode_ops(enc);
  ASSERT_FALSE(dec);
  EXPECT_EQ(dec.status().code(), Code::kCorruption);
}

TEST(StateOpCodec, UnknownTypeAndBadTombstoneFlagAreRefused) {
  std::string enc;
  encode_ops({OpRemovePeer{1}}, enc);
  enc[4] = 9;  // the type byte
  EXPECT_EQ(decode_ops(enc).status().code(), Code::kCorruption) << "unknown op type";
  enc[4] = 0;
  EXPECT_EQ(decode_ops(enc).status().code(), Code::kCorruption) << "op type 0";

  std::string set;
  encode_ops({value_op("k", "v", 1, 1, 1)}, set);
  // count(4) type(1) key(4+1) meta(32) -> the tombstone flag
  size_t flag_at = 4 + 1 + 5 + 32;
  ASSERT_EQ(set[flag_at], 0);
  set[flag_at] = 2;
  EXPECT_EQ(decode_ops(set).status().code(), Code::kCorruption) << "tombstone flag 2";
}

TEST(StateOpCodec, SingleByteFlipsNeverCrash) {
  std::string enc;
  encode_ops(all_op_types(), enc);
  int refused = 0;
  for (size_t i = 0; i < enc.size(); i++) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      std::string t = enc;
      t[i] = static_cast<char>(t[i] ^ mask);
      auto dec = decode_ops(t);
      if (!dec) {
        EXPECT_EQ(dec.status().code(), Code::kCorruption);
        refused++;
      }
    }
  }
  EXPECT_GT(refused, 0) << "some flips (lengths, types, counts) must be refused";
}

}  // namespace
}  // namespace wavekv
