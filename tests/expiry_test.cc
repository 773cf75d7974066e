// Per-key expiry (docs/PROTOCOL.md, "Expiry"): the expiry is part of a
// version; reads hide an expired value at once; the store's sweep turns it
// into a tombstone of the same version (OpExpire) for tombstone GC; entry
// encodings without an expiry are the first format's bytes, and wire versions
// before 4 carry an expiring entry as the tombstone it becomes.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "replication/messages.h"
#include "state/state.h"
#include "state/state_op.h"
#include "store/snapshot.h"
#include "store/wal.h"
#include "support/node_harness.h"
#include "support/state_assertions.h"
#include "support/store_harness.h"
#include "util/coding.h"

namespace wavekv {
namespace {

using test::FakeClock;

constexpr uint64_t kNow = 1'750'000'000'000ull;

OpSetEntry value_op(std::string key, std::string value, uint64_t seq, Timestamp ts,
                    uint64_t expires_ms) {
  OpSetEntry op;
  op.key = std::move(key);
  op.entry.value = std::move(value);
  op.entry.meta = Meta{7, seq, ts, 7};
  op.entry.expires_ms = expires_ms;
  return op;
}

// --- the state ---------------------------------------------------------------

TEST(StateExpiry, ExpireMakesATombstoneOfTheSameVersionKeepingDigestAndIndex) {
  State s(1, 1);
  const OpSetEntry set = value_op("k", "value", 1, timestamp_from_millis(kNow), kNow + 10);
  ASSERT_TRUE(s.apply(set).changed);
  ASSERT_EQ(s.expiry_index().size(), 1u);
  const auto digest = s.digest();
  const uint64_t arrivals = s.arrivals();

  auto applied = s.apply(OpExpire{"k", set.entry.meta});
  ASSERT_TRUE(applied.changed);
  const Entry& e = s.kv().at("k");
  EXPECT_TRUE(e.tombstone);
  EXPECT_EQ(e.value, "");
  EXPECT_EQ(e.meta, set.entry.meta) << "the same version, not a new one";
  EXPECT_EQ(e.expires_ms, kNow + 10) << "the tombstone remembers why it is one";
  EXPECT_EQ(s.digest(), digest) << "expiring changes no digest bucket";
  EXPECT_EQ(s.arrivals(), arrivals) << "nothing new to ship";
  EXPECT_EQ(s.live_keys(), 0u);
  EXPECT_EQ(s.tombstones(), 1u);
  EXPECT_EQ(s.data_bytes(), 0u);
  EXPECT_TRUE(s.expiry_index().empty());
  ASSERT_EQ(s.tombstone_index().count(7), 1u) << "tombstone GC sees it";
  EXPECT_EQ(s.tombstone_index().at(7).count(1), 1u);
  EXPECT_FALSE(s.apply(OpExpire{"k", set.entry.meta}).changed) << "idempotent";
  // What a peer that was sent the tombstone form holds: the same state.
  State sent(1, 1);
  OpSetEntry tomb = set;
  tomb.entry.tombstone = true;
  tomb.entry.value.clear();
  ASSERT_TRUE(sent.apply(tomb).changed);
  expect_same_state(s, sent);
}

TEST(StateExpiry, ExpireOfAVersionNoLongerCurrentOrWithoutExpiryChangesNothing) {
  State s(1, 1);
  const OpSetEntry old = value_op("k", "old", 1, timestamp_from_millis(kNow), kNow + 10);
  const OpSetEntry newer = value_op("k", "new", 2, timestamp_from_millis(kNow + 5), 0);
  ASSERT_TRUE(s.apply(old).changed);
  ASSERT_TRUE(s.apply(newer).changed);
  EXPECT_TRUE(s.expiry_index().empty()) << "the superseded version left the expiry index";
  EXPECT_FALSE(s.apply(OpExpire{"k", old.entry.meta}).changed);
  EXPECT_FALSE(s.apply(OpExpire{"k", newer.entry.meta}).changed) << "it has no expiry";
  EXPECT_EQ(s.kv().at("k").value, "new");
}

TEST(StateExpiry, AnExpiredVersionStillBeatsOlderOnesAndLosesToNewer) {
  State s(1, 1);
  const OpSetEntry v2 = value_op("k", "v2", 2, timestamp_from_millis(kNow + 2), kNow + 10);
  ASSERT_TRUE(s.apply(v2).changed);
  ASSERT_TRUE(s.apply(OpExpire{"k", v2.entry.meta}).changed);
  // An older version arriving late (replication) must not resurrect the key.
  EXPECT_FALSE(s.apply(value_op("k", "v1", 1, timestamp_from_millis(kNow + 1), 0)).changed);
  EXPECT_TRUE(s.kv().at("k").tombstone);
  EXPECT_TRUE(s.apply(value_op("k", "v3", 3, timestamp_from_millis(kNow + 3), 0)).changed);
  EXPECT_EQ(s.kv().at("k").value, "v3");
}

TEST(StateExpiry, AnExpiringValueHashesAsItsTombstoneAndAPlainValueDoesNot) {
  const Meta m{7, 1, timestamp_from_millis(kNow), 7};
  const uint64_t tomb = State::version_hash("k", Entry{"", true, m, 0});
  EXPECT_EQ(State::version_hash("k", Entry{"v", false, m, kNow + 10}), tomb)
      << "an older node is sent the tombstone: the digests must agree";
  EXPECT_EQ(State::version_hash("k", Entry{"", true, m, kNow + 10}), tomb);
  EXPECT_NE(State::version_hash("k", Entry{"v", false, m, 0}), tomb)
      << "a value without expiry keeps the first format's hash (older nodes compute it)";
}

// --- encodings ---------------------------------------------------------------

TEST(EntryEncoding, WithoutExpiryTheBytesAreTheFirstFormats) {
  const Meta m{7, 3, 99, 8};
  std::string first;  // docs/FORMAT.md, version 1: meta, u8 tombstone, bytes value
  put_u64(first, m.node);
  put_u64(first, m.incarnation);
  put_u64(first, m.seq);
  put_u64(first, m.timestamp);
  put_u8(first, 0);
  put_bytes(first, "value");
  std::string now;
  encode_entry(Entry{"value", false, m, 0}, now);
  EXPECT_EQ(now, first);
  for (bool allow : {false, true}) {
    Decoder d(first);
    Entry e = decode_entry(d, UINT32_MAX, allow);
    ASSERT_TRUE(d.done());
    EXPECT_EQ(e, (Entry{"value", false, m, 0}));
  }
}

TEST(EntryEncoding, AnExpiryRoundTripsAndIsRefusedWhereItCannotBe) {
  const Meta m{7, 3, 99, 8};
  for (const Entry& e : {Entry{"v", false, m, kNow}, Entry{"", true, m, kNow}}) {
    std::string bytes;
    encode_entry(e, bytes);
    Decoder d(bytes);
    EXPECT_EQ(decode_entry(d), e);
    EXPECT_TRUE(d.done());
    Decoder old(bytes);
    (void)decode_entry(old, UINT32_MAX, /*allow_expiry=*/false);
    EXPECT_TRUE(old.failed()) << "a wire version before 4 has no expiry";
  }
  std::string bytes;
  encode_entry(Entry{"v", false, m, 0}, bytes);
  bytes[32] = 4;  // an unknown flag
  Decoder unknown(bytes);
  (void)decode_entry(unknown);
  EXPECT_TRUE(unknown.failed());
  bytes.clear();
  encode_entry(Entry{"v", false, m, 1}, bytes);
  for (int i = 33; i < 41; i++) bytes[i] = 0;  // the flag says an expiry follows; it is 0
  Decoder zero(bytes);
  (void)decode_entry(zero);
  EXPECT_TRUE(zero.failed()) << "\"never\" has no flag, so an expiry of 0 is malformed";
}

TEST(EntryEncoding, OpExpireRoundTrips) {
  std::vector<StateOp> ops = {OpExpire{"key", Meta{1, 2, 3, 4}}};
  std::string bytes;
  encode_ops(ops, bytes);
  auto back = decode_ops(bytes);
  ASSERT_TRUE(back) << back.status().to_string();
  EXPECT_EQ(*back, ops);
}

Message push_of(Entry e, uint8_t version) {
  Message m;
  m.version = version;
  m.from = 1;
  m.from_incarnation = 1;
  m.body = Push{{WireEntry{"k", std::move(e)}}};
  return m;
}

TEST(WireExpiry, Version4CarriesTheExpiryAndOlderVersionsTheTombstoneItBecomes) {
  const Meta m{7, 3, timestamp_from_millis(kNow), 8};
  const Entry expiring{"v", false, m, kNow + 1000};
  auto v4 = decode_message(encode_message(push_of(expiring, 4)));
  ASSERT_TRUE(v4) << v4.status().to_string();
  EXPECT_EQ(std::get<Push>(v4->body).entries.at(0).entry, expiring);
  for (uint8_t version : {uint8_t{2}, uint8_t{3}}) {
    SCOPED_TRACE("wire version " + std::to_string(version));
    auto old = decode_message(encode_message(push_of(expiring, version)));
    ASSERT_TRUE(old) << old.status().to_string();
    EXPECT_EQ(std::get<Push>(old->body).entries.at(0).entry, (Entry{"", true, m, 0}));
    // A plain value is untouched.
    const Entry plain{"v", false, m, 0};
    auto p = decode_message(encode_message(push_of(plain, version)));
    ASSERT_TRUE(p);
    EXPECT_EQ(std::get<Push>(p->body).entries.at(0).entry, plain);
  }
  // A frame that says version 3 but carries an expiry is malformed.
  std::string bytes = encode_message(push_of(expiring, 4));
  bytes[0] = 3;
  EXPECT_FALSE(decode_message(bytes));
}

// --- the store ---------------------------------------------------------------

class StoreExpiry : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = test::mem_config(fs_, clock_);
    config_.expire_interval_ms = 0;  // the sweep runs when a test says so
    test::open_store(config_, store_);
  }
  void put(const std::string& key, const std::string& value, uint64_t expires_ms) {
    WriteBatch b;
    b.put(key, value, expires_ms);
    ASSERT_TRUE(store_->write(b));
  }

