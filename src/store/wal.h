// The write-ahead log: numbered segment files of checksummed records, each
// record one batch of StateOps with its log sequence number (LSN).
// docs/FORMAT.md gives the bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "state/state_op.h"
#include "wavekv/fs.h"
#include "wavekv/types.h"

namespace wavekv {

constexpr char kWalMagic[8] = {'W', 'A', 'V', 'E', 'K', 'V', 'W', 'L'};
// Version 2: entries may carry an expiry (docs/FORMAT.md, "Entries"). Version
// 1 segments are read unchanged (their entries have none).
constexpr uint32_t kWalVersion = 2;
constexpr uint32_t kOldestWalVersion = 1;
constexpr size_t kWalHeaderBytes = 40;
constexpr size_t kRecordHeaderBytes = 8;  // length u32, checksum u32

std::string wal_segment_name(uint64_t first_lsn);
// The first LSN named by a segment file name, or 0 if it is not one.
uint64_t parse_wal_segment_name(const std::string& name);

std::string encode_wal_header(NodeId node, uint64_t first_lsn);
struct WalHeader {
  NodeId node = 0;
  uint64_t first_lsn = 0;
  uint32_t version = kWalVersion;
};
Result<WalHeader> decode_wal_header(std::string_view bytes);

// Frames one record: header, LSN, encoded ops.
void encode_wal_record(uint64_t lsn, std::string_view encoded_ops, std::string& out);

// What reading one segment found.
struct SegmentScan {
  WalHeader header;
  uint64_t records = 0;
  uint64_t last_lsn = 0;     // 0 if no records
  uint64_t valid_bytes = 0;  // offset just past the last good record
  uint64_t file_bytes = 0;
  std::string damage;  // empty if the segment ends cleanly
  // Intact records after the damage, found by searching the bytes after it
  // (find_intact_records): if there are any, the damage is not a torn tail.
  uint64_t intact_after = 0;
  uint64_t intact_after_first = 0;  // their LSN range, 0 if none
  uint64_t intact_after_last = 0;
};

// Intact records in `data` from byte `from` on, found by trying every offset
// for a record with a plausible length, a matching checksum and an LSN of at
// least `min_lsn` (each one above the last found), so one damaged record does
// not hide those after it. Only records above `floor` are counted.
struct IntactRecords {
  uint64_t count = 0;
  uint64_t first_lsn = 0;  // of the counted ones; 0 if none
  uint64_t last_lsn = 0;
};
IntactRecords find_intact_records(std::string_view data, uint64_t from, uint64_t min_lsn,
                                  uint64_t floor);

// Reads the records of one segment in order, calling `on_record` for each good
// one, and stops at the first damaged one (torn, bad checksum, impossible
// length, LSN out of order), which SegmentScan::damage then describes. Errors
// only if the file cannot be read or its header is bad.
// With `assumed`, the header on disk is not read: `assumed` stands in for it
// (the repair of a damaged header, whose file name and IDENTITY say what it was).
// After damage, the rest of the segment is searched for intact records above
// `floor` (SegmentScan::intact_after).
Result<SegmentScan> scan_wal_segment(
    FileSystem& fs, const std::string& path,
    const std::function<void(uint64_t lsn, std::vector<StateOp>&& ops)>& on_record,
    uint64_t floor = 0, const WalHeader* assumed = nullptr);

// Appends records to the newest segment, rolling to a new one when full.
// Not thread-safe: the store serializes calls.
class WalWriter {
 public:
  struct Options {
    std::string dir;
    NodeId node = 0;
    uint64_t segment_bytes = 64ull << 20;
    bool preallocate = true;
  };
  // Continues the segment `first_lsn` at byte `offset`, whose next record is
  // `next_lsn`; or, if `first_lsn` is 0, starts a new segment at `next_lsn`.
  static Result<std::unique_ptr<WalWriter>> open(FileSystem& fs, Options options,
                                                 uint64_t first_lsn, uint64_t offset,
                                                 uint64_t next_lsn);

  // Writes framed records holding LSNs next_lsn() .. last_lsn.
  Status append(std::string_view framed, uint64_t last_lsn);
  Status sync();
  // Seals the current segment and starts a new one at next_lsn().
  Status roll();

  uint64_t next_lsn() const { return next_lsn_; }
  uint64_t segment_first_lsn() const { return first_lsn_; }
  uint64_t bytes_written() const { return bytes_written_; }

 private:
  WalWriter(FileSystem& fs, Options options) : fs_(fs), options_(std::move(options)) {}
  Status start_segment(uint64_t min_bytes);

  FileSystem& fs_;
  Options options_;
  std::unique_ptr<WritableFile> file_;
  uint64_t first_lsn_ = 0;
  uint64_t offset_ = 0;
  uint64_t capacity_ = 0;
  uint64_t next_lsn_ = 1;
  uint64_t bytes_written_ = 0;
};

}  // namespace wavekv
