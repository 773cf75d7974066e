#include "store/snapshot.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "util/coding.h"

namespace wavekv {
namespace {

enum BlockType : uint8_t { kMetaBlock = 1, kEntriesBlock = 2, kFooterBlock = 3 };
constexpr size_t kTargetBlockBytes = 1 << 20;

void frame_block(const std::string& payload, std::string& out) {
  put_u32(out, static_cast<uint32_t>(payload.size()));
  put_u32(out, checksum32(payload));
  out.append(payload);
}

}  // namespace

std::string snapshot_name(uint64_t lsn) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "snap-%020" PRIu64 ".snap", lsn);
  return buf;
}

uint64_t parse_snapshot_name(const std::string& name) {
  return parse_numbered_name(name, "snap-", ".snap");
}

std::string encode_snapshot(const State& state, uint64_t lsn) {
  std::string out(kSnapMagic, sizeof kSnapMagic);
  put_u32(out, kSnapVersion);
  put_u32(out, 0);  // flags, reserved
  put_u64(out, state.self());
  put_u64(out, lsn);
  put_u32(out, checksum32(out));
  put_u32(out, 0);  // padding to 40 bytes

  std::string block;
  put_u8(block, kMetaBlock);
  put_u64(block, state.next_seq());
  put_u64(block, state.stream());
  put_u64(block, state.max_timestamp());
  put_u32(block, static_cast<uint32_t>(state.peers().size()));
  for (const auto& [id, meta] : state.peers()) encode_peer(id, meta, block);
  encode_vv(state.adopted_acks(), block);
  encode_vv(state.collected(), block);
  put_u64(block, state.collected_before());
  put_u32(block, static_cast<uint32_t>(state.removed().size()));
  for (const auto& [id, incarnation] : state.removed()) {
    put_u64(block, id);
    put_u64(block, incarnation);
  }
  frame_block(block, out);

  uint64_t blocks = 1;
  uint64_t entries = 0;
  auto it = state.kv().begin();
  while (it != state.kv().end()) {
    block.clear();
    put_u8(block, kEntriesBlock);
    size_t count_at = block.size();
    put_u32(block, 0);
    uint32_t n = 0;
    for (; it != state.kv().end() && block.size() < kTargetBlockBytes; ++it, ++n) {
      put_bytes(block, it->first);
      encode_entry(it->second, block);
    }
    std::string count;
    put_u32(count, n);
    block.replace(count_at, 4, count);
    frame_block(block, out);
    blocks++;
    entries += n;
  }
  block.clear();
  put_u8(block, kFooterBlock);
  put_u64(block, entries);
  put_u64(block, blocks);
  frame_block(block, out);
  return out;
}

Status write_snapshot(FileSystem& fs, const std::string& dir, uint64_t lsn,
                      const std::string& bytes) {
  return write_file_atomic(fs, dir, snapshot_name(lsn), bytes);
}

namespace {

Result<LoadedSnapshot> decode_header(std::string_view data) {
  if (data.size() < kSnapHeaderBytes) return Status::corruption("snapshot header is truncated");
  if (std::memcmp(data.data(), kSnapMagic, sizeof kSnapMagic) != 0)
    return Status::corruption("not a WaveKV snapshot (bad magic)");
  if (load_u32(data.data() + 32) != checksum32(data.substr(0, 32)))
    return Status::corruption("snapshot header checksum mismatch");
  uint32_t version = load_u32(data.data() + 8);
  if (version < kOldestSnapVersion || version > kSnapVersion)
    return Status::corruption("snapshot format version " + std::to_string(version) +
                              " is not supported (this build reads versions " +
                              std::to_string(kOldestSnapVersion) + " to " +
                              std::to_string(kSnapVersion) + ")");
  LoadedSnapshot s;
  s.node = load_u64(data.data() + 16);
  s.lsn = load_u64(data.data() + 24);
  return s;
}

}  // namespace

Result<LoadedSnapshot> read_snapshot_header(FileSystem& fs, const std::string& path) {
  auto file = fs.open_readable(path);
  if (!file) return file.status();
  char buf[kSnapHeaderBytes];
  auto n = (*file)->read_at(0, sizeof buf, buf);
  if (!n) return n.status();
  return decode_header(std::string_view(buf, *n));
}

