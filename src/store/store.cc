// Store: group commit in front of the WAL, the core state behind a
// readers-writer lock, checkpoints and interval syncs on one background thread.
//
// Ordering contract: a batch is appended to the WAL (and, with durability
// `always`, fsynced) before it is applied to the state, made visible to readers,
// delivered to watchers or acknowledged to the caller.
#include <algorithm>
#include <atomic>
#include <cassert>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include "state/hlc.h"
#include "state/state.h"
#include "store/recovery.h"
#include "store/snapshot.h"
#include "store/store_internal.h"
#include "store/wal.h"

namespace wavekv {
namespace {

// Set on the commit thread, where watch and write callbacks run, so that a
// blocking write from a callback fails instead of deadlocking.
thread_local bool tl_on_commit_thread = false;

class StoreImpl final : public ReplicatedStore {
 public:
  StoreImpl(Config config, std::shared_ptr<FileSystem> fs, std::unique_ptr<FileLock> lock,
            RecoveryPlan plan, std::unique_ptr<WalWriter> wal)
      : config_(std::move(config)),
        fs_(std::move(fs)),
        clock_(config_.clock ? config_.clock : system_clock()),
        lock_(std::move(lock)),
        identity_(plan.identity),
        state_(std::move(plan.state)),
        recovery_(std::move(plan.report)),
        wal_(std::move(wal)),
        segments_(std::move(plan.segments)),
        snapshots_(std::move(plan.snapshots)) {
    // Snapshots newer than the one recovery loaded failed to verify: they are no
    // fallback, so a checkpoint must not keep one of them in place of a good one.
    std::erase_if(snapshots_, [&](uint64_t lsn) { return lsn > recovery_.snapshot_lsn; });
    hlc_.observe(state_.max_timestamp());
    last_checkpoint_ms_ = clock_->now_ms();
    next_seq_ = state_.next_seq();
    last_lsn_ = plan.last_lsn;
    durable_lsn_ = plan.last_lsn;
    checkpoint_lsn_ = recovery_.snapshot_lsn;
    wal_bytes_ = plan.wal_bytes;
    if (segments_.empty() || segments_.back() != wal_->segment_first_lsn())
      segments_.push_back(wal_->segment_first_lsn());
    committer_ = std::thread([this] { commit_loop(); });
    background_ = std::thread([this] { background_loop(); });
    if (config_.scrub_interval_ms != 0) scrubber_ = std::thread([this] { scrub_loop(); });
    if (config_.expire_interval_ms != 0) expirer_ = std::thread([this] { expire_loop(); });
  }

  ~StoreImpl() override { (void)close(); }

  Status put(std::string_view key, std::string_view value) override {
    WriteBatch b;
    b.put(key, value);
    return write(b);
  }

  Status del(std::string_view key) override {
    WriteBatch b;
    b.del(key);
    return write(b);
  }

  Status write(const WriteBatch& batch) override {
    if (tl_on_commit_thread)
      return Status::invalid(
          "a watch or write callback must not make a blocking write to the store (use "
          "write_async)");
    WAVEKV_RETURN_IF_ERROR(check_batch(batch));
    if (batch.empty()) return Status::ok();
    auto req = std::make_unique<Request>();
    req->borrowed = &batch;
    return submit_and_wait(std::move(req));
  }

  void write_async(WriteBatch batch, WriteCallback done) override {
    Status st = check_batch(batch);
    if (!st.is_ok() || batch.empty()) {
      done(st);
      return;
    }
    auto req = std::make_unique<Request>();
    req->owned = std::move(batch);
    req->done = std::move(done);
    st = submit(req);
    if (!st.is_ok()) req->done(st);  // submit() left the request, callback included, with us
  }

  uint64_t now_ms() override { return clock_->now_ms(); }

  Result<std::string> get(std::string_view key) override {
    const uint64_t now = clock_->now_ms();
    std::shared_lock lock(state_mu_);
    auto it = state_.kv().find(key);
    if (it == state_.kv().end() || !it->second.live_at(now))
      return Status::not_found("key not found");
    return it->second.value;
  }

  Status view(std::string_view key, const std::function<void(std::string_view)>& fn) override {
    const uint64_t now = clock_->now_ms();
    std::shared_lock lock(state_mu_);
    auto it = state_.kv().find(key);
    if (it == state_.kv().end() || !it->second.live_at(now))
      return Status::not_found("key not found");
    fn(it->second.value);
    return Status::ok();
  }

  std::optional<Entry> get_entry(std::string_view key) override {
    std::shared_lock lock(state_mu_);
    auto it = state_.kv().find(key);
    if (it == state_.kv().end()) return std::nullopt;
    return it->second;
  }

  std::vector<KeyValue> scan_prefix(std::string_view prefix, size_t limit) override {
    return scan_while(
        prefix, [&](const std::string& k) { return k.starts_with(prefix); }, limit);
  }

  std::vector<KeyValue> scan_range(std::string_view start, std::string_view end,
                                   size_t limit) override {
    return scan_while(
        start, [&](const std::string& k) { return end.empty() || k < end; }, limit);
  }

  WatchId watch(std::string_view prefix, WatchCallback callback) override {
    std::lock_guard lock(watch_mu_);
    WatchId id = ++next_watch_id_;
    watchers_[id] = {std::string(prefix), std::move(callback)};
    return id;
  }

