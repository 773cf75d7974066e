// Opening a data directory: find the node id, load the newest good snapshot,
// replay the WAL after it, and decide what damage to cut off. Planning reads
// only; apply_repairs() then changes the directory. `wavekv check` plans
// without repairing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "state/state.h"
#include "wavekv/fs.h"
#include "wavekv/store.h"

namespace wavekv {

constexpr char kIdentityFile[] = "IDENTITY";
constexpr char kLockFile[] = "LOCK";

// Who this data directory is. A new incarnation (a fresh or wiped directory,
// even under an old node id) starts its seqs at seq_base, a value derived from
// the wall clock at creation (milliseconds << 16), so it never reuses a seq an
// earlier incarnation issued: peers that already cover those seqs would
// otherwise never pull the new writes.
struct Identity {
  NodeId node = 0;
  uint64_t incarnation = 0;
  uint64_t seq_base = 1;
};
std::string encode_identity(const Identity& id);
Result<Identity> decode_identity(std::string_view text);

struct RecoveryPlan {
  Identity identity;
  bool identity_exists = false;
  State state{0};
  RecoveryReport report;
  uint64_t last_lsn = 0;   // the newest LSN in the recovered state
  uint64_t wal_bytes = 0;  // record bytes in the kept segments
  // Repairs.
  std::vector<std::string> remove_files;                     // leftover *.tmp files
  std::optional<std::pair<std::string, uint64_t>> truncate;  // damaged segment, good bytes
  std::vector<std::string> set_aside;  // segments after the damage, renamed *.damaged
  // Where the WAL writer resumes: segment `resume_first_lsn` at byte
  // `resume_offset`; 0 means start a new segment at last_lsn + 1.
  uint64_t resume_first_lsn = 0;
  uint64_t resume_offset = 0;
  std::vector<uint64_t> segments;   // first LSNs of the kept segments, ascending
  std::vector<uint64_t> snapshots;  // LSNs of snapshot files present, ascending
};

// `wanted_node` 0 accepts the recorded id (or makes a new one if there is none).
// `now_ms` is the wall clock, used only to pick a new incarnation's seq_base.
// Fails with kWrongNode if the directory belongs to another node, kCorruption
// if what survives cannot be put together without losing data.
Result<RecoveryPlan> plan_recovery(FileSystem& fs, const std::string& dir, NodeId wanted_node,
                                   uint64_t now_ms = 0);
Status apply_repairs(FileSystem& fs, const std::string& dir, const RecoveryPlan& plan);

}  // namespace wavekv
