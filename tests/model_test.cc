// Reference-model test: random operations run against the store and against a
// std::map, with checkpoints, clean reopens and power cuts thrown in. With
// durability `always` the store must equal the model after every cut; with
// `none` it must equal the model as of some prefix of the acknowledged writes.
//
// Each seed is independent. To rerun one:
//   WAVEKV_SEED=<s> build/tests/wavekv_tests --gtest_filter='Model.*'
// To soak with more seeds: WAVEKV_MODEL_SEEDS=<n>.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "support/store_harness.h"

namespace wavekv {
namespace {

using test::dump;
using test::FakeClock;
using test::mem_config;
using test::open_store;
using test::printable;

using Map = std::map<std::string, std::string>;

#if defined(__SANITIZE_ADDRESS__)
constexpr uint64_t kSeeds = 20;  // sanitizers find memory errors, not rarer seeds
#else
constexpr uint64_t kSeeds = 40;
#endif
constexpr int kSteps = 300;

std::vector<uint64_t> seeds_to_run() {
  if (const char* env = std::getenv("WAVEKV_SEED"); env != nullptr && *env != '\0')
    return {std::strtoull(env, nullptr, 10)};
  uint64_t n = kSeeds;
  if (const char* env = std::getenv("WAVEKV_MODEL_SEEDS"); env != nullptr && *env != '\0')
    n = std::strtoull(env, nullptr, 10);
  std::vector<uint64_t> out;
  for (uint64_t s = 1; s <= n; s++) out.push_back(s);
  return out;
}

// 20 keys, some binary, so that overwrites and deletes of a key are frequent.
std::vector<std::string> key_space() {
  std::vector<std::string> keys;
  for (int i = 0; i < 16; i++) keys.push_back("key/" + std::to_string(i));
  keys.push_back(std::string("nul\0key", 7));
  keys.push_back("\xff");
  keys.push_back("\xff\xff-ff");
  keys.push_back("");  // the empty key
  return keys;
}

std::string describe(const Map& m) {
  std::string out = "{";
  for (const auto& [k, v] : m) out += printable(k) + "=" + printable(v.substr(0, 12)) + " ";
  return out + "}";
}

class ModelRun {
 public:
  ModelRun(uint64_t seed, Durability durability)
      : seed_(seed),
        rng_(seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(durability)),
        keys_(key_space()) {
    fs_ = std::make_shared<testing::MemFileSystem>();
    clock_ = std::make_shared<FakeClock>(1'700'000'000'000ull + seed * 1000);
    config_ = mem_config(fs_, clock_);
    config_.durability = durability;
    config_.wal_segment_bytes = 4096;  // the minimum: segments roll often
    config_.checkpoint_ops = 15 + rng_() % 30;
    config_.wal_preallocate = (seed % 3 == 0);
  }

  void run() {
    ASSERT_NO_FATAL_FAILURE(open_store(config_, store_));
    next_seq_ = store_->status().next_seq;
    mark_durable();
    for (step_ = 0; step_ < kSteps; step_++) {
      SCOPED_TRACE("step " + std::to_string(step_));
      ASSERT_NO_FATAL_FAILURE(one_step());
    }
    ASSERT_NO_FATAL_FAILURE(check_equal(model_, "at the end"));
    ASSERT_TRUE(store_->close());
    ASSERT_NO_FATAL_FAILURE(open_store(config_, store_));
    ASSERT_NO_FATAL_FAILURE(check_equal(model_, "after the final reopen"));
  }

 private:
  std::string pick_key() { return keys_[rng_() % keys_.size()]; }
  std::string make_value() {
    switch (rng_() % 8) {
      case 0: return "";
      case 1: return std::string("v\0\xff", 3) + std::to_string(step_);
      case 2: return std::string(100 + rng_() % 900, static_cast<char>('a' + rng_() % 26));
      default: return "v" + std::to_string(step_) + "." + std::to_string(rng_() % 1000);
    }
  }

