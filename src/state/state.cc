#include "state/state.h"

#include <xxhash.h>

#include <algorithm>

#include "util/coding.h"
#include "util/overloaded.h"

namespace wavekv {

void State::account(const Entry& e, const std::string& key, int sign) {
  if (e.tombstone) {
    tombstones_ += sign;
  } else {
    live_keys_ += sign;
    data_bytes_ += sign * static_cast<int64_t>(key.size() + e.value.size());
  }
}

bool State::restore_collected(const VersionVector& collected, Timestamp before) {
  bool changed = false;
  for (const auto& [stream, seq] : collected) {
    uint64_t& mine = collected_[stream];
    changed = changed || seq > mine;
    mine = std::max(mine, seq);
  }
  changed = changed || before > collected_before_;
  collected_before_ = std::max(collected_before_, before);
  return changed;
}

bool State::holds_version_stamped_by(Timestamp ts, const VersionVector& except) const {
  for (const auto& [key, e] : kv_) {
    if (e.meta.timestamp > ts) continue;
    auto c = except.find(e.meta.incarnation);
    if (c == except.end() || c->second < e.meta.seq) return true;
  }
  return false;
}

void State::restore_counters(uint64_t next_seq, StreamId stream, Timestamp max_timestamp) {
  if (stream == stream_) next_seq_ = std::max(next_seq_, next_seq);
  max_timestamp_ = std::max(max_timestamp_, max_timestamp);
}

void State::begin_stream(StreamId stream) {
  if (next_seq_ > 1) acks_[stream_] = std::max(acks_[stream_], next_seq_ - 1);
  stream_ = stream;
  next_seq_ = 1;
}

size_t State::bucket_of(std::string_view key) {
  return XXH3_64bits(key.data(), key.size()) % kBuckets;
}

uint64_t State::version_hash(std::string_view key, const Entry& e) {
  std::string buf;
  put_bytes(buf, key);
  encode_meta(e.meta, buf);
  // A value with an expiry hashes as the tombstone it becomes when it
  // expires (OpExpire), so expiring it changes no digest; and as the
  // tombstone a node of a wire version before 4 is sent instead (it cannot
  // hold an expiry), so the two agree. A version is one (origin, seq): the
  // hash need not tell the two forms apart.
  put_u8(buf, e.tombstone || e.expires_ms != 0 ? 1 : 0);
  return XXH3_64bits(buf.data(), buf.size());
}

namespace {

void index_erase(State::OriginIndex& index, const std::string& key, const Meta& m) {
  auto it = index.find(m.incarnation);
  if (it == index.end()) return;
  auto jt = it->second.find(m.seq);
  // Two keys may carry the same (origin, seq) only if an origin lied; the
  // index then keeps whichever came last, and only that one is removed.
  if (jt != it->second.end() && jt->second == &key) it->second.erase(jt);
  if (it->second.empty()) index.erase(it);
}

}  // namespace

void State::link(const std::string& key, const Entry& e) {
  index_[e.meta.incarnation][e.meta.seq] = &key;
  if (e.tombstone) tombstone_index_[e.meta.incarnation][e.meta.seq] = &key;
  if (!e.tombstone && e.expires_ms != 0) expiry_index_.emplace(e.expires_ms, &key);
  digest_[bucket_of(key)] ^= version_hash(key, e);
  arrivals_++;
  recent_.emplace_back(e.meta.incarnation, e.meta.seq);
  if (recent_.size() > kRecentArrivals) recent_.pop_front();
}

bool State::for_each_arrival_after(uint64_t after,
                                   const std::function<void(StreamId, uint64_t)>& fn) const {
  if (after > arrivals_) return false;  // a number this state never issued
  const uint64_t missing = arrivals_ - after;
  if (missing > recent_.size()) return false;
  for (auto it = recent_.end() - static_cast<ptrdiff_t>(missing); it != recent_.end(); ++it)
    fn(it->first, it->second);
  return true;
}

void State::unlink(const std::string& key, const Entry& e) {
  index_erase(index_, key, e.meta);
  if (e.tombstone) index_erase(tombstone_index_, key, e.meta);
  if (!e.tombstone && e.expires_ms != 0) expiry_index_.erase({e.expires_ms, &key});
  digest_[bucket_of(key)] ^= version_hash(key, e);
}

State::State(const State& o)
    : self_(o.self_),
      stream_(o.stream_),
      kv_(o.kv_),
      peers_(o.peers_),
      removed_(o.removed_),
      next_seq_(o.next_seq_),
      max_timestamp_(o.max_timestamp_),
      live_keys_(o.live_keys_),
      tombstones_(o.tombstones_),
      data_bytes_(o.data_bytes_),
      acks_(o.acks_),
      collected_(o.collected_),
      collected_before_(o.collected_before_),
      digest_(o.digest_),
      arrivals_(o.arrivals_),
      recent_(o.recent_) {
  for (const auto& [key, e] : kv_) {
    index_[e.meta.incarnation][e.meta.seq] = &key;
    if (e.tombstone) tombstone_index_[e.meta.incarnation][e.meta.seq] = &key;
    if (!e.tombstone && e.expires_ms != 0) expiry_index_.emplace(e.expires_ms, &key);
  }
}

State& State::operator=(const State& o) {
  if (this != &o) *this = State(o);
  return *this;
}

void State::for_each_stamped_after(
    uint64_t horizon_ms, const std::function<bool(const std::string&, const Entry&)>& fn) const {
  if (timestamp_millis(max_timestamp_) <= horizon_ms) return;
  for (const auto& [key, e] : kv_)
    if (timestamp_millis(e.meta.timestamp) > horizon_ms && !fn(key, e)) return;
}

VersionVector State::acks() const {
  VersionVector vv = acks_;
  if (next_seq_ > 1) vv[stream_] = std::max(vv[stream_], next_seq_ - 1);
  return vv;
}

State::Applied State::apply(const StateOp& op) {
  return std::visit(Overloaded{
                        [&](const OpSetEntry& o) { return set_entry(o); },
                        [&](const OpSetPeer& o) { return set_peer(o); },
                        [&](const OpRemovePeer& o) { return remove_peer(o); },
                        [&](const OpDropTombstone& o) { return drop_tombstone(o); },
                        [&](const OpAdoptAcks& o) { return adopt_acks(o); },
                        [&](const OpRepairEntry& o) { return repair_entry(o); },
                        [&](const OpResetClock& o) { return reset_clock(o); },
                        [&](const OpExpire& o) { return expire(o); },
                    },
                    op);
}

void State::note_version(const Meta& m) {
  if (m.node == self_ && m.incarnation == stream_) next_seq_ = std::max(next_seq_, m.seq + 1);
  max_timestamp_ = std::max(max_timestamp_, m.timestamp);
}

void State::replace_version(KvMap::iterator it, const Entry& entry, Applied& out) {
  out.previous = it->second;
  account(it->second, it->first, -1);
  unlink(it->first, it->second);
  it->second = entry;
  account(it->second, it->first, +1);
  link(it->first, it->second);
  out.changed = true;
}

State::Applied State::set_entry(const OpSetEntry& op) {
  Applied out;
  note_version(op.entry.meta);
  auto it = kv_.find(op.key);
  if (it == kv_.end()) {
    it = kv_.emplace(op.key, op.entry).first;
    account(it->second, it->first, +1);
    link(it->first, it->second);
    out.changed = true;
  } else if (supersedes(op.entry, it->second)) {
    replace_version(it, op.entry, out);
  }
  return out;
}

State::Applied State::set_peer(const OpSetPeer& op) {
  Applied out;
  if (is_removed(op.peer, op.meta.incarnation)) return out;
  auto& cur = peers_[op.peer];
  out.changed = !(cur == op.meta);
  cur = op.meta;
  return out;
}

State::Applied State::remove_peer(const OpRemovePeer& op) {
  Applied out;
  auto it = peers_.find(op.peer);
  if (it != peers_.end() && it->second.incarnation == op.incarnation) {
    peers_.erase(it);
    out.changed = true;
  }
  if (removed_.insert({op.peer, op.incarnation}).second) out.changed = true;
  return out;
}

State::Applied State::drop_tombstone(const OpDropTombstone& op) {
  Applied out;
  auto it = kv_.find(op.key);
  if (it == kv_.end() || !it->second.tombstone || !(it->second.meta == op.meta)) return out;
  out.previous = it->second;
  account(it->second, it->first, -1);
  unlink(it->first, it->second);
  kv_.erase(it);
  uint64_t& horizon = collected_[op.meta.incarnation];
  horizon = std::max(horizon, op.meta.seq);
  collected_before_ = std::max(collected_before_, op.meta.timestamp);
  out.changed = true;
  return out;
}

State::Applied State::expire(const OpExpire& op) {
  // The same version, as a tombstone: the index and the digest keep it
  // (version_hash is the same), it is no arrival (nothing new to ship), and
  // tombstone GC now sees it.
  Applied out;
  auto it = kv_.find(op.key);
  if (it == kv_.end() || it->second.tombstone || it->second.expires_ms == 0 ||
      !(it->second.meta == op.meta))
    return out;
  out.previous = it->second;
  account(it->second, it->first, -1);
  expiry_index_.erase({it->second.expires_ms, &it->first});
  it->second.tombstone = true;
  it->second.value.clear();
  it->second.value.shrink_to_fit();
  account(it->second, it->first, +1);
  tombstone_index_[op.meta.incarnation][op.meta.seq] = &it->first;
  out.changed = true;
  return out;
}

State::Applied State::repair_entry(const OpRepairEntry& op) {
  // Like OpSetEntry for next_seq and the clock, but it replaces exactly the
  // version it names, whatever LWW says, and nothing else.
  Applied out;
  const Meta& m = op.entry.meta;
  note_version(m);
  auto it = kv_.find(op.key);
  if (it != kv_.end() && it->second.meta == op.replaced && !(it->second.meta == m))
    replace_version(it, op.entry, out);
  return out;
}

State::Applied State::reset_clock(const OpResetClock& op) {
  // Never below a collected tombstone: a later write of its key must beat it.
  Applied out;
  Timestamp newest = std::max(op.floor, collected_before_);
  for (const auto& [key, e] : kv_) newest = std::max(newest, e.meta.timestamp);
  out.changed = newest != max_timestamp_;
  max_timestamp_ = newest;
  return out;
}

State::Applied State::adopt_acks(const OpAdoptAcks& op) {
  Applied out;
  for (const auto& [stream, seq] : op.covers) {
    uint64_t& mine = acks_[stream];
    if (seq > mine) {
      mine = seq;
      out.changed = true;
    }
    if (stream == stream_ && seq >= next_seq_) next_seq_ = seq + 1;
  }
  out.changed = restore_collected(op.collected, op.collected_before) || out.changed;
  if (op.clock > max_timestamp_) {
    max_timestamp_ = op.clock;
    out.changed = true;
  }
  return out;
}

}  // namespace wavekv
