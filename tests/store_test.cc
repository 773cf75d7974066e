// The Store API on testing::MemFileSystem (and, for concurrency, the real file system):
// reads and writes, scans, size limits, batches, watch, status counters, what
// survives a reopen, Config::validate, checkpoints and group commit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/snapshot.h"
#include "support/store_harness.h"
#include "support/test_util.h"

namespace wavekv {
namespace {

using test::crash_and_reopen;
using test::dump;
using test::FakeClock;
using test::files_like;
using test::mem_config;
using test::meta_of;
using test::open_store;
using test::printable;
using test::value_of;

std::vector<std::string> keys_of(const std::vector<KeyValue>& kvs) {
  std::vector<std::string> out;
  for (const auto& kv : kvs) out.push_back(kv.key);
  return out;
}

// Closes the store when it goes out of scope. Declared after the locals a
// callback captures, it drains the callbacks while those locals still live,
// even when an assertion returns early.
struct CloseAtEnd {
  std::unique_ptr<Store>& store;
  ~CloseAtEnd() {
    if (store) (void)store->close();
  }
};

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs_ = std::make_shared<testing::MemFileSystem>();
    clock_ = std::make_shared<FakeClock>();
    config_ = mem_config(fs_, clock_);
    ASSERT_NO_FATAL_FAILURE(open_store(config_, store_));
  }
  void reopen() {
    ASSERT_TRUE(store_->close());
    ASSERT_NO_FATAL_FAILURE(open_store(config_, store_));
  }

  std::shared_ptr<testing::MemFileSystem> fs_;
  std::shared_ptr<FakeClock> clock_;
  Config config_;
  std::unique_ptr<Store> store_;
};

// ---------------------------------------------------------------- basic API

TEST_F(StoreTest, PutGetOverwriteDelete) {
  EXPECT_EQ(store_->get("a").status().code(), Code::kNotFound);
  ASSERT_TRUE(store_->put("a", "1"));
  EXPECT_EQ(value_of(*store_, "a"), "1");
  ASSERT_TRUE(store_->put("a", "2"));
  EXPECT_EQ(value_of(*store_, "a"), "2");
  ASSERT_TRUE(store_->del("a"));
  EXPECT_EQ(store_->get("a").status().code(), Code::kNotFound);
  // Deleting a key that never existed is fine and leaves a tombstone.
  ASSERT_TRUE(store_->del("never"));
  EXPECT_EQ(store_->get("never").status().code(), Code::kNotFound);
  auto e = store_->get_entry("never");
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(e->tombstone);
  EXPECT_FALSE(store_->get_entry("unknown").has_value());
}

TEST_F(StoreTest, GetEntryMetaHasNodeConsecutiveSeqsAndIncreasingTimestamps) {
  // The wall clock stands still for the first writes: the hybrid clock must
  // still hand out increasing timestamps.
  const uint64_t base = store_->status().next_seq;
  EXPECT_EQ(base, 1u) << "a new incarnation's stream starts at seq 1";
  std::vector<Meta> metas;
  for (int i = 0; i < 5; i++) {
    ASSERT_TRUE(store_->put("k" + std::to_string(i), "v"));
    metas.push_back(meta_of(*store_, "k" + std::to_string(i)));
  }
  ASSERT_TRUE(store_->del("k0"));  // a delete is a write with its own seq
  auto tomb = store_->get_entry("k0");
  ASSERT_TRUE(tomb.has_value());
  EXPECT_TRUE(tomb->tombstone);
  EXPECT_EQ(tomb->value, "");
  metas.push_back(tomb->meta);
  clock_->advance(5000);
  ASSERT_TRUE(store_->put("k9", "v"));
  metas.push_back(meta_of(*store_, "k9"));

  for (size_t i = 0; i < metas.size(); i++) {
    SCOPED_TRACE("write " + std::to_string(i));
    EXPECT_EQ(metas[i].node, store_->node_id());
    EXPECT_EQ(metas[i].seq, base + i) << "seq increments by one per key written";
    if (i > 0) {
      EXPECT_GT(metas[i].timestamp, metas[i - 1].timestamp) << "timestamps increase";
    }
  }
  EXPECT_EQ(timestamp_millis(metas.front().timestamp), clock_->now_ms() - 5000);
  EXPECT_EQ(timestamp_millis(metas.back().timestamp), clock_->now_ms())
      << "timestamps follow the wall clock when it moves forward";
}

TEST_F(StoreTest, ScanPrefixReturnsLiveKeysInOrderAndHonoursLimit) {
  for (const char* k : {"p/c", "o/z", "p/a", "p/e", "p/b", "q", "p", "p/d", "p0"})
    ASSERT_TRUE(store_->put(k, std::string("v-") + k));
  ASSERT_TRUE(store_->del("p/b"));
  ASSERT_TRUE(store_->del("p/zz"));  // a tombstone for a key never written

  const std::vector<std::string> want = {"p/a", "p/c", "p/d", "p/e"};
  auto all = store_->scan_prefix("p/", 0);
  EXPECT_EQ(keys_of(all), want) << "key order, tombstones skipped, nothing outside the prefix";
  for (const auto& kv : all) {
    EXPECT_EQ(kv.value, "v-" + kv.key);
    EXPECT_EQ(kv.meta, meta_of(*store_, kv.key));
  }
  EXPECT_EQ(keys_of(store_->scan_prefix("p/", want.size())), want) << "limit == matches";
  EXPECT_EQ(keys_of(store_->scan_prefix("p/", want.size() - 1)),
            std::vector<std::string>(want.begin(), want.end() - 1))
      << "limit one less than matches";
  EXPECT_EQ(keys_of(store_->scan_prefix("p/", 1)), std::vector<std::string>{"p/a"});
  EXPECT_EQ(keys_of(store_->scan_prefix("p", 0)),
            (std::vector<std::string>{"p", "p/a", "p/c", "p/d", "p/e", "p0"}));
  EXPECT_TRUE(store_->scan_prefix("r", 0).empty());
  EXPECT_EQ(store_->scan_prefix("", 0).size(), 8u) << "an empty prefix scans everything";
}

