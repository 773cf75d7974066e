// StateOp: the only way the core state changes. Each is appended to the WAL (in
// a batch that forms one record) before it is applied; recovery replays them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "wavekv/status.h"
#include "wavekv/types.h"

namespace wavekv {

// An origin stream: one incarnation of a node (see Meta), whose writes are
// numbered by seq 1, 2, ... Same bits as Meta::incarnation; a node's id
// (NodeId) is a different thing.
using StreamId = uint64_t;

// For each origin stream, the highest seq whose every entry (or a newer
// version of its key) the holder has merged.
using VersionVector = std::map<StreamId, uint64_t>;

// Install `entry` for `key` if it wins over the current version by LWW.
// Local writes, replicated writes and deletes (tombstones) are all this op.
struct OpSetEntry {
  std::string key;
  Entry entry;
  bool operator==(const OpSetEntry&) const = default;
};

// What this node knows about another member (replication fills it in).
struct PeerMeta {
  std::string address;
  uint64_t incarnation = 0;
  // For each origin stream, the highest seq this peer is known to cover (from
  // the vector it last sent in a sync request: what it has adopted).
  VersionVector acked;
  bool operator==(const PeerMeta&) const = default;
};

struct OpSetPeer {
  NodeId peer = 0;
  PeerMeta meta;
  bool operator==(const OpSetPeer&) const = default;
};

// Evict a member: forget it, and remember that this incarnation (and any
// earlier one) of it is removed, so gossip cannot bring it back and a restart
// does not undo it. A later incarnation of the same id may join again.
struct OpRemovePeer {
  NodeId peer = 0;
  uint64_t incarnation = 0;
  bool operator==(const OpRemovePeer&) const = default;
};

// Forget a tombstone, but only if it is still exactly this version.
struct OpDropTombstone {
  std::string key;
  Meta meta;
  bool operator==(const OpDropTombstone&) const = default;
};

// Adopt a peer's claim: raise this node's version vector to cover `covers`
// (per-origin max), its collected-tombstone horizon to `collected` and
// `collected_before`, and its clock floor to `clock` (the peer's newest
// timestamp, so no later local write is stamped below a tombstone the claim
// covers). Persisted only after every entry of the delta that justified it
// merged.
struct OpAdoptAcks {
  OpAdoptAcks() = default;
  explicit OpAdoptAcks(VersionVector covers_, VersionVector collected_ = {},
                       Timestamp collected_before_ = 0, Timestamp clock_ = 0)
      : covers(std::move(covers_)),
        collected(std::move(collected_)),
        collected_before(collected_before_),
        clock(clock_) {}
  VersionVector covers;
  VersionVector collected;
  Timestamp collected_before = 0;
  Timestamp clock = 0;
  bool operator==(const OpAdoptAcks&) const = default;
};

// Operator repair of a future timestamp (docs/PROTOCOL.md, "Future
// timestamps"): replace the current version of `key`, if it is still exactly
// `replaced`, by `entry` whatever LWW says. `entry` is a fresh local write (own
// stream, a new seq, a timestamp from the wall clock) of the same value or
// tombstone. Nothing else may bypass LWW.
struct OpRepairEntry {
  std::string key;
  Meta replaced;
  Entry entry;
  bool operator==(const OpRepairEntry&) const = default;
};

// Sets the clock floor (State::max_timestamp, what the hybrid clock restarts
// from) to the newest current version, or `floor` if that is later. Written
// after OpRepairEntry ops, so that a clock that ran ahead comes back.
struct OpResetClock {
  Timestamp floor = 0;
  bool operator==(const OpResetClock&) const = default;
};

// The value of `key` expired: if its current version is still exactly
// `meta`, a value with an expiry, it becomes a tombstone of the same version
// (value dropped, expires_ms kept), which tombstone GC may then collect. The
// node's own clock decides when to write it (its reads hide the value from
// the expiry on anyway); it is not replicated: every node expires on its own,
// and a peer that is sent either form of the version holds the same version.
struct OpExpire {
  std::string key;
  Meta meta;
  bool operator==(const OpExpire&) const = default;
};

using StateOp = std::variant<OpSetEntry, OpSetPeer, OpRemovePeer, OpDropTombstone, OpAdoptAcks,
                             OpRepairEntry, OpResetClock, OpExpire>;

// Appends the encoding of `ops` (a count, then each op) to `out`.
void encode_ops(const std::vector<StateOp>& ops, std::string& out);
// Decodes what encode_ops wrote. Never trusts a length it has not checked.
Result<std::vector<StateOp>> decode_ops(std::string_view data);

class Decoder;
void encode_meta(const Meta& m, std::string& out);
Meta decode_meta(Decoder& d);
// An entry: meta, a flags byte (bit 0 tombstone, bit 1 an expiry follows),
// [u64 expires_ms], the value. Without an expiry the bytes are those of the
// first format (flags 0 or 1), so older files and frames read unchanged.
void encode_entry(const Entry& e, std::string& out);
// An entry as written by encode_entry; sets d.failed() on malformed input,
// and on an expiry when `allow_expiry` is false (a wire version before 4).
Entry decode_entry(Decoder& d, uint64_t max_value_bytes = UINT32_MAX, bool allow_expiry = true);
void encode_peer(NodeId id, const PeerMeta& m, std::string& out);
// A peer as written by encode_peer; sets d.failed() on malformed input.
OpSetPeer decode_peer(Decoder& d);
// u32 n, then n × (u64 origin, u64 seq).
void encode_vv(const VersionVector& vv, std::string& out);
VersionVector decode_vv(Decoder& d);

}  // namespace wavekv
