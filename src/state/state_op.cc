#include "state/state_op.h"

#include "util/coding.h"
#include "util/overloaded.h"

namespace wavekv {
namespace {

enum OpType : uint8_t {
  kSetEntry = 1,
  kSetPeer = 2,
  kRemovePeer = 3,
  kDropTombstone = 4,
  kAdoptAcks = 5,
  kRepairEntry = 6,
  kResetClock = 7,
  kExpire = 8,
};

constexpr uint8_t kFlagTombstone = 1;
constexpr uint8_t kFlagExpiry = 2;

}  // namespace

void encode_meta(const Meta& m, std::string& out) {
  put_u64(out, m.node);
  put_u64(out, m.incarnation);
  put_u64(out, m.seq);
  put_u64(out, m.timestamp);
}

Meta decode_meta(Decoder& d) {
  Meta m;
  m.node = d.u64();
  m.incarnation = d.u64();
  m.seq = d.u64();
  m.timestamp = d.u64();
  return m;
}

Entry decode_entry(Decoder& d, uint64_t max_value_bytes, bool allow_expiry) {
  Entry e;
  e.meta = decode_meta(d);
  uint8_t flags = d.u8();
  const uint8_t known = allow_expiry ? (kFlagTombstone | kFlagExpiry) : kFlagTombstone;
  if ((flags & ~known) != 0) d.fail();
  e.tombstone = (flags & kFlagTombstone) != 0;
  if ((flags & kFlagExpiry) != 0) {
    e.expires_ms = d.u64();
    if (e.expires_ms == 0) d.fail();  // "never" has no flag
  }
  e.value = std::string(d.bytes(max_value_bytes));
  return e;
}

void encode_vv(const VersionVector& vv, std::string& out) {
  put_u32(out, static_cast<uint32_t>(vv.size()));
  for (const auto& [origin, seq] : vv) {
    put_u64(out, origin);
    put_u64(out, seq);
  }
}

VersionVector decode_vv(Decoder& d) {
  VersionVector vv;
  uint32_t n = d.u32();
  if (static_cast<uint64_t>(n) * 16 > d.remaining()) {
    d.fail();
    return vv;
  }
  for (uint32_t k = 0; k < n; k++) {
    StreamId stream = d.u64();
    vv[stream] = d.u64();
  }
  return vv;
}

OpSetPeer decode_peer(Decoder& d) {
  OpSetPeer p;
  p.peer = d.u64();
  p.meta.address = std::string(d.bytes());
  p.meta.incarnation = d.u64();
  p.meta.acked = decode_vv(d);
  return p;
}

void encode_entry(const Entry& e, std::string& out) {
  encode_meta(e.meta, out);
  put_u8(out, (e.tombstone ? kFlagTombstone : 0) | (e.expires_ms != 0 ? kFlagExpiry : 0));
  if (e.expires_ms != 0) put_u64(out, e.expires_ms);
  put_bytes(out, e.value);
}

void encode_peer(NodeId id, const PeerMeta& m, std::string& out) {
  put_u64(out, id);
  put_bytes(out, m.address);
  put_u64(out, m.incarnation);
  encode_vv(m.acked, out);
}

void encode_ops(const std::vector<StateOp>& ops, std::string& out) {
  put_u32(out, static_cast<uint32_t>(ops.size()));
  for (const auto& op : ops) {
    std::visit(Overloaded{
                   [&](const OpSetEntry& s) {
                     put_u8(out, kSetEntry);
                     put_bytes(out, s.key);
                     encode_entry(s.entry, out);
                   },
                   [&](const OpSetPeer& p) {
                     put_u8(out, kSetPeer);
                     encode_peer(p.peer, p.meta, out);
                   },
                   [&](const OpRemovePeer& r) {
                     put_u8(out, kRemovePeer);
                     put_u64(out, r.peer);
                     put_u64(out, r.incarnation);
                   },
                   [&](const OpDropTombstone& t) {
                     put_u8(out, kDropTombstone);
                     put_bytes(out, t.key);
                     encode_meta(t.meta, out);
                   },
                   [&](const OpAdoptAcks& a) {
                     put_u8(out, kAdoptAcks);
                     encode_vv(a.covers, out);
                     encode_vv(a.collected, out);
                     put_u64(out, a.collected_before);
                     put_u64(out, a.clock);
                   },
                   [&](const OpRepairEntry& re) {
                     put_u8(out, kRepairEntry);
                     put_bytes(out, re.key);
                     encode_meta(re.replaced, out);
                     encode_entry(re.entry, out);
                   },
                   [&](const OpResetClock& rc) {
                     put_u8(out, kResetClock);
                     put_u64(out, rc.floor);
                   },
                   [&](const OpExpire& x) {
                     put_u8(out, kExpire);
                     put_bytes(out, x.key);
                     encode_meta(x.meta, out);
                   },
               },
               op);
  }
}

Result<std::vector<StateOp>> decode_ops(std::string_view data) {
  Decoder d(data);
  uint32_t count = d.u32();
  // Each op takes at least 9 bytes (a ResetClock), so a count beyond that is
  // a lie.
  if (d.failed() || static_cast<uint64_t>(count) * 9 > d.remaining()) {
    return Status::corruption("op batch: impossible op count " + std::to_string(count));
  }
  std::vector<StateOp> ops;
  ops.reserve(count);
  for (uint32_t i = 0; i < count && !d.failed(); i++) {
    uint8_t type = d.u8();
    switch (type) {
      case kSetEntry: {
        OpSetEntry op;
        op.key = std::string(d.bytes());
        op.entry = decode_entry(d);
        ops.emplace_back(std::move(op));
        break;
      }
      case kSetPeer: ops.emplace_back(decode_peer(d)); break;
      case kRemovePeer: {
        OpRemovePeer r;
        r.peer = d.u64();
        r.incarnation = d.u64();
        ops.emplace_back(r);
        break;
      }
      case kDropTombstone: {
        OpDropTombstone t;
        t.key = std::string(d.bytes());
        t.meta = decode_meta(d);
        ops.emplace_back(std::move(t));
        break;
      }
      case kAdoptAcks: {
        OpAdoptAcks a;
        a.covers = decode_vv(d);
        a.collected = decode_vv(d);
        a.collected_before = d.u64();
        a.clock = d.u64();
        ops.emplace_back(std::move(a));
        break;
      }
      case kRepairEntry: {
        OpRepairEntry r;
        r.key = std::string(d.bytes());
        r.replaced = decode_meta(d);
        r.entry = decode_entry(d);
        ops.emplace_back(std::move(r));
        break;
      }
      case kResetClock: ops.emplace_back(OpResetClock{d.u64()}); break;
      case kExpire: {
        OpExpire x;
        x.key = std::string(d.bytes());
        x.meta = decode_meta(d);
        ops.emplace_back(std::move(x));
        break;
      }
      default: return Status::corruption("op batch: unknown op type " + std::to_string(type));
    }
  }
  if (!d.done()) return Status::corruption("op batch: malformed, truncated or trailing bytes");
  return ops;
}

}  // namespace wavekv
