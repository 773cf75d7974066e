#include "store/wal.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "util/coding.h"

namespace wavekv {

std::string wal_segment_name(uint64_t first_lsn) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "wal-%020" PRIu64 ".log", first_lsn);
  return buf;
}

uint64_t parse_wal_segment_name(const std::string& name) {
  return parse_numbered_name(name, "wal-", ".log");
}

std::string encode_wal_header(NodeId node, uint64_t first_lsn) {
  std::string h(kWalMagic, sizeof kWalMagic);
  put_u32(h, kWalVersion);
  put_u32(h, 0);  // flags, reserved
  put_u64(h, node);
  put_u64(h, first_lsn);
  put_u32(h, checksum32(h));
  put_u32(h, 0);  // padding to 40 bytes
  return h;
}

Result<WalHeader> decode_wal_header(std::string_view bytes) {
  if (bytes.size() < kWalHeaderBytes) return Status::corruption("WAL header is truncated");
  if (std::memcmp(bytes.data(), kWalMagic, sizeof kWalMagic) != 0)
    return Status::corruption("not a WaveKV WAL segment (bad magic)");
  if (load_u32(bytes.data() + 32) != checksum32(bytes.substr(0, 32)))
    return Status::corruption("WAL header checksum mismatch");
  uint32_t version = load_u32(bytes.data() + 8);
  if (version < kOldestWalVersion || version > kWalVersion)
    return Status::corruption("WAL format version " + std::to_string(version) +
                              " is not supported (this build reads versions " +
                              std::to_string(kOldestWalVersion) + " to " +
                              std::to_string(kWalVersion) + ")");
  WalHeader h;
  h.version = version;
  h.node = load_u64(bytes.data() + 16);
  h.first_lsn = load_u64(bytes.data() + 24);
  if (h.first_lsn == 0) return Status::corruption("WAL header names LSN 0");
  return h;
}

void encode_wal_record(uint64_t lsn, std::string_view encoded_ops, std::string& out) {
  std::string body;
  body.reserve(8 + encoded_ops.size());
  put_u64(body, lsn);
  body.append(encoded_ops);
  put_u32(out, static_cast<uint32_t>(body.size()));
  put_u32(out, checksum32(body));
  out.append(body);
}

IntactRecords find_intact_records(std::string_view data, uint64_t from, uint64_t min_lsn,
                                  uint64_t floor) {
  IntactRecords out;
  // A segment cannot hold more records than this, so an LSN far above
  // `min_lsn` is noise, not a record.
  const uint64_t max_lsn = min_lsn + data.size() / (kRecordHeaderBytes + 12) + 1;
  uint64_t next_min = min_lsn;
  uint64_t p = from;
  while (p + kRecordHeaderBytes + 12 <= data.size()) {
    const uint64_t lsn = load_u64(data.data() + p + kRecordHeaderBytes);
    const uint32_t len = load_u32(data.data() + p);
    if (lsn >= next_min && lsn < max_lsn && len >= 12 &&
        len <= data.size() - p - kRecordHeaderBytes &&
        checksum32(data.substr(p + kRecordHeaderBytes, len)) == load_u32(data.data() + p + 4)) {
      if (lsn > floor) {
        if (out.count == 0) out.first_lsn = lsn;
        out.count++;
        out.last_lsn = lsn;
      }
      next_min = lsn + 1;
      p += kRecordHeaderBytes + len;
    } else {
      p++;
    }
  }
  return out;
}