  // The state after each acknowledged write, so that a `none` power cut can be
  // matched against a prefix.
  void record_write(size_t items) {
    next_seq_ += items;
    history_.push_back(model_);
  }
  // Everything acknowledged so far is durable (close, checkpoint, clean reopen).
  void mark_durable() {
    history_.clear();
    history_.push_back(model_);
  }

  void one_step() {
    if (rng_() % 8 == 0) clock_->advance(rng_() % 50);
    const uint64_t dice = rng_() % 100;
    if (dice < 35) {
      std::string k = pick_key(), v = make_value();
      Status st = store_->put(k, v);
      ASSERT_TRUE(st.is_ok()) << "put " << printable(k) << ": " << st.to_string();
      model_[k] = v;
      record_write(1);
    } else if (dice < 50) {
      std::string k = pick_key();
      Status st = store_->del(k);
      ASSERT_TRUE(st.is_ok()) << "del " << printable(k) << ": " << st.to_string();
      model_.erase(k);
      record_write(1);
    } else if (dice < 60) {
      WriteBatch b;
      Map next = model_;
      const size_t n = 1 + rng_() % 5;
      for (size_t i = 0; i < n; i++) {
        std::string k = pick_key();
        if (rng_() % 3 == 0) {
          b.del(k);
          next.erase(k);
        } else {
          std::string v = make_value();
          b.put(k, v);
          next[k] = v;
        }
      }
      Status st = store_->write(b);
      ASSERT_TRUE(st.is_ok()) << "batch: " << st.to_string();
      model_ = std::move(next);
      record_write(n);
    } else if (dice < 77) {
      std::string k = pick_key();
      auto got = store_->get(k);
      auto it = model_.find(k);
      if (it == model_.end()) {
        EXPECT_EQ(got.status().code(), Code::kNotFound) << "get " << printable(k);
      } else {
        ASSERT_TRUE(got.is_ok()) << "get " << printable(k) << ": " << got.status().to_string();
        EXPECT_EQ(*got, it->second) << "get " << printable(k);
      }
    } else if (dice < 90) {
      ASSERT_NO_FATAL_FAILURE(check_scans());
    } else if (dice < 93) {
      Status st = store_->checkpoint();
      ASSERT_TRUE(st.is_ok()) << "checkpoint: " << st.to_string();
      mark_durable();
    } else if (dice < 95) {
      ASSERT_TRUE(store_->close());
      ASSERT_NO_FATAL_FAILURE(open_store(config_, store_));
      mark_durable();
      ASSERT_NO_FATAL_FAILURE(check_equal(model_, "after a clean reopen"));
      EXPECT_TRUE(store_->status().recovery.clean()) << store_->status().recovery.wal_damage;
    } else {
      ASSERT_NO_FATAL_FAILURE(power_cut());
    }
  }

  void check_scans() {
    std::string prefix;
    if (rng_() % 2 == 0) {
      prefix = pick_key();
      prefix.resize(rng_() % (prefix.size() + 1));
    }
    size_t limit = rng_() % 4 == 0 ? 0 : rng_() % 8;
    std::vector<std::pair<std::string, std::string>> want;
    for (auto it = model_.lower_bound(prefix);
         it != model_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      if (limit != 0 && want.size() == limit) break;
      want.emplace_back(*it);
    }
    std::vector<std::pair<std::string, std::string>> got;
    for (auto& kv : store_->scan_prefix(prefix, limit)) got.emplace_back(kv.key, kv.value);
    EXPECT_EQ(got, want) << "scan_prefix '" << printable(prefix) << "' limit " << limit;

    std::string a = pick_key(), b = rng_() % 4 == 0 ? std::string() : pick_key();
    if (!b.empty() && b < a) std::swap(a, b);
    want.clear();
    for (auto it = model_.lower_bound(a); it != model_.end() && (b.empty() || it->first < b);
         ++it) {
      if (limit != 0 && want.size() == limit) break;
      want.emplace_back(*it);
    }
    got.clear();
    for (auto& kv : store_->scan_range(a, b, limit)) got.emplace_back(kv.key, kv.value);
    EXPECT_EQ(got, want) << "scan_range ['" << printable(a) << "', '" << printable(b) << "') limit "
                         << limit;
  }

