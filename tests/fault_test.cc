// Fault injection on testing::MemFileSystem: failed writes and fsyncs, a full disk, and
// power cuts (clean and torn) under each durability mode.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "support/store_harness.h"

namespace wavekv {
namespace {

using test::crash_and_reopen;
using test::dump;
using test::mem_config;
using test::open_store;
using test::value_of;

std::string key(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "k%05d", i);
  return buf;
}

std::string value(int i) { return "value-" + std::to_string(i) + std::string(i % 40, '#'); }

// Number of keys key(0), key(1), ... present with their values before the first
// missing one; fails the test if any key after that gap is present (a hole).
void expect_prefix(Store& s, int n, int* prefix_out) {
  int prefix = 0;
  while (prefix < n && s.get(key(prefix)).is_ok()) {
    EXPECT_EQ(value_of(s, key(prefix)), value(prefix));
    prefix++;
  }
  for (int i = prefix; i < n; i++)
    EXPECT_FALSE(s.get(key(i)).is_ok()) << key(i) << " survived but " << key(prefix) << " did not";
  *prefix_out = prefix;
}

// A failed WAL write or fsync makes the store refuse every later write with
// kFailed, even once the fault is gone, until it is reopened.
void check_poisoned(Store& s) {
  for (int attempt = 0; attempt < 3; attempt++) {
    Status st = s.put("later", "x");
    EXPECT_EQ(st.code(), Code::kFailed) << st.to_string();
    EXPECT_NE(st.message().find("reopen"), std::string::npos)
        << "the message says what to do: " << st.message();
  }
  EXPECT_EQ(s.del(key(0)).code(), Code::kFailed);
  WriteBatch b;
  b.put("b1", "1");
  EXPECT_EQ(s.write(b).code(), Code::kFailed);
  Status async_st;
  bool called = false;
  s.write_async(b, [&](Status st) {
    async_st = st;
    called = true;
  });
  // The refusal is reported through the callback on the commit thread; a
  // later blocking write (also refused) proves it has run.
  EXPECT_EQ(s.put("later2", "x").code(), Code::kFailed);
  EXPECT_TRUE(called);
  EXPECT_EQ(async_st.code(), Code::kFailed);
  EXPECT_FALSE(s.get("later").is_ok()) << "a refused write is not visible";
}

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs_ = std::make_shared<testing::MemFileSystem>();
    config_ = mem_config(fs_);
  }
  void open() { ASSERT_NO_FATAL_FAILURE(open_store(config_, store_)); }
  void write_keys(int from, int to) {
    for (int i = from; i < to; i++) ASSERT_TRUE(store_->put(key(i), value(i))) << key(i);
  }
  void expect_keys(int from, int to) {
    for (int i = from; i < to; i++) {
      auto v = store_->get(key(i));
      ASSERT_TRUE(v.is_ok()) << key(i) << ": " << v.status().to_string();
      EXPECT_EQ(*v, value(i));
    }
  }

  std::shared_ptr<testing::MemFileSystem> fs_;
  Config config_;
  std::unique_ptr<Store> store_;
};

TEST_F(FaultTest, FailedWalWritePoisonsWritesUntilReopen) {
  ASSERT_NO_FATAL_FAILURE(open());
  ASSERT_NO_FATAL_FAILURE(write_keys(0, 50));
  fs_->fail_nth_write(1);
  Status st = store_->put("doomed", "x");
  EXPECT_FALSE(st.is_ok()) << "the failed WAL write is reported";
  EXPECT_NE(st.message().find("injected write failure"), std::string::npos) << st.message();
  ASSERT_NO_FATAL_FAILURE(check_poisoned(*store_));

  // Reads still work, and show nothing of the failed write.
  ASSERT_NO_FATAL_FAILURE(expect_keys(0, 50));
  EXPECT_EQ(store_->get("doomed").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->scan_prefix("k", 0).size(), 50u);

  EXPECT_EQ(store_->close().code(), Code::kFailed) << "close() does not pretend all is well";
  ASSERT_NO_FATAL_FAILURE(open());
  ASSERT_NO_FATAL_FAILURE(expect_keys(0, 50));
  EXPECT_TRUE(store_->put("after-reopen", "ok")) << "reopening clears the failure";
  EXPECT_TRUE(store_->status().recovery.clean());
  ASSERT_NO_FATAL_FAILURE(write_keys(50, 60));
  ASSERT_TRUE(store_->close());
  ASSERT_NO_FATAL_FAILURE(open());
  ASSERT_NO_FATAL_FAILURE(expect_keys(0, 60));
  EXPECT_EQ(value_of(*store_, "after-reopen"), "ok");
}

