// Offline tools for a data directory, as library calls (LevelDB's RepairDB is
// the model): look at what recovery would do, cut off damage, rewrite keys
// stamped by a runaway clock. Each takes the directory's lock, so the store
// must not be open (a running node makes them fail with kBusy). `wavekv check`
// and `wavekv repair-timestamps` are these calls plus printing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "wavekv/config.h"
#include "wavekv/status.h"
#include "wavekv/store.h"
#include "wavekv/types.h"

namespace wavekv {

// What opening a data directory would find and do, found without changing it.
struct CheckReport {
  // Store::open would refuse this directory; `refusal` says why (kCorruption:
  // what survives cannot be put together without losing data; kWrongNode: it
  // belongs to another node id). The fields below are then left at zero.
  bool refused = false;
  Status refusal;

  NodeId node = 0;
  // The incarnation the next open runs as: the recorded one, or a new one if
  // there is no IDENTITY file yet or damage would be cut off.
  uint64_t incarnation = 0;
  bool identity_exists = false;  // false: the first open writes IDENTITY
  uint64_t wal_segments = 0;     // WAL segments recovery keeps
  uint64_t wal_bytes = 0;        // record bytes in those segments
  uint64_t snapshots = 0;        // snapshot files present, good or not
  // The snapshot chosen (snapshot_lsn), the WAL records replayed after it, the
  // corrupt snapshots passed over, the WAL damage and the bytes and segments
  // it costs, and why the next open would start a new incarnation.
  RecoveryReport recovery;
  uint64_t last_lsn = 0;  // the newest LSN in the recovered state
  uint64_t live_keys = 0;
  uint64_t tombstones = 0;
  uint64_t next_seq = 0;
  // Where a torn WAL tail starts: the segment and the byte offset its good
  // records end at (a repair truncates it there). Empty if there is none.
  std::string damaged_segment;
  uint64_t damage_offset = 0;
  std::vector<std::string> leftover_files;  // *.tmp files a repair removes

  // Anything a repair (or the next open) would change.
  bool damaged() const { return !recovery.clean() || !leftover_files.empty(); }
};

// Reads `config.data_dir` as Store::open would (with config.node_id,
// durability, fs and random) and reports the plan; changes nothing but the
// LOCK file. A directory that cannot be opened is a report with `refused`, not
// an error; errors are a missing directory (kNotFound), the lock (kBusy), I/O.
Result<CheckReport> check_data_dir(const Config& config);

struct RepairReport {
  CheckReport found;  // what the directory held before the repair
  // found.damaged() and the repairs are made. A corrupt snapshot is left
  // where it is: opening passes over it and reports it, as check does.
  bool repaired = false;
};

// What opening the store does first, without opening it: cut a torn WAL tail,
// set aside the segments after it (*.damaged), remove leftover temp files.
// Everything before the damage is kept. A refused directory is left as it is
// (found.refused). Errors as check_data_dir, plus the repair's own I/O
// failures (then the directory may be half repaired; opening the store or
// another repair finishes the job).
Result<RepairReport> repair_data_dir(const Config& config);

struct TimestampRepairOptions {
  std::optional<std::string> key;         // only this key; nullopt: every key
  uint64_t max_drift_ms = 5 * 60 * 1000;  // the peers' drift bound
  bool dry_run = false;                   // list the keys; change nothing
};

// A key whose current version was stamped more than the drift bound ahead of
// the clock (docs/PROTOCOL.md, "Future timestamps").
struct FutureKey {
  std::string key;
  bool tombstone = false;
  Meta found;             // the version stamped too far ahead
  uint64_t ahead_ms = 0;  // how far ahead of the clock, read after the scan
  Meta rewritten_as;      // the version that replaced it; zeros on a dry run
};

struct TimestampRepairReport {
  std::vector<FutureKey> keys;  // in key order
  bool dry_run = false;         // then nothing was changed
};

// Opens the store in `config.data_dir` (which must exist; the node stopped)
// and, unless dry_run, replaces each key found by the same value or tombstone
// written now, in one WAL record, and brings the hybrid clock back to the
// newest version that remains. Then closes the store.
Result<TimestampRepairReport> repair_timestamps(const Config& config,
                                                const TimestampRepairOptions& options = {});

}  // namespace wavekv
