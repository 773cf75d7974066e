// The local index: per mirrored file, what filesync last knew of it, kept in
// a small store of its own (<data_dir>/index) so the decision rule is right
// after a restart too. It only speeds up and disambiguates: losing it costs a
// rehash and the no-record rule, never data.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "filesync/chunker.h"
#include "filesync/log.h"
#include "wavekv/status.h"

namespace wavekv {
class Store;
}

namespace wavekv::filesync {

// What the index remembers of a file: its stat when filesync last wrote or
// read it, and the manifest that was. 52 bytes, little-endian.
struct IndexRecord {
  uint64_t mtime_ns = 0;
  uint64_t ctime_ns = 0;
  uint64_t size = 0;
  uint64_t ino = 0;
  uint32_t mode = 0;  // full st_mode
  ChunkHash digest{};

  bool same_stat(const IndexRecord& o) const {
    return mtime_ns == o.mtime_ns && ctime_ns == o.ctime_ns && size == o.size && ino == o.ino &&
           mode == o.mode;
  }
};

std::string encode_index(const IndexRecord& r);
std::optional<IndexRecord> decode_index(std::string_view bytes);
// The stat fields of a record (digest unset).
IndexRecord record_of(const struct stat& st);

class LocalIndex {
 public:
  // Opens (or creates) the index store in `dir`.
  static Result<std::unique_ptr<LocalIndex>> open(const std::string& dir, Logger log);
  ~LocalIndex();

  // A malformed record is logged and treated as absent.
  std::optional<IndexRecord> get(const std::string& rel);
  // Failures are logged: a lost record only costs a rehash.
  void put(const std::string& rel, const IndexRecord& r);
  void del(const std::string& rel);
  // Every path the index knows under the directory `dir_rel`.
  std::vector<std::string> under(const std::string& dir_rel);
  std::vector<std::string> all();
  Status close();

 private:
  LocalIndex(std::unique_ptr<Store> store, Logger log);
  std::unique_ptr<Store> store_;
  Logger log_;
};

}  // namespace wavekv::filesync
