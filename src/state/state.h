// The core state of a node: the KV map (tombstones included), what it knows of
// its peers, and next_seq. It changes only by apply(StateOp); it does no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "state/state_op.h"
#include "wavekv/types.h"

namespace wavekv {

class State {
 public:
  // `stream` is this node's current incarnation: the origin stream its own
  // writes go to.
  State(NodeId self, StreamId stream) : self_(self), stream_(stream) {}
  // The index points into kv(): a copy rebuilds it; a move keeps the nodes.
  State(const State& other);
  State& operator=(const State& other);
  State(State&&) = default;
  State& operator=(State&&) = default;

  struct Applied {
    bool changed = false;  // the op altered the state
    std::optional<Entry> previous;
  };
  // Whether `incoming` replaces `held` as a key's current version: it is
  // newer by LWW, or it is the same version in a fuller form. A tombstone
  // without expiry that shares its version with a value is what a frame in a
  // wire version before 4 made of an expiring value (put_entries in
  // replication/wire.cc); the form that knows the expiry replaces it, so
  // nodes sent either form converge on the same state.
  static bool supersedes(const Entry& incoming, const Entry& held) {
    return lww_less(held.meta, incoming.meta) || (held.meta == incoming.meta && held.tombstone &&
                                                  held.expires_ms == 0 && incoming.expires_ms != 0);
  }
  // Applies one op. Idempotent: applying the same op twice changes nothing the
  // second time. OpSetEntry installs its entry only if it wins by LWW.
  Applied apply(const StateOp& op);

  using KvMap = std::map<std::string, Entry, std::less<>>;
  const KvMap& kv() const { return kv_; }
  const std::map<NodeId, PeerMeta>& peers() const { return peers_; }
  // Evicted members, as (id, incarnation): messages from one are refused and
  // gossip cannot re-add it. Another incarnation of the id may join again.
  using RemovedSet = std::set<std::pair<NodeId, uint64_t>>;
  const RemovedSet& removed() const { return removed_; }
  bool is_removed(NodeId id, uint64_t incarnation) const {
    return removed_.count({id, incarnation}) > 0;
  }
  NodeId self() const { return self_; }
  StreamId stream() const { return stream_; }
  // The seq the next local write takes: one past the highest seq of our own
  // stream ever seen in an OpSetEntry, won or lost.
  uint64_t next_seq() const { return next_seq_; }
  // The highest timestamp of any OpSetEntry applied or any clock adopted with
  // a peer's claim (the clock must not fall behind it after a restart), until
  // an OpResetClock brings it back to the newest current version.
  Timestamp max_timestamp() const { return max_timestamp_; }
  // Visits, in key order, every key whose current version (tombstones
  // included) is stamped later than `horizon_ms` milliseconds since the epoch:
  // the "future" versions peers refuse (docs/PROTOCOL.md, "Future
  // timestamps"). `fn` returns false to stop. O(1) when max_timestamp() is
  // not past the horizon (the usual case), one scan of the map otherwise.
  void for_each_stamped_after(
      uint64_t horizon_ms, const std::function<bool(const std::string&, const Entry&)>& fn) const;
  uint64_t live_keys() const { return live_keys_; }
  uint64_t tombstones() const { return tombstones_; }
  uint64_t data_bytes() const { return data_bytes_; }

  // Restores the scalar fields from a snapshot; next_seq only if the snapshot
  // was taken in the same stream.
  void restore_counters(uint64_t next_seq, StreamId stream, Timestamp max_timestamp);
  // Raises the collected-tombstone horizon; true if it changed.
  bool restore_collected(const VersionVector& collected, Timestamp before);
  // Starts a new origin stream (the node took a new incarnation because writes
  // it had issued may be lost): seqs start again at 1. The old stream stays
  // covered up to what survived here: the WAL loses only a suffix, and seqs
  // were issued in WAL order, so every seq below the lost ones is present.
  void begin_stream(StreamId stream);

