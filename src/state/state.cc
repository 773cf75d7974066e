#include "state/state.h"

#include <algorithm>

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

State::Applied State::apply(const StateOp& op) {
  Applied out;
  if (auto* s = std::get_if<OpSetEntry>(&op)) {
    if (s->entry.meta.node == self_) next_seq_ = std::max(next_seq_, s->entry.meta.seq + 1);
    max_timestamp_ = std::max(max_timestamp_, s->entry.meta.timestamp);
    auto it = kv_.find(s->key);
    if (it == kv_.end()) {
      it = kv_.emplace(s->key, s->entry).first;
      account(it->second, it->first, +1);
      out.changed = true;
    } else if (lww_less(it->second.meta, s->entry.meta)) {
      out.previous = it->second;
      account(it->second, it->first, -1);
      it->second = s->entry;
      account(it->second, it->first, +1);
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
      kv_.erase(it);
      out.changed = true;
    }
  }
  return out;
}

}  // namespace wavekv