  void unwatch(WatchId id) override {
    std::lock_guard lock(watch_mu_);
    watchers_.erase(id);
  }

  NodeId node_id() const override { return identity_.node; }
  uint64_t incarnation() const override { return identity_.incarnation; }

  Status apply_ops(std::vector<StateOp> ops) override {
    if (tl_on_commit_thread) return Status::invalid("apply_ops from a callback would deadlock");
    if (ops.empty()) return Status::ok();
    auto req = std::make_unique<Request>();
    req->raw_ops = std::move(ops);
    return submit_and_wait(std::move(req));
  }

  Result<std::vector<FutureVersion>> future_versions(uint64_t max_drift_ms,
                                                     std::optional<std::string> key,
                                                     bool repair) override {
    if (tl_on_commit_thread)
      return Status::invalid("future_versions from a callback would deadlock");
    TimestampRepairJob job;
    job.max_drift_ms = max_drift_ms;
    job.key = std::move(key);
    job.rewrite = repair;
    auto req = std::make_unique<Request>();
    req->timestamp_repair = &job;
    WAVEKV_RETURN_IF_ERROR(submit_and_wait(std::move(req)));
    return std::move(job.found);
  }

  void read_state(const std::function<void(const State&)>& fn) override {
    std::shared_lock lock(state_mu_);
    fn(state_);
  }

  StoreStatus status() override {
    StoreStatus s;
    s.node_id = identity_.node;
    s.incarnation = identity_.incarnation;
    {
      std::lock_guard lock(mu_);
      s.queued = queue_.size();
    }
    {
      std::shared_lock lock(state_mu_);
      s.live_keys = state_.live_keys();
      s.tombstones = state_.tombstones();
      s.expiring_keys = state_.expiry_index().size();
      s.data_bytes = state_.data_bytes();
      s.next_seq = state_.next_seq();
      s.clock = state_.max_timestamp();
    }
    {
      std::lock_guard lock(wal_mu_);
      s.last_lsn = last_lsn_;
      s.durable_lsn = durable_lsn_;
      s.wal_segments = segments_.size();
      s.wal_bytes = wal_bytes_;
      s.checkpoint_lsn = checkpoint_lsn_;
      s.snapshot_bytes = snapshot_bytes_;
      s.wal_bytes_since_checkpoint = wal_bytes_since_checkpoint_;
      s.ops_since_checkpoint = ops_since_checkpoint_;
    }
    s.writes = writes_.load();
    s.group_commits = group_commits_.load();
    s.fsyncs = fsyncs_.load();
    s.wal_fsync_seconds = wal_fsync_seconds_.snapshot();
    s.group_commit_requests = group_commit_requests_.snapshot();
    s.write_seconds = write_seconds_.snapshot();
    s.checkpoints = checkpoints_.load();
    s.last_checkpoint_ms = last_checkpoint_ms_.load();
    s.recovery = recovery_;
    s.expired_keys = expired_keys_.load();
    s.scrub_passes = scrub_passes_.load();
    s.scrub_bytes = scrub_bytes_.load();
    s.scrub_damage = scrub_damage_.load();
    s.scrub_repairs = scrub_repairs_.load();
    {
      std::lock_guard lock(scrub_report_mu_);
      s.scrub_last_damage = scrub_last_damage_;
    }
    return s;
  }

  Status checkpoint() override { return checkpoint_now(/*repair=*/false); }

  // `repair`: a checkpoint is taken even if nothing is new, and it keeps no
  // fallback: every other snapshot and every segment it covers go, so none of
  // them is needed any more (the scrubber's repair).
  Status checkpoint_now(bool repair) {
    std::lock_guard one_at_a_time(checkpoint_mu_);
    if (tl_on_commit_thread) return Status::invalid("checkpoint() from a callback would deadlock");
    CheckpointOut out;
    out.force = repair;
    auto req = std::make_unique<Request>();
    req->checkpoint = &out;
    WAVEKV_RETURN_IF_ERROR(submit_and_wait(std::move(req)));
    if (out.lsn == 0) return Status::ok();  // nothing new since the last one
    // The I/O happens outside every lock that readers or writers need.
    Status st = write_snapshot(*fs_, config_.data_dir, out.lsn, out.bytes);
    if (!st.is_ok())
      return Status::io_error("checkpoint failed, the WAL still has everything: " + st.message());
    checkpoints_++;
    last_checkpoint_ms_ = clock_->now_ms();
    return drop_covered_files(out.lsn, out.bytes.size(), /*keep_fallback=*/!repair);
  }

