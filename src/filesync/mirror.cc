#include "filesync/mirror.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "filesync/manifest.h"
#include "util/coding.h"

namespace wavekv::filesync {
namespace {

namespace stdfs = std::filesystem;

uint64_t steady_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

void log_line(const char* level, const std::string& msg) {
  std::fprintf(stderr, "ts=%llu level=%s component=filesync msg=\"%s\"\n",
               static_cast<unsigned long long>(std::time(nullptr)) * 1000ull, level, msg.c_str());
}

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

uint64_t ns(const struct timespec& t) {
  return static_cast<uint64_t>(t.tv_sec) * 1000000000ull + static_cast<uint64_t>(t.tv_nsec);
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

std::string parent_of(const std::string& rel) {
  size_t slash = rel.rfind('/');
  return slash == std::string::npos ? std::string() : rel.substr(0, slash);
}

// The local file at a path: a regular file, something else, or nothing.
struct Local {
  enum Kind { kMissing, kFile, kOther } kind = kMissing;
  IndexRecord rec;  // stat fields only (digest unset)
};

constexpr uint32_t kWatchMask = IN_CREATE | IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_DELETE |
                                IN_MOVED_FROM | IN_MOVED_TO | IN_DONT_FOLLOW | IN_ONLYDIR |
                                IN_EXCL_UNLINK;

constexpr uint64_t kMaxBatchBytes = 4ull << 20;  // chunk bytes per store write

class MirrorImpl final : public Mirror {
 public:
  explicit MirrorImpl(MirrorConfig config) : config_(std::move(config)) {}
  ~MirrorImpl() override { (void)stop(); }

  Status open();

  Node& node() override { return *node_; }
  MirrorStats stats() override {
    std::lock_guard lock(stats_mu_);
    MirrorStats s = stats_;
    std::lock_guard qlock(mu_);
    s.waiting = pending_.size();
    return s;
  }
  bool wait_idle(uint64_t timeout_ms) override;
  Status stop() override;

 private:
  // --- the queue of paths to look at
  void enqueue(const std::string& rel, uint64_t delay_ms);
  void worker_loop();
  void inotify_loop();

  // --- deciding
  void reconcile_path(const std::string& rel);  // a file, a directory, or nothing
  void reconcile_file(const std::string& rel);
  void full_scan(bool show_progress);

  // --- doing
  Local stat_local(const std::string& rel) const;
  // Reads the file, writes the chunks the store lacks and then the manifest,
  // unless the result equals `current` (the store's manifest). False if the
  // file changed while we read it (it is queued again).
  bool publish(const std::string& rel, const Local& local,
               const std::optional<ChunkHash>& store_digest);
  // Deletes the manifest (a tombstone that replicates); false on a store error.
  bool unpublish(const std::string& rel);
  bool materialize(const std::string& rel, const Manifest& m, const ChunkHash& digest,
                   const Local& expected);
  void remove_local(const std::string& rel, const Local& expected);
  void prune_empty_parents(const std::string& rel);

  std::optional<IndexRecord> index_get(const std::string& rel);
  void index_put(const std::string& rel, const IndexRecord& r);
  void index_del(const std::string& rel);
  std::vector<std::string> index_under(const std::string& dir_rel);

  void add_watch(const std::string& dir_rel);
  // Watches the directory `dir_rel` and every directory under it (never
  // through a symlink), and returns the regular files under it: one walk,
  // each directory watched before it is listed, so a later change is an event.
  std::vector<std::string> watch_tree(const std::string& dir_rel);
  void count(uint64_t MirrorStats::*field, uint64_t n = 1) {
    std::lock_guard lock(stats_mu_);
    stats_.*field += n;
  }
  std::string full(const std::string& rel) const {
    return rel.empty() ? config_.watch_dir : config_.watch_dir + "/" + rel;
  }

  MirrorConfig config_;
  std::unique_ptr<Node> node_;
  std::unique_ptr<Store> index_;
  WatchId watch_id_ = 0;
  bool watching_ = false;

  int inotify_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: wakes the inotify thread to stop
  std::mutex wd_mu_;
  std::unordered_map<int, std::string> wd_to_rel_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, uint64_t> dirty_;  // path -> when it may be handled (steady ms)
  std::set<std::string> pending_;          // files waiting for chunks
  bool retry_pending_ = false;
  bool busy_ = false;  // the worker is handling paths it took off dirty_
  bool stopping_ = false;
  bool stopped_ = false;

  std::mutex stats_mu_;
  MirrorStats stats_;
  uint64_t temp_counter_ = 0;

  std::thread worker_;
  std::thread inotify_thread_;
};

// ---------------------------------------------------------------- start/stop

Status MirrorImpl::open() {
  std::error_code ec;
  stdfs::create_directories(config_.watch_dir, ec);
  if (ec) return Status::io_error("cannot create " + config_.watch_dir + ": " + ec.message());
  config_.watch_dir = stdfs::canonical(config_.watch_dir, ec).string();
  if (ec) return Status::io_error(config_.watch_dir + ": " + ec.message());
  stdfs::create_directories(config_.data_dir, ec);
  if (ec) return Status::io_error("cannot create " + config_.data_dir + ": " + ec.message());
  std::string data = stdfs::canonical(config_.data_dir, ec).string();
  if (data == config_.watch_dir || data.starts_with(config_.watch_dir + "/"))
    return Status::invalid("the data directory " + data + " must not be inside the watched " +
                           config_.watch_dir);

  Config index_config;
  index_config.data_dir = data + "/index";
  // The index only speeds up and disambiguates; losing its last writes to a
  // power cut costs a rehash, never data (the no-record rule applies).
  index_config.durability = Durability::kInterval;
  auto index = Store::open(index_config);
  if (!index) return Status(index.status());
  index_ = std::move(*index);

  NodeConfig nc = config_.node;
  nc.store.data_dir = data + "/kv";
  auto node = Node::start(nc);
  if (!node) return Status(node.status());
  node_ = std::move(*node);

  // An empty store next to peers: wait for one complete sync before looking
  // at the files, or we would publish stale files and take missing ones as
  // deletions.
  StoreStatus ss = node_->store().status();
  if (ss.live_keys + ss.tombstones == 0 && !nc.peers.empty()) {
    bool tty = config_.progress && isatty(2);
    uint64_t deadline = steady_ms() + config_.bootstrap_timeout_ms;
    uint64_t last_print = 0;
    bool done = false;
    while (steady_ms() < deadline) {
      auto st = node_->status_json();
      uint64_t received = st["replication"]["entries_merged"].get<uint64_t>();
      if (st["replication"]["sessions_completed"].get<uint64_t>() > 0) {
        done = true;
        if (tty)
          std::fprintf(stderr, "\rbootstrap: %llu keys received, done\n",
                       static_cast<unsigned long long>(received));
        break;
      }
      if (tty && steady_ms() - last_print >= 200) {
        std::fprintf(stderr, "\rbootstrap: %llu keys received...",
                     static_cast<unsigned long long>(received));
        last_print = steady_ms();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!done)
      log_line("warn",
               "no peer completed a sync within the bootstrap timeout; going on with "
               "what the store holds");
  }

  inotify_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) return Status::io_error(std::string("inotify_init1: ") + strerror(errno));
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return Status::io_error(std::string("eventfd: ") + strerror(errno));

  // Changes that replicate in: handled by the worker like local ones.
  watch_id_ = node_->store().watch("", [this](const WatchEvent& e) {
    std::string_view key = e.key;
    if (key.starts_with(kManifestPrefix)) {
      std::string rel(key.substr(kManifestPrefix.size()));
      if (valid_path(rel)) enqueue(rel, 0);
    } else if (key.starts_with(kChunkPrefix)) {
      std::lock_guard lock(mu_);
      if (!pending_.empty()) {
        retry_pending_ = true;
        cv_.notify_all();
      }
    }
  });
  watching_ = true;

  full_scan(config_.progress);
  worker_ = std::thread([this] { worker_loop(); });
  inotify_thread_ = std::thread([this] { inotify_loop(); });
  return Status::ok();
}

Status MirrorImpl::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return Status::ok();
    stopped_ = true;
    stopping_ = true;
    cv_.notify_all();
  }
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
  }
  if (inotify_thread_.joinable()) inotify_thread_.join();
  if (worker_.joinable()) worker_.join();
  if (watching_) node_->store().unwatch(watch_id_);
  watching_ = false;
  Status result;
  if (node_) result = node_->stop();
  if (index_) {
    Status st = index_->close();
    if (result.is_ok()) result = st;
  }
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  inotify_fd_ = wake_fd_ = -1;
  return result;
}

