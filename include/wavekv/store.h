// The WaveKV store: a durable, thread-safe key-value map on one data directory.
//
// Every mutation is a StateOp appended to the write-ahead log before it is
// applied; opening the store replays exactly those ops on top of the newest
// valid checkpoint.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wavekv/config.h"
#include "wavekv/histogram.h"
#include "wavekv/status.h"
#include "wavekv/types.h"

namespace wavekv {

// An atomic multi-key write: all of it is one WAL record, applied at once.
class WriteBatch {
 public:
  struct Item {
    std::string key;
    std::string value;
    bool tombstone = false;
    uint64_t expires_ms = 0;  // wall-clock ms since the epoch; 0: never expires
  };
  // `expires_ms`: when the key dies (Entry::expired_at); 0: never.
  void put(std::string_view key, std::string_view value, uint64_t expires_ms = 0) {
    items_.push_back({std::string(key), std::string(value), false, expires_ms});
  }
  void del(std::string_view key) { items_.push_back({std::string(key), {}, true, 0}); }
  const std::vector<Item>& items() const { return items_; }
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }

 private:
  std::vector<Item> items_;
};

// A change seen by a watcher. Deletes are events too.
struct WatchEvent {
  std::string key;
  std::string value;  // empty for deletes
  bool deleted = false;
  Meta meta;
  uint64_t expires_ms = 0;  // of a value; 0: never
  bool expired = false;     // deleted because its expiry passed (no new version)
  // What the key held just before a new version of a value, as readers saw
  // it at the commit: whether it was live, and if so its expiry and whether
  // the value's bytes changed (a change of the expiry alone keeps them).
  bool was_live = false;
  uint64_t previous_expires_ms = 0;
  bool value_changed = true;
};
// Called on the store's commit thread, in commit order, after the change is
// durable per the durability mode and visible to readers. Keep it short; it may
// call write_async but not the blocking write/put/del/checkpoint/close (those
// fail with kInvalidArgument there rather than deadlock).
using WatchCallback = std::function<void(const WatchEvent&)>;
using WatchId = uint64_t;
// Called once with the outcome of write_async, on the commit thread (or on the
// calling thread if the batch is refused up front). Same rules as WatchCallback.
using WriteCallback = std::function<void(Status)>;

// What opening the store found and did. Damage is reported here, not hidden.
struct RecoveryReport {
  uint64_t snapshot_lsn = 0;                   // the checkpoint recovery started from (0: none)
  std::vector<std::string> snapshots_skipped;  // corrupt snapshots passed over, with why
  uint64_t wal_records_replayed = 0;
  uint64_t wal_bytes_cut = 0;                // bytes of a damaged tail that were cut off
  std::string wal_damage;                    // what the damage was; empty if none
  std::vector<std::string> files_set_aside;  // WAL segments after the damage, renamed *.damaged
  // Damage that a crash does not leave, so opening refuses (the message says
  // where and what a repair costs) and `wavekv check --repair` repairs it:
  // intact records after the damage, which a cut would lose, or a damaged
  // segment header. A torn tail (nothing intact after it) is cut on open.
  std::string wal_corruption;
  uint64_t wal_records_after_damage = 0;  // intact records (above the snapshot) a cut loses
  // Why this open started a new incarnation of an existing directory (its
  // writes go to a new origin stream); empty if it did not.
  std::string new_incarnation;
  bool clean() const {
    return snapshots_skipped.empty() && wal_damage.empty() && wal_corruption.empty();
  }
};

struct StoreStatus {
  NodeId node_id = 0;
  uint64_t incarnation = 0;
  uint64_t live_keys = 0;  // expired values count until the sweep turns them into tombstones
  uint64_t tombstones = 0;
  uint64_t expiring_keys = 0;  // live values with an expiry
  uint64_t expired_keys = 0;   // values expired (turned into tombstones) since open
  uint64_t data_bytes = 0;     // keys + values of live entries
  uint64_t next_seq = 0;
  Timestamp clock = 0;  // the hybrid clock's latest timestamp
  // WAL
  uint64_t last_lsn = 0;     // the newest WAL record written
  uint64_t durable_lsn = 0;  // the newest WAL record known to be fsynced
  uint64_t wal_segments = 0;
  uint64_t wal_bytes = 0;  // bytes of records in the live segments
  uint64_t writes = 0;     // write calls committed since open
  uint64_t queued = 0;     // requests waiting for the commit thread now
  uint64_t group_commits = 0;
  uint64_t fsyncs = 0;
  // Each fsync of WAL records (a durable commit, an interval sync); the
  // segment roll at a checkpoint, counted in `fsyncs`, is not in it.
  HistogramSnapshot wal_fsync_seconds;
  HistogramSnapshot group_commit_requests;  // write requests per group commit
  // A client write's submission to its outcome (queue, WAL, fsync per the
  // durability mode, apply); replicated batches are not in it.
  HistogramSnapshot write_seconds;
  // Checkpoints
  uint64_t checkpoint_lsn = 0;  // the newest checkpoint covers WAL records up to here
  uint64_t checkpoints = 0;     // taken since open
  // Wall ms (the store's clock) of the newest checkpoint written since open,
  // or of the open itself if none was (RESP LASTSAVE, as Redis counts start).
  uint64_t last_checkpoint_ms = 0;
  uint64_t snapshot_bytes = 0;
  uint64_t wal_bytes_since_checkpoint = 0;
  uint64_t ops_since_checkpoint = 0;
  RecoveryReport recovery;
  // Scrubbing (Config::scrub_interval_ms)
  uint64_t scrub_passes = 0;  // completed since open
  uint64_t scrub_bytes = 0;   // read and verified since open
  uint64_t scrub_damage = 0;  // damaged files found since open
  uint64_t scrub_repairs = 0;
  std::string scrub_last_damage;  // what the newest damage was; empty if none
};