  Result<ScrubReport> scrub(uint64_t bytes_per_sec) override {
    std::lock_guard one_at_a_time(scrub_mu_);
    ScrubReport report;
    // Sealed segments (with the LSN the next one starts at) and snapshots, as
    // of now; files dropped meanwhile by a checkpoint are skipped.
    std::vector<std::pair<uint64_t, uint64_t>> sealed;
    std::vector<uint64_t> snaps;
    {
      std::lock_guard lock(wal_mu_);
      for (size_t i = 0; i + 1 < segments_.size(); i++)
        sealed.push_back({segments_[i], segments_[i + 1]});
      snaps = snapshots_;
    }
    std::vector<std::string> damaged;  // paths
    auto pace = [&](uint64_t bytes) {
      report.files++;
      report.bytes += bytes;
      scrub_bytes_ += bytes;
      if (bytes_per_sec == 0) return;
      std::unique_lock lock(bg_mu_);
      bg_cv_.wait_for(lock, std::chrono::microseconds(bytes * 1'000'000 / bytes_per_sec),
                      [&] { return stop_; });
    };
    for (const auto& [first, next] : sealed) {
      const std::string path = config_.data_dir + "/" + wal_segment_name(first);
      if (stopping()) return report;
      if (!fs_->exists(path)) continue;
      auto scan = scan_wal_segment(*fs_, path, [](uint64_t, std::vector<StateOp>&&) {});
      std::string why;
      if (!scan && !fs_->exists(path)) continue;  // a checkpoint dropped it meanwhile
      if (!scan) {
        if (scan.status().code() != Code::kCorruption) return scan.status();
        why = scan.status().message();
      } else if (!scan->damage.empty()) {
        why = scan->damage;
      } else if (scan->header.first_lsn != first ||
                 (scan->records == 0 ? first : scan->last_lsn + 1) != next) {
        why = path + " holds LSNs up to " + std::to_string(scan->last_lsn) +
              " where the log goes on at " + std::to_string(next);
      }
      if (!why.empty()) {
        report.damage.push_back(why);
        damaged.push_back(path);
      }
      pace(scan ? scan->file_bytes : 0);
    }
    for (uint64_t lsn : snaps) {
      const std::string path = config_.data_dir + "/" + snapshot_name(lsn);
      if (stopping()) return report;
      if (!fs_->exists(path)) continue;
      auto bytes = read_file(*fs_, path);
      if (!bytes && !fs_->exists(path)) continue;  // a checkpoint dropped it meanwhile
      if (!bytes) return bytes.status();
      auto verified = verify_snapshot(*bytes);
      if (!verified) {
        report.damage.push_back(path + ": " + verified.status().message());
        damaged.push_back(path);
      }
      pace(bytes->size());
    }
    scrub_passes_++;
    if (damaged.empty()) return report;
    scrub_damage_ += damaged.size();
    {
      std::lock_guard lock(scrub_report_mu_);
      scrub_last_damage_ = report.damage.back();
    }
    // The state in memory is what the files held when they were read at open
    // (or written since): a checkpoint of it replaces every damaged file. They
    // are set aside first (a restart would refuse them anyway), so the
    // checkpoint's clean-up cannot delete them.
    for (const auto& path : damaged) {
      if (fs_->exists(path)) (void)fs_->rename(path, path + ".damaged");
    }
    Status st = checkpoint_now(/*repair=*/true);
    std::string done;
    if (st.is_ok()) {
      report.repaired = true;
      scrub_repairs_++;
      done =
          "repaired from memory: a new checkpoint replaces the damaged files, set aside as "
          "*.damaged";
    } else {
      done = "the repairing checkpoint failed: " + st.message();
    }
    if (config_.on_damage) {
      for (const auto& what : report.damage) config_.on_damage(what + "; " + done);
    }
    return report;
  }

  Status close() override {
    if (tl_on_commit_thread) return Status::invalid("close() from a callback would deadlock");
    {
      std::unique_lock lock(mu_);
      if (closed_) return Status::ok();
      closed_ = true;  // refuse new requests; the commit thread drains the queue
    }
    queue_cv_.notify_all();
    if (committer_.joinable()) committer_.join();
    {
      std::lock_guard lock(bg_mu_);
      stop_ = true;
    }
    bg_cv_.notify_all();
    if (background_.joinable()) background_.join();
    if (scrubber_.joinable()) scrubber_.join();
    if (expirer_.joinable()) expirer_.join();
    Status st;
    {
      std::lock_guard lock(wal_mu_);
      if (failed_.is_ok()) {
        st = wal_->sync();
        if (st.is_ok()) durable_lsn_ = last_lsn_;
        // Everything issued is on disk: the next open may continue this stream.
        if (st.is_ok()) st = write_file_atomic(*fs_, config_.data_dir, kCleanFile, "");
      } else {
        // No fsync after a failed one; say so rather than report success.
        st = failed_;
      }
    }
    lock_.reset();
    return st;
  }

 private:
  // Live keys from `start` on, in key order, while `in_range(key)` holds; at
  // most `limit` (0: no limit).
  template <typename InRange>
  std::vector<KeyValue> scan_while(std::string_view start, InRange in_range, size_t limit) {
    std::vector<KeyValue> out;
    const uint64_t now = clock_->now_ms();
    std::shared_lock lock(state_mu_);
    for (auto it = state_.kv().lower_bound(start); it != state_.kv().end() && in_range(it->first);
         ++it) {
      if (limit != 0 && out.size() >= limit) break;
      const Entry& e = it->second;
      if (e.live_at(now)) out.push_back({it->first, e.value, e.meta, e.expires_ms});
    }
    return out;
  }