TEST_F(StoreTest, ScanRangeIsHalfOpenInOrderAndHonoursLimit) {
  for (const char* k : {"b", "a", "d", "c", "e", "f"}) ASSERT_TRUE(store_->put(k, k));
  ASSERT_TRUE(store_->del("c"));
  ASSERT_TRUE(store_->del("bb"));

  const std::vector<std::string> want = {"b", "d", "e"};
  EXPECT_EQ(keys_of(store_->scan_range("b", "f", 0)), want) << "[start, end), tombstones skipped";
  EXPECT_EQ(keys_of(store_->scan_range("b", "f", 3)), want) << "limit == matches";
  EXPECT_EQ(keys_of(store_->scan_range("b", "f", 2)), (std::vector<std::string>{"b", "d"}))
      << "limit one less than matches";
  EXPECT_EQ(keys_of(store_->scan_range("bb", "", 0)), (std::vector<std::string>{"d", "e", "f"}))
      << "empty end means no upper bound";
  EXPECT_EQ(keys_of(store_->scan_range("", "b", 0)), std::vector<std::string>{"a"});
  EXPECT_TRUE(store_->scan_range("d", "d", 0).empty()) << "an empty range";
  EXPECT_TRUE(store_->scan_range("x", "", 0).empty());
}

TEST_F(StoreTest, BinaryKeysAndValuesWithNulAndFfBytesRoundTrip) {
  const std::string nul_key("a\0b", 3);
  const std::string nul_val("\0\0x\0", 4);
  const std::string ff = "\xff";
  const std::vector<std::string> ff_keys = {ff, ff + std::string(1, '\0'), ff + "a", ff + ff,
                                            ff + ff + ff};
  ASSERT_TRUE(store_->put(nul_key, nul_val));
  ASSERT_TRUE(store_->put(std::string("a", 1), "plain-a"));
  ASSERT_TRUE(store_->put("\xfe\xff", "below ff"));
  for (const auto& k : ff_keys) ASSERT_TRUE(store_->put(k, k + k));
  ASSERT_TRUE(store_->put("empty", ""));

  auto check = [&] {
    EXPECT_EQ(value_of(*store_, nul_key), nul_val);
    EXPECT_EQ(value_of(*store_, std::string("a", 1)), "plain-a");
    auto empty = store_->get("empty");
    ASSERT_TRUE(empty.is_ok()) << "an empty value is a value, not a delete";
    EXPECT_EQ(*empty, "");
    auto ffs = store_->scan_prefix(ff, 0);
    EXPECT_EQ(keys_of(ffs), ff_keys) << "prefix \\xff: exactly the keys starting with 0xFF, "
                                        "unsigned byte order";
    for (const auto& kv : ffs) EXPECT_EQ(kv.value, kv.key + kv.key) << printable(kv.key);
    EXPECT_EQ(keys_of(store_->scan_prefix(ff + ff, 0)),
              (std::vector<std::string>{ff + ff, ff + ff + ff}));
    EXPECT_EQ(keys_of(store_->scan_prefix(std::string("a\0", 2), 0)),
              std::vector<std::string>{nul_key});
    EXPECT_EQ(keys_of(store_->scan_range("\xfe", ff, 0)), std::vector<std::string>{"\xfe\xff"});
    EXPECT_EQ(store_->scan_range(ff, "", 0).size(), ff_keys.size());
  };
  check();
  ASSERT_NO_FATAL_FAILURE(reopen());  // through WAL replay
  check();
  ASSERT_TRUE(store_->checkpoint());
  ASSERT_NO_FATAL_FAILURE(reopen());  // through a snapshot
  check();
}

TEST_F(StoreTest, KeyAndValueSizeLimitsAreInclusive) {
  config_.max_key_bytes = 16;
  config_.max_value_bytes = 100;
  ASSERT_NO_FATAL_FAILURE(reopen());
  const uint64_t base = store_->status().next_seq;
  const std::string key16(16, 'k'), key17(17, 'k');
  const std::string val100(100, 'v'), val101(101, 'v');

  EXPECT_TRUE(store_->put(key16, val100)) << "exactly the maximum key and value are accepted";
  EXPECT_EQ(value_of(*store_, key16), val100);

  Status st = store_->put(key17, "x");
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find("max_key_bytes"), std::string::npos) << st.message();
  st = store_->put("k", val101);
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find("max_value_bytes"), std::string::npos) << st.message();
  EXPECT_EQ(store_->del(key17).code(), Code::kInvalidArgument);

  // One oversized item refuses the whole batch.
  WriteBatch b;
  b.put("ok", "fine");
  b.put("big", val101);
  EXPECT_EQ(store_->write(b).code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->get("ok").status().code(), Code::kNotFound) << "nothing of a refused batch";

  Status async_st;
  bool called = false;
  WriteBatch ab;
  ab.put(key17, "x");
  store_->write_async(ab, [&](Status s) {
    async_st = s;
    called = true;
  });
  EXPECT_TRUE(called) << "a refused async batch is reported at once";
  EXPECT_EQ(async_st.code(), Code::kInvalidArgument);

  auto s = store_->status();
  EXPECT_EQ(s.last_lsn, 1u) << "refused writes reach no WAL record";
  EXPECT_EQ(s.next_seq, base + 1) << "refused writes take no seq";
}