// One scrub pass: what was read, what was damaged, whether it was repaired.
struct ScrubReport {
  uint64_t files = 0;
  uint64_t bytes = 0;
  std::vector<std::string> damage;  // one line per damaged file
  bool repaired = false;            // a checkpoint made every damaged file unneeded
};

class Store {
 public:
  // Opens (creating if needed) the store in config.data_dir.
  static Result<std::unique_ptr<Store>> open(Config config);
  virtual ~Store() = default;  // closes if still open

  virtual Status put(std::string_view key, std::string_view value) = 0;
  virtual Status del(std::string_view key) = 0;
  virtual Status write(const WriteBatch& batch) = 0;
  // Queues `batch` and returns at once; `done` reports when it is durable per
  // the durability mode and visible (or why it failed). Lets one thread keep
  // many writes in flight, as a network server does.
  virtual void write_async(WriteBatch batch, WriteCallback done) = 0;

  // The store's wall clock (Config::clock), ms since the epoch: what expiry
  // is judged by.
  virtual uint64_t now_ms() = 0;

  // The value, or kNotFound if the key is absent, deleted or expired.
  virtual Result<std::string> get(std::string_view key) = 0;
  // Calls `fn` with the value, without copying it first (a server learns
  // the size of a reply before building it), or returns kNotFound. `fn` runs
  // under the store's read lock: it must be short and must not call the store.
  virtual Status view(std::string_view key, const std::function<void(std::string_view)>& fn) {
    auto v = get(key);
    if (!v) return v.status();
    fn(*v);
    return Status::ok();
  }
  // The current version including tombstones and expired values (see
  // Entry::live_at), or nullopt if never written (or its tombstone was
  // collected).
  virtual std::optional<Entry> get_entry(std::string_view key) = 0;

  // Live keys (not expired) starting with `prefix`, in key order, at most
  // `limit` (0: no limit).
  virtual std::vector<KeyValue> scan_prefix(std::string_view prefix, size_t limit) = 0;
  // Live keys in [start, end) in key order; an empty `end` means no upper bound.
  virtual std::vector<KeyValue> scan_range(std::string_view start, std::string_view end,
                                           size_t limit) = 0;

  // Calls `callback` for every later change of a key starting with `prefix`
  // (an empty prefix watches everything).
  virtual WatchId watch(std::string_view prefix, WatchCallback callback) = 0;
  virtual void unwatch(WatchId id) = 0;

  virtual StoreStatus status() = 0;
  virtual NodeId node_id() const = 0;

  // One expiry sweep now (what Config::expire_interval_ms schedules): up to
  // Config::expire_batch expired values become tombstones. Returns how many,
  // or an error if the store failed or is called from a callback.
  virtual Result<uint64_t> expire_now() { return uint64_t{0}; }

  // Takes a checkpoint now (snapshot, then drops the WAL it covers).
  virtual Status checkpoint() = 0;
  // Re-reads every sealed WAL segment and snapshot and verifies it, at most
  // `bytes_per_sec` (0: no limit); repairs damage from memory. See
  // Config::scrub_interval_ms. Stores that keep no files refuse.
  virtual Result<ScrubReport> scrub(uint64_t bytes_per_sec = 0) {
    (void)bytes_per_sec;
    return Status::invalid("this store keeps no files to scrub");
  }
  // Drains writes, fsyncs, and releases the data directory. Idempotent.
  // After an earlier WAL failure it skips the fsync and returns kFailed.
  virtual Status close() = 0;
};

}  // namespace wavekv