  struct CheckpointOut {
    bool force = false;  // capture even if nothing was written since the last one
    std::string bytes;
    uint64_t lsn = 0;
  };
  // `wavekv repair-timestamps` (and its listing): see future_versions().
  struct TimestampRepairJob {
    uint64_t max_drift_ms = 0;
    std::optional<std::string> key;
    bool rewrite = false;  // false: only list what is found
    std::vector<FutureVersion> found;
  };
  // One queued unit of work for the commit thread: a batch to write, or a
  // checkpoint capture.
  struct Request {
    const WriteBatch* borrowed = nullptr;  // a blocking write's batch (caller waits)
    std::vector<StateOp> raw_ops;          // replicated ops, written as they are
    WriteBatch owned;                      // an async write's batch
    CheckpointOut* checkpoint = nullptr;
    // List or repair future timestamps (alone in its round).
    TimestampRepairJob* timestamp_repair = nullptr;
    WriteCallback done;
    std::chrono::steady_clock::time_point queued;  // set by submit()
    const WriteBatch& batch() const { return borrowed != nullptr ? *borrowed : owned; }
  };

  void refuse_client_writes(const std::string& why) override {
    std::lock_guard lock(refusal_mu_);
    write_refusal_ = why;
    refusing_.store(!why.empty());
  }

  Status check_batch(const WriteBatch& batch) const {
    if (refusing_.load()) {
      std::lock_guard lock(refusal_mu_);
      if (!write_refusal_.empty()) return Status::unavailable(write_refusal_);
    }
    for (const auto& item : batch.items()) {
      if (item.key.size() > config_.max_key_bytes)
        return Status::invalid("key of " + std::to_string(item.key.size()) +
                               " bytes exceeds max_key_bytes " +
                               std::to_string(config_.max_key_bytes));
      if (item.value.size() > config_.max_value_bytes)
        return Status::invalid("value of " + std::to_string(item.value.size()) +
                               " bytes exceeds max_value_bytes " +
                               std::to_string(config_.max_value_bytes));
    }
    return Status::ok();
  }

  // Queues `req`; if that fails, `req` is left untouched with the caller.
  Status submit(std::unique_ptr<Request>& req) {
    {
      std::lock_guard lock(mu_);
      if (closed_) return Status::closed("the store is closed");
      req->queued = std::chrono::steady_clock::now();
      queue_.push_back(std::move(req));
    }
    queue_cv_.notify_one();
    return Status::ok();
  }

  // Blocks until the commit thread has finished the request. The waiter
  // state is shared with the callback, so the commit thread may still touch it
  // after the caller has woken and returned; waking is one futex call, with no
  // mutex for the woken thread to fight over.
  Status submit_and_wait(std::unique_ptr<Request> req) {
    struct Waiter {
      std::atomic<bool> done{false};
      Status status;
    };
    auto waiter = std::make_shared<Waiter>();
    req->done = [waiter](Status st) {
      waiter->status = std::move(st);
      waiter->done.store(true, std::memory_order_release);
      waiter->done.notify_one();
    };
    WAVEKV_RETURN_IF_ERROR(submit(req));
    waiter->done.wait(false, std::memory_order_acquire);
    return waiter->status;
  }

  // Group commit: one thread owns the write path. Each round it takes every
  // queued batch that fits in max_group_bytes, writes them as one WAL record
  // with one fsync, applies them, and runs their callbacks. Writers that arrive
  // during an fsync form the next group, so durable throughput grows with the
  // number of concurrent writers instead of being capped at one fsync each.
  void commit_loop() {
    tl_on_commit_thread = true;
    commit_thread_ = std::this_thread::get_id();
    std::vector<std::unique_ptr<Request>> group;
    for (;;) {
      group.clear();
      {
        std::unique_lock lock(mu_);
        queue_cv_.wait(lock, [&] { return !queue_.empty() || closed_; });
        if (queue_.empty()) break;  // closed and drained
        if (queue_.front()->checkpoint != nullptr || queue_.front()->timestamp_repair != nullptr) {
          group.push_back(std::move(queue_.front()));
          queue_.pop_front();
        } else {
          uint64_t bytes = 0;
          while (!queue_.empty() && queue_.front()->checkpoint == nullptr &&
                 queue_.front()->timestamp_repair == nullptr) {
            uint64_t b = 0;
            for (const auto& it : queue_.front()->batch().items())
              b += it.key.size() + it.value.size() + 48;
            if (!group.empty() && bytes + b > config_.max_group_bytes) break;
            bytes += b;
            group.push_back(std::move(queue_.front()));
            queue_.pop_front();
          }
        }
      }
      Status st = group.front()->checkpoint != nullptr
                      ? capture_checkpoint(*group.front()->checkpoint)
                  : group.front()->timestamp_repair != nullptr
                      ? run_timestamp_repair(*group.front()->timestamp_repair)
                      : commit(group);
      const auto finished = std::chrono::steady_clock::now();
      for (auto& req : group) {
        // A client's write (not a replicated batch, a checkpoint or a repair):
        // how long it took from submission to its outcome.
        if (req->raw_ops.empty() && req->checkpoint == nullptr && req->timestamp_repair == nullptr)
          write_seconds_.record(std::chrono::duration<double>(finished - req->queued).count());
        if (req->done) req->done(st);
      }
    }
  }

