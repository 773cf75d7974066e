// Checkpoint snapshots: the whole core state as of one WAL LSN, written to a
// temp file, fsynced, renamed and the directory fsynced. docs/FORMAT.md gives
// the bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "state/state.h"
#include "wavekv/fs.h"

namespace wavekv {

constexpr char kSnapMagic[8] = {'W', 'A', 'V', 'E', 'K', 'V', 'S', 'N'};
// Version 2: entries may carry an expiry; version 1 files are read unchanged.
constexpr uint32_t kSnapVersion = 2;
constexpr uint32_t kOldestSnapVersion = 1;
constexpr size_t kSnapHeaderBytes = 40;

std::string snapshot_name(uint64_t lsn);
// The LSN named by a snapshot file name, or 0 if it is not one.
uint64_t parse_snapshot_name(const std::string& name);

// Serializes `state` as of `lsn` into the snapshot byte format.
std::string encode_snapshot(const State& state, uint64_t lsn);

// Writes the bytes of a snapshot durably under its final name.
Status write_snapshot(FileSystem& fs, const std::string& dir, uint64_t lsn,
                      const std::string& bytes);

struct LoadedSnapshot {
  uint64_t lsn = 0;
  NodeId node = 0;
  uint64_t entries = 0;
};
// Reads and fully verifies a snapshot into `state` (which must be empty).
// `state` is unspecified if this fails.
Result<LoadedSnapshot> load_snapshot(FileSystem& fs, const std::string& path, State& state);

// Checks a snapshot's header and every block's checksum, order and the footer's
// counts, without decoding the entries (the scrubber's check: what bit rot or
// a lost write would break).
Result<LoadedSnapshot> verify_snapshot(FileSystem& fs, const std::string& path);
Result<LoadedSnapshot> verify_snapshot(std::string_view data);  // the file's bytes

// Reads just the header: node id and LSN.
Result<LoadedSnapshot> read_snapshot_header(FileSystem& fs, const std::string& path);

}  // namespace wavekv
