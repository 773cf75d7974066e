// include/wavekv/tools.h on real temporary directories: check reads and
// changes nothing, repair cuts exactly what recovery would, repair_timestamps
// rewrites only the keys stamped too far ahead (and nothing on a dry run).
#include "wavekv/tools.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "support/store_harness.h"
#include "wavekv/store.h"

namespace wavekv {
namespace {

constexpr uint64_t kHourMs = 3600 * 1000;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class Tools : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "wavekv-tools-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    config_.data_dir = root_ + "/db";
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // Writes `kvs` in one session of the store, with `clock` (null: the system's).
  void write(std::initializer_list<std::pair<const char*, const char*>> kvs,
             std::shared_ptr<Clock> clock = nullptr) {
    Config c = config_;
    c.clock = std::move(clock);
    std::unique_ptr<Store> s;
    ASSERT_NO_FATAL_FAILURE(test::open_store(c, s));
    for (const auto& [k, v] : kvs) ASSERT_TRUE(s->put(k, v).is_ok());
    ASSERT_TRUE(s->close().is_ok());
  }

  Meta meta_of(const std::string& key) {
    std::unique_ptr<Store> s;
    test::open_store(config_, s);
    return s ? test::meta_of(*s, key) : Meta{};
  }

  // The one WAL segment's path.
  std::string wal_path() const {
    for (auto& e : std::filesystem::directory_iterator(config_.data_dir))
      if (e.path().extension() == ".log") return e.path();
    return {};
  }

  // Writes garbage right after the last record, inside the preallocated
  // zeros (a torn append); returns the offset where the good records end.
  uint64_t tear_wal_tail() {
    std::string path = wal_path();
    FILE* f = std::fopen(path.c_str(), "r+b");
    EXPECT_NE(f, nullptr) << path;
    if (f == nullptr) return 0;
    // Walk the record lengths (docs/FORMAT.md) to the end of the records.
    std::string data(4096, '\0');
    EXPECT_EQ(std::fread(data.data(), 1, data.size(), f), data.size());
    size_t end = 40;
    for (uint32_t len; std::memcpy(&len, data.data() + end, 4), len != 0;) end += 8 + len;
    std::fseek(f, static_cast<long>(end), SEEK_SET);
    std::fputs("\x05garbage", f);
    std::fclose(f);
    return end;
  }

