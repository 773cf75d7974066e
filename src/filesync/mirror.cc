// The mirror's orchestration: start and stop, the queue of paths to look at
// (fed by the watcher, the store's watch and the rescans), and
// reconcile_file, which gathers the three inputs of the rule (decide.h),
// decides, and acts through the transfer code, the index and the counters.
#include "filesync/mirror.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "filesync/decide.h"
#include "filesync/index.h"
#include "filesync/log.h"
#include "filesync/manifest.h"
#include "filesync/transfer.h"
#include "filesync/watcher.h"

namespace wavekv::filesync {
namespace {

namespace stdfs = std::filesystem;

uint64_t steady_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

wavekv::LogLevel public_level(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return wavekv::LogLevel::kDebug;
    case LogLevel::kWarn: return wavekv::LogLevel::kWarn;
    case LogLevel::kError: return wavekv::LogLevel::kError;
    case LogLevel::kInfo:
    case LogLevel::kProgress: break;
  }
  return wavekv::LogLevel::kInfo;
}

// The store's side of a path: its version, and the manifest if it is live.
struct StoreSide {
  std::optional<StoreVersion> version;
  std::optional<Manifest> manifest;
};

std::string scan_bar(size_t done, size_t total) {
  constexpr size_t kWidth = 30;
  size_t filled = kWidth * done / std::max<size_t>(total, 1);
  return "\rscan [" + std::string(filled, '#') + std::string(kWidth - filled, ' ') + "] " +
         std::to_string(done) + "/" + std::to_string(total) + " files";
}

std::string scan_summary(size_t paths, uint64_t ms, const MirrorStats& before,
                         const MirrorStats& after) {
  return "scanned " + std::to_string(paths) + " paths in " + std::to_string(ms) +
         " ms: " + std::to_string(after.published - before.published) + " published, " +
         std::to_string(after.unpublished - before.unpublished) + " deleted, " +
         std::to_string(after.materialized - before.materialized) + " written from the store, " +
         std::to_string(after.removed - before.removed) + " removed, " +
         std::to_string(after.waiting) + " waiting for chunks";
}

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
  // --- starting
  Status make_dirs(std::string& data_dir);
  Status open_index_and_node(const std::string& data_dir);
  void wait_for_bootstrap();
  void watch_store();

  // --- the queue of paths to look at
  void enqueue(const std::string& rel, uint64_t delay_ms);
  void worker_loop();

  // --- deciding
  void full_scan(bool initial);
  std::set<std::string> all_paths();
  void reconcile_path(const std::string& rel);  // a file, a directory, or nothing
  void reconcile_file(const std::string& rel);
  bool read_store(const std::string& rel, StoreSide& side);

  // --- doing
  void act(const std::string& rel, Action action, const LocalFile& local, const StoreSide& side);
  void publish(const std::string& rel, const LocalFile& local, const StoreSide& side);
  void materialize(const std::string& rel, const StoreSide& side, const LocalFile& expected);
  void remove_local(const std::string& rel, const LocalFile& expected);
  void publish_delete(const std::string& rel);
  // Counts and queues what a transfer reports; true if it is done (kDone or kSame).
  bool settle(const std::string& rel, const Outcome& o);

  // Every log and progress line of filesync ends here.
  void log(LogLevel level, const std::string& msg);
  Logger logger() {
    return [this](LogLevel level, const std::string& msg) { log(level, msg); };
  }
  void count(uint64_t MirrorStats::*field, uint64_t n = 1) {
    std::lock_guard lock(stats_mu_);
    stats_.*field += n;
  }

  MirrorConfig config_;
  std::unique_ptr<LocalIndex> index_;
  std::unique_ptr<Node> node_;
  std::unique_ptr<Transfer> transfer_;  // worker only (and the scan before it starts)
  std::unique_ptr<Watcher> watcher_;
  WatchId watch_id_ = 0;
  bool watching_ = false;

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

  std::thread worker_;
};

// Log lines go to the node's sink (the embedder's); progress lines to the
// caller's terminal hook, if it gave one.
void MirrorImpl::log(LogLevel level, const std::string& msg) {
  if (level == LogLevel::kProgress) {
    if (config_.progress) config_.progress(msg);
    return;
  }
  std::vector<LogField> fields;
  if (node_) fields.push_back({"node", std::to_string(node_->store().node_id())});
  wavekv::log(config_.node.log, public_level(level), "filesync", msg, std::move(fields));
}

// ---------------------------------------------------------------- start/stop