bool MirrorImpl::wait_idle(uint64_t timeout_ms) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                      [&] { return dirty_.empty() && pending_.empty() && !busy_; });
}

// ---------------------------------------------------------------- the queue

void MirrorImpl::enqueue(const std::string& rel, uint64_t delay_ms) {
  std::lock_guard lock(mu_);
  // A later event pushes the deadline out: a file being written is handled
  // once, after the writer pauses.
  dirty_[rel] = steady_ms() + delay_ms;
  cv_.notify_all();
}

void MirrorImpl::worker_loop() {
  uint64_t next_retry = steady_ms() + config_.retry_ms;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    uint64_t now = steady_ms();
    std::vector<std::string> due;
    uint64_t wake = next_retry;
    for (auto it = dirty_.begin(); it != dirty_.end();) {
      if (it->second <= now) {
        due.push_back(it->first);
        it = dirty_.erase(it);
      } else {
        wake = std::min(wake, it->second);
        ++it;
      }
    }
    if (retry_pending_ || now >= next_retry) {
      due.insert(due.end(), pending_.begin(), pending_.end());
      retry_pending_ = false;
      next_retry = now + config_.retry_ms;
    }
    if (due.empty()) {
      cv_.wait_for(lock, std::chrono::milliseconds(wake > now ? wake - now : 1));
      continue;
    }
    busy_ = true;
    lock.unlock();
    for (const auto& rel : due) reconcile_path(rel);
    lock.lock();
    busy_ = false;
    cv_.notify_all();
  }
}

