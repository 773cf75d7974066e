#include "node/clock_monitor.h"

#include <algorithm>
#include <vector>

namespace wavekv {

void ClockMonitor::observe(NodeId peer, uint64_t sent_at_ms, uint64_t received_ms) {
  const int64_t sample = static_cast<int64_t>(sent_at_ms) - static_cast<int64_t>(received_ms);
  auto it = peers_.find(peer);
  if (it == peers_.end()) {
    if (peers_.size() >= kMaxPeers) (void)read(received_ms);  // drops the stale ones
    if (peers_.size() >= kMaxPeers) return;
    it = peers_.emplace(peer, Peer{received_ms, sample, 0, false, received_ms}).first;
    return;
  }
  Peer& p = it->second;
  const uint64_t half = std::max<uint64_t>(window_ms_ / 2, 1);
  if (received_ms < p.cur_start_ms || received_ms >= p.cur_start_ms + half) {
    // A new bucket; the old one stays only if it is within the window (not
    // if this node's clock stepped back: its samples measured another clock).
    p.has_prev = received_ms >= p.cur_start_ms && received_ms < p.cur_start_ms + 2 * half;
    p.prev_max = p.cur_max;
    p.cur_start_ms = received_ms;
    p.cur_max = sample;
  } else {
    p.cur_max = std::max(p.cur_max, sample);
  }
  p.last_ms = received_ms;
}

ClockReading ClockMonitor::read(uint64_t now_ms) {
  ClockReading r;
  std::vector<int64_t> all;
  for (auto it = peers_.begin(); it != peers_.end();) {
    const Peer& p = it->second;
    if (now_ms > p.last_ms + window_ms_) {
      it = peers_.erase(it);  // not heard from within the window
      continue;
    }
    const int64_t est = p.has_prev ? std::max(p.cur_max, p.prev_max) : p.cur_max;
    r.offsets_ms[it->first] = est;
    all.push_back(est);
    const uint64_t magnitude = est < 0 ? static_cast<uint64_t>(-est) : static_cast<uint64_t>(est);
    if (magnitude > max_offset_ms_) r.beyond++;
    ++it;
  }
  r.out_of_bounds = r.beyond * 2 > all.size();
  if (!all.empty()) {
    std::nth_element(all.begin(), all.begin() + all.size() / 2, all.end());
    r.own_offset_ms = -all[all.size() / 2];
  }
  return r;
}

}  // namespace wavekv