Status MirrorImpl::make_dirs(std::string& data_dir) {
  std::error_code ec;
  stdfs::create_directories(config_.watch_dir, ec);
  if (ec) return Status::io_error("cannot create " + config_.watch_dir + ": " + ec.message());
  config_.watch_dir = stdfs::canonical(config_.watch_dir, ec).string();
  if (ec) return Status::io_error(config_.watch_dir + ": " + ec.message());
  stdfs::create_directories(config_.data_dir, ec);
  if (ec) return Status::io_error("cannot create " + config_.data_dir + ": " + ec.message());
  data_dir = stdfs::canonical(config_.data_dir, ec).string();
  if (data_dir == config_.watch_dir || data_dir.starts_with(config_.watch_dir + "/"))
    return Status::invalid("the data directory " + data_dir + " must not be inside the watched " +
                           config_.watch_dir);
  return Status::ok();
}

Status MirrorImpl::open_index_and_node(const std::string& data_dir) {
  auto index = LocalIndex::open(data_dir + "/index", logger());
  if (!index) return Status(index.status());
  index_ = std::move(*index);

  NodeConfig nc = config_.node;
  nc.store.data_dir = data_dir + "/kv";
  auto node = Node::start(nc);
  if (!node) return Status(node.status());
  node_ = std::move(*node);
  transfer_ =
      std::make_unique<Transfer>(config_.watch_dir, node_->store(), config_.chunker, logger());
  return Status::ok();
}