void MirrorImpl::add_watch(const std::string& dir_rel) {
  int wd = inotify_add_watch(inotify_fd_, full(dir_rel).c_str(), kWatchMask);
  if (wd < 0) {
    if (errno == ENOSPC)
      log_line("error", "out of inotify watches (fs.inotify.max_user_watches); changes under " +
                            full(dir_rel) + " are only seen by the next rescan");
    return;  // ENOENT/ENOTDIR: it went away; its parent's event handles that
  }
  std::lock_guard lock(wd_mu_);
  wd_to_rel_[wd] = dir_rel;  // a directory renamed inside the tree keeps its wd
}

std::vector<std::string> MirrorImpl::watch_tree(const std::string& dir_rel) {
  add_watch(dir_rel);
  std::vector<std::string> files;
  std::error_code ec;
  for (auto it = stdfs::recursive_directory_iterator(
           full(dir_rel), stdfs::directory_options::skip_permission_denied, ec);
       !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
    if (is_temp_name(it->path().filename().string())) {
      it.disable_recursion_pending();
      continue;
    }
    auto st = it->symlink_status(ec);
    if (ec) continue;  // vanished while we walked
    std::string rel = it->path().lexically_relative(config_.watch_dir).generic_string();
    if (stdfs::is_directory(st))
      add_watch(rel);
    else if (stdfs::is_regular_file(st) && valid_path(rel))
      files.push_back(std::move(rel));
  }
  return files;
}

void MirrorImpl::inotify_loop() {
  alignas(struct inotify_event) char buf[64 * 1024];
  while (true) {
    struct pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (fds[1].revents & POLLIN)) return;
    ssize_t len = ::read(inotify_fd_, buf, sizeof buf);
    if (len <= 0) continue;
    for (char* p = buf; p < buf + len;) {
      auto* ev = reinterpret_cast<struct inotify_event*>(p);
      p += sizeof(struct inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        log_line("warn", "inotify queue overflowed; rescanning the whole tree");
        enqueue("", config_.debounce_ms);
        continue;
      }
      std::string dir_rel;
      {
        std::lock_guard lock(wd_mu_);
        auto it = wd_to_rel_.find(ev->wd);
        if (it == wd_to_rel_.end()) continue;
        if (ev->mask & IN_IGNORED) {
          wd_to_rel_.erase(it);
          continue;
        }
        dir_rel = it->second;
      }
      if (ev->len == 0) continue;
      std::string name(ev->name);
      if (is_temp_name(name)) continue;
      // A directory's own attribute changes are not mirrored.
      if ((ev->mask & IN_ISDIR) &&
          !(ev->mask & (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO)))
        continue;
      enqueue(dir_rel.empty() ? name : dir_rel + "/" + name, config_.debounce_ms);
    }
  }
}

