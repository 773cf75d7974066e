// The clock step bound (docs/PROTOCOL.md, "Clock step bound"): a peer's
// version stamped far ahead, within the drift bound, moves this node's clock
// at most max_clock_step_ms per replicated batch; a later local write of the
// same key is still stamped after it, so it wins by LWW as the client expects.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "state/hlc.h"
#include "store/store_internal.h"
#include "support/store_harness.h"
#include "support/test_util.h"

namespace wavekv {
namespace {

using test::FakeClock;

constexpr uint64_t kNow = 1'750'000'000'000ull;
constexpr uint64_t kAheadMs = 295'000;  // within the default 5 min drift bound

uint64_t stamp_ms(ReplicatedStore& store, const std::string& key) {
  auto e = store.get_entry(key);
  return e ? timestamp_millis(e->meta.timestamp) : 0;
}

// A peer's push of `key`, stamped `ahead_ms` past the wall clock.
OpSetEntry pushed(const std::string& key, uint64_t ahead_ms) {
  return OpSetEntry{key,
                    Entry{"theirs", false, Meta{7, 1, timestamp_from_millis(kNow + ahead_ms), 77}}};
}

struct ClockStep : ::testing::TestWithParam<uint64_t> {};

TEST_P(ClockStep, APushStampedFarAheadMovesTheClockAtMostTheStep) {
  const uint64_t step = GetParam();
  auto fs = std::make_shared<testing::MemFileSystem>();
  auto clock = std::make_shared<FakeClock>(kNow);
  Config c = test::mem_config(fs, clock);
  c.max_clock_step_ms = step;
  auto opened = open_replicated(c);
  ASSERT_TRUE(opened) << opened.status().to_string();
  auto& store = **opened;
  ASSERT_TRUE(store.apply_ops({pushed("theirs", kAheadMs)}).is_ok());
  ASSERT_EQ(stamp_ms(store, "theirs"), kNow + kAheadMs) << "a received entry keeps its stamp";

  ASSERT_TRUE(store.put("other", "mine").is_ok());
  if (step == 0) {
    EXPECT_GE(stamp_ms(store, "other"), kNow + kAheadMs) << "unbounded: dragged along";
  } else {
    EXPECT_LE(stamp_ms(store, "other"), kNow + step) << "the clock moved at most the step";
    EXPECT_GE(stamp_ms(store, "other"), kNow);
  }
  // A write of the key held far ahead is still ordered after it.
  ASSERT_TRUE(store.put("theirs", "mine").is_ok());
  auto e = store.get_entry("theirs");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->value, "mine") << "the client's write won by LWW";
  EXPECT_EQ(e->meta.node, store.node_id());
  // And a delete of it too.
  ASSERT_TRUE(store.apply_ops({pushed("gone", kAheadMs)}).is_ok());
  ASSERT_TRUE(store.del("gone").is_ok());
  auto g = store.get_entry("gone");
  ASSERT_TRUE(g);
  EXPECT_TRUE(g->tombstone);
  ASSERT_TRUE(store.close().is_ok());
}

INSTANTIATE_TEST_SUITE_P(BoundAndUnbound, ClockStep, ::testing::Values(1000, 0));

// A peer's version far ahead and a client's write of the same key, committed
// in one group (one WAL record): the client's write is stamped after the
// peer's version although the state does not hold it yet, so it wins by LWW
// instead of being dropped as older after the client was told OK.
TEST(ClockStepGroup, AClientWriteAfterAPeersVersionInTheSameGroupIsStampedAfterIt) {
  auto fs = std::make_shared<testing::MemFileSystem>();
  auto clock = std::make_shared<FakeClock>(kNow);
  Config c = test::mem_config(fs, clock);
  c.max_clock_step_ms = 1000;
  auto opened = open_replicated(c);
  ASSERT_TRUE(opened) << opened.status().to_string();
  auto& store = **opened;
  // Hold the commit thread inside a watch callback while the two requests queue.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  store.watch("hold", [released](const WatchEvent&) { released.wait(); });
  store.write_async(
      [] {
        WriteBatch b;
        b.put("hold", "x");
        return b;
      }(),
      [](Status) {});
  ASSERT_TRUE(test::eventually([&] { return store.status().queued == 0; }, 30, 1));
  std::thread peer([&] { EXPECT_TRUE(store.apply_ops({pushed("k", kAheadMs)}).is_ok()); });
  ASSERT_TRUE(test::eventually([&] { return store.status().queued == 1; }, 30, 1));
  std::promise<Status> mine;
  store.write_async(
      [] {
        WriteBatch b;
        b.put("k", "mine");
        return b;
      }(),
      [&](Status st) { mine.set_value(st); });
  ASSERT_EQ(store.status().queued, 2u) << "the peer's version, then the client's write";
  release.set_value();
  peer.join();
  ASSERT_TRUE(mine.get_future().get().is_ok());
  auto e = store.get_entry("k");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->value, "mine") << "the acknowledged write was dropped as older than the peer's";
  EXPECT_EQ(e->meta.node, store.node_id());
  EXPECT_GT(timestamp_millis(e->meta.timestamp), kNow + 1000) << "past the clock's step";
  ASSERT_TRUE(store.close().is_ok());
}

TEST(HybridClock, ObserveBoundedStepsFromTheLaterOfClockAndWall) {
  HybridClock h;
  h.observe_bounded(timestamp_from_millis(kNow + kAheadMs), kNow, 1000);
  EXPECT_EQ(h.last(), timestamp_from_millis(kNow + 1000));
  h.observe_bounded(timestamp_from_millis(kNow + kAheadMs), kNow, 1000);
  EXPECT_EQ(h.last(), timestamp_from_millis(kNow + 2000)) << "per batch, not per process";
  h.observe_bounded(timestamp_from_millis(kNow + 10), kNow, 1000);
  EXPECT_EQ(h.last(), timestamp_from_millis(kNow + 2000)) << "never backwards";
  h.observe_bounded(timestamp_from_millis(kNow + kAheadMs), kNow, 0);
  EXPECT_EQ(h.last(), timestamp_from_millis(kNow + kAheadMs)) << "0: no bound";
}

}  // namespace
}  // namespace wavekv