// An empty store next to peers: wait for one complete sync before looking at
// the files, or we would publish stale files and take missing ones as
// deletions.
void MirrorImpl::wait_for_bootstrap() {
  StoreStatus ss = node_->store().status();
  if (ss.live_keys + ss.tombstones != 0 || config_.node.peers.empty()) return;
  const bool tty = static_cast<bool>(config_.progress);
  uint64_t deadline = steady_ms() + config_.bootstrap_timeout_ms;
  uint64_t last_print = 0;
  while (steady_ms() < deadline) {
    const ReplicaStats counts = node_->status().replication;
    std::string received = std::to_string(counts.entries_merged);
    if (counts.sessions_completed > 0) {
      if (tty) log(LogLevel::kProgress, "\rbootstrap: " + received + " keys received, done\n");
      return;
    }
    if (tty && steady_ms() - last_print >= 200) {
      log(LogLevel::kProgress, "\rbootstrap: " + received + " keys received...");
      last_print = steady_ms();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  log(LogLevel::kWarn,
      "no peer completed a sync within the bootstrap timeout; going on with what the store "
      "holds");
}

// Changes that replicate in: handled by the worker like local ones.
void MirrorImpl::watch_store() {
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
}

Status MirrorImpl::open() {
  std::string data_dir;
  Status st = make_dirs(data_dir);
  if (st.is_ok()) st = open_index_and_node(data_dir);
  if (!st.is_ok()) return st;
  wait_for_bootstrap();

  watcher_ = std::make_unique<Watcher>(config_.watch_dir, logger(), [this](const std::string& rel) {
    enqueue(rel, config_.debounce_ms);
  });
  st = watcher_->open();
  if (!st.is_ok()) return st;
  watch_store();

  full_scan(true);
  worker_ = std::thread([this] { worker_loop(); });
  watcher_->start();
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
  if (watcher_) watcher_->stop();
  if (worker_.joinable()) worker_.join();
  if (watching_) node_->store().unwatch(watch_id_);
  watching_ = false;
  Status result;
  if (node_) result = node_->stop();
  if (index_) {
    Status st = index_->close();
    if (result.is_ok()) result = st;
  }
  watcher_.reset();  // closes the inotify descriptors
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

// ---------------------------------------------------------------- deciding

// Every path the tree, the index or the store knows. Tombstones are not in a
// scan; a deleted manifest with a local file is found through the file (the
// walk) and decided by reconcile_file.
std::set<std::string> MirrorImpl::all_paths() {
  std::set<std::string> paths;
  for (auto& f : watcher_->watch_tree("")) paths.insert(std::move(f));
  for (auto& rel : index_->all()) paths.insert(std::move(rel));
  for (const auto& kv : node_->store().scan_prefix(kManifestPrefix, 0))
    paths.insert(kv.key.substr(kManifestPrefix.size()));
  return paths;
}

void MirrorImpl::full_scan(bool initial) {
  uint64_t start = steady_ms();
  std::set<std::string> paths = all_paths();
  const bool tty = initial && config_.progress;
  MirrorStats before = stats();
  size_t done = 0;
  uint64_t last_print = 0;
  for (const auto& rel : paths) {
    if (valid_path(rel)) reconcile_file(rel);
    done++;
    if (tty && (steady_ms() - last_print >= 100 || done == paths.size())) {
      log(LogLevel::kProgress, scan_bar(done, paths.size()));
      last_print = steady_ms();
    }
  }
  if (tty) log(LogLevel::kProgress, "\n");
  MirrorStats after = stats();
  if (initial) log(LogLevel::kInfo, scan_summary(paths.size(), steady_ms() - start, before, after));
}

void MirrorImpl::reconcile_path(const std::string& rel) {
  if (rel.empty()) {
    full_scan(false);
    return;
  }
  struct stat st {};
  bool is_dir = ::lstat(transfer_->full(rel).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  std::set<std::string> paths;
  if (is_dir) {
    // A directory created or moved in: watch it and everything under it.
    for (auto& f : watcher_->watch_tree(rel)) paths.insert(std::move(f));
  } else {
    paths.insert(rel);
  }
  // Whatever the index knew under this path and is gone now (a directory
  // deleted or moved away, or replaced by a file).
  for (auto& p : index_->under(rel)) paths.insert(std::move(p));
  for (const auto& p : paths)
    if (valid_path(p)) reconcile_file(p);
}

// False if the store's manifest cannot be read.
bool MirrorImpl::read_store(const std::string& rel, StoreSide& side) {
  std::optional<Entry> kv = node_->store().get_entry(manifest_key(rel));
  if (!kv) return true;
  StoreVersion& v = side.version.emplace();
  v.tombstone = kv->tombstone;
  v.timestamp_ms = timestamp_millis(kv->meta.timestamp);
  if (kv->tombstone) return true;
  auto m = decode_manifest(kv->value);
  if (!m) {
    // A peer wrote something we cannot read (a newer filesync?): leave the
    // file alone rather than guess.
    log(LogLevel::kError, "manifest of " + rel + ": " + m.status().to_string());
    count(&MirrorStats::errors);
    return false;
  }
  side.manifest = std::move(*m);
  v.digest = manifest_digest(kv->value);
  return true;
}

void MirrorImpl::reconcile_file(const std::string& rel) {
  LocalFile local = transfer_->stat_local(rel);
  std::optional<IndexRecord> record = index_->get(rel);
  StoreSide side;
  if (!read_store(rel, side)) return;
  {
    std::lock_guard lock(mu_);
    pending_.erase(rel);  // decided afresh below
  }
  Action action =
      decide(local, record ? &*record : nullptr, side.version ? &*side.version : nullptr);
  act(rel, action, local, side);
}

// ---------------------------------------------------------------- doing

void MirrorImpl::act(const std::string& rel, Action action, const LocalFile& local,
                     const StoreSide& side) {
  switch (action) {
    case Action::kNothing: return;
    case Action::kUnchanged: count(&MirrorStats::unchanged); return;
    case Action::kPublish: return publish(rel, local, side);
    case Action::kWrite: return materialize(rel, side, local);
    case Action::kRemove: return remove_local(rel, local);
    case Action::kPublishDelete: return publish_delete(rel);
    case Action::kForget: index_->del(rel); return;
    case Action::kForgetDeleted:
      index_->del(rel);
      count(&MirrorStats::unchanged);
      return;
    case Action::kConflict:
      log(LogLevel::kWarn, rel + " is not a regular file here; the store's version is not written");
      count(&MirrorStats::conflicts);
      return;
  }
}

bool MirrorImpl::settle(const std::string& rel, const Outcome& o) {
  if (o.error) count(&MirrorStats::errors);
  switch (o.kind) {
    case Outcome::kDone:
    case Outcome::kSame: return true;
    case Outcome::kRetry: enqueue(rel, config_.debounce_ms); return false;
    case Outcome::kWaiting: {
      std::lock_guard lock(mu_);
      pending_.insert(rel);
      return false;
    }
    case Outcome::kConflict: count(&MirrorStats::conflicts); return false;
    case Outcome::kFailed: return false;
  }
  return false;
}

void MirrorImpl::publish(const std::string& rel, const LocalFile& local, const StoreSide& side) {
  std::optional<ChunkHash> store_digest;
  if (side.manifest) store_digest = side.version->digest;
  Outcome o = transfer_->publish(rel, local.rec, store_digest);
  if (!settle(rel, o)) return;
  index_->put(rel, o.record);
  if (o.kind == Outcome::kSame) {
    count(&MirrorStats::unchanged);
    return;
  }
  count(&MirrorStats::published);
  count(&MirrorStats::chunks_written, o.chunks_written);
  count(&MirrorStats::chunks_reused, o.chunks_reused);
}

void MirrorImpl::materialize(const std::string& rel, const StoreSide& side,
                             const LocalFile& expected) {
  assert(side.manifest);  // decide writes live versions only
  Outcome o = transfer_->materialize(rel, *side.manifest, side.version->digest, expected);
  if (!settle(rel, o)) return;
  index_->put(rel, o.record);
  count(&MirrorStats::materialized);
}

void MirrorImpl::remove_local(const std::string& rel, const LocalFile& expected) {
  if (!settle(rel, transfer_->remove(rel, expected))) return;
  index_->del(rel);
  count(&MirrorStats::removed);
}

void MirrorImpl::publish_delete(const std::string& rel) {
  if (!settle(rel, transfer_->publish_delete(rel))) return;
  count(&MirrorStats::unpublished);
  index_->del(rel);
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