  std::string root_;
  Config config_;
};

TEST_F(Tools, HealthyDirectoryChecksCleanAndRepairChangesNothing) {
  write({{"a", "1"}, {"b", "2"}});
  auto r = check_data_dir(config_);
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_FALSE(r->refused);
  EXPECT_FALSE(r->damaged());
  EXPECT_TRUE(r->identity_exists);
  EXPECT_NE(r->node, 0u);
  EXPECT_EQ(r->live_keys, 2u);
  EXPECT_EQ(r->tombstones, 0u);
  EXPECT_EQ(r->recovery.wal_records_replayed, 2u);
  EXPECT_EQ(r->last_lsn, 2u);
  EXPECT_EQ(r->wal_segments, 1u);
  EXPECT_TRUE(r->damaged_segment.empty());

  auto fixed = repair_data_dir(config_);
  ASSERT_TRUE(fixed) << fixed.status().to_string();
  EXPECT_FALSE(fixed->repaired);
  EXPECT_EQ(fixed->found.live_keys, 2u);
}

TEST_F(Tools, MissingDirectoryIsNotFoundAndNotCreated) {
  EXPECT_EQ(check_data_dir(config_).status().code(), Code::kNotFound);
  EXPECT_EQ(repair_data_dir(config_).status().code(), Code::kNotFound);
  EXPECT_EQ(repair_timestamps(config_).status().code(), Code::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(config_.data_dir));
}

TEST_F(Tools, OpenStoreMakesThemBusy) {
  write({{"a", "1"}});
  std::unique_ptr<Store> held;
  ASSERT_NO_FATAL_FAILURE(test::open_store(config_, held));
  EXPECT_EQ(check_data_dir(config_).status().code(), Code::kBusy);
  EXPECT_EQ(repair_data_dir(config_).status().code(), Code::kBusy);
  EXPECT_EQ(repair_timestamps(config_).status().code(), Code::kBusy);
}

TEST_F(Tools, TornWalTailIsReportedRepairableThenCut) {
  write({{"a", "1"}, {"b", "2"}});
  const uint64_t good_bytes = tear_wal_tail();
  const std::string torn = slurp(wal_path());

  auto r = check_data_dir(config_);
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_FALSE(r->refused);
  EXPECT_TRUE(r->damaged());
  EXPECT_FALSE(r->recovery.wal_damage.empty());
  EXPECT_GT(r->recovery.wal_bytes_cut, 0u);
  EXPECT_EQ(r->damaged_segment, wal_path());
  EXPECT_EQ(r->damage_offset, good_bytes);
  EXPECT_EQ(r->live_keys, 2u) << "everything before the damage is kept";
  EXPECT_EQ(slurp(wal_path()), torn) << "check must not change the WAL";

  auto fixed = repair_data_dir(config_);
  ASSERT_TRUE(fixed) << fixed.status().to_string();
  EXPECT_TRUE(fixed->repaired);
  EXPECT_EQ(fixed->found.damage_offset, good_bytes);
  EXPECT_EQ(std::filesystem::file_size(wal_path()), good_bytes) << "cut at the damage";

  auto after = check_data_dir(config_);
  ASSERT_TRUE(after) << after.status().to_string();
  EXPECT_FALSE(after->damaged());
  std::unique_ptr<Store> s;
  ASSERT_NO_FATAL_FAILURE(test::open_store(config_, s));
  EXPECT_EQ(test::value_of(*s, "b"), "2");
}

TEST_F(Tools, UnopenableDirectoryIsAReportNotAnError) {
  write({{"a", "1"}});
  const std::string id_path = config_.data_dir + "/IDENTITY";
  std::ofstream(id_path, std::ios::trunc) << "not an identity\n";
  auto r = check_data_dir(config_);
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_TRUE(r->refused);
  EXPECT_EQ(r->refusal.code(), Code::kCorruption) << r->refusal.to_string();
  auto fixed = repair_data_dir(config_);
  ASSERT_TRUE(fixed) << fixed.status().to_string();
  EXPECT_TRUE(fixed->found.refused);
  EXPECT_FALSE(fixed->repaired);
  EXPECT_EQ(slurp(id_path), "not an identity\n") << "a refused directory is left as it is";
}

TEST_F(Tools, RepairTimestampsRewritesOnlyTheKeyStampedAhead) {
  write({{"sane", "s"}});
  const uint64_t now = system_clock()->now_ms();
  write({{"poisoned", "p"}}, std::make_shared<test::FakeClock>(now + kHourMs));
  const Meta sane = meta_of("sane");
  const Meta poisoned = meta_of("poisoned");
  ASSERT_GT(timestamp_millis(poisoned.timestamp), now + kHourMs / 2);

  TimestampRepairOptions dry;
  dry.dry_run = true;
  auto listed = repair_timestamps(config_, dry);
  ASSERT_TRUE(listed) << listed.status().to_string();
  EXPECT_TRUE(listed->dry_run);
  ASSERT_EQ(listed->keys.size(), 1u);
  EXPECT_EQ(listed->keys[0].key, "poisoned");
  EXPECT_FALSE(listed->keys[0].tombstone);
  EXPECT_EQ(listed->keys[0].found, poisoned);
  EXPECT_GT(listed->keys[0].ahead_ms, kHourMs / 2);
  EXPECT_EQ(listed->keys[0].rewritten_as, Meta{});
  EXPECT_EQ(meta_of("poisoned"), poisoned) << "a dry run changes nothing";

  TimestampRepairOptions only_sane;
  only_sane.key = "sane";
  auto none = repair_timestamps(config_, only_sane);
  ASSERT_TRUE(none) << none.status().to_string();
  EXPECT_TRUE(none->keys.empty()) << "the key filter leaves the poisoned key alone";
  EXPECT_EQ(meta_of("poisoned"), poisoned);

  auto done = repair_timestamps(config_);
  ASSERT_TRUE(done) << done.status().to_string();
  ASSERT_EQ(done->keys.size(), 1u);
  EXPECT_EQ(done->keys[0].key, "poisoned");
  const Meta rewritten = done->keys[0].rewritten_as;
  EXPECT_NE(rewritten.seq, 0u);
  EXPECT_EQ(meta_of("poisoned"), rewritten);
  EXPECT_LE(timestamp_millis(rewritten.timestamp), system_clock()->now_ms() + 1000);
  EXPECT_EQ(meta_of("sane"), sane) << "only the key stamped ahead is rewritten";
  std::unique_ptr<Store> s;
  ASSERT_NO_FATAL_FAILURE(test::open_store(config_, s));
  EXPECT_EQ(test::value_of(*s, "poisoned"), "p");
}

}  // namespace
}  // namespace wavekv
