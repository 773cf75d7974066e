// Walking a mirrored directory, and `filesync check`: do some trees agree?
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "filesync/chunker.h"
#include "wavekv/status.h"

namespace wavekv::filesync {

// The regular files under `root`, as '/'-separated relative paths in sorted
// order. Symlinks and special files are skipped (not mirrored); so are
// filesync's temp files and, if it lies inside, `skip` (a data directory).
Result<std::vector<std::string>> list_files(const std::string& root, const std::string& skip = "");

struct FileSummary {
  uint32_t mode = 0;  // 07777 bits
  uint64_t size = 0;
  ChunkHash hash{};  // of the whole content
  bool operator==(const FileSummary&) const = default;
};
// Reads every file under `root` (see list_files).
Result<std::map<std::string, FileSummary>> summarize_tree(const std::string& root);

struct CheckReport {
  std::vector<std::string> dirs;
  std::vector<size_t> files;             // per dir
  std::vector<std::string> differences;  // one line each, readable
  bool agree() const { return differences.empty(); }
};
// Compares paths, bytes and modes of the regular files under each directory.
// Empty directories are not compared (filesync mirrors files; a directory
// exists where a file needs it).
Result<CheckReport> check_trees(const std::vector<std::string>& dirs);

}  // namespace wavekv::filesync
