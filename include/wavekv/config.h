// How a store is opened: a plain struct with documented defaults and validate().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "wavekv/fs.h"
#include "wavekv/status.h"
#include "wavekv/types.h"

namespace wavekv {

// The wall clock, injectable so that tests and the simulator control time.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual uint64_t now_ms() = 0;  // milliseconds since the Unix epoch
};
std::shared_ptr<Clock> system_clock();

enum class Durability {
  kAlways,    // a write returns only after its WAL record is fsynced (group commit)
  kInterval,  // fsync at most every sync_interval_ms; a process crash loses nothing
  kNone,      // never fsync on the write path (close and checkpoints still do)
};
const char* durability_name(Durability d);
Result<Durability> parse_durability(const std::string& s);

struct Config {
  // Where the WAL, snapshots, identity and lock file live. Created if missing.
  std::string data_dir;
  // 0: take the id recorded in data_dir, or generate a random one on first open.
  // Non-zero: must match the recorded id, if any (kWrongNode otherwise).
  NodeId node_id = 0;

  Durability durability = Durability::kAlways;
  uint32_t sync_interval_ms = 100;  // kInterval only: the longest a write stays unsynced

  uint64_t max_key_bytes = 64 * 1024;
  uint64_t max_value_bytes = 64ull * 1024 * 1024;

  // How far one replicated batch (one peer message) may move this node's
  // clock past max(its clock, the wall clock); 0: no bound. A write of a key
  // is still stamped after the version of it held here (docs/PROTOCOL.md,
  // "Clock step bound").
  uint64_t max_clock_step_ms = 1000;

  // WAL segments are preallocated to this size; a record larger than it gets a
  // segment of its own.
  uint64_t wal_segment_bytes = 64ull * 1024 * 1024;
  bool wal_preallocate = true;

  // A checkpoint (snapshot + WAL truncation) is taken when the WAL written since
  // the last one exceeds either bound. 0 disables that bound.
  uint64_t checkpoint_wal_bytes = 128ull * 1024 * 1024;
  uint64_t checkpoint_ops = 0;

  // Scrubbing: every sealed WAL segment and every snapshot is re-read and its
  // checksums verified once per interval, at most scrub_bytes_per_sec (0: no
  // limit). Damage found is repaired from memory (a checkpoint that no longer
  // needs the damaged file, which is set aside as *.damaged), counted in
  // StoreStatus and passed to on_damage. 0 turns the schedule off;
  // Store::scrub() still runs a pass on demand.
  uint64_t scrub_interval_ms = 6ull * 60 * 60 * 1000;
  uint64_t scrub_bytes_per_sec = 16ull * 1024 * 1024;
  // Called from the scrubber's thread with what was found and what was done.
  std::function<void(const std::string& what)> on_damage;

  // Expiry: reads hide a value from its expiry on (Entry::live_at). Every
  // expire_interval_ms a sweep turns up to expire_batch expired values into
  // tombstones (one WAL record of OpExpire), which frees their memory and lets
  // tombstone GC collect them. 0 turns the sweep off (reads still hide them).
  uint64_t expire_interval_ms = 100;
  uint64_t expire_batch = 1000;

  // Group commit: the most bytes of records one leader writes with one fsync.
  uint64_t max_group_bytes = 4ull * 1024 * 1024;

  // Injected edges. Null means the real file system and the system clock.
  std::shared_ptr<FileSystem> fs;
  std::shared_ptr<Clock> clock;
  // Random bits for new node ids and incarnations (null: std::random_device).
  // The simulator injects a seeded generator so every run replays exactly.
  std::function<uint64_t()> random;

  // Says what is wrong with the fields, if anything.
  Status validate() const;
};

}  // namespace wavekv
