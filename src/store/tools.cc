// check / repair / repair-timestamps (include/wavekv/tools.h): recovery's plan
// read out, recovery's repairs applied on their own, and the store's
// future-version scan, for programs that must not open the store for writes.
#include "wavekv/tools.h"

#include <memory>
#include <utility>

#include "store/recovery.h"
#include "store/store_internal.h"

namespace wavekv {
namespace {

std::shared_ptr<FileSystem> fs_of(const Config& config) {
  return config.fs ? config.fs : posix_filesystem();
}

// The tools repair or read a directory; they never create one.
Status require_dir(FileSystem& fs, const std::string& dir) {
  if (dir.empty()) return Status::invalid("no data directory given");
  if (!fs.exists(dir)) return Status::not_found("data directory " + dir + " does not exist");
  return Status::ok();
}

CheckReport report_of(const RecoveryPlan& p) {
  CheckReport r;
  r.node = p.identity.node;
  r.incarnation = p.identity.incarnation;
  r.identity_exists = p.identity_exists;
  r.wal_segments = p.segments.size();
  r.wal_bytes = p.wal_bytes;
  r.snapshots = p.snapshots.size();
  r.recovery = p.report;
  r.last_lsn = p.last_lsn;
  r.live_keys = p.state.live_keys();
  r.tombstones = p.state.tombstones();
  r.next_seq = p.state.next_seq();
  if (p.truncate) {
    r.damaged_segment = p.truncate->first;
    r.damage_offset = p.truncate->second;
  }
  r.leftover_files = p.remove_files;
  return r;
}

// Plans under the lock, which the caller keeps while it repairs. A plan that
// fails is the directory refusing to open, reported rather than returned.
struct Planned {
  std::unique_ptr<FileLock> lock;
  std::optional<RecoveryPlan> plan;
  CheckReport report;
};

Result<Planned> plan_locked(FileSystem& fs, const Config& config) {
  WAVEKV_RETURN_IF_ERROR(require_dir(fs, config.data_dir));
  auto lock = fs.lock(config.data_dir + "/" + kLockFile);
  if (!lock) return lock.status();
  Planned out;
  out.lock = std::move(*lock);
  auto plan = plan_recovery(fs, config.data_dir, config.node_id, config.durability, config.random);
  if (!plan) {
    out.report.refused = true;
    out.report.refusal = plan.status();
    return out;
  }
  out.report = report_of(*plan);
  out.plan = std::move(*plan);
  return out;
}

}  // namespace

Result<CheckReport> check_data_dir(const Config& config) {
  auto fs = fs_of(config);
  auto planned = plan_locked(*fs, config);
  if (!planned) return planned.status();
  return std::move(planned->report);
}

Result<RepairReport> repair_data_dir(const Config& config) {
  auto fs = fs_of(config);
  auto planned = plan_locked(*fs, config);
  if (!planned) return planned.status();
  RepairReport out;
  out.found = std::move(planned->report);
  if (!planned->plan || !out.found.damaged()) return out;
  WAVEKV_RETURN_IF_ERROR(apply_repairs(*fs, config.data_dir, *planned->plan));
  out.repaired = true;
  return out;
}

Result<TimestampRepairReport> repair_timestamps(const Config& config,
                                                const TimestampRepairOptions& options) {
  WAVEKV_RETURN_IF_ERROR(require_dir(*fs_of(config), config.data_dir));
  auto store = open_replicated(config);
  if (!store) return store.status();
  auto found = (*store)->future_versions(options.max_drift_ms, options.key, !options.dry_run);
  if (!found) return found.status();
  const uint64_t now_ms = (config.clock ? config.clock : system_clock())->now_ms();
  TimestampRepairReport out;
  out.dry_run = options.dry_run;
  for (auto& f : *found) {
    const uint64_t ts_ms = timestamp_millis(f.meta.timestamp);
    out.keys.push_back(
        {std::move(f.key), f.tombstone, f.meta, ts_ms > now_ms ? ts_ms - now_ms : 0, f.repaired});
  }
  WAVEKV_RETURN_IF_ERROR((*store)->close());
  return out;
}

}  // namespace wavekv
