#include "testing/mem_fs.h"

#include <algorithm>

namespace wavekv::testing {
namespace {

std::string parent_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

std::string normalize_dir(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

uint64_t splitmix(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

class MemWritable final : public WritableFile {
 public:
  MemWritable(std::shared_ptr<MemFileSystem> fs, std::shared_ptr<MemFileSystem::Node> node,
              std::string path)
      : fs_(std::move(fs)), node_(std::move(node)), path_(std::move(path)) {}

  Status write_at(uint64_t offset, std::string_view data) override {
    std::lock_guard lock(fs_->mu_);
    WAVEKV_RETURN_IF_ERROR(fs_->check_power());
    uint64_t end = std::max<uint64_t>(node_->data.size(), offset + data.size());
    WAVEKV_RETURN_IF_ERROR(fs_->before_write(fs_->total_bytes_locked() - node_->data.size() + end));
    if (node_->data.size() < end) node_->data.resize(end, '\0');
    node_->data.replace(offset, data.size(), data);
    return Status::ok();
  }
  Status sync() override {
    std::lock_guard lock(fs_->mu_);
    WAVEKV_RETURN_IF_ERROR(fs_->check_power());
    WAVEKV_RETURN_IF_ERROR(fs_->before_sync());
    node_->synced = node_->data;
    return Status::ok();
  }
  Status preallocate(uint64_t bytes) override {
    std::lock_guard lock(fs_->mu_);
    WAVEKV_RETURN_IF_ERROR(fs_->check_power());
    if (node_->data.size() >= bytes) return Status::ok();
    if (fs_->total_bytes_locked() - node_->data.size() + bytes > fs_->space_limit_)
      return Status::io_error("fallocate " + path_ + ": No space left on device");
    node_->data.resize(bytes, '\0');
    return Status::ok();
  }
  Status truncate(uint64_t bytes) override {
    std::lock_guard lock(fs_->mu_);
    WAVEKV_RETURN_IF_ERROR(fs_->check_power());
    node_->data.resize(bytes, '\0');
    return Status::ok();
  }
  Status close() override { return Status::ok(); }

 private:
  std::shared_ptr<MemFileSystem> fs_;
  std::shared_ptr<MemFileSystem::Node> node_;
  std::string path_;
};

class MemReadable final : public ReadableFile {
 public:
  MemReadable(std::shared_ptr<MemFileSystem> fs, std::shared_ptr<MemFileSystem::Node> node)
      : fs_(std::move(fs)), node_(std::move(node)) {}
  Result<size_t> read_at(uint64_t offset, size_t n, char* buf) override {
    std::lock_guard lock(fs_->mu_);
    if (offset >= node_->data.size()) return size_t{0};
    size_t k = std::min<uint64_t>(n, node_->data.size() - offset);
    std::copy_n(node_->data.data() + offset, k, buf);
    return k;
  }
  Result<uint64_t> size() override {
    std::lock_guard lock(fs_->mu_);
    return static_cast<uint64_t>(node_->data.size());
  }

 private:
  std::shared_ptr<MemFileSystem> fs_;
  std::shared_ptr<MemFileSystem::Node> node_;
};

class MemLock final : public FileLock {
 public:
  MemLock(std::shared_ptr<MemFileSystem> fs, std::string path)
      : fs_(std::move(fs)), path_(std::move(path)) {}
  ~MemLock() override {
    std::lock_guard lock(fs_->mu_);
    fs_->locks_.erase(path_);
  }

 private:
  std::shared_ptr<MemFileSystem> fs_;
  std::string path_;
};

Status MemFileSystem::before_write(uint64_t new_total_bytes) {
  writes_++;
  if (fail_write_at_ != 0 && writes_ == fail_write_at_) {
    fail_write_at_ = 0;
    return Status::io_error("injected write failure");
  }
  if (new_total_bytes > space_limit_) return Status::io_error("write: No space left on device");
  return Status::ok();
}

Status MemFileSystem::before_sync() {
  syncs_++;
  if (fail_sync_at_ != 0 && syncs_ == fail_sync_at_) {
    fail_sync_at_ = 0;
    return Status::io_error("injected fsync failure");
  }
  return Status::ok();
}

uint64_t MemFileSystem::total_bytes_locked() const {
  uint64_t total = 0;
  for (const auto& [name, node] : files_) total += node->data.size();
  return total;
}

Result<std::unique_ptr<WritableFile>> MemFileSystem::open_writable(const std::string& path,
                                                                   bool create) {
  std::lock_guard lock(mu_);
  WAVEKV_RETURN_IF_ERROR(check_power());
  auto it = files_.find(path);
  if (it == files_.end()) {
    if (!create) return Status::not_found("no such file: " + path);
    if (!dirs_.count(parent_of(path))) return Status::io_error("no such directory for " + path);
    it = files_.emplace(path, std::make_shared<Node>()).first;
  }
  return std::unique_ptr<WritableFile>(new MemWritable(shared_from_this(), it->second, path));
}

Result<std::unique_ptr<ReadableFile>> MemFileSystem::open_readable(const std::string& path) {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return Status::not_found("no such file: " + path);
  return std::unique_ptr<ReadableFile>(new MemReadable(shared_from_this(), it->second));
}

Result<std::vector<std::string>> MemFileSystem::list_dir(const std::string& dir_in) {
  std::lock_guard lock(mu_);
  std::string dir = normalize_dir(dir_in);
  if (!dirs_.count(dir)) return Status::io_error("list " + dir + ": no such directory");
  std::vector<std::string> names;
  for (const auto& [path, node] : files_) {
    if (parent_of(path) == dir) names.push_back(path.substr(dir.size() + 1));
  }
  return names;
}

Status MemFileSystem::create_dirs(const std::string& dir_in) {
  std::lock_guard lock(mu_);
  WAVEKV_RETURN_IF_ERROR(check_power());
  std::string dir = normalize_dir(dir_in);
  while (!dir.empty() && dir != "." && dir != "/") {
    dirs_.insert(dir);
    auto slash = dir.rfind('/');
    if (slash == std::string::npos || slash == 0) break;
    dir = dir.substr(0, slash);
  }
  return Status::ok();
}

Status MemFileSystem::remove(const std::string& path) {
  std::lock_guard lock(mu_);
  WAVEKV_RETURN_IF_ERROR(check_power());
  if (files_.erase(path) == 0) return Status::not_found("no such file: " + path);
  return Status::ok();
}

Status MemFileSystem::rename(const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  WAVEKV_RETURN_IF_ERROR(check_power());
  auto it = files_.find(from);
  if (it == files_.end()) return Status::not_found("no such file: " + from);
  auto node = it->second;
  files_.erase(it);
  files_[to] = node;
  return Status::ok();
}

Status MemFileSystem::sync_dir(const std::string& dir_in) {
  std::lock_guard lock(mu_);
  WAVEKV_RETURN_IF_ERROR(check_power());
  WAVEKV_RETURN_IF_ERROR(before_sync());
  std::string dir = normalize_dir(dir_in);
  for (auto it = durable_files_.begin(); it != durable_files_.end();) {
    it = parent_of(it->first) == dir ? durable_files_.erase(it) : std::next(it);
  }
  for (const auto& [path, node] : files_) {
    if (parent_of(path) == dir) durable_files_[path] = node;
  }
  return Status::ok();
}

bool MemFileSystem::exists(const std::string& path) {
  std::lock_guard lock(mu_);
  return files_.count(path) > 0 || dirs_.count(normalize_dir(path)) > 0;
}

Result<std::unique_ptr<FileLock>> MemFileSystem::lock(const std::string& path) {
  std::lock_guard lock(mu_);
  WAVEKV_RETURN_IF_ERROR(check_power());
  if (!locks_.insert(path).second)
    return Status::busy(path + " is locked: another process has this data directory open");
  return std::unique_ptr<FileLock>(new MemLock(shared_from_this(), path));
}

Status MemFileSystem::check_power() const {
  if (powered_off_) return Status::io_error("the machine is down (simulated power cut)");
  return Status::ok();
}

void MemFileSystem::power_on() {
  std::lock_guard lock(mu_);
  powered_off_ = false;
}

void MemFileSystem::crash(uint64_t torn_seed) {
  std::lock_guard lock(mu_);
  powered_off_ = true;
  files_ = durable_files_;
  locks_.clear();
  uint64_t rng = torn_seed;
  std::set<Node*> seen;
  for (auto& [path, node] : files_) {
    if (!seen.insert(node.get()).second) continue;
    std::string& d = node->data;
    const std::string& s = node->synced;
    if (torn_seed != 0 && d != s) {
      // Keep the synced bytes plus a random prefix of where they first differ.
      size_t p = 0;
      while (p < d.size() && p < s.size() && d[p] == s[p]) p++;
      size_t extra = d.size() > p ? splitmix(rng) % (d.size() - p + 1) : 0;
      std::string torn = d.substr(0, p + extra);
      if (s.size() > torn.size()) torn += s.substr(torn.size());
      d = torn;
      node->synced = torn;
    } else {
      d = s;
    }
  }
}

void MemFileSystem::fail_nth_write(uint64_t n) {
  std::lock_guard lock(mu_);
  fail_write_at_ = writes_ + n;
}
void MemFileSystem::fail_nth_sync(uint64_t n) {
  std::lock_guard lock(mu_);
  fail_sync_at_ = syncs_ + n;
}
void MemFileSystem::set_space_limit(uint64_t bytes) {
  std::lock_guard lock(mu_);
  space_limit_ = bytes;
}
uint64_t MemFileSystem::writes() const {
  std::lock_guard lock(mu_);
  return writes_;
}
uint64_t MemFileSystem::syncs() const {
  std::lock_guard lock(mu_);
  return syncs_;
}

std::string MemFileSystem::contents(const std::string& path) {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  return it == files_.end() ? std::string() : it->second->data;
}

void MemFileSystem::set_contents(const std::string& path, std::string data, bool durable) {
  std::lock_guard lock(mu_);
  auto& node = files_[path];
  if (!node) node = std::make_shared<Node>();
  node->data = std::move(data);
  if (durable) {
    node->synced = node->data;
    durable_files_[path] = node;
  }
}

}  // namespace wavekv::testing