// ---------------------------------------------------------------- deciding

void MirrorImpl::full_scan(bool show_progress) {
  uint64_t start = steady_ms();
  std::set<std::string> paths;
  for (auto& f : watch_tree("")) paths.insert(std::move(f));
  for (const auto& kv : index_->scan_prefix("", 0)) paths.insert(kv.key);
  for (const auto& kv : node_->store().scan_prefix(kManifestPrefix, 0))
    paths.insert(kv.key.substr(kManifestPrefix.size()));
  // Tombstones are not in a scan; a deleted manifest with a local file is
  // found through the file (the walk) and decided by reconcile_file.

  bool tty = show_progress && isatty(2);
  MirrorStats before = stats();
  size_t done = 0;
  uint64_t last_print = 0;
  for (const auto& rel : paths) {
    if (valid_path(rel)) reconcile_file(rel);
    done++;
    if (tty && (steady_ms() - last_print >= 100 || done == paths.size())) {
      int width = 30;
      int filled = static_cast<int>(width * done / std::max<size_t>(paths.size(), 1));
      std::fprintf(stderr, "\rscan [%.*s%*s] %zu/%zu files", filled,
                   "##############################", width - filled, "", done, paths.size());
      last_print = steady_ms();
    }
  }
  if (tty) std::fprintf(stderr, "\n");
  MirrorStats after = stats();
  if (show_progress)
    log_line("info", "scanned " + std::to_string(paths.size()) + " paths in " +
                         std::to_string(steady_ms() - start) +
                         " ms: " + std::to_string(after.published - before.published) +
                         " published, " + std::to_string(after.unpublished - before.unpublished) +
                         " deleted, " + std::to_string(after.materialized - before.materialized) +
                         " written from the store, " +
                         std::to_string(after.removed - before.removed) + " removed, " +
                         std::to_string(after.waiting) + " waiting for chunks");
}

