#include "state/state.h"

#include <xxhash.h>

#include <algorithm>

#include "util/coding.h"

namespace wavekv {

void State::account(const Entry& e, const std::string& key, int sign) {
  if (e.tombstone) {
    tombstones_ += sign;
  } else {
    live_keys_ += sign;
    data_bytes_ += sign * static_cast<int64_t>(key.size() + e.value.size());
  }
}

void State::restore_counters(uint64_t next_seq, Timestamp max_timestamp) {
  next_seq_ = std::max(next_seq_, next_seq);
  max_timestamp_ = std::max(max_timestamp_, max_timestamp);
}

size_t State::bucket_of(std::string_view key) {
  return XXH3_64bits(key.data(), key.size()) % kBuckets;
}

uint64_t State::version_hash(std::string_view key, const Entry& e) {
  std::string buf;
  put_bytes(buf, key);
  encode_meta(e.meta, buf);
  put_u8(buf, e.tombstone ? 1 : 0);
  return XXH3_64bits(buf.data(), buf.size());
}

void State::link(const std::string& key, const Entry& e) {
  index_[e.meta.node][e.meta.seq] = &key;
  digest_[bucket_of(key)] ^= version_hash(key, e);
}

void State::unlink(const std::string& key, const Entry& e) {
  auto it = index_.find(e.meta.node);
  if (it != index_.end()) {
    auto jt = it->second.find(e.meta.seq);
    // Two keys may carry the same (origin, seq) only if an origin lied; the
    // index then keeps whichever came last, and only that one is removed.
    if (jt != it->second.end() && jt->second == &key) it->second.erase(jt);
    if (it->second.empty()) index_.erase(it);
  }
  digest_[bucket_of(key)] ^= version_hash(key, e);
}

State::State(const State& o)
    : self_(o.self_),
      kv_(o.kv_),
      peers_(o.peers_),
      next_seq_(o.next_seq_),
      max_timestamp_(o.max_timestamp_),
      live_keys_(o.live_keys_),
      tombstones_(o.tombstones_),
      data_bytes_(o.data_bytes_),
      acks_(o.acks_),
      digest_(o.digest_) {
  for (const auto& [key, e] : kv_) index_[e.meta.node][e.meta.seq] = &key;
}

State& State::operator=(const State& o) {
  if (this != &o) *this = State(o);
  return *this;
}

VersionVector State::acks() const {
  VersionVector vv = acks_;
  if (next_seq_ > 1) vv[self_] = std::max(vv[self_], next_seq_ - 1);
  return vv;
}

State::Applied State::apply(const StateOp& op) {
  Applied out;
  if (auto* s = std::get_if<OpSetEntry>(&op)) {
    if (s->entry.meta.node == self_) next_seq_ = std::max(next_seq_, s->entry.meta.seq + 1);
    max_timestamp_ = std::max(max_timestamp_, s->entry.meta.timestamp);
    auto it = kv_.find(s->key);
    if (it == kv_.end()) {
      it = kv_.emplace(s->key, s->entry).first;
      account(it->second, it->first, +1);
      link(it->first, it->second);
      out.changed = true;
    } else if (lww_less(it->second.meta, s->entry.meta)) {
      out.previous = it->second;
      account(it->second, it->first, -1);
      unlink(it->first, it->second);
      it->second = s->entry;
      account(it->second, it->first, +1);
      link(it->first, it->second);
      out.changed = true;
    }
  } else if (auto* p = std::get_if<OpSetPeer>(&op)) {
    auto& cur = peers_[p->peer];
    out.changed = !(cur == p->meta);
    cur = p->meta;
  } else if (auto* r = std::get_if<OpRemovePeer>(&op)) {
    out.changed = peers_.erase(r->peer) > 0;
  } else if (auto* t = std::get_if<OpDropTombstone>(&op)) {
    auto it = kv_.find(t->key);
    if (it != kv_.end() && it->second.tombstone && it->second.meta == t->meta) {
      out.previous = it->second;
      account(it->second, it->first, -1);
      unlink(it->first, it->second);
      kv_.erase(it);
      out.changed = true;
    }
  } else if (auto* a = std::get_if<OpAdoptAcks>(&op)) {
    for (const auto& [origin, seq] : a->covers) {
      uint64_t& mine = acks_[origin];
      if (seq > mine) {
        mine = seq;
        out.changed = true;
      }
      if (origin == self_ && seq >= next_seq_) next_seq_ = seq + 1;
    }
  } else if (auto* r = std::get_if<OpReserveSeqs>(&op)) {
    if (r->upto >= next_seq_) {
      next_seq_ = r->upto + 1;
      out.changed = true;
    }
  }
  return out;
}

}  // namespace wavekv
