// Background scrubbing (Config::scrub_interval_ms, Store::scrub): damage that
// appears in a running store's sealed WAL segments or snapshots is found,
// reported and repaired from memory before a restart would trip over it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/snapshot.h"
#include "store/wal.h"
#include "support/test_util.h"
#include "testing/mem_fs.h"
#include "wavekv/store.h"
#include "wavekv/tools.h"

namespace wavekv {
namespace {

const std::string kDir = "/db";

std::string key(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "key%04d", i);
  return buf;
}
std::string value(int i) { return "value-" + std::to_string(i) + std::string(300, 'x'); }

class ScrubTest : public ::testing::Test {
 protected:
  Config config() {
    Config c;
    c.data_dir = kDir;
    c.node_id = 7;
    c.fs = fs_;
    c.wal_segment_bytes = 4096;  // ~11 records a segment
    c.wal_preallocate = false;
    c.checkpoint_wal_bytes = 0;  // checkpoints only when a test asks
    c.scrub_interval_ms = 0;     // passes only when a test asks, unless it says otherwise
    return c;
  }
  std::unique_ptr<Store> open(const Config& c) {
    auto s = Store::open(c);
    EXPECT_TRUE(s) << s.status().to_string();
    return s ? std::move(s).value() : nullptr;
  }
  std::vector<std::string> names(const std::string& suffix) {
    std::vector<std::string> out;
    auto listed = fs_->list_dir(kDir);
    EXPECT_TRUE(listed);
    if (!listed) return out;
    for (const auto& n : *listed)
      if (n.ends_with(suffix)) out.push_back(n);
    std::sort(out.begin(), out.end());
    return out;
  }
  void flip(const std::string& name, uint64_t at) {
    std::string d = fs_->contents(kDir + "/" + name);
    ASSERT_LT(at, d.size()) << name;
    d[at] = static_cast<char>(d[at] ^ 0x20);
    fs_->set_contents(kDir + "/" + name, d);
  }
  void expect_all(Store& s, int n) {
    for (int i = 0; i < n; i++) {
      auto v = s.get(key(i));
      ASSERT_TRUE(v) << key(i) << ": " << v.status().to_string();
      EXPECT_EQ(*v, value(i));
    }
  }
  std::shared_ptr<testing::MemFileSystem> fs_ = std::make_shared<testing::MemFileSystem>();
};

TEST_F(ScrubTest, ACleanPassReadsEverySealedSegmentAndEverySnapshotAndFindsNothing) {
  auto s = open(config());
  ASSERT_TRUE(s);
  for (int i = 0; i < 30; i++) ASSERT_TRUE(s->put(key(i), value(i)));
  ASSERT_TRUE(s->checkpoint());
  for (int i = 30; i < 60; i++) ASSERT_TRUE(s->put(key(i), value(i)));
  const size_t segments = names(".log").size();
  ASSERT_GE(segments, 4u);
  auto pass = s->scrub();
  ASSERT_TRUE(pass) << pass.status().to_string();
  EXPECT_TRUE(pass->damage.empty()) << pass->damage.front();
  EXPECT_FALSE(pass->repaired);
  // Every segment but the one being written, and the snapshot.
  EXPECT_EQ(pass->files, segments - 1 + 1);
  StoreStatus st = s->status();
  EXPECT_EQ(st.scrub_passes, 1u);
  EXPECT_EQ(st.scrub_bytes, pass->bytes);
  EXPECT_EQ(st.scrub_damage, 0u);
  EXPECT_EQ(st.scrub_last_damage, "");
}

TEST_F(ScrubTest, ABitFlipInASealedSegmentIsFoundAndRepairedFromMemorySoTheRestartIsClean) {
  const int n = 60;
  {
    auto s = open(config());
    ASSERT_TRUE(s);
    for (int i = 0; i < n; i++) ASSERT_TRUE(s->put(key(i), value(i)));
    auto segs = names(".log");
    ASSERT_GE(segs.size(), 4u);
    const std::string victim = segs[1];
    flip(victim, kWalHeaderBytes + 100);  // in its first record, with intact ones after it

    auto pass = s->scrub();
    ASSERT_TRUE(pass) << pass.status().to_string();
    ASSERT_EQ(pass->damage.size(), 1u);
    EXPECT_NE(pass->damage[0].find(victim), std::string::npos) << pass->damage[0];
    EXPECT_TRUE(pass->repaired);
    StoreStatus st = s->status();
    EXPECT_EQ(st.scrub_damage, 1u);
    EXPECT_EQ(st.scrub_repairs, 1u);
    EXPECT_NE(st.scrub_last_damage.find(victim), std::string::npos);
    EXPECT_EQ(names(".damaged"), std::vector<std::string>{victim + ".damaged"})
        << "the damaged segment is set aside, not deleted";
    expect_all(*s, n);
    ASSERT_TRUE(s->put("after", "repair"));
    auto again = s->scrub();
    ASSERT_TRUE(again);
    EXPECT_TRUE(again->damage.empty()) << "the repair left damage behind";
    ASSERT_TRUE(s->close());
  }
  // Without the repair this open refuses (the damage has intact records after it).
  auto s = open(config());
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->status().recovery.clean()) << s->status().recovery.wal_damage;
  expect_all(*s, n);
  EXPECT_TRUE(s->get("after"));
}

