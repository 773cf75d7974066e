// Encoding of replication messages; docs/FORMAT.md ("Wire format") gives the
// bytes. Decoding trusts nothing: every count and length is checked against
// the bytes that remain and against the configured limits.
#include <cassert>

#include "replication/messages.h"
#include "state/state_op.h"
#include "util/coding.h"
#include "util/overloaded.h"

namespace wavekv {
namespace {

enum BodyType : uint8_t {
  kSyncRequest = 1,
  kSyncPage = 2,
  kPush = 3,
  kDigestRequest = 4,
  kDigestReply = 5,
  kBucketRequest = 6,
  kBucketReply = 7,
  kRebootstrap = 8,
};

// SyncPage flags.
constexpr uint8_t kPageLast = 1;
constexpr uint8_t kPageLostTrack = 2;

// Before kExpiryWireVersion an entry cannot carry an expiry: one that has
// one goes as the tombstone it becomes (same version, so the same digest
// hash): the older node never serves it past its expiry, though it misses it
// before then.
void put_entries(std::string& out, const std::vector<WireEntry>& entries, uint8_t version) {
  put_u32(out, static_cast<uint32_t>(entries.size()));
  for (const auto& e : entries) {
    put_bytes(out, e.key);
    if (e.entry.expires_ms != 0 && version < kExpiryWireVersion)
      encode_entry(Entry{{}, true, e.entry.meta, 0}, out);
    else
      encode_entry(e.entry, out);
  }
}

void put_buckets(std::string& out, const std::vector<uint16_t>& buckets) {
  put_u32(out, static_cast<uint32_t>(buckets.size()));
  for (uint16_t b : buckets) put_u32(out, b);
}

void put_cursor(std::string& out, const Cursor& c) {
  put_u64(out, c.origin);
  put_u64(out, c.seq);
}

// Reads a count and checks that `min_bytes_each` times it fits in what remains.
uint32_t get_count(Decoder& d, uint64_t min_bytes_each, uint64_t max_count) {
  uint32_t n = d.u32();
  if (n > max_count || static_cast<uint64_t>(n) * min_bytes_each > d.remaining()) d.fail();
  return d.failed() ? 0 : n;
}

std::vector<WireEntry> get_entries(Decoder& d, const DecodeLimits& limits, uint8_t version) {
  std::vector<WireEntry> out;
  // key length 4 + meta 24 + tombstone 1 + value length 4
  uint32_t n = get_count(d, 33, limits.max_entries);
  out.reserve(n);
  for (uint32_t i = 0; i < n && !d.failed(); i++) {
    WireEntry e;
    e.key = std::string(d.bytes(limits.max_key_bytes));
    e.entry = decode_entry(d, limits.max_value_bytes, version >= kExpiryWireVersion);
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<uint16_t> get_buckets(Decoder& d) {
  std::vector<uint16_t> out;
  uint32_t n = get_count(d, 4, kDigestBuckets);
  for (uint32_t i = 0; i < n; i++) {
    uint32_t b = d.u32();
    if (b >= kDigestBuckets) d.fail();
    out.push_back(static_cast<uint16_t>(b));
  }
  return out;
}

Cursor get_cursor(Decoder& d) {
  Cursor c;
  c.origin = d.u64();
  c.seq = d.u64();
  return c;
}

void put_body(std::string& out, const SyncRequest& b) {
  put_u8(out, kSyncRequest);
  put_u64(out, b.session);
  encode_vv(b.have, out);
  put_cursor(out, b.cursor);
  encode_vv(b.stable, out);
  put_u64(out, b.epoch);
  put_u64(out, b.after);
}

void put_body(std::string& out, const SyncPage& b, uint8_t version) {
  put_u8(out, kSyncPage);
  put_u64(out, b.session);
  encode_vv(b.covers, out);
  encode_vv(b.stable, out);
  encode_vv(b.collected, out);
  put_u64(out, b.collected_before);
  put_u64(out, b.clock);
  put_entries(out, b.entries, version);
  put_u8(out, (b.last ? kPageLast : 0) | (b.lost_track ? kPageLostTrack : 0));
  put_cursor(out, b.next);
  put_u64(out, b.epoch);
  put_u64(out, b.arrivals);
}

void put_body(std::string& out, const Push& b, uint8_t version) {
  put_u8(out, kPush);
  put_entries(out, b.entries, version);
}

void put_body(std::string& out, const DigestRequest& b) {
  put_u8(out, kDigestRequest);
  put_u64(out, b.nonce);
}

void put_body(std::string& out, const DigestReply& b) {
  put_u8(out, kDigestReply);
  put_u64(out, b.nonce);
  encode_vv(b.covers, out);
  for (uint64_t v : b.buckets) put_u64(out, v);
}

void put_body(std::string& out, const BucketRequest& b) {
  put_u8(out, kBucketRequest);
  put_buckets(out, b.buckets);
}

void put_body(std::string& out, const BucketReply& b, uint8_t version) {
  put_u8(out, kBucketReply);
  put_buckets(out, b.buckets);
  put_entries(out, b.entries, version);
}

void put_body(std::string& out, const Rebootstrap& b) {
  put_u8(out, kRebootstrap);
  put_bytes(out, b.reason);
}

SyncRequest get_sync_request(Decoder& d) {
  SyncRequest b;
  b.session = d.u64();
  b.have = decode_vv(d);
  b.cursor = get_cursor(d);
  b.stable = decode_vv(d);
  b.epoch = d.u64();
  b.after = d.u64();
  return b;
}

SyncPage get_sync_page(Decoder& d, const DecodeLimits& limits, uint8_t version) {
  SyncPage b;
  b.session = d.u64();
  b.covers = decode_vv(d);
  b.stable = decode_vv(d);
  b.collected = decode_vv(d);
  b.collected_before = d.u64();
  b.clock = d.u64();
  b.entries = get_entries(d, limits, version);
  uint8_t flags = d.u8();
  if ((flags & ~(kPageLast | kPageLostTrack)) != 0) d.fail();
  b.last = (flags & kPageLast) != 0;
  b.lost_track = (flags & kPageLostTrack) != 0;
  b.next = get_cursor(d);
  b.epoch = d.u64();
  b.arrivals = d.u64();
  return b;
}

DigestReply get_digest_reply(Decoder& d) {
  DigestReply b;
  b.nonce = d.u64();
  b.covers = decode_vv(d);
  for (auto& v : b.buckets) v = d.u64();
  return b;
}

BucketReply get_bucket_reply(Decoder& d, const DecodeLimits& limits, uint8_t version) {
  BucketReply b;
  b.buckets = get_buckets(d);
  b.entries = get_entries(d, limits, version);
  return b;
}

// The body after its type byte; false for an unknown type.
bool get_body(Decoder& d, uint8_t type, uint8_t version, const DecodeLimits& limits, Body& body) {
  switch (type) {
    case kSyncRequest: body = get_sync_request(d); return true;
    case kSyncPage: body = get_sync_page(d, limits, version); return true;
    case kPush: body = Push{get_entries(d, limits, version)}; return true;
    case kDigestRequest: body = DigestRequest{d.u64()}; return true;
    case kDigestReply: body = get_digest_reply(d); return true;
    case kBucketRequest: body = BucketRequest{get_buckets(d)}; return true;
    case kBucketReply: body = get_bucket_reply(d, limits, version); return true;
    case kRebootstrap: body = Rebootstrap{std::string(d.bytes(4096))}; return true;
    default: return false;
  }
}

}  // namespace

std::string encode_message(const Message& m) {
  std::string out;
  assert(m.version >= kOldestWireVersion && m.version <= kWireVersion);
  put_u8(out, m.version);
  put_u64(out, m.from);
  put_u64(out, m.from_incarnation);
  put_bytes(out, m.from_address);
  if (m.version >= 3) put_u64(out, m.sent_at_ms);
  put_u32(out, static_cast<uint32_t>(m.members.size()));
  for (const auto& mem : m.members) {
    put_u64(out, mem.id);
    put_u64(out, mem.incarnation);
    put_bytes(out, mem.address);
  }
  std::visit(Overloaded{
                 [&](const SyncRequest& b) { put_body(out, b); },
                 [&](const SyncPage& b) { put_body(out, b, m.version); },
                 [&](const Push& b) { put_body(out, b, m.version); },
                 [&](const DigestRequest& b) { put_body(out, b); },
                 [&](const DigestReply& b) { put_body(out, b); },
                 [&](const BucketRequest& b) { put_body(out, b); },
                 [&](const BucketReply& b) { put_body(out, b, m.version); },
                 [&](const Rebootstrap& b) { put_body(out, b); },
             },
             m.body);
  return out;
}

Result<Message> decode_message(std::string_view bytes, const DecodeLimits& limits) {
  Decoder d(bytes);
  uint8_t version = d.u8();
  if (d.failed()) return Status::corruption("empty message");
  if (version < kOldestWireVersion || version > kWireVersion)
    return Status::invalid("wire version " + std::to_string(version) +
                           " is not supported (this build speaks versions " +
                           std::to_string(kOldestWireVersion) + " to " +
                           std::to_string(kWireVersion) + ")");
  Message m;
  m.version = version;
  m.from = d.u64();
  m.from_incarnation = d.u64();
  m.from_address = std::string(d.bytes(1024));
  if (version >= 3) m.sent_at_ms = d.u64();
  uint32_t members = get_count(d, 8 + 8 + 4, limits.max_members);
  m.members.reserve(members);
  for (uint32_t i = 0; i < members && !d.failed(); i++) {
    Member mem;
    mem.id = d.u64();
    mem.incarnation = d.u64();
    mem.address = std::string(d.bytes(1024));
    m.members.push_back(std::move(mem));
  }
  uint8_t type = d.u8();
  if (!get_body(d, type, version, limits, m.body) && !d.failed())
    return Status::corruption("unknown message type " + std::to_string(type));
  if (d.failed()) return Status::corruption("malformed or truncated message");
  if (d.remaining() != 0)
    return Status::corruption(std::to_string(d.remaining()) + " trailing bytes after message");
  return m;
}

}  // namespace wavekv