TEST_F(FaultTest, FailedFsyncPoisonsWritesUntilReopenAndIsNeverRetried) {
  config_.durability = Durability::kAlways;
  ASSERT_NO_FATAL_FAILURE(open());
  ASSERT_NO_FATAL_FAILURE(write_keys(0, 50));
  fs_->fail_nth_sync(1);
  Status st = store_->put("unacked", "x");
  EXPECT_FALSE(st.is_ok()) << "a write whose fsync failed is not acknowledged";
  EXPECT_NE(st.message().find("injected fsync failure"), std::string::npos) << st.message();
  ASSERT_NO_FATAL_FAILURE(check_poisoned(*store_));
  ASSERT_NO_FATAL_FAILURE(expect_keys(0, 50));
  EXPECT_FALSE(store_->get("unacked").is_ok()) << "not applied without a durable WAL record";

  // The failed fsync is not retried, not even by close(): a power cut now
  // keeps exactly what was acknowledged, and the unacknowledged write may go.
  const uint64_t syncs = fs_->syncs();
  (void)store_->close();
  EXPECT_EQ(fs_->syncs(), syncs) << "no fsync after a failed fsync";
  ASSERT_NO_FATAL_FAILURE(crash_and_reopen(*fs_, config_, store_));
  ASSERT_NO_FATAL_FAILURE(expect_keys(0, 50));
  EXPECT_TRUE(store_->put("after-reopen", "ok"));
}

TEST_F(FaultTest, FailedFsyncWithoutPowerCutReopensWithEveryAcknowledgedWrite) {
  config_.durability = Durability::kAlways;
  ASSERT_NO_FATAL_FAILURE(open());
  ASSERT_NO_FATAL_FAILURE(write_keys(0, 30));
  fs_->fail_nth_sync(1);
  EXPECT_FALSE(store_->put("unacked", "x").is_ok());
  ASSERT_NO_FATAL_FAILURE(check_poisoned(*store_));
  (void)store_->close();
  ASSERT_NO_FATAL_FAILURE(open());
  ASSERT_NO_FATAL_FAILURE(expect_keys(0, 30));
  // Its record reached the file, so it may come back; either way is allowed.
  auto v = store_->get("unacked");
  if (v.is_ok()) {
    EXPECT_EQ(*v, "x");
  }
  EXPECT_TRUE(store_->put("after-reopen", "ok"));
}

// With interval durability the fsync happens on the background thread; its
// failure must poison the store just the same.
TEST_F(FaultTest, FailedBackgroundFsyncPoisonsIntervalStore) {
  config_.durability = Durability::kInterval;
  config_.sync_interval_ms = 5;
  ASSERT_NO_FATAL_FAILURE(open());
  fs_->fail_nth_sync(1);
  ASSERT_TRUE(store_->put("k", "v")) << "interval writes do not wait for the fsync";
  Status st;
  for (int i = 0; i < 400; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    st = store_->put("k" + std::to_string(i), "v");
    if (!st.is_ok()) break;
  }
  EXPECT_EQ(st.code(), Code::kFailed) << "the background fsync failure reached the writers";
  EXPECT_NE(st.message().find("reopen"), std::string::npos) << st.message();
  EXPECT_EQ(value_of(*store_, "k"), "v");
}