  // Runs on the commit thread only; it alone issues seqs, timestamps and LSNs.
  Status commit(const std::vector<std::unique_ptr<Request>>& group) {
    assert(on_commit_thread());
    {
      std::lock_guard lock(wal_mu_);
      if (!failed_.is_ok()) return failed_;
    }
    uint64_t wall = clock_->now_ms();
    // Replicated entries of our own origin (a re-bootstrap) may have raised
    // next_seq; only this thread changes the state, so reading it is safe.
    next_seq_ = std::max(next_seq_, state_.next_seq());
    std::vector<StateOp> ops;
    // The newest version of each key set by an earlier op of this group: the
    // state does not hold them yet, and a local write after one of them must
    // still be stamped after it (ClockStepGroup.* in tests/clock_step_test.cc).
    std::map<std::string, Timestamp, std::less<>> pending;
    auto note = [&](const std::string& key, Timestamp ts) {
      auto [it, fresh] = pending.try_emplace(key, ts);
      if (!fresh) it->second = std::max(it->second, ts);
    };
    for (const auto& req : group) {
      // One replicated batch (one peer message) moves the clock at most
      // max_clock_step_ms: a peer's timestamp, however far ahead within the
      // drift bound, does not drag every later local write along.
      Timestamp seen = 0;
      for (const auto& op : req->raw_ops) {
        if (const auto* e = std::get_if<OpSetEntry>(&op)) {
          seen = std::max(seen, e->entry.meta.timestamp);
          note(e->key, e->entry.meta.timestamp);
        }
        if (const auto* a = std::get_if<OpAdoptAcks>(&op)) seen = std::max(seen, a->clock);
        ops.push_back(op);
      }
      if (seen != 0) hlc_.observe_bounded(seen, wall, config_.max_clock_step_ms);
      for (const auto& item : req->batch().items()) {
        OpSetEntry op;
        op.key = item.key;
        op.entry.value = item.value;
        op.entry.tombstone = item.tombstone;
        op.entry.expires_ms = item.tombstone ? 0 : item.expires_ms;
        op.entry.meta = Meta{identity_.node, next_seq_++, stamp_for(item.key, wall, pending),
                             identity_.incarnation};
        note(op.key, op.entry.meta.timestamp);
        ops.emplace_back(std::move(op));
      }
    }
    return persist(ops, group.size());
  }

  // A local write's timestamp: the clock's, but after the version of the key
  // held here or set earlier in the same group (or, for a key not held,
  // after every collected tombstone), so a write always wins over what this
  // node held when it was made, even a version stamped further ahead than
  // the clock may step (docs/PROTOCOL.md, "Clock step bound"). Commit thread
  // only.
  Timestamp stamp_for(std::string_view key, uint64_t wall,
                      const std::map<std::string, Timestamp, std::less<>>& pending) {
    Timestamp ts = hlc_.now(wall);
    auto held = state_.kv().find(key);
    Timestamp floor =
        held != state_.kv().end() ? held->second.meta.timestamp : state_.collected_before();
    auto earlier = pending.find(key);
    if (earlier != pending.end()) floor = std::max(floor, earlier->second);
    return std::max(ts, floor + 1);
  }

  // Commit thread only: appends `ops` as one WAL record (fsynced with
  // `always`), then applies them and delivers the watch events. `requests`
  // is how many writes the record carries.
  Status persist(const std::vector<StateOp>& ops, uint64_t requests) {
    assert(on_commit_thread());
    std::string encoded;
    encode_ops(ops, encoded);
    std::string framed;
    {
      std::lock_guard lock(wal_mu_);
      uint64_t lsn = last_lsn_ + 1;
      encode_wal_record(lsn, encoded, framed);
      uint64_t first_before = wal_->segment_first_lsn();
      Status st = wal_->append(framed, lsn);
      if (st.is_ok() && config_.durability == Durability::kAlways) st = timed_sync();
      if (!st.is_ok()) {
        failed_ = Status::failed("a WAL write or fsync failed (" + st.message() +
                                 "); the store refuses writes until it is reopened");
        return failed_;
      }
      if (wal_->segment_first_lsn() != first_before) segments_.push_back(wal_->segment_first_lsn());
      last_lsn_ = lsn;
      if (config_.durability == Durability::kAlways) durable_lsn_ = lsn;
      wal_bytes_ += framed.size();
      wal_bytes_since_checkpoint_ += framed.size();
      ops_since_checkpoint_ += ops.size();
    }

    std::vector<WatchEvent> events;
    bool watching;
    {
      std::lock_guard lock(watch_mu_);
      watching = !watchers_.empty();
    }
    const uint64_t now = watching ? clock_->now_ms() : 0;
    {
      std::unique_lock lock(state_mu_);
      for (auto& op : ops) {
        auto applied = state_.apply(op);
        if (applied.changed && std::holds_alternative<OpExpire>(op)) expired_keys_++;
        if (!watching || !applied.changed) continue;
        if (const auto* s = std::get_if<OpSetEntry>(&op))
          events.push_back(version_event(s->key, s->entry, applied.previous, now));
        if (const auto* r = std::get_if<OpRepairEntry>(&op))
          events.push_back(version_event(r->key, r->entry, applied.previous, now));
        if (const auto* x = std::get_if<OpExpire>(&op))
          events.push_back({x->key, {}, true, x->meta, applied.previous->expires_ms, true});
      }
    }
    writes_ += requests;
    group_commits_++;
    group_commit_requests_.record(static_cast<double>(requests));
    deliver(events);
    maybe_request_checkpoint();
    return Status::ok();
  }