// ---------------------------------------------------------------- batches

TEST_F(StoreTest, WriteBatchIsOneWalRecordAndAppliesEveryItem) {
  const uint64_t base = store_->status().next_seq;
  ASSERT_TRUE(store_->put("d", "old"));
  const uint64_t lsn0 = store_->status().last_lsn;
  WriteBatch b;
  b.put("a", "1");
  b.put("b", "2");
  b.put("c", "3");
  b.del("d");
  b.put("a", "1b");  // the later item for the same key wins
  ASSERT_TRUE(store_->write(b));
  auto s = store_->status();
  EXPECT_EQ(s.last_lsn, lsn0 + 1) << "one batch is one WAL record";
  EXPECT_EQ(s.next_seq, base + 6) << "each item takes a seq";
  EXPECT_EQ(value_of(*store_, "a"), "1b");
  EXPECT_EQ(value_of(*store_, "b"), "2");
  EXPECT_EQ(value_of(*store_, "c"), "3");
  EXPECT_EQ(store_->get("d").status().code(), Code::kNotFound);

  EXPECT_TRUE(store_->write(WriteBatch()));
  EXPECT_EQ(store_->status().last_lsn, lsn0 + 1) << "an empty batch writes nothing";
}

// A batch is written with durability `none` and then cut by a torn power cut
// at many points: after reopening, either every item of it is there or none.
TEST(StoreBatch, BatchIsAllOrNothingAfterTornCrash) {
  constexpr int kItems = 20;
  int all = 0, none = 0;
  for (uint64_t seed = 1; seed <= 40; seed++) {
    SCOPED_TRACE("torn seed " + std::to_string(seed));
    auto fs = std::make_shared<testing::MemFileSystem>();
    Config c = mem_config(fs);
    c.durability = Durability::kNone;
    std::unique_ptr<Store> store;
    ASSERT_NO_FATAL_FAILURE(open_store(c, store));
    ASSERT_TRUE(store->put("base", "durable"));
    ASSERT_TRUE(store->close());
    ASSERT_NO_FATAL_FAILURE(open_store(c, store));

    WriteBatch b;
    for (int i = 0; i < kItems; i++) b.put("batch/" + std::to_string(i), std::string(100, 'a' + i));
    ASSERT_TRUE(store->write(b));
    // A large record after the batch, so that a cut often falls after the whole batch.
    ASSERT_TRUE(store->put("after", std::string(5000, 'x')));
    ASSERT_NO_FATAL_FAILURE(crash_and_reopen(*fs, c, store, seed));

    EXPECT_EQ(value_of(*store, "base"), "durable");
    size_t present = store->scan_prefix("batch/", 0).size();
    EXPECT_TRUE(present == 0 || present == kItems) << present << " of " << kItems << " survived";
    (present == 0 ? none : all)++;
  }
  // The seeds are fixed: make sure both outcomes were really exercised.
  EXPECT_GT(all, 0);
  EXPECT_GT(none, 0);
}

// ---------------------------------------------------------------- watch

TEST_F(StoreTest, WatchSeesPutsAndDeletesUnderItsPrefixInCommitOrder) {
  std::mutex mu;
  std::vector<WatchEvent> events, everything;
  WatchId id = store_->watch("user/", [&](const WatchEvent& ev) {
    std::lock_guard l(mu);
    events.push_back(ev);
  });
  WatchId all_id = store_->watch("", [&](const WatchEvent& ev) {
    std::lock_guard l(mu);
    everything.push_back(ev);
  });
  CloseAtEnd close_first{store_};

  ASSERT_TRUE(store_->put("user/a", "1"));
  ASSERT_TRUE(store_->put("other/x", "no"));
  ASSERT_TRUE(store_->put("use", "no"));
  ASSERT_TRUE(store_->del("user/a"));
  WriteBatch b;
  b.put("user/b", "2");
  b.put("zzz", "no");
  b.del("user/c");
  ASSERT_TRUE(store_->write(b));

  {
    std::lock_guard l(mu);  // events are delivered before the write returns
    ASSERT_EQ(events.size(), 4u);
    EXPECT_EQ(events[0].key, "user/a");
    EXPECT_EQ(events[0].value, "1");
    EXPECT_FALSE(events[0].deleted);
    EXPECT_EQ(events[1].key, "user/a");
    EXPECT_TRUE(events[1].deleted);
    EXPECT_EQ(events[1].value, "");
    EXPECT_EQ(events[2].key, "user/b");
    EXPECT_EQ(events[2].value, "2");
    EXPECT_EQ(events[3].key, "user/c");
    EXPECT_TRUE(events[3].deleted);
    for (size_t i = 1; i < events.size(); i++)
      EXPECT_GT(events[i].meta.seq, events[i - 1].meta.seq) << "commit order";
    EXPECT_EQ(events[2].meta, meta_of(*store_, "user/b"));
    EXPECT_EQ(everything.size(), 7u) << "an empty prefix sees every change";
  }

  store_->unwatch(id);
  ASSERT_TRUE(store_->put("user/d", "after unwatch"));
  ASSERT_TRUE(store_->del("user/b"));
  {
    std::lock_guard l(mu);
    EXPECT_EQ(events.size(), 4u) << "no events after unwatch";
    EXPECT_EQ(everything.size(), 9u) << "the other watcher still sees them";
  }
  // Not under `mu`: callbacks take `mu` while the store holds its watch lock.
  store_->unwatch(all_id);
}