// Disk full, with and without preallocated WAL segments: the write fails
// cleanly, later writes are refused, and nothing acknowledged is lost.
TEST_F(FaultTest, DiskFullFailsCleanlyAndLosesNothingAcknowledged) {
  for (bool prealloc : {false, true}) {
    SCOPED_TRACE(prealloc ? "preallocated segments" : "growing segments");
    fs_ = std::make_shared<testing::MemFileSystem>();
    config_ = mem_config(fs_);
    config_.wal_segment_bytes = 8192;
    config_.wal_preallocate = prealloc;
    ASSERT_NO_FATAL_FAILURE(open());
    ASSERT_NO_FATAL_FAILURE(write_keys(0, 20));
    uint64_t used = 0;
    auto names = fs_->list_dir("/db");
    ASSERT_TRUE(names.is_ok());
    for (const auto& name : *names) used += fs_->contents("/db/" + name).size();
    fs_->set_space_limit(used + 20000);

    int acked = 20;
    Status st;
    for (; acked < 2000; acked++) {
      st = store_->put(key(acked), value(acked) + std::string(200, 'f'));
      if (!st.is_ok()) break;
    }
    ASSERT_FALSE(st.is_ok()) << "the disk never filled up";
    EXPECT_GT(acked, 25) << "the limit left room for some writes";
    EXPECT_NE(st.message().find("No space left"), std::string::npos) << st.to_string();
    ASSERT_NO_FATAL_FAILURE(check_poisoned(*store_));
    EXPECT_EQ(store_->status().live_keys, static_cast<uint64_t>(acked)) << "reads still work";

    (void)store_->close();
    fs_->set_space_limit(UINT64_MAX);  // space was freed
    ASSERT_NO_FATAL_FAILURE(open());
    ASSERT_NO_FATAL_FAILURE(expect_keys(0, 20));
    for (int i = 20; i < acked; i++) {
      auto v = store_->get(key(i));
      ASSERT_TRUE(v.is_ok()) << "acknowledged " << key(i) << " lost";
      EXPECT_EQ(*v, value(i) + std::string(200, 'f'));
    }
    EXPECT_TRUE(store_->put("after-reopen", "ok"));
    ASSERT_TRUE(store_->close());
  }
}

// ---------------------------------------------------------------- power cuts

TEST_F(FaultTest, DurabilityAlwaysKeepsEveryAcknowledgedWriteThroughPowerCut) {
  config_.durability = Durability::kAlways;
  config_.wal_segment_bytes = 4096;  // several segment rolls
  ASSERT_NO_FATAL_FAILURE(open());
  ASSERT_NO_FATAL_FAILURE(write_keys(0, 300));
  ASSERT_NO_FATAL_FAILURE(crash_and_reopen(*fs_, config_, store_));
  ASSERT_NO_FATAL_FAILURE(expect_keys(0, 300));
  EXPECT_TRUE(store_->status().recovery.clean()) << "nothing was torn: everything was fsynced";
  EXPECT_EQ(store_->status().recovery.wal_records_replayed, 300u);

  // And again with torn writes and more data on top.
  ASSERT_NO_FATAL_FAILURE(write_keys(300, 400));
  for (uint64_t seed = 1; seed <= 5; seed++) {
    ASSERT_NO_FATAL_FAILURE(crash_and_reopen(*fs_, config_, store_, seed));
    ASSERT_NO_FATAL_FAILURE(expect_keys(0, 400));
  }
}

