// Shared helpers for the store, fault and model tests: a fake clock, a store
// config on testing::MemFileSystem, and open / power-cut helpers that report failures
// through gtest.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "testing/mem_fs.h"
#include "wavekv/config.h"
#include "wavekv/store.h"

namespace wavekv::test {

// A wall clock the test moves by hand (forwards or backwards).
class FakeClock final : public Clock {
 public:
  explicit FakeClock(uint64_t ms = 1'750'000'000'000ull) : ms_(ms) {}
  uint64_t now_ms() override { return ms_.load(); }
  void set(uint64_t ms) { ms_.store(ms); }
  void advance(uint64_t ms) { ms_.fetch_add(ms); }

 private:
  std::atomic<uint64_t> ms_;
};

// A small store on `fs`: 64 KiB WAL segments, no preallocation (MemFS would
// materialize the preallocated bytes), no automatic checkpoints.
inline Config mem_config(const std::shared_ptr<testing::MemFileSystem>& fs,
                         const std::shared_ptr<Clock>& clock = nullptr) {
  Config c;
  c.data_dir = "/db";
  c.fs = fs;
  c.clock = clock;
  c.wal_segment_bytes = 64 * 1024;
  c.wal_preallocate = false;
  return c;
}

// Opens `c` into `out`, failing the test (fatally) if open fails.
inline void open_store(const Config& c, std::unique_ptr<Store>& out) {
  out.reset();
  auto s = Store::open(c);
  ASSERT_TRUE(s.is_ok()) << "Store::open(" << c.data_dir << "): " << s.status().to_string();
  out = std::move(s).value();
}

// Power cut: drops whatever `fs` never made durable (keeping a torn prefix of
// it if `torn_seed` != 0), then lets the old store object go and opens a new
// one. The old store is destroyed only after the cut, so its close() cannot
// make anything durable that the cut dropped.
inline void crash_and_reopen(testing::MemFileSystem& fs, const Config& c,
                             std::unique_ptr<Store>& store, uint64_t torn_seed = 0) {
  fs.crash(torn_seed);
  store.reset();
  fs.power_on();
  open_store(c, store);
}

// The value of `key`, or a description of the error (never undefined
// behaviour in a failing test).
inline std::string value_of(Store& s, std::string_view key) {
  auto v = s.get(key);
  return v.is_ok() ? *v : "<" + v.status().to_string() + ">";
}

// The meta of the current version of `key` (tombstones included); zeros if none.
inline Meta meta_of(Store& s, std::string_view key) {
  auto e = s.get_entry(key);
  return e.has_value() ? e->meta : Meta{};
}

// Every live key and value, in key order.
inline std::map<std::string, std::string> dump(Store& s) {
  std::map<std::string, std::string> out;
  for (auto& kv : s.scan_prefix("", 0)) out.emplace(std::move(kv.key), std::move(kv.value));
  return out;
}

// Printable form of a binary key for failure messages.
inline std::string printable(std::string_view s) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char ch : s) {
    if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
      out.push_back(static_cast<char>(ch));
    } else {
      out += "\\x";
      out.push_back(hex[ch >> 4]);
      out.push_back(hex[ch & 15]);
    }
  }
  return out;
}

// Names in `dir` that start with `prefix` and end with `suffix`.
inline std::vector<std::string> files_like(FileSystem& fs, const std::string& dir,
                                           const std::string& prefix, const std::string& suffix) {
  std::vector<std::string> out;
  auto names = fs.list_dir(dir);
  if (!names) return out;
  for (const auto& n : *names) {
    if (n.size() >= prefix.size() + suffix.size() && n.compare(0, prefix.size(), prefix) == 0 &&
        n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
      out.push_back(n);
  }
  return out;
}

}  // namespace wavekv::test