void MirrorImpl::reconcile_path(const std::string& rel) {
  if (rel.empty()) {
    full_scan(false);
    return;
  }
  struct stat st {};
  bool is_dir = ::lstat(full(rel).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  std::set<std::string> paths;
  if (is_dir) {
    // A directory created or moved in: watch it and everything under it.
    for (auto& f : watch_tree(rel)) paths.insert(std::move(f));
  } else {
    paths.insert(rel);
  }
  // Whatever the index knew under this path and is gone now (a directory
  // deleted or moved away, or replaced by a file).
  for (auto& p : index_under(rel)) paths.insert(std::move(p));
  for (const auto& p : paths)
    if (valid_path(p)) reconcile_file(p);
}

void MirrorImpl::reconcile_file(const std::string& rel) {
  Local local = stat_local(rel);
  std::optional<IndexRecord> idx = index_get(rel);
  std::optional<Entry> kv = node_->store().get_entry(manifest_key(rel));
  bool kv_live = kv && !kv->tombstone;
  std::optional<Manifest> kvm;
  ChunkHash kvd{};
  if (kv_live) {
    auto m = decode_manifest(kv->value);
    if (!m) {
      // A peer wrote something we cannot read (a newer filesync?): leave the
      // file alone rather than guess.
      log_line("error", "manifest of " + rel + ": " + m.status().to_string());
      count(&MirrorStats::errors);
      return;
    }
    kvm = std::move(*m);
    kvd = manifest_digest(kv->value);
  }
  {
    std::lock_guard lock(mu_);
    pending_.erase(rel);  // decided afresh below
  }

  if (local.kind == Local::kOther) {
    if (idx) {
      // The file we knew became a directory or a symlink: the file is gone.
      if (kv_live && kvd == idx->digest && !unpublish(rel)) return;
      index_del(rel);
    } else if (kv_live) {
      // A directory or a symlink where the store has a file: not ours to touch.
      log_line("warn", rel + " is not a regular file here; the store's version is not written");
      count(&MirrorStats::conflicts);
    }
    return;
  }

  if (idx && local.kind == Local::kFile && idx->same_stat(local.rec)) {
    // Unchanged here since we last synced it.
    if (kv_live && kvd == idx->digest) {
      count(&MirrorStats::unchanged);
    } else if (kv_live) {
      materialize(rel, *kvm, kvd, local);
    } else {
      remove_local(rel, local);
    }
    return;
  }
  if (idx && local.kind == Local::kMissing) {
    if (kv_live && kvd == idx->digest) {
      // Deleted here: delete it everywhere.
      if (!unpublish(rel)) return;
      index_del(rel);
    } else if (kv_live) {
      // Deleted here while a newer version came in: keep the newer version
      // (a lost delete costs less than lost data).
      materialize(rel, *kvm, kvd, local);
    } else {
      index_del(rel);
      count(&MirrorStats::unchanged);
    }
    return;
  }
  if (!idx && local.kind == Local::kMissing) {
    if (kv_live) materialize(rel, *kvm, kvd, local);
    return;
  }
  // The file is new or changed here.
  if (!idx && kv) {
    // Never seen by this index: last writer wins between the file's mtime and
    // the store's version.
    uint64_t mtime_ms = local.rec.mtime_ns / 1000000;
    if (mtime_ms < timestamp_millis(kv->meta.timestamp)) {
      if (kv_live)
        materialize(rel, *kvm, kvd, local);
      else
        remove_local(rel, local);
      return;
    }
  }
  publish(rel, local, kv_live ? std::optional<ChunkHash>(kvd) : std::nullopt);
}

// ---------------------------------------------------------------- doing

Local MirrorImpl::stat_local(const std::string& rel) const {
  Local l;
  struct stat st {};
  // A path under a symlink (or a file) is not in the tree: never read or
  // written through it.
  for (size_t pos = rel.find('/'); pos != std::string::npos; pos = rel.find('/', pos + 1)) {
    if (::lstat(full(rel.substr(0, pos)).c_str(), &st) != 0) return l;  // missing
    if (!S_ISDIR(st.st_mode)) {
      l.kind = Local::kOther;
      return l;
    }
  }
  if (::lstat(full(rel).c_str(), &st) != 0) return l;
  l.kind = S_ISREG(st.st_mode) ? Local::kFile : Local::kOther;
  l.rec = record_of(st);
  return l;
}

bool MirrorImpl::unpublish(const std::string& rel) {
  Status st = node_->store().del(manifest_key(rel));
  if (!st.is_ok()) {
    log_line("error", "deleting " + rel + ": " + st.to_string());
    count(&MirrorStats::errors);
    return false;
  }
  count(&MirrorStats::unpublished);
  return true;
}

bool MirrorImpl::publish(const std::string& rel, const Local& local,
                         const std::optional<ChunkHash>& store_digest) {
  int fd = ::open(full(rel).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    enqueue(rel, config_.debounce_ms);  // gone or replaced meanwhile: look again
    return false;
  }
  struct stat st {};
  ::fstat(fd, &st);
  IndexRecord rec = record_of(st);
  if (!rec.same_stat(local.rec)) {
    ::close(fd);
    enqueue(rel, config_.debounce_ms);
    return false;
  }
  Store& store = node_->store();
  Manifest m;
  m.mode = st.st_mode & 07777;
  WriteBatch batch;
  uint64_t batch_bytes = 0;
  uint64_t written = 0, reused = 0;
  bool failed = false;
  auto flush = [&] {
    if (batch.empty()) return;
    Status s = store.write(batch);
    if (!s.is_ok()) {
      log_line("error", "writing chunks of " + rel + ": " + s.to_string());
      failed = true;
    }
    batch = WriteBatch();
    batch_bytes = 0;
  };
  Chunker chunker(config_.chunker);
  std::string chunk;
  auto finish_chunk = [&] {
    ChunkHash h = hash_chunk(chunk);
    m.chunks.push_back({h, static_cast<uint32_t>(chunk.size())});
    m.size += chunk.size();
    std::string key = chunk_key(h);
    auto existing = store.get_entry(key);
    if (existing && !existing->tombstone) {
      reused++;
    } else {
      batch.put(key, chunk);
      batch_bytes += chunk.size();
      written++;
      if (batch_bytes >= kMaxBatchBytes) flush();
    }
    chunk.clear();
  };
  std::vector<char> buf(1 << 16);
  while (!failed) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      log_line("error", "reading " + full(rel) + ": " + strerror(errno));
      failed = true;
      break;
    }
    if (n == 0) break;
    std::string_view data(buf.data(), static_cast<size_t>(n));
    while (!data.empty()) {
      size_t take = chunker.next_cut(data);
      chunk.append(data.substr(0, take));
      data.remove_prefix(take);
      if (chunker.at_cut()) finish_chunk();
    }
  }
  if (!chunk.empty()) finish_chunk();
  struct stat after {};
  ::fstat(fd, &after);
  ::close(fd);
  if (failed) {
    count(&MirrorStats::errors);
    return false;
  }
  if (!record_of(after).same_stat(rec)) {
    // Written to while we read it: the next quiet moment gets a clean read.
    flush();
    enqueue(rel, config_.debounce_ms);
    return false;
  }
  std::string encoded = encode_manifest(m);
  rec.digest = manifest_digest(encoded);
  if (store_digest == rec.digest) {
    // Same bytes and mode as the store has: our own write coming back, or a
    // touch. Nothing to publish.
    flush();
    index_put(rel, rec);
    count(&MirrorStats::unchanged);
    return true;
  }
  batch.put(manifest_key(rel), encoded);
  flush();
  if (failed) {
    count(&MirrorStats::errors);
    return false;
  }
  index_put(rel, rec);
  count(&MirrorStats::published);
  count(&MirrorStats::chunks_written, written);
  count(&MirrorStats::chunks_reused, reused);
  return true;
}