  std::shared_ptr<testing::MemFileSystem> fs_ = std::make_shared<testing::MemFileSystem>();
  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>(kNow);
  Config config_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreExpiry, AValueIsReadableThroughItsExpiryMillisecondAndGoneAfter) {
  put("k", "v", kNow + 100);
  put("plain", "p", 0);
  clock_->set(kNow + 100);
  EXPECT_EQ(test::value_of(*store_, "k"), "v") << "Redis keeps a key through its expiry ms";
  EXPECT_EQ(store_->scan_prefix("", 0).size(), 2u);
  clock_->set(kNow + 101);
  EXPECT_EQ(store_->get("k").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->view("k", [](std::string_view) {}).code(), Code::kNotFound);
  auto listed = store_->scan_prefix("", 0);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].key, "plain");
  auto e = store_->get_entry("k");
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->live_at(store_->now_ms()));
  EXPECT_EQ(e->expires_ms, kNow + 100);
  // A write with no expiry ends it.
  put("k", "again", 0);
  clock_->advance(1'000'000);
  EXPECT_EQ(test::value_of(*store_, "k"), "again");
}

TEST_F(StoreExpiry, TheSweepTurnsExpiredValuesIntoTombstonesThatSurviveAReopen) {
  config_.expire_interval_ms = 1;
  test::open_store(config_, store_);
  std::vector<WatchEvent> events;
  std::mutex mu;
  store_->watch("", [&](const WatchEvent& ev) {
    std::lock_guard lock(mu);
    events.push_back(ev);
  });
  put("soon", "1", kNow + 10);
  put("later", "2", kNow + 10'000);
  clock_->set(kNow + 11);
  ASSERT_TRUE(test::eventually([&] { return store_->status().expired_keys == 1; }));
  auto soon = store_->get_entry("soon");
  ASSERT_TRUE(soon);
  EXPECT_TRUE(soon->tombstone);
  EXPECT_EQ(store_->status().expiring_keys, 1u) << "\"later\" is still waiting";
  EXPECT_EQ(store_->status().live_keys, 1u);
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(events.size(), 3u);
    EXPECT_TRUE(events[2].deleted);
    EXPECT_TRUE(events[2].expired);
    EXPECT_EQ(events[2].key, "soon");
    EXPECT_EQ(events[1].expires_ms, kNow + 10'000);
  }
  test::crash_and_reopen(*fs_, config_, store_);
  EXPECT_TRUE(store_->get_entry("soon")->tombstone) << "the OpExpire record replays";
  auto later = store_->get_entry("later");
  ASSERT_TRUE(later);
  EXPECT_EQ(later->expires_ms, kNow + 10'000) << "the expiry is in the WAL";
  ASSERT_TRUE(store_->checkpoint());
  test::open_store(config_, store_);
  EXPECT_EQ(store_->get_entry("later")->expires_ms, kNow + 10'000) << "and in the snapshot";
}

// A data directory of the first format version (its WAL segments and
// snapshot say version 1) opens, and the next write starts a new segment of
// this version rather than append to an old one.
std::string with_version(std::string file, uint32_t version) {
  std::string head = file.substr(0, 8);
  put_u32(head, version);
  head.append(file.substr(12, 20));
  put_u32(head, checksum32(head));
  file.replace(0, 36, head);
  return file;
}

TEST_F(StoreExpiry, ADirectoryOfTheFirstFormatOpensAndIsNotAppendedTo) {
  put("a", "1", 0);
  ASSERT_TRUE(store_->checkpoint());
  put("b", "2", 0);
  store_.reset();
  auto names = fs_->list_dir("/db");
  ASSERT_TRUE(names);
  std::vector<std::string> segments;
  for (const auto& n : *names) {
    const std::string path = "/db/" + n;
    if (n.starts_with("wal-") && n.ends_with(".log")) {
      segments.push_back(n);
      fs_->set_contents(path, with_version(fs_->contents(path), 1));
    } else if (n.starts_with("snap-") && !n.ends_with(".tmp")) {
      fs_->set_contents(path, with_version(fs_->contents(path), 1));
    }
  }
  ASSERT_FALSE(segments.empty());
  test::open_store(config_, store_);
  EXPECT_TRUE(store_->status().recovery.clean());
  EXPECT_EQ(test::value_of(*store_, "a"), "1");
  EXPECT_EQ(test::value_of(*store_, "b"), "2");
  put("c", "3", kNow + 5000);
  EXPECT_EQ(store_->status().wal_segments, segments.size() + 1)
      << "a new segment for the new format";
  auto header = decode_wal_header(fs_->contents("/db/" + segments.back()));
  ASSERT_TRUE(header);
  EXPECT_EQ(header->version, 1u) << "the old segment was not rewritten";
  test::crash_and_reopen(*fs_, config_, store_);
  EXPECT_EQ(store_->get_entry("c")->expires_ms, kNow + 5000);
  EXPECT_EQ(test::value_of(*store_, "b"), "2");
}

// tests/data/v1-datadir was written by the previous release (commit
// fbb9b20, `wavekv put`/`del` offline: 5 puts, a delete, a key with a space
// and a value with a backslash; the preallocated zeros after its 7 records
// were cut off).
TEST(OldDataDirectory, OneWrittenByThePreviousReleaseOpensWithEveryKey) {
  const std::string dir = test::temp_dir("v1-datadir");
  std::filesystem::copy(WAVEKV_SOURCE_DIR "/tests/data/v1-datadir", dir);
  Config c;
  c.data_dir = dir;
  c.wal_preallocate = false;
  {
    auto s = Store::open(c);
    ASSERT_TRUE(s) << s.status().to_string();
    EXPECT_TRUE((*s)->status().recovery.clean()) << "the zeros cut off were no damage";
    std::map<std::string, std::string> expected = {{"bin key", "x\ty"},
                                                   {"key1", "value1"},
                                                   {"key3", "value3"},
                                                   {"key4", "value4"},
                                                   {"key5", "value5"}};
    EXPECT_EQ(test::dump(**s), expected);
    EXPECT_TRUE((*s)->get_entry("key2")->tombstone);
    EXPECT_EQ((*s)->status().next_seq, 8u) << "its stream goes on";
    WriteBatch b;
    b.put("ttl", "v", (*s)->now_ms() + 3'600'000);
    ASSERT_TRUE((*s)->write(b));
  }
  auto s = Store::open(c);
  ASSERT_TRUE(s) << s.status().to_string();
  EXPECT_EQ(test::value_of(**s, "key5"), "value5");
  EXPECT_NE((*s)->get_entry("ttl")->expires_ms, 0u);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace wavekv
