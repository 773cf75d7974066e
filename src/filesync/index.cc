#include "filesync/index.h"

#include "util/coding.h"
#include "wavekv/store.h"

namespace wavekv::filesync {
namespace {

uint64_t ns(const struct timespec& t) {
  return static_cast<uint64_t>(t.tv_sec) * 1000000000ull + static_cast<uint64_t>(t.tv_nsec);
}

}  // namespace

std::string encode_index(const IndexRecord& r) {
  std::string out;
  put_u64(out, r.mtime_ns);
  put_u64(out, r.ctime_ns);
  put_u64(out, r.size);
  put_u64(out, r.ino);
  put_u32(out, r.mode);
  out.append(reinterpret_cast<const char*>(r.digest.data()), r.digest.size());
  return out;
}

std::optional<IndexRecord> decode_index(std::string_view b) {
  Decoder d(b);
  IndexRecord r;
  r.mtime_ns = d.u64();
  r.ctime_ns = d.u64();
  r.size = d.u64();
  r.ino = d.u64();
  r.mode = d.u32();
  std::string_view h = d.raw(16);
  if (d.failed() || !d.done() || h.size() != 16) return std::nullopt;
  for (size_t i = 0; i < 16; i++) r.digest[i] = static_cast<uint8_t>(h[i]);
  return r;
}

IndexRecord record_of(const struct stat& st) {
  IndexRecord r;
  r.mtime_ns = ns(st.st_mtim);
  r.ctime_ns = ns(st.st_ctim);
  r.size = static_cast<uint64_t>(st.st_size);
  r.ino = static_cast<uint64_t>(st.st_ino);
  r.mode = st.st_mode;
  return r;
}

Result<std::unique_ptr<LocalIndex>> LocalIndex::open(const std::string& dir, Logger log) {
  Config config;
  config.data_dir = dir;
  // The index only speeds up and disambiguates; losing its last writes to a
  // power cut costs a rehash, never data (the no-record rule applies).
  config.durability = Durability::kInterval;
  auto store = Store::open(config);
  if (!store) return Status(store.status());
  return std::unique_ptr<LocalIndex>(new LocalIndex(std::move(*store), std::move(log)));
}

LocalIndex::LocalIndex(std::unique_ptr<Store> store, Logger log)
    : store_(std::move(store)), log_(std::move(log)) {}

LocalIndex::~LocalIndex() = default;

std::optional<IndexRecord> LocalIndex::get(const std::string& rel) {
  auto v = store_->get(rel);
  if (!v) return std::nullopt;
  auto r = decode_index(*v);
  if (!r) log_(LogLevel::kWarn, "index record of " + rel + " is malformed; treating it as absent");
  return r;
}

void LocalIndex::put(const std::string& rel, const IndexRecord& r) {
  Status st = store_->put(rel, encode_index(r));
  if (!st.is_ok()) log_(LogLevel::kError, "index: " + st.to_string());
}

void LocalIndex::del(const std::string& rel) {
  Status st = store_->del(rel);
  if (!st.is_ok()) log_(LogLevel::kError, "index: " + st.to_string());
}

std::vector<std::string> LocalIndex::under(const std::string& dir_rel) {
  std::vector<std::string> out;
  for (auto& kv : store_->scan_prefix(dir_rel + "/", 0)) out.push_back(std::move(kv.key));
  return out;
}

std::vector<std::string> LocalIndex::all() {
  std::vector<std::string> out;
  for (auto& kv : store_->scan_prefix("", 0)) out.push_back(std::move(kv.key));
  return out;
}

Status LocalIndex::close() { return store_->close(); }

}  // namespace wavekv::filesync