  static WatchEvent version_event(const std::string& key, const Entry& entry,
                                  const std::optional<Entry>& previous, uint64_t now) {
    WatchEvent ev{key, entry.value, entry.tombstone, entry.meta, entry.expires_ms};
    if (previous && previous->live_at(now)) {
      ev.was_live = true;
      ev.previous_expires_ms = previous->expires_ms;
      ev.value_changed = entry.tombstone || previous->value != entry.value;
    }
    return ev;
  }

  // fsyncs the WAL, counted and timed (wal_mu_ held).
  Status timed_sync() {
    const auto start = std::chrono::steady_clock::now();
    Status st = wal_->sync();
    fsyncs_++;
    wal_fsync_seconds_.record(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return st;
  }

  void deliver(const std::vector<WatchEvent>& events) {
    if (events.empty()) return;
    std::lock_guard lock(watch_mu_);
    for (const auto& ev : events) {
      for (const auto& [id, w] : watchers_) {
        if (ev.key.starts_with(w.first)) w.second(ev);
      }
    }
  }

  void maybe_request_checkpoint() {
    bool want;
    {
      std::lock_guard lock(wal_mu_);
      want = (config_.checkpoint_wal_bytes != 0 &&
              wal_bytes_since_checkpoint_ >= config_.checkpoint_wal_bytes) ||
             (config_.checkpoint_ops != 0 && ops_since_checkpoint_ >= config_.checkpoint_ops);
    }
    if (!want) return;
    {
      std::lock_guard lock(bg_mu_);
      checkpoint_wanted_ = true;
    }
    bg_cv_.notify_all();
  }

  // Commit thread only (it alone issues seqs and timestamps and changes the
  // state, so it reads state_ without the lock). A version stamped past the
  // drift bound is refused by every peer, and no write from a correct clock
  // beats it here; LWW cannot undo it, so the repair replaces it by exact
  // version (docs/PROTOCOL.md, "Future timestamps").
  Status run_timestamp_repair(TimestampRepairJob& job) {
    assert(on_commit_thread());
    {
      std::lock_guard lock(wal_mu_);
      if (!failed_.is_ok()) return failed_;
    }
    const uint64_t wall = clock_->now_ms();
    const uint64_t horizon_ms =
        job.max_drift_ms > UINT64_MAX - wall ? UINT64_MAX : wall + job.max_drift_ms;
    state_.for_each_stamped_after(horizon_ms, [&](const std::string& k, const Entry& e) {
      if (!job.key || *job.key == k) job.found.push_back({k, e.meta, e.tombstone, Meta{}});
      return true;
    });
    if (!job.rewrite || job.found.empty()) return Status::ok();
    // Replacements are stamped from the newest version that is not itself
    // past the bound (or the wall clock): not after the ones that remain.
    Timestamp newest_sane = 0;
    for (const auto& [k, e] : state_.kv())
      if (timestamp_millis(e.meta.timestamp) <= horizon_ms)
        newest_sane = std::max(newest_sane, e.meta.timestamp);
    hlc_.reset(newest_sane);
    next_seq_ = std::max(next_seq_, state_.next_seq());
    std::vector<StateOp> ops;
    for (auto& f : job.found) {
      const Entry& old = state_.kv().find(f.key)->second;
      OpRepairEntry op;
      op.key = f.key;
      op.replaced = f.meta;
      op.entry.value = old.value;
      op.entry.tombstone = old.tombstone;
      op.entry.meta = Meta{identity_.node, next_seq_++, hlc_.now(wall), identity_.incarnation};
      f.repaired = op.entry.meta;
      ops.emplace_back(std::move(op));
    }
    ops.emplace_back(OpResetClock{hlc_.last()});
    Status st = persist(ops, 1);
    // The clock follows the newest version that remains: past any future
    // version not repaired (one key at a time), back to now once none is left.
    hlc_.observe(state_.max_timestamp());
    last_checkpoint_ms_ = clock_->now_ms();
    if (!st.is_ok()) {
      for (auto& f : job.found) f.repaired = Meta{};
      return st;
    }
    return Status::ok();
  }

  // Commit thread only: the state as of last_lsn_, and a fresh WAL segment after it so
  // that the segments the snapshot covers can later be dropped whole.
  Status capture_checkpoint(CheckpointOut& out) {
    assert(on_commit_thread());
    std::lock_guard lock(wal_mu_);
    if (!failed_.is_ok()) return failed_;
    if (last_lsn_ == checkpoint_lsn_ && !out.force) return Status::ok();
    {
      std::shared_lock state_lock(state_mu_);
      out.bytes = encode_snapshot(state_, last_lsn_);
    }
    out.lsn = last_lsn_;
    // A segment that holds no record yet already starts after the snapshot
    // (rolling would give its successor the same name); the records are in
    // earlier segments, fsynced when this one was started.
    if (wal_->next_lsn() != wal_->segment_first_lsn()) {
      Status st = wal_->roll();
      if (!st.is_ok()) {
        failed_ = Status::failed("starting a WAL segment failed (" + st.message() +
                                 "); the store refuses writes until it is reopened");
        return failed_;
      }
      fsyncs_++;
      durable_lsn_ = last_lsn_;
      segments_.push_back(wal_->segment_first_lsn());
    }
    wal_bytes_since_checkpoint_ = 0;
    ops_since_checkpoint_ = 0;
    return Status::ok();
  }

  // Keeps the new snapshot and the one before it (the fallback), and the WAL
  // from the fallback on; removes everything older. Without `keep_fallback`,
  // keeps only the new snapshot and the WAL after it.
  Status drop_covered_files(uint64_t lsn, uint64_t bytes, bool keep_fallback = true) {
    std::vector<std::string> doomed;
    {
      std::lock_guard lock(wal_mu_);
      checkpoint_lsn_ = lsn;
      snapshot_bytes_ = bytes;
      if (std::find(snapshots_.begin(), snapshots_.end(), lsn) == snapshots_.end())
        snapshots_.push_back(lsn);
      std::sort(snapshots_.begin(), snapshots_.end());
      while (snapshots_.size() > (keep_fallback ? 2u : 1u)) {
        doomed.push_back(snapshot_name(snapshots_.front()));
        snapshots_.erase(snapshots_.begin());
      }
      if (snapshots_.size() == 2 || !keep_fallback) {
        uint64_t fallback = snapshots_.front();
        // Segment i holds LSNs [segments_[i], segments_[i+1]); drop it if all
        // of them are covered by the fallback snapshot.
        while (segments_.size() >= 2 && segments_[1] <= fallback + 1) {
          doomed.push_back(wal_segment_name(segments_.front()));
          segments_.erase(segments_.begin());
        }
      }
    }
    for (const auto& name : doomed) {
      std::string path = config_.data_dir + "/" + name;
      if (fs_->exists(path)) WAVEKV_RETURN_IF_ERROR(fs_->remove(path));
    }
    if (!doomed.empty()) WAVEKV_RETURN_IF_ERROR(fs_->sync_dir(config_.data_dir));
    return Status::ok();
  }

  void background_loop() {
    const auto period = std::chrono::milliseconds(
        config_.durability == Durability::kInterval ? config_.sync_interval_ms : 1000);
    std::unique_lock lock(bg_mu_);
    while (!stop_) {
      bg_cv_.wait_for(lock, period, [&] { return stop_ || checkpoint_wanted_; });
      if (stop_) break;
      bool want_checkpoint = checkpoint_wanted_;
      checkpoint_wanted_ = false;
      lock.unlock();
      if (config_.durability == Durability::kInterval) sync_now();
      if (want_checkpoint) (void)checkpoint();
      lock.lock();
    }
  }

  // Every expire_interval_ms: up to expire_batch values whose expiry has
  // passed become tombstones, in one WAL record of OpExpire. The record need
  // not be durable (a crash only makes the next sweep write it again), but
  // it goes through the commit thread like any write, after what is queued.
  void expire_loop() {
    const auto period = std::chrono::milliseconds(config_.expire_interval_ms);
    std::unique_lock lock(bg_mu_);
    while (!stop_) {
      if (bg_cv_.wait_for(lock, period, [&] { return stop_; })) break;
      lock.unlock();
      // Its outcome is the store's: a failed WAL write fails every write.
      (void)expire_now();
      lock.lock();
    }
  }

  Result<uint64_t> expire_now() override {
    if (tl_on_commit_thread) return Status::invalid("expire_now from a callback would deadlock");
    std::vector<StateOp> ops = due_expiries(clock_->now_ms(), config_.expire_batch);
    const uint64_t n = ops.size();
    if (n == 0) return n;
    auto req = std::make_unique<Request>();
    req->raw_ops = std::move(ops);
    WAVEKV_RETURN_IF_ERROR(submit_and_wait(std::move(req)));
    return n;
  }

  // OpExpire for the values expired at `now`, soonest first, at most `limit`.
  std::vector<StateOp> due_expiries(uint64_t now, uint64_t limit) {
    std::vector<StateOp> ops;
    std::shared_lock lock(state_mu_);
    for (const auto& [when, key] : state_.expiry_index()) {
      if (when >= now || ops.size() >= limit) break;  // expired_at: now > when
      ops.emplace_back(OpExpire{*key, state_.kv().find(*key)->second.meta});
    }
    return ops;
  }

  bool stopping() {
    std::lock_guard lock(bg_mu_);
    return stop_;
  }

  // A pass every scrub_interval_ms, the first one an interval after open.
  void scrub_loop() {
    const auto period = std::chrono::milliseconds(config_.scrub_interval_ms);
    std::unique_lock lock(bg_mu_);
    while (!stop_) {
      if (bg_cv_.wait_for(lock, period, [&] { return stop_; })) break;
      lock.unlock();
      auto pass = scrub(config_.scrub_bytes_per_sec);
      if (!pass && config_.on_damage)
        config_.on_damage("scrub pass failed: " + pass.status().message());
      lock.lock();
    }
  }

  void sync_now() {
    std::lock_guard lock(wal_mu_);
    if (!failed_.is_ok() || durable_lsn_ == last_lsn_) return;
    Status st = timed_sync();
    if (!st.is_ok()) {
      failed_ = Status::failed("a WAL fsync failed (" + st.message() +
                               "); the store refuses writes until it is reopened");
      return;
    }
    durable_lsn_ = last_lsn_;
  }

  const Config config_;
  const std::shared_ptr<FileSystem> fs_;
  const std::shared_ptr<Clock> clock_;
  std::unique_ptr<FileLock> lock_;
  const Identity identity_;

  // The core state. Readers share, the commit thread applies exclusively.
  std::shared_mutex state_mu_;
  State state_;
  const RecoveryReport recovery_;

  // Owned by the commit thread, which records its id here when it starts
  // (only ever read on that thread: by on_commit_thread()'s asserts).
  std::thread::id commit_thread_;
  bool on_commit_thread() const { return std::this_thread::get_id() == commit_thread_; }
  HybridClock hlc_;
  uint64_t next_seq_ = 1;

  // The commit queue.
  std::mutex mu_;
  std::deque<std::unique_ptr<Request>> queue_;
  std::condition_variable queue_cv_;
  bool closed_ = false;
  std::thread committer_;

  // The WAL and the figures that move with it.
  mutable std::mutex wal_mu_;
  std::unique_ptr<WalWriter> wal_;
  Status failed_;  // once set, no more writes
  uint64_t last_lsn_ = 0;
  uint64_t durable_lsn_ = 0;
  uint64_t wal_bytes_ = 0;
  uint64_t wal_bytes_since_checkpoint_ = 0;
  uint64_t ops_since_checkpoint_ = 0;
  uint64_t checkpoint_lsn_ = 0;
  uint64_t snapshot_bytes_ = 0;
  std::vector<uint64_t> segments_;   // first LSNs of live segments, ascending
  std::vector<uint64_t> snapshots_;  // LSNs of snapshot files, ascending

  std::mutex checkpoint_mu_;

  std::mutex watch_mu_;
  std::map<WatchId, std::pair<std::string, WatchCallback>> watchers_;
  WatchId next_watch_id_ = 0;

  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> group_commits_{0};
  std::atomic<uint64_t> fsyncs_{0};
  Histogram wal_fsync_seconds_{Histogram::latency_seconds_bounds()};
  Histogram group_commit_requests_{Histogram::size_bounds()};
  Histogram write_seconds_{Histogram::latency_seconds_bounds()};
  std::atomic<uint64_t> checkpoints_{0};
  std::atomic<uint64_t> last_checkpoint_ms_{0};

  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  bool stop_ = false;
  bool checkpoint_wanted_ = false;
  std::thread background_;

  // refuse_client_writes()
  std::atomic<bool> refusing_{false};
  mutable std::mutex refusal_mu_;
  std::string write_refusal_;

  std::mutex scrub_mu_;  // one pass at a time
  std::thread scrubber_;
  std::thread expirer_;
  std::atomic<uint64_t> expired_keys_{0};
  std::atomic<uint64_t> scrub_passes_{0};
  std::atomic<uint64_t> scrub_bytes_{0};
  std::atomic<uint64_t> scrub_damage_{0};
  std::atomic<uint64_t> scrub_repairs_{0};
  std::mutex scrub_report_mu_;
  std::string scrub_last_damage_;
};

}  // namespace

Result<std::unique_ptr<Store>> Store::open(Config config) {
  auto s = open_replicated(std::move(config));
  if (!s) return s.status();
  return std::unique_ptr<Store>(std::move(s).value());
}

Result<std::unique_ptr<ReplicatedStore>> open_replicated(Config config) {
  WAVEKV_RETURN_IF_ERROR(config.validate());
  std::shared_ptr<FileSystem> fs = config.fs ? config.fs : posix_filesystem();
  const std::string& dir = config.data_dir;
  WAVEKV_RETURN_IF_ERROR(fs->create_dirs(dir));
  auto lock = fs->lock(dir + "/" + kLockFile);
  if (!lock) return lock.status();

  auto plan = plan_recovery(*fs, dir, config.node_id, config.durability, config.random);
  if (!plan) return plan.status();
  if (!plan->report.wal_corruption.empty()) {
    // Not what a crash leaves: cutting it on our own would silently drop
    // acknowledged writes. The operator decides (docs/FORMAT.md, "Damage").
    return Status::corruption(
        "refusing to open " + dir + ": " + plan->report.wal_corruption +
        ". Run `wavekv check --repair " + dir +
        "` to cut there (the cut bytes are kept in *.damaged files); in a cluster, peers send "
        "the writes they hold back once the node rejoins");
  }
  WAVEKV_RETURN_IF_ERROR(apply_repairs(*fs, dir, *plan));

  WalWriter::Options opts;
  opts.dir = dir;
  opts.node = plan->identity.node;
  opts.segment_bytes = config.wal_segment_bytes;
  opts.preallocate = config.wal_preallocate;
  auto wal =
      WalWriter::open(*fs, opts, plan->resume_first_lsn, plan->resume_offset, plan->last_lsn + 1);
  if (!wal) return wal.status();
  return std::unique_ptr<ReplicatedStore>(
      new StoreImpl(std::move(config), std::move(fs), std::move(lock).value(),
                    std::move(plan).value(), std::move(wal).value()));
}

}  // namespace wavekv