TEST_F(StoreTest, BlockingCallsFromAWatchCallbackAreRefusedWithoutDeadlock) {
  Store* store = store_.get();
  std::vector<Status> inner;
  Status async_done = Status::closed("not called");
  store_->watch("trigger", [&](const WatchEvent&) {
    inner.push_back(store->put("inner", "x"));
    inner.push_back(store->del("inner"));
    WriteBatch b;
    b.put("inner", "y");
    inner.push_back(store->write(b));
    inner.push_back(store->checkpoint());
    inner.push_back(store->close());
    // Reads and async writes are allowed.
    inner.push_back(store->get("trigger").status());
    WriteBatch ab;
    ab.put("from-callback", "async");
    store->write_async(std::move(ab), [&](Status st) { async_done = st; });
  });
  CloseAtEnd close_first{store_};
  ASSERT_TRUE(store_->put("trigger", "go"));
  ASSERT_EQ(inner.size(), 6u);
  for (size_t i = 0; i < 5; i++) {
    EXPECT_EQ(inner[i].code(), Code::kInvalidArgument)
        << "call " << i << ": " << inner[i].to_string();
    EXPECT_FALSE(inner[i].message().empty());
  }
  EXPECT_TRUE(inner[5].is_ok()) << "get from a callback: " << inner[5].to_string();
  EXPECT_EQ(store_->get("inner").status().code(), Code::kNotFound);
  // The queue is FIFO: the async write was queued before this one.
  ASSERT_TRUE(store_->put("later", "1"));
  EXPECT_TRUE(async_done.is_ok()) << async_done.to_string();
  EXPECT_EQ(value_of(*store_, "from-callback"), "async");
  EXPECT_TRUE(store_->put("still-open", "1")) << "the refused close() did not close the store";
}

// ---------------------------------------------------------------- status

TEST_F(StoreTest, StatusCountersTrackKeysTombstonesBytesSeqsAndWrites) {
  auto s = store_->status();
  const uint64_t base = s.next_seq;
  EXPECT_GT(base, 0u);
  EXPECT_EQ(s.live_keys, 0u);
  EXPECT_EQ(s.tombstones, 0u);
  EXPECT_EQ(s.data_bytes, 0u);
  EXPECT_EQ(s.writes, 0u);
  EXPECT_EQ(s.node_id, store_->node_id());

  ASSERT_TRUE(store_->put("ab", "123"));  // 5 bytes
  ASSERT_TRUE(store_->put("c", "4567"));  // 5 bytes
  ASSERT_TRUE(store_->put("ab", "1"));    // ab now 3 bytes
  ASSERT_TRUE(store_->del("c"));          // c becomes a tombstone
  ASSERT_TRUE(store_->del("ghost"));      // a tombstone
  WriteBatch b;
  b.put("x", "");
  b.put("yy", "zz");
  ASSERT_TRUE(store_->write(b));

  s = store_->status();
  EXPECT_EQ(s.live_keys, 3u);   // ab, x, yy
  EXPECT_EQ(s.tombstones, 2u);  // c, ghost
  EXPECT_EQ(s.data_bytes, 3u + 1u + 4u);
  EXPECT_EQ(s.next_seq, base + 7);
  EXPECT_EQ(s.writes, 6u) << "write calls, not items";
  EXPECT_EQ(s.last_lsn, 6u);
  EXPECT_EQ(s.durable_lsn, 6u) << "durability always";
  EXPECT_EQ(s.fsyncs, 6u) << "one fsync per write when they come one at a time";
  EXPECT_EQ(s.clock, meta_of(*store_, "yy").timestamp);

  ASSERT_NO_FATAL_FAILURE(reopen());
  auto r = store_->status();
  EXPECT_EQ(r.live_keys, 3u);
  EXPECT_EQ(r.tombstones, 2u);
  EXPECT_EQ(r.data_bytes, 8u);
  EXPECT_EQ(r.next_seq, base + 7);
  EXPECT_EQ(r.writes, 0u) << "writes count since open";
  EXPECT_EQ(r.last_lsn, 6u);
  EXPECT_EQ(r.recovery.wal_records_replayed, 6u);
  EXPECT_TRUE(r.recovery.clean());
}

// ---------------------------------------------------------------- reopen