TEST_F(ScrubTest, ADamagedNewestSnapshotIsRewrittenEvenWithNoWriteSinceIt) {
  const int n = 30;
  {
    auto s = open(config());
    ASSERT_TRUE(s);
    for (int i = 0; i < n; i++) ASSERT_TRUE(s->put(key(i), value(i)));
    ASSERT_TRUE(s->checkpoint());
    for (int i = 0; i < n; i++) ASSERT_TRUE(s->put(key(i), value(i)));
    ASSERT_TRUE(s->checkpoint());  // the WAL before the first snapshot is gone now
    auto snaps = names(".snap");
    ASSERT_EQ(snaps.size(), 2u);
    flip(snaps.back(), 60);
    auto pass = s->scrub();
    ASSERT_TRUE(pass) << pass.status().to_string();
    ASSERT_EQ(pass->damage.size(), 1u);
    EXPECT_NE(pass->damage[0].find(snaps.back()), std::string::npos) << pass->damage[0];
    EXPECT_TRUE(pass->repaired);
    EXPECT_EQ(names(".snap"), std::vector<std::string>{snaps.back()})
        << "rewritten at the same LSN; the fallback is no longer needed";
    EXPECT_TRUE(verify_snapshot(*fs_, kDir + "/" + snaps.back()));
    ASSERT_TRUE(s->close());
  }
  auto s = open(config());
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->status().recovery.clean());
  EXPECT_TRUE(s->status().recovery.snapshots_skipped.empty());
  expect_all(*s, n);
}

TEST_F(ScrubTest, TheScheduleFindsDamageOnItsOwnAndSaysSoThroughOnDamage) {
  Config c = config();
  c.scrub_interval_ms = 20;
  c.scrub_bytes_per_sec = 0;
  std::mutex mu;
  std::vector<std::string> heard;
  c.on_damage = [&](const std::string& what) {
    std::lock_guard lock(mu);
    heard.push_back(what);
  };
  auto s = open(c);
  ASSERT_TRUE(s);
  for (int i = 0; i < 40; i++) ASSERT_TRUE(s->put(key(i), value(i)));
  ASSERT_TRUE(test::eventually([&] { return s->status().scrub_passes >= 1; }, 30, 5));
  EXPECT_EQ(s->status().scrub_damage, 0u);
  const std::string victim = names(".log")[1];
  flip(victim, kWalHeaderBytes + 100);
  ASSERT_TRUE(test::eventually([&] { return s->status().scrub_repairs == 1; }, 30, 5));
  std::lock_guard lock(mu);
  ASSERT_EQ(heard.size(), 1u);
  EXPECT_NE(heard[0].find(victim), std::string::npos) << heard[0];
  EXPECT_NE(heard[0].find("repaired from memory"), std::string::npos) << heard[0];
  expect_all(*s, 40);
}

}  // namespace
}  // namespace wavekv