Result<SegmentScan> scan_wal_segment(
    FileSystem& fs, const std::string& path,
    const std::function<void(uint64_t, std::vector<StateOp>&&)>& on_record, uint64_t floor,
    const WalHeader* assumed) {
  auto data_or = read_file(fs, path);
  if (!data_or) return data_or.status();
  std::string_view data = *data_or;
  SegmentScan scan;
  scan.file_bytes = data.size();
  if (assumed != nullptr) {
    scan.header = *assumed;
  } else {
    auto header = decode_wal_header(data);
    if (!header) return Status::corruption(path + ": " + header.status().message());
    scan.header = *header;
  }
  uint64_t pos = kWalHeaderBytes;
  uint64_t expect = scan.header.first_lsn;
  auto all_zero = [&](uint64_t from) {
    static const char zeros[4096] = {};
    for (uint64_t p = from; p < data.size(); p += sizeof zeros) {
      size_t n = std::min<uint64_t>(sizeof zeros, data.size() - p);
      if (std::memcmp(data.data() + p, zeros, n) != 0) return false;
    }
    return true;
  };
  while (pos < data.size()) {
    uint64_t remaining = data.size() - pos;
    if (remaining < kRecordHeaderBytes) {
      if (!all_zero(pos)) scan.damage = "torn record header";
      break;
    }
    uint32_t len = load_u32(data.data() + pos);
    uint32_t crc = load_u32(data.data() + pos + 4);
    if (len == 0 && crc == 0) {
      // Preallocated space: the log ends here, provided nothing follows.
      if (!all_zero(pos)) scan.damage = "zeroed record header followed by data";
      break;
    }
    if (len < 8 + 4 || len > remaining - kRecordHeaderBytes) {
      scan.damage = "impossible record length " + std::to_string(len) + " with " +
                    std::to_string(remaining - kRecordHeaderBytes) + " bytes left";
      break;
    }
    std::string_view body = data.substr(pos + kRecordHeaderBytes, len);
    if (checksum32(body) != crc) {
      scan.damage = "record checksum mismatch";
      break;
    }
    uint64_t lsn = load_u64(body.data());
    if (lsn != expect) {
      scan.damage = "record LSN " + std::to_string(lsn) + " where " + std::to_string(expect) +
                    " was expected";
      break;
    }
    auto ops = decode_ops(body.substr(8));
    if (!ops) {
      scan.damage = ops.status().message();
      break;
    }
    on_record(lsn, std::move(ops).value());
    scan.records++;
    scan.last_lsn = lsn;
    expect = lsn + 1;
    pos += kRecordHeaderBytes + len;
  }
  scan.valid_bytes = std::min<uint64_t>(pos, data.size());
  if (!scan.damage.empty()) {
    scan.damage += " at byte " + std::to_string(pos) + " of " + path;
    IntactRecords after = find_intact_records(data, pos + 1, expect, floor);
    scan.intact_after = after.count;
    scan.intact_after_first = after.first_lsn;
    scan.intact_after_last = after.last_lsn;
  }
  return scan;
}

Result<std::unique_ptr<WalWriter>> WalWriter::open(FileSystem& fs, Options options,
                                                   uint64_t first_lsn, uint64_t offset,
                                                   uint64_t next_lsn) {
  std::unique_ptr<WalWriter> w(new WalWriter(fs, std::move(options)));
  w->next_lsn_ = next_lsn;
  if (first_lsn == 0) {
    WAVEKV_RETURN_IF_ERROR(w->start_segment(0));
    return w;
  }
  std::string path = w->options_.dir + "/" + wal_segment_name(first_lsn);
  auto file = fs.open_writable(path, false);
  if (!file) return file.status();
  w->file_ = std::move(file).value();
  w->first_lsn_ = first_lsn;
  w->offset_ = offset;
  w->capacity_ = std::max(w->options_.segment_bytes, offset);
  if (w->options_.preallocate) {
    WAVEKV_RETURN_IF_ERROR(w->file_->preallocate(w->capacity_));
    WAVEKV_RETURN_IF_ERROR(w->file_->sync());
  }
  return w;
}

// A segment appears under its final name only once its header is durable, so a
// crash never leaves a segment without a header (see docs/FORMAT.md).
Status WalWriter::start_segment(uint64_t min_bytes) {
  if (file_) {
    WAVEKV_RETURN_IF_ERROR(file_->sync());
    WAVEKV_RETURN_IF_ERROR(file_->close());
    file_.reset();
  }
  std::string name = wal_segment_name(next_lsn_);
  std::string tmp = options_.dir + "/" + name + ".tmp";
  if (fs_.exists(tmp)) WAVEKV_RETURN_IF_ERROR(fs_.remove(tmp));
  auto file = fs_.open_writable(tmp, true);
  if (!file) return file.status();
  capacity_ = std::max(options_.segment_bytes, kWalHeaderBytes + min_bytes);
  if (options_.preallocate) WAVEKV_RETURN_IF_ERROR((*file)->preallocate(capacity_));
  WAVEKV_RETURN_IF_ERROR((*file)->write_at(0, encode_wal_header(options_.node, next_lsn_)));
  WAVEKV_RETURN_IF_ERROR((*file)->sync());
  WAVEKV_RETURN_IF_ERROR(fs_.rename(tmp, options_.dir + "/" + name));
  WAVEKV_RETURN_IF_ERROR(fs_.sync_dir(options_.dir));
  file_ = std::move(file).value();
  first_lsn_ = next_lsn_;
  offset_ = kWalHeaderBytes;
  return Status::ok();
}

Status WalWriter::roll() { return start_segment(0); }

Status WalWriter::append(std::string_view framed, uint64_t last_lsn) {
  if (offset_ + framed.size() > capacity_ && offset_ > kWalHeaderBytes) {
    WAVEKV_RETURN_IF_ERROR(start_segment(framed.size()));
  }
  WAVEKV_RETURN_IF_ERROR(file_->write_at(offset_, framed));
  offset_ += framed.size();
  bytes_written_ += framed.size();
  next_lsn_ = last_lsn + 1;
  return Status::ok();
}

Status WalWriter::sync() { return file_->sync(); }

}  // namespace wavekv