  // What this node claims to cover: for each origin stream, the highest seq
  // whose entries (or newer versions of their keys) it has merged. Its own
  // stream: next_seq - 1, everything it wrote.
  VersionVector acks() const;
  // The claims adopted from peers (the own stream is not in it).
  const VersionVector& adopted_acks() const { return acks_; }
  // The collected-tombstone horizon: per stream, the highest seq of a
  // tombstone this node or a peer whose claim it adopted has forgotten, and
  // the newest timestamp among those tombstones.
  const VersionVector& collected() const { return collected_; }
  Timestamp collected_before() const { return collected_before_; }
  // True if some current version is stamped at or before `ts` and `except`
  // does not cover its (incarnation, seq). A scan: only asked when a peer's
  // horizon is not covered, which is rare.
  bool holds_version_stamped_by(Timestamp ts, const VersionVector& except = {}) const;

  // The current version of every key, by origin stream and seq: superseded versions
  // are not in it, so a delta never ships them. Each value points to a key of
  // kv(). A delta "entries above `have`" costs O(log n + delta).
  using OriginIndex = std::map<StreamId, std::map<uint64_t, const std::string*>>;
  const OriginIndex& index() const { return index_; }
  // The same, for tombstones only: what tombstone GC walks.
  const OriginIndex& tombstone_index() const { return tombstone_index_; }

  // The values with an expiry, soonest first, as (expires_ms, key of kv()):
  // what the store's expiry sweep walks (OpExpire). Tombstones are not in it.
  using ExpiryIndex = std::set<std::pair<uint64_t, const std::string*>>;
  const ExpiryIndex& expiry_index() const { return expiry_index_; }

  // Arrivals: every version that becomes current (a local write, a merged
  // entry, a repair) takes the next arrival number. The most recent
  // kRecentArrivals are remembered as (stream, seq), so a paged delta can ship
  // what arrived behind its cursor between two pages (docs/PROTOCOL.md, "Delta
  // sync"). Not persisted: numbers restart at each open.
  static constexpr size_t kRecentArrivals = 1 << 14;
  uint64_t arrivals() const { return arrivals_; }
  // Calls fn(stream, seq) for every arrival numbered above `after`, oldest
  // first (the version may have been superseded since). Returns false, calling
  // nothing, if the oldest of them is no longer remembered.
  bool for_each_arrival_after(uint64_t after,
                              const std::function<void(StreamId, uint64_t)>& fn) const;

  // Digest of the replicated state, bucketed by key hash and kept up to date
  // in O(1) per change: bucket b is the XOR of version_hash() over the current
  // versions (tombstones included) of the keys with bucket_of(key) == b.
  static constexpr size_t kBuckets = 256;
  static size_t bucket_of(std::string_view key);
  static uint64_t version_hash(std::string_view key, const Entry& e);
  const std::array<uint64_t, kBuckets>& digest() const { return digest_; }

 private:
  // One handler per op type (apply dispatches with std::visit).
  Applied set_entry(const OpSetEntry& op);
  Applied set_peer(const OpSetPeer& op);
  Applied remove_peer(const OpRemovePeer& op);
  Applied drop_tombstone(const OpDropTombstone& op);
  Applied adopt_acks(const OpAdoptAcks& op);
  Applied repair_entry(const OpRepairEntry& op);  // repair-timestamps, not bucket repair
  Applied reset_clock(const OpResetClock& op);
  Applied expire(const OpExpire& op);
  // A version of our own stream raises next_seq; any version, the clock floor.
  void note_version(const Meta& m);
  // Replaces the current version at `it` by `entry`, keeping the counters,
  // index and digest in step.
  void replace_version(KvMap::iterator it, const Entry& entry, Applied& out);
  void account(const Entry& e, const std::string& key, int sign);
  void unlink(const std::string& key, const Entry& e);  // from index and digest
  void link(const std::string& key, const Entry& e);

  NodeId self_;
  StreamId stream_;
  std::map<std::string, Entry, std::less<>> kv_;
  std::map<NodeId, PeerMeta> peers_;
  RemovedSet removed_;
  uint64_t next_seq_ = 1;
  Timestamp max_timestamp_ = 0;
  uint64_t live_keys_ = 0;
  uint64_t tombstones_ = 0;
  uint64_t data_bytes_ = 0;
  VersionVector acks_;
  VersionVector collected_;
  Timestamp collected_before_ = 0;
  OriginIndex index_;
  OriginIndex tombstone_index_;
  ExpiryIndex expiry_index_;
  std::array<uint64_t, kBuckets> digest_{};
  uint64_t arrivals_ = 0;
  std::deque<std::pair<StreamId, uint64_t>> recent_;  // arrivals_ - size() + 1 .. arrivals_
};

}  // namespace wavekv