TEST_F(FaultTest, DurabilityNoneLosesOnlyASuffixOfTheWrites) {
  config_.durability = Durability::kNone;
  config_.wal_segment_bytes = 4096;
  int lost_some = 0;
  for (uint64_t torn : {0, 1, 2, 3, 4, 5}) {
    SCOPED_TRACE("torn seed " + std::to_string(torn));
    fs_ = std::make_shared<testing::MemFileSystem>();
    config_.fs = fs_;
    ASSERT_NO_FATAL_FAILURE(open());
    constexpr int kN = 300;
    ASSERT_NO_FATAL_FAILURE(write_keys(0, kN));
    ASSERT_NO_FATAL_FAILURE(crash_and_reopen(*fs_, config_, store_, torn));
    int prefix = 0;
    ASSERT_NO_FATAL_FAILURE(expect_prefix(*store_, kN, &prefix));
    if (prefix < kN) lost_some++;
    // The store works after the cut, and what it writes now is durable on close.
    ASSERT_NO_FATAL_FAILURE(write_keys(prefix, kN));
    ASSERT_TRUE(store_->close());
    ASSERT_NO_FATAL_FAILURE(open());
    ASSERT_NO_FATAL_FAILURE(expect_keys(0, kN));
    EXPECT_TRUE(store_->status().recovery.clean());
  }
  EXPECT_GT(lost_some, 0) << "durability none never fsyncs on the write path, so a power cut "
                             "right after the writes loses the unsynced tail";
}

TEST_F(FaultTest, DurabilityIntervalSyncsWithinAFewIntervals) {
  config_.durability = Durability::kInterval;
  config_.sync_interval_ms = 20;
  ASSERT_NO_FATAL_FAILURE(open());
  ASSERT_NO_FATAL_FAILURE(write_keys(0, 200));
  std::this_thread::sleep_for(std::chrono::milliseconds(5 * 20));  // > 3 intervals
  auto s = store_->status();
  EXPECT_EQ(s.durable_lsn, s.last_lsn);
  ASSERT_NO_FATAL_FAILURE(crash_and_reopen(*fs_, config_, store_));
  ASSERT_NO_FATAL_FAILURE(expect_keys(0, 200));
}

// A torn power cut with durability none leaves garbage at the WAL tail: the
// store must open, report the damage, cut it off, and never append after it.
TEST_F(FaultTest, TornCrashReopensReportsDamageAndCutsIt) {
  config_.durability = Durability::kNone;
  int damaged = 0;
  for (uint64_t seed = 1; seed <= 30; seed++) {
    SCOPED_TRACE("torn seed " + std::to_string(seed));
    fs_ = std::make_shared<testing::MemFileSystem>();
    config_.fs = fs_;
    ASSERT_NO_FATAL_FAILURE(open());
    ASSERT_NO_FATAL_FAILURE(write_keys(0, 10));
    ASSERT_TRUE(store_->close());  // durable
    ASSERT_NO_FATAL_FAILURE(open());
    ASSERT_NO_FATAL_FAILURE(write_keys(10, 60));
    ASSERT_NO_FATAL_FAILURE(crash_and_reopen(*fs_, config_, store_, seed));

    auto r = store_->status().recovery;
    if (!r.wal_damage.empty()) {
      damaged++;
      EXPECT_GT(r.wal_bytes_cut, 0u) << r.wal_damage;
    } else {
      EXPECT_EQ(r.wal_bytes_cut, 0u);
    }
    int prefix = 0;
    ASSERT_NO_FATAL_FAILURE(expect_prefix(*store_, 60, &prefix));
    EXPECT_GE(prefix, 10) << "what was durable before the cut survives";
    EXPECT_EQ(store_->status().recovery.wal_records_replayed, static_cast<uint64_t>(prefix));

    // New writes go after the cut; a clean reopen then finds no damage.
    ASSERT_NO_FATAL_FAILURE(write_keys(prefix, 70));
    ASSERT_TRUE(store_->close());
    ASSERT_NO_FATAL_FAILURE(open());
    EXPECT_TRUE(store_->status().recovery.clean()) << store_->status().recovery.wal_damage;
    ASSERT_NO_FATAL_FAILURE(expect_keys(0, 70));
    ASSERT_TRUE(store_->close());
  }
  EXPECT_GT(damaged, 0) << "some seeds tear a record in half";
}

}  // namespace
}  // namespace wavekv