bool MirrorImpl::materialize(const std::string& rel, const Manifest& m, const ChunkHash& digest,
                             const Local& expected) {
  Store& store = node_->store();
  // Every chunk must be here and be what its name says, before we touch the
  // directory.
  for (const auto& c : m.chunks) {
    auto e = store.get_entry(chunk_key(c.hash));
    if (!e || e->tombstone) {
      std::lock_guard lock(mu_);
      pending_.insert(rel);
      return false;
    }
    if (e->value.size() != c.size || hash_chunk(e->value) != c.hash) {
      log_line("error", "chunk " + hash_hex(c.hash) + " of " + rel +
                            " does not match its hash; waiting for a good copy");
      count(&MirrorStats::errors);
      std::lock_guard lock(mu_);
      pending_.insert(rel);
      return false;
    }
  }
  // Parent directories, made as needed, one component at a time: each must
  // be a real directory, never a symlink, or a peer's path could lead the
  // write out of the mirrored tree.
  std::string parent = parent_of(rel);
  for (size_t pos = 0; !parent.empty() && pos != std::string::npos;) {
    pos = parent.find('/', pos + 1);
    std::string dir = full(parent.substr(0, pos));
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 && ::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      log_line("warn", "cannot create " + dir + " for " + rel + ": " + strerror(errno));
      count(&MirrorStats::conflicts);
      return false;
    }
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      log_line("warn",
               dir + " is not a directory (a file or a symlink); " + rel + " is not written");
      count(&MirrorStats::conflicts);
      return false;
    }
  }
  std::string name = rel.substr(parent.empty() ? 0 : parent.size() + 1);
  std::string temp = full(parent) + "/" + std::string(kTempPrefix) + name + "." +
                     std::to_string(::getpid()) + "." + std::to_string(++temp_counter_);
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    log_line("error", "creating " + temp + ": " + strerror(errno));
    count(&MirrorStats::errors);
    return false;
  }
  bool ok = true;
  for (const auto& c : m.chunks) {
    auto e = store.get_entry(chunk_key(c.hash));
    if (!e || e->tombstone) {
      ok = false;
      break;
    }
    std::string_view data = e->value;
    while (ok && !data.empty()) {
      ssize_t n = ::write(fd, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        log_line("error", "writing " + temp + ": " + strerror(errno));
        ok = false;
        break;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
  }
  ok = ok && ::fchmod(fd, m.mode) == 0 && ::fsync(fd) == 0;
  ::close(fd);
  // Last look before the rename: if the file changed here since we decided,
  // the local change is newer; handle it instead.
  Local now = stat_local(rel);
  bool still =
      now.kind == expected.kind && (now.kind == Local::kMissing || now.rec.same_stat(expected.rec));
  if (!ok || !still || ::rename(temp.c_str(), full(rel).c_str()) != 0) {
    ::unlink(temp.c_str());
    if (!ok) count(&MirrorStats::errors);
    enqueue(rel, config_.debounce_ms);
    return false;
  }
  Local written = stat_local(rel);
  IndexRecord rec = written.rec;
  rec.digest = digest;
  index_put(rel, rec);
  count(&MirrorStats::materialized);
  return true;
}

void MirrorImpl::remove_local(const std::string& rel, const Local& expected) {
  Local now = stat_local(rel);
  if (now.kind != Local::kFile || !now.rec.same_stat(expected.rec)) {
    enqueue(rel, config_.debounce_ms);  // changed meanwhile: decide again
    return;
  }
  if (::unlink(full(rel).c_str()) != 0 && errno != ENOENT) {
    log_line("error", "deleting " + full(rel) + ": " + strerror(errno));
    count(&MirrorStats::errors);
    return;
  }
  index_del(rel);
  count(&MirrorStats::removed);
  prune_empty_parents(rel);
}

void MirrorImpl::prune_empty_parents(const std::string& rel) {
  // Directories exist where files need them: one that a remote delete left
  // empty goes too (rmdir fails, harmlessly, on any that is not empty).
  for (std::string dir = parent_of(rel); !dir.empty(); dir = parent_of(dir))
    if (::rmdir(full(dir).c_str()) != 0) break;
}

std::optional<IndexRecord> MirrorImpl::index_get(const std::string& rel) {
  auto v = index_->get(rel);
  if (!v) return std::nullopt;
  auto r = decode_index(*v);
  if (!r) log_line("warn", "index record of " + rel + " is malformed; treating it as absent");
  return r;
}

void MirrorImpl::index_put(const std::string& rel, const IndexRecord& r) {
  Status st = index_->put(rel, encode_index(r));
  if (!st.is_ok()) log_line("error", "index: " + st.to_string());
}

void MirrorImpl::index_del(const std::string& rel) {
  Status st = index_->del(rel);
  if (!st.is_ok()) log_line("error", "index: " + st.to_string());
}

std::vector<std::string> MirrorImpl::index_under(const std::string& dir_rel) {
  std::vector<std::string> out;
  for (auto& kv : index_->scan_prefix(dir_rel + "/", 0)) out.push_back(std::move(kv.key));
  return out;
}

}  // namespace

Status MirrorConfig::validate() const {
  if (watch_dir.empty()) return Status::invalid("--watch-dir is required");
  if (data_dir.empty()) return Status::invalid("--data-dir is required");
  if (debounce_ms > 60000) return Status::invalid("debounce_ms above a minute");
  if (retry_ms == 0) return Status::invalid("retry_ms must be positive");
  if (chunker.avg_bytes == 0 || (chunker.avg_bytes & (chunker.avg_bytes - 1)) != 0)
    return Status::invalid("chunker.avg_bytes must be a power of two");
  if (!(chunker.min_bytes <= chunker.avg_bytes && chunker.avg_bytes <= chunker.max_bytes))
    return Status::invalid("chunker limits must satisfy min <= avg <= max");
  return Status::ok();
}

Result<std::unique_ptr<Mirror>> Mirror::start(MirrorConfig config) {
  Status v = config.validate();
  if (!v.is_ok()) return v;
  auto m = std::make_unique<MirrorImpl>(std::move(config));
  Status st = m->open();
  if (!st.is_ok()) {
    (void)m->stop();
    return st;
  }
  return std::unique_ptr<Mirror>(std::move(m));
}

}  // namespace wavekv::filesync