  void power_cut() {
    // Sometimes torn, sometimes clean; the wall clock may also jump back.
    const uint64_t torn = rng_() % 2 == 0 ? 0 : seed_ * 1000 + step_;
    if (rng_() % 3 == 0) clock_->set(clock_->now_ms() - rng_() % 10'000);
    const uint64_t incarnation_before = store_->status().incarnation;
    fs_->crash(torn);
    store_.reset();
    fs_->power_on();
    ASSERT_NO_FATAL_FAILURE(open_store(config_, store_));
    const auto status = store_->status();
    if (config_.durability == Durability::kAlways) {
      ASSERT_NO_FATAL_FAILURE(check_equal(model_, "after a power cut (always)"));
      EXPECT_EQ(status.next_seq, next_seq_) << "every acknowledged seq survived, none more";
      EXPECT_TRUE(status.recovery.wal_damage.empty())
          << "with always, a cut finds no torn record: " << status.recovery.wal_damage;
    } else {
      // Some prefix of the acknowledged writes survived.
      const Map got = dump(*store_);
      auto it = std::find(history_.begin(), history_.end(), got);
      ASSERT_NE(it, history_.end()) << "after a power cut (none): the store is no prefix of the "
                                    << history_.size() << " states since the last durable point"
                                    << "\n  store: " << describe(got);
      model_ = *it;
      // docs/PROTOCOL.md, "Incarnations": writes of the old stream may be lost
      // here but not at peers that got them, so the store continues in a new
      // stream, from seq 1.
      EXPECT_NE(status.incarnation, incarnation_before);
      EXPECT_FALSE(status.recovery.new_incarnation.empty());
      EXPECT_EQ(status.next_seq, 1u);
      next_seq_ = status.next_seq;
    }
    mark_durable();
    // The clock and seqs continue after the cut.
    ASSERT_TRUE(store_->put("seq-probe", "x"));
    model_["seq-probe"] = "x";
    auto e = store_->get_entry("seq-probe");
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->meta.seq, next_seq_);
    EXPECT_GT(e->meta.timestamp, status.clock);
    record_write(1);
  }

  void check_equal(const Map& want, const char* when) {
    Map got = dump(*store_);
    ASSERT_EQ(got, want) << when << "\n  store: " << describe(got)
                         << "\n  model: " << describe(want);
    EXPECT_EQ(store_->status().live_keys, want.size()) << when;
  }

  const uint64_t seed_;
  std::mt19937_64 rng_;
  const std::vector<std::string> keys_;
  std::shared_ptr<testing::MemFileSystem> fs_;
  std::shared_ptr<FakeClock> clock_;
  Config config_;
  std::unique_ptr<Store> store_;
  Map model_;                 // every acknowledged write applied
  std::vector<Map> history_;  // the model after each write since the last durable point
  uint64_t next_seq_ = 0;     // the model's next seq
  int step_ = 0;
};

void run_seeds(Durability d) {
  for (uint64_t seed : seeds_to_run()) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " (durability " + durability_name(d) +
                 "); repro: WAVEKV_SEED=" + std::to_string(seed) +
                 " wavekv_tests --gtest_filter='Model.*'");
    ModelRun run(seed, d);
    run.run();
    if (::testing::Test::HasFatalFailure()) return;  // one failing seed is enough to read
  }
}

TEST(Model, DurabilityAlwaysStoreEqualsModelThroughCrashes) { run_seeds(Durability::kAlways); }

TEST(Model, DurabilityNoneStoreEqualsAPrefixOfTheModelAfterCrashes) {
  run_seeds(Durability::kNone);
}

}  // namespace
}  // namespace wavekv