namespace {

// The payload of the block at `pos`, its length and checksum checked.
Result<std::string_view> block_payload(std::string_view data, uint64_t pos) {
  uint64_t remaining = data.size() - pos;
  if (remaining < 8)
    return Status::corruption("truncated block header at byte " + std::to_string(pos));
  uint32_t len = load_u32(data.data() + pos);
  uint32_t crc = load_u32(data.data() + pos + 4);
  if (len == 0 || len > remaining - 8)
    return Status::corruption("impossible block length at byte " + std::to_string(pos));
  std::string_view payload = data.substr(pos + 8, len);
  if (checksum32(payload) != crc)
    return Status::corruption("block checksum mismatch at byte " + std::to_string(pos));
  return payload;
}

// The meta block (after its type byte): counters, peers, acks, the collected
// horizon and the removed members.
Status read_meta_block(Decoder& d, State& state) {
  uint64_t next_seq = d.u64();
  StreamId stream = d.u64();
  Timestamp max_ts = d.u64();
  uint32_t peers = d.u32();
  if (static_cast<uint64_t>(peers) * 24 > d.remaining())
    return Status::corruption("impossible peer count");
  for (uint32_t i = 0; i < peers && !d.failed(); i++) state.apply(decode_peer(d));
  state.apply(OpAdoptAcks{decode_vv(d)});
  VersionVector collected = decode_vv(d);
  state.restore_collected(collected, d.u64());
  uint32_t removed = d.u32();
  if (static_cast<uint64_t>(removed) * 16 > d.remaining())
    return Status::corruption("impossible removed-member count");
  for (uint32_t i = 0; i < removed && !d.failed(); i++) {
    OpRemovePeer r;
    r.peer = d.u64();
    r.incarnation = d.u64();
    state.apply(r);
  }
  state.restore_counters(next_seq, stream, max_ts);
  return Status::ok();
}

// An entries block (after its type byte); returns the count it declares.
uint32_t read_entries_block(Decoder& d, State& state) {
  uint32_t n = d.u32();
  for (uint32_t i = 0; i < n && !d.failed(); i++) {
    OpSetEntry s;
    s.key = std::string(d.bytes());
    s.entry = decode_entry(d);
    if (!d.failed()) state.apply(s);
  }
  return n;
}

}  // namespace

Result<LoadedSnapshot> load_snapshot(FileSystem& fs, const std::string& path, State& state) {
  auto data_or = read_file(fs, path);
  if (!data_or) return data_or.status();
  std::string_view data = *data_or;
  auto header = decode_header(data);
  if (!header) return header;
  LoadedSnapshot out = *header;
  if (out.node != state.self())
    return Status::corruption("snapshot belongs to node " + std::to_string(out.node));

  uint64_t pos = kSnapHeaderBytes;
  uint64_t blocks = 0;
  bool footer = false;
  while (pos < data.size() && !footer) {
    auto payload = block_payload(data, pos);
    if (!payload) return payload.status();
    Decoder d(*payload);
    uint8_t type = d.u8();
    if (blocks == 0 && type != kMetaBlock) return Status::corruption("first block is not meta");
    if (type == kMetaBlock) {
      if (blocks != 0) return Status::corruption("meta block out of place");
      WAVEKV_RETURN_IF_ERROR(read_meta_block(d, state));
    } else if (type == kEntriesBlock) {
      out.entries += read_entries_block(d, state);
    } else if (type == kFooterBlock) {
      uint64_t entries = d.u64();
      uint64_t nblocks = d.u64();
      if (entries != out.entries || nblocks != blocks)
        return Status::corruption("footer counts disagree with the blocks read");
      footer = true;
    } else {
      return Status::corruption("unknown block type " + std::to_string(type));
    }
    if (!d.done()) return Status::corruption("malformed block at byte " + std::to_string(pos));
    blocks++;
    pos += 8 + payload->size();
  }
  if (!footer) return Status::corruption("snapshot has no footer (truncated)");
  if (pos != data.size()) return Status::corruption("trailing bytes after the footer");
  return out;
}

Result<LoadedSnapshot> verify_snapshot(FileSystem& fs, const std::string& path) {
  auto data = read_file(fs, path);
  if (!data) return data.status();
  return verify_snapshot(*data);
}

Result<LoadedSnapshot> verify_snapshot(std::string_view data) {
  auto header = decode_header(data);
  if (!header) return header;
  LoadedSnapshot out = *header;
  uint64_t pos = kSnapHeaderBytes;
  uint64_t blocks = 0;
  while (pos < data.size()) {
    auto payload = block_payload(data, pos);
    if (!payload) return payload.status();
    Decoder d(*payload);
    const uint8_t type = d.u8();
    if ((blocks == 0) != (type == kMetaBlock))
      return Status::corruption("meta block out of place at byte " + std::to_string(pos));
    pos += 8 + payload->size();
    if (type == kEntriesBlock) {
      out.entries += d.u32();
    } else if (type == kFooterBlock) {
      const uint64_t entries = d.u64();
      const uint64_t nblocks = d.u64();
      if (d.failed() || entries != out.entries || nblocks != blocks)
        return Status::corruption("footer counts disagree with the blocks read");
      if (pos != data.size()) return Status::corruption("trailing bytes after the footer");
      return out;
    } else if (type != kMetaBlock) {
      return Status::corruption("unknown block type " + std::to_string(type));
    }
    blocks++;
  }
  return Status::corruption("snapshot has no footer (truncated)");
}

}  // namespace wavekv