// Seqs continue and timestamps stay ahead across a restart even when the wall
// clock went back, whether the state comes back from the WAL, a snapshot or a
// power cut.
TEST_F(StoreTest, SeqAndClockSurviveReopenWhenWallClockGoesBackwards) {
  enum How { kClose, kCheckpointThenClose, kPowerCut };
  for (How how : {kClose, kCheckpointThenClose, kPowerCut}) {
    SCOPED_TRACE("restart kind " + std::to_string(how));
    clock_->advance(3'600'000);  // an hour ahead of what comes after the restart
    ASSERT_TRUE(store_->put("a", "1"));
    ASSERT_TRUE(store_->put("b", "2"));
    ASSERT_TRUE(store_->del("a"));  // the newest seq and timestamp are on a tombstone
    auto before = store_->status();
    Meta last = meta_of(*store_, "a");
    ASSERT_EQ(last.seq + 1, before.next_seq);

    if (how == kCheckpointThenClose) {
      ASSERT_TRUE(store_->checkpoint());
    }
    if (how == kPowerCut) {
      clock_->advance(-3'600'000ull - 60'000);
      ASSERT_NO_FATAL_FAILURE(crash_and_reopen(*fs_, config_, store_));
    } else {
      ASSERT_TRUE(store_->close());
      clock_->advance(-3'600'000ull - 60'000);
      ASSERT_NO_FATAL_FAILURE(open_store(config_, store_));
    }
    ASSERT_LT(clock_->now_ms(), timestamp_millis(last.timestamp)) << "the clock went backwards";
    EXPECT_EQ(store_->status().next_seq, before.next_seq);
    EXPECT_EQ(store_->status().clock, before.clock);

    ASSERT_TRUE(store_->put("c", "3"));
    Meta next = meta_of(*store_, "c");
    EXPECT_EQ(next.seq, last.seq + 1) << "no seq is reused or skipped after reopen";
    EXPECT_GT(next.timestamp, last.timestamp) << "timestamps keep growing across the restart";
    EXPECT_GT(next.timestamp, before.clock);
  }
}

TEST_F(StoreTest, NodeIdIsGeneratedOncePersistedAndEnforced) {
  NodeId id = store_->node_id();
  EXPECT_NE(id, 0u);
  ASSERT_TRUE(store_->put("k", "v"));
  EXPECT_EQ(meta_of(*store_, "k").node, id);
  ASSERT_NO_FATAL_FAILURE(reopen());
  EXPECT_EQ(store_->node_id(), id) << "the generated id persists";
  EXPECT_EQ(store_->status().node_id, id);
  ASSERT_TRUE(store_->close());

  Config explicit_same = config_;
  explicit_same.node_id = id;
  ASSERT_NO_FATAL_FAILURE(open_store(explicit_same, store_));
  EXPECT_EQ(store_->node_id(), id);
  ASSERT_TRUE(store_->close());

  Config other = config_;
  other.node_id = id + 1;
  auto wrong = Store::open(other);
  ASSERT_FALSE(wrong.is_ok());
  EXPECT_EQ(wrong.status().code(), Code::kWrongNode) << wrong.status().to_string();
}

TEST(StoreIdentity, ExplicitNodeIdOnAFreshDirectoryIsUsedAndRemembered) {
  auto fs = std::make_shared<testing::MemFileSystem>();
  Config c = mem_config(fs);
  c.node_id = 4242;
  std::unique_ptr<Store> store;
  ASSERT_NO_FATAL_FAILURE(open_store(c, store));
  EXPECT_EQ(store->node_id(), 4242u);
  ASSERT_TRUE(store->put("k", "v"));
  EXPECT_EQ(meta_of(*store, "k").node, 4242u);
  ASSERT_TRUE(store->close());
  c.node_id = 0;
  ASSERT_NO_FATAL_FAILURE(open_store(c, store));
  EXPECT_EQ(store->node_id(), 4242u) << "0 takes the recorded id";
}

TEST_F(StoreTest, SecondOpenIsBusyAndCallsAfterCloseAreClosed) {
  auto second = Store::open(config_);
  ASSERT_FALSE(second.is_ok());
  EXPECT_EQ(second.status().code(), Code::kBusy);

  ASSERT_TRUE(store_->put("k", "v"));
  EXPECT_TRUE(store_->close());
  EXPECT_TRUE(store_->close()) << "close is idempotent";
  EXPECT_EQ(store_->put("k", "w").code(), Code::kClosed);
  EXPECT_EQ(store_->checkpoint().code(), Code::kClosed);
  Status async_st;
  WriteBatch b;
  b.put("k", "w");
  store_->write_async(b, [&](Status st) { async_st = st; });
  EXPECT_EQ(async_st.code(), Code::kClosed);
  EXPECT_EQ(value_of(*store_, "k"), "v") << "reads of a closed store still answer";

  // The directory is free again.
  std::unique_ptr<Store> again;
  ASSERT_NO_FATAL_FAILURE(open_store(config_, again));
  EXPECT_EQ(value_of(*again, "k"), "v");
}

TEST(StoreConfig, ValidateNamesTheBadField) {
  Config good;
  good.data_dir = "/db";
  EXPECT_TRUE(good.validate()) << good.validate().to_string();

  struct Case {
    const char* what;
    void (*mutate)(Config&);
  };
  const Case cases[] = {
      {"data_dir", [](Config& c) { c.data_dir.clear(); }},
      {"max_key_bytes", [](Config& c) { c.max_key_bytes = 0; }},
      {"max_key_bytes", [](Config& c) { c.max_key_bytes = 1ull << 32; }},
      {"max_value_bytes", [](Config& c) { c.max_value_bytes = 1ull << 32; }},
      {"wal_segment_bytes", [](Config& c) { c.wal_segment_bytes = 4095; }},
      {"sync_interval_ms",
       [](Config& c) {
         c.durability = Durability::kInterval;
         c.sync_interval_ms = 0;
       }},
      {"max_group_bytes", [](Config& c) { c.max_group_bytes = 0; }},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.what);
    Config c = good;
    c.fs = std::make_shared<testing::MemFileSystem>();
    tc.mutate(c);
    Status st = c.validate();
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.to_string();
    EXPECT_NE(st.message().find(tc.what), std::string::npos) << st.message();
    auto opened = Store::open(c);
    ASSERT_FALSE(opened.is_ok());
    EXPECT_EQ(opened.status().code(), Code::kInvalidArgument);
  }
  // The limits themselves are fine.
  Config edge = good;
  edge.max_key_bytes = 1;
  edge.max_value_bytes = 0;
  edge.wal_segment_bytes = 4096;
  edge.durability = Durability::kInterval;
  edge.sync_interval_ms = 1;
  EXPECT_TRUE(edge.validate()) << edge.validate().to_string();
  // sync_interval_ms only matters for interval durability.
  Config none = good;
  none.durability = Durability::kNone;
  none.sync_interval_ms = 0;
  EXPECT_TRUE(none.validate()) << none.validate().to_string();

  EXPECT_EQ(parse_durability("always").value(), Durability::kAlways);
  EXPECT_EQ(parse_durability("interval").value(), Durability::kInterval);
  EXPECT_EQ(parse_durability("none").value(), Durability::kNone);
  EXPECT_EQ(parse_durability("sometimes").status().code(), Code::kInvalidArgument);
}

// ---------------------------------------------------------------- checkpoints

uint64_t lsn_in_name(const std::string& name) {
  // wal-<20 digits>.log and snap-<20 digits>.snap
  size_t dash = name.find('-');
  return std::stoull(name.substr(dash + 1, 20));
}

std::vector<uint64_t> sorted_lsns(const std::vector<std::string>& names) {
  std::vector<uint64_t> out;
  for (const auto& n : names) out.push_back(lsn_in_name(n));
  std::sort(out.begin(), out.end());
  return out;
}

TEST(StoreCheckpoint, AutomaticCheckpointsRemoveOldFilesAndBoundReplay) {
  auto fs = std::make_shared<testing::MemFileSystem>();
  Config c = mem_config(fs);
  c.wal_segment_bytes = 4096;
  c.checkpoint_ops = 20;
  std::unique_ptr<Store> store;
  ASSERT_NO_FATAL_FAILURE(open_store(c, store));
  const uint64_t base = store->status().next_seq;
  std::map<std::string, std::string> want;
  constexpr int kWrites = 1500;
  // Checkpoints run on a background thread, which a loaded machine may leave
  // unscheduled while this loop writes, and the WAL then reaches back as far
  // as the scheduler let it (it failed once with 21 segments). So every 100
  // writes the loop waits until the checkpoint they asked for is taken: the
  // WAL left depends on checkpoint_ops, not on timing.
  auto caught_up = [&] {
    StoreStatus s = store->status();
    return s.last_lsn - s.checkpoint_lsn < c.checkpoint_ops;
  };
  for (int i = 0; i < kWrites; i++) {
    if (i % 100 == 0) {
      ASSERT_TRUE(test::eventually(caught_up, 30, 1));
    }
    std::string k = "key" + std::to_string(i % 97);
    std::string v = "value-" + std::to_string(i) + std::string(i % 50, '.');
    if (i % 11 == 0) {
      ASSERT_TRUE(store->del(k));
      want.erase(k);
    } else {
      ASSERT_TRUE(store->put(k, v));
      want[k] = v;
    }
  }
  // Checkpoints run on a background thread; wait for one rather than guess.
  for (int i = 0; i < 500 && store->status().checkpoints == 0; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GT(store->status().checkpoints, 0u) << "checkpoint_ops triggers checkpoints";
  ASSERT_TRUE(store->close());  // waits for a checkpoint in progress
  auto before = store->status();

  auto snaps = sorted_lsns(files_like(*fs, "/db", "snap-", ".snap"));
  auto wals = sorted_lsns(files_like(*fs, "/db", "wal-", ".log"));
  ASSERT_GE(snaps.size(), 1u);
  EXPECT_LE(snaps.size(), 2u) << "all but the newest two snapshots are removed";
  EXPECT_EQ(snaps.back(), before.checkpoint_lsn);
  EXPECT_EQ(wals.size(), before.wal_segments);
  ASSERT_FALSE(wals.empty());
  EXPECT_GT(wals.front(), 1u) << "old WAL segments are removed";
  EXPECT_LT(wals.size(), 20u) << "the WAL does not keep growing";
  if (snaps.size() == 2) {
    // The WAL still reaches back to the fallback snapshot, and no further.
    EXPECT_LE(wals.front(), snaps.front() + 1) << "the fallback snapshot needs this WAL";
    if (wals.size() > 1) {
      EXPECT_GT(wals[1], snaps.front() + 1) << "covered segments are dropped";
    }
  }
  EXPECT_TRUE(files_like(*fs, "/db", "", ".tmp").empty());

  ASSERT_NO_FATAL_FAILURE(open_store(c, store));
  EXPECT_EQ(dump(*store), want) << "every write is back after reopen";
  auto after = store->status();
  EXPECT_EQ(after.recovery.snapshot_lsn, before.checkpoint_lsn);
  EXPECT_EQ(after.recovery.wal_records_replayed, before.last_lsn - before.checkpoint_lsn)
      << "only the records after the newest checkpoint are replayed";
  EXPECT_LT(after.recovery.wal_records_replayed, static_cast<uint64_t>(kWrites) / 2);
  EXPECT_EQ(after.next_seq, base + kWrites);
  EXPECT_EQ(after.last_lsn, before.last_lsn);
}

TEST(StoreCheckpoint, ReplayAfterManualCheckpointIsOnlyTheNewRecords) {
  auto fs = std::make_shared<testing::MemFileSystem>();
  Config c = mem_config(fs);
  c.wal_segment_bytes = 4096;
  std::unique_ptr<Store> store;
  ASSERT_NO_FATAL_FAILURE(open_store(c, store));
  for (int i = 0; i < 100; i++) ASSERT_TRUE(store->put("k" + std::to_string(i), "v"));
  ASSERT_TRUE(store->checkpoint());
  auto s = store->status();
  EXPECT_EQ(s.checkpoint_lsn, 100u);
  EXPECT_EQ(s.checkpoints, 1u);
  EXPECT_EQ(s.ops_since_checkpoint, 0u);
  EXPECT_GT(s.snapshot_bytes, 0u);
  ASSERT_TRUE(store->checkpoint()) << "a checkpoint with nothing new is a no-op";
  EXPECT_EQ(store->status().checkpoints, 1u);
  for (int i = 0; i < 7; i++) ASSERT_TRUE(store->put("n" + std::to_string(i), "v"));
  ASSERT_TRUE(store->close());
  ASSERT_NO_FATAL_FAILURE(open_store(c, store));
  auto r = store->status().recovery;
  EXPECT_EQ(r.snapshot_lsn, 100u);
  EXPECT_EQ(r.wal_records_replayed, 7u);
  EXPECT_TRUE(r.clean());
  EXPECT_EQ(store->status().live_keys, 107u);
}

// Corrupts one byte in the middle of a file, durably.
void corrupt(testing::MemFileSystem& fs, const std::string& path) {
  std::string data = fs.contents(path);
  ASSERT_GT(data.size(), 100u) << path;
  data[data.size() / 2] ^= 0x5a;
  fs.set_contents(path, data);
}

// Writes `n` puts of distinct keys with prefix `tag`, recording them in `want`.
void write_some(Store& s, const std::string& tag, int n, std::map<std::string, std::string>& want) {
  for (int i = 0; i < n; i++) {
    std::string k = tag + std::to_string(i);
    std::string v = std::string(60, 'a' + i % 26);
    ASSERT_TRUE(s.put(k, v));
    want[k] = v;
  }
}

// The newest snapshot is damaged: the store opens from the older one plus the
// WAL, which checkpoints must therefore have kept.
TEST(StoreCheckpoint, CorruptNewestSnapshotFallsBackToPreviousPlusWal) {
  auto fs = std::make_shared<testing::MemFileSystem>();
  Config c = mem_config(fs);
  c.wal_segment_bytes = 4096;  // many segments between checkpoints
  std::unique_ptr<Store> store;
  ASSERT_NO_FATAL_FAILURE(open_store(c, store));
  std::map<std::string, std::string> want;
  std::vector<uint64_t> cps;
  for (int round = 0; round < 4; round++) {
    ASSERT_NO_FATAL_FAILURE(write_some(*store, "r" + std::to_string(round) + "/", 120, want));
    ASSERT_TRUE(store->checkpoint());
    cps.push_back(store->status().checkpoint_lsn);
  }
  ASSERT_NO_FATAL_FAILURE(write_some(*store, "tail/", 30, want));
  ASSERT_TRUE(store->close());
  ASSERT_EQ(sorted_lsns(files_like(*fs, "/db", "snap-", ".snap")),
            (std::vector<uint64_t>{cps[2], cps[3]}));

  ASSERT_NO_FATAL_FAILURE(corrupt(*fs, "/db/" + snapshot_name(cps[3])));
  ASSERT_NO_FATAL_FAILURE(open_store(c, store));
  auto r = store->status().recovery;
  EXPECT_EQ(r.snapshot_lsn, cps[2]) << "fell back to the previous snapshot";
  EXPECT_EQ(r.snapshots_skipped.size(), 1u);
  EXPECT_FALSE(r.clean()) << "the damage is reported";
  EXPECT_EQ(dump(*store), want) << "nothing lost: the WAL after the fallback was kept";
}

// After opening from the fallback (the newest snapshot being corrupt), the next
// checkpoint must keep a snapshot that verifies as its fallback, not the
// corrupt one, so that one more damaged snapshot still loses nothing.
TEST(StoreCheckpoint, CheckpointAfterFallbackKeepsAVerifiedFallback) {
  auto fs = std::make_shared<testing::MemFileSystem>();
  Config c = mem_config(fs);
  c.wal_segment_bytes = 4096;
  std::unique_ptr<Store> store;
  ASSERT_NO_FATAL_FAILURE(open_store(c, store));
  std::map<std::string, std::string> want;
  ASSERT_NO_FATAL_FAILURE(write_some(*store, "a/", 100, want));
  ASSERT_TRUE(store->checkpoint());
  const uint64_t good = store->status().checkpoint_lsn;
  ASSERT_NO_FATAL_FAILURE(write_some(*store, "b/", 100, want));
  ASSERT_TRUE(store->checkpoint());
  const uint64_t bad = store->status().checkpoint_lsn;
  ASSERT_TRUE(store->close());
  ASSERT_NO_FATAL_FAILURE(corrupt(*fs, "/db/" + snapshot_name(bad)));

  ASSERT_NO_FATAL_FAILURE(open_store(c, store));
  ASSERT_EQ(store->status().recovery.snapshot_lsn, good);
  ASSERT_NO_FATAL_FAILURE(write_some(*store, "c/", 100, want));
  ASSERT_TRUE(store->checkpoint());
  const uint64_t newest = store->status().checkpoint_lsn;
  ASSERT_NO_FATAL_FAILURE(write_some(*store, "d/", 10, want));
  ASSERT_TRUE(store->close());

  ASSERT_NO_FATAL_FAILURE(corrupt(*fs, "/db/" + snapshot_name(newest)));
  auto reopened = Store::open(c);
  ASSERT_TRUE(reopened.is_ok()) << "a verified fallback and its WAL must still be there: "
                                << reopened.status().to_string();
  EXPECT_EQ(dump(**reopened), want);
}

// ---------------------------------------------------------------- concurrency

std::string make_temp_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "wavekv-store-test-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return {};
  return tmpl;
}

TEST(StoreConcurrency, ConcurrentDurableWritersOnPosixFsAreAllReadableAndGroupCommitted) {
  const std::string dir = make_temp_dir();
  ASSERT_FALSE(dir.empty());
  Config c;
  c.data_dir = dir;
  c.durability = Durability::kAlways;
  c.wal_segment_bytes = 1 << 20;
  constexpr int kThreads = 8, kPerThread = 500;
  {
    std::unique_ptr<Store> store;
    ASSERT_NO_FATAL_FAILURE(open_store(c, store));
    const uint64_t base = store->status().next_seq;
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; i++) {
          std::string k = "t" + std::to_string(t) + "/" + std::to_string(i);
          if (!store->put(k, k + "=v")) failures++;
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(failures.load(), 0);
    auto s = store->status();
    EXPECT_EQ(s.writes, static_cast<uint64_t>(kThreads * kPerThread));
    EXPECT_EQ(s.next_seq, base + kThreads * kPerThread);
    EXPECT_LT(s.fsyncs, s.writes) << "concurrent writers share fsyncs (group commit)";
    EXPECT_LT(s.group_commits, s.writes);
    EXPECT_EQ(s.durable_lsn, s.last_lsn);
    EXPECT_EQ(s.live_keys, static_cast<uint64_t>(kThreads * kPerThread));
    ASSERT_TRUE(store->close());
  }
  {
    std::unique_ptr<Store> store;
    ASSERT_NO_FATAL_FAILURE(open_store(c, store));
    int missing = 0;
    for (int t = 0; t < kThreads; t++) {
      for (int i = 0; i < kPerThread; i++) {
        std::string k = "t" + std::to_string(t) + "/" + std::to_string(i);
        auto v = store->get(k);
        if (!v.is_ok() || *v != k + "=v") missing++;
      }
    }
    EXPECT_EQ(missing, 0) << "every acknowledged write is readable after reopen";
    EXPECT_TRUE(store->status().recovery.clean());
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// Readers run while writers write: values only move forward per key, scans are
// sorted, and the two keys of every batch are always seen together.
TEST(StoreConcurrency, ReadersDuringWritesSeeOrderedAtomicState) {
  auto fs = std::make_shared<testing::MemFileSystem>();
  Config c = mem_config(fs);
  c.durability = Durability::kNone;
  c.checkpoint_ops = 200;  // checkpoints happen under the readers too
  std::unique_ptr<Store> store;
  ASSERT_NO_FATAL_FAILURE(open_store(c, store));
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  constexpr int kWriters = 2, kWrites = 600;

  std::vector<std::thread> writers, readers;
  for (int w = 0; w < kWriters; w++) {
    writers.emplace_back([&, w] {
      for (int i = 1; i <= kWrites; i++) {
        WriteBatch b;
        std::string v = std::to_string(i);
        b.put("w" + std::to_string(w) + "/a", v);
        b.put("w" + std::to_string(w) + "/b", v);
        if (!store->write(b)) errors++;
      }
    });
  }
  for (int r = 0; r < 2; r++) {
    readers.emplace_back([&] {
      int last[kWriters] = {};
      while (!stop.load()) {
        for (int w = 0; w < kWriters; w++) {
          auto kvs = store->scan_prefix("w" + std::to_string(w) + "/", 0);
          if (kvs.empty()) continue;
          if (kvs.size() != 2 || kvs[0].key >= kvs[1].key || kvs[0].value != kvs[1].value) {
            errors++;  // torn batch or unsorted scan
            continue;
          }
          int v = std::stoi(kvs[0].value);
          if (v < last[w]) errors++;  // went backwards
          last[w] = v;
          auto g = store->get("w" + std::to_string(w) + "/a");
          if (!g.is_ok() || std::stoi(*g) < v) errors++;
        }
        (void)store->status();
        std::this_thread::yield();
      }
    });
  }
  for (auto& t : writers) t.join();
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(errors.load(), 0);
  for (int w = 0; w < kWriters; w++)
    EXPECT_EQ(value_of(*store, "w" + std::to_string(w) + "/b"), std::to_string(kWrites));
}

}  // namespace
}  // namespace wavekv
