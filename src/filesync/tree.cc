#include "filesync/tree.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "filesync/manifest.h"

namespace wavekv::filesync {
namespace fs = std::filesystem;

Result<std::vector<std::string>> list_files(const std::string& root, const std::string& skip) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::path base = fs::path(root);
  fs::path skip_path = skip.empty() ? fs::path() : fs::weakly_canonical(skip, ec);
  fs::recursive_directory_iterator it(base, fs::directory_options::skip_permission_denied, ec);
  if (ec) return Status::io_error("cannot read " + root + ": " + ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return Status::io_error("walking " + root + ": " + ec.message());
    const auto& entry = *it;
    std::string name = entry.path().filename().string();
    if (is_temp_name(name)) {
      if (entry.is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    auto st = entry.symlink_status(ec);
    if (ec) continue;  // vanished while we walked
    if (fs::is_directory(st)) {
      if (!skip_path.empty() && fs::equivalent(entry.path(), skip_path, ec))
        it.disable_recursion_pending();
      continue;
    }
    if (!fs::is_regular_file(st)) continue;
    std::string rel = entry.path().lexically_relative(base).generic_string();
    if (valid_path(rel)) out.push_back(std::move(rel));
  }
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

Result<FileSummary> summarize_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return Status::not_found(path + " was deleted while we read the tree");
    return Status::io_error("open " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return Status::io_error("stat " + path + ": " + std::strerror(errno));
  }
  XXH3_state_t* state = XXH3_createState();
  XXH3_128bits_reset(state);
  char buf[1 << 16];
  uint64_t size = 0;
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      XXH3_freeState(state);
      ::close(fd);
      return Status::io_error("read " + path + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    XXH3_128bits_update(state, buf, static_cast<size_t>(n));
    size += static_cast<uint64_t>(n);
  }
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, XXH3_128bits_digest(state));
  XXH3_freeState(state);
  ::close(fd);
  FileSummary s;
  s.mode = st.st_mode & 07777;
  s.size = size;
  for (size_t i = 0; i < 16; i++) s.hash[i] = c.digest[i];
  return s;
}

std::string octal(uint32_t mode) {
  char b[8];
  std::snprintf(b, sizeof b, "%04o", mode);
  return b;
}

}  // namespace

Result<std::map<std::string, FileSummary>> summarize_tree(const std::string& root) {
  auto files = list_files(root);
  if (!files) return files.status();
  std::map<std::string, FileSummary> out;
  for (const auto& rel : *files) {
    auto s = summarize_file(root + "/" + rel);
    if (!s) {
      if (s.status().code() == Code::kNotFound) continue;  // deleted meanwhile
      return s.status();
    }
    out.emplace(rel, *s);
  }
  return out;
}

Result<CheckReport> check_trees(const std::vector<std::string>& dirs) {
  if (dirs.size() < 2) return Status::invalid("check needs at least two directories");
  CheckReport report;
  report.dirs = dirs;
  std::vector<std::map<std::string, FileSummary>> trees;
  for (const auto& d : dirs) {
    std::error_code ec;
    if (!fs::is_directory(d, ec)) return Status::invalid(d + " is not a directory");
    auto t = summarize_tree(d);
    if (!t) return t.status();
    report.files.push_back(t->size());
    trees.push_back(std::move(*t));
  }
  std::set<std::string> all;
  for (const auto& t : trees)
    for (const auto& [path, _] : t) all.insert(path);
  for (const auto& path : all) {
    // Compare every tree with the first one that has the file.
    const FileSummary* ref = nullptr;
    size_t ref_i = 0;
    for (size_t i = 0; i < trees.size(); i++) {
      auto it = trees[i].find(path);
      if (it == trees[i].end()) {
        report.differences.push_back("missing in " + dirs[i] + ": " + path);
        continue;
      }
      if (ref == nullptr) {
        ref = &it->second;
        ref_i = i;
        continue;
      }
      const FileSummary& s = it->second;
      if (s.size != ref->size || s.hash != ref->hash)
        report.differences.push_back("content differs: " + path + " (" + std::to_string(ref->size) +
                                     " bytes in " + dirs[ref_i] + ", " + std::to_string(s.size) +
                                     " in " + dirs[i] + ")");
      else if (s.mode != ref->mode)
        report.differences.push_back("mode differs: " + path + " (" + octal(ref->mode) + " in " +
                                     dirs[ref_i] + ", " + octal(s.mode) + " in " + dirs[i] + ")");
    }
  }
  return report;
}

}  // namespace wavekv::filesync
