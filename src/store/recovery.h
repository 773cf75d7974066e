// Opening a data directory: find the node id, load the newest good snapshot,
// replay the WAL after it, and decide what damage to cut off. Planning reads
// only; apply_repairs() then changes the directory. `wavekv check` plans
// without repairing.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "state/state.h"
#include "store/wal.h"
#include "wavekv/fs.h"
#include "wavekv/store.h"

namespace wavekv {

constexpr char kIdentityFile[] = "IDENTITY";
constexpr char kLockFile[] = "LOCK";
// Written by a clean close after the last fsync; removed by the next open.
constexpr char kCleanFile[] = "CLEAN";

// Who this data directory is. The incarnation is the origin stream of this
// node's writes (see Meta): a random id, new for a fresh or wiped directory,
// and new again whenever writes this node already issued (and may have sent)
// could have been lost, so a seq is never issued twice in one stream.
struct Identity {
  NodeId node = 0;
  uint64_t incarnation = 0;
};
std::string encode_identity(const Identity& id);
Result<Identity> decode_identity(std::string_view text);

struct RecoveryPlan {
  Identity identity;
  bool identity_exists = false;
  bool clean_marker = false;  // the last close was clean
  State state{0, 0};
  RecoveryReport report;
  uint64_t last_lsn = 0;   // the newest LSN in the recovered state
  uint64_t wal_bytes = 0;  // record bytes in the kept segments
  // Repairs.
  std::vector<std::string> remove_files;                     // leftover *.tmp files
  std::optional<std::pair<std::string, uint64_t>> truncate;  // damaged segment, good bytes
  std::vector<std::string> set_aside;  // segments after the damage, renamed *.damaged
  // A segment whose damaged header the repair rewrites (its records verify
  // under the header its file name and IDENTITY give).
  std::optional<std::pair<std::string, WalHeader>> rewrite_header;
  // Where the WAL writer resumes: segment `resume_first_lsn` at byte
  // `resume_offset`; 0 means start a new segment at last_lsn + 1.
  uint64_t resume_first_lsn = 0;
  uint64_t resume_offset = 0;
  std::vector<uint64_t> segments;   // first LSNs of the kept segments, ascending
  std::vector<uint64_t> snapshots;  // LSNs of snapshot files present, ascending
};

// `wanted_node` 0 accepts the recorded id (or makes a new one if there is none).
// `durability` decides whether an unclean shutdown may have lost writes that
// were already acknowledged and sent (anything but kAlways): then the node
// takes a new incarnation. So does any cut or set-aside WAL damage.
// Fails with kWrongNode if the directory belongs to another node, kCorruption
// if what survives cannot be put together without losing data or a segment
// was written by a newer format. WAL damage that is not a torn tail is planned
// like one (cut there) but flagged in report.wal_corruption: Store::open then
// refuses, and only `wavekv check --repair` applies that plan.
Result<RecoveryPlan> plan_recovery(FileSystem& fs, const std::string& dir, NodeId wanted_node,
                                   Durability durability = Durability::kAlways,
                                   const std::function<uint64_t()>& random = {});
Status apply_repairs(FileSystem& fs, const std::string& dir, const RecoveryPlan& plan);

}  // namespace wavekv
