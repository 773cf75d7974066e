// What the peers' clocks say about this node's (CockroachDB's maximum clock
// offset is the model). Every version-3 message carries its sender's wall
// clock; a sample is that minus this node's clock when the frame arrived,
// which is the true offset less the message's delay. So the estimate for a
// peer is the largest sample of the last window (the least delayed one): it
// errs only towards "no offset", for a peer ahead and a peer behind alike.
//
// This node is out of bounds when more than half of the peers heard from in
// the window are further than max_offset_ms from it, ahead or behind: then
// its own clock, not theirs, is the likely culprit. With one peer, either
// clock may be wrong, and both nodes say so. Pure: times come in as
// arguments.
#pragma once

#include <cstdint>
#include <map>

#include "wavekv/types.h"

namespace wavekv {

struct ClockReading {
  std::map<NodeId, int64_t> offsets_ms;  // per peer heard from: its clock minus ours
  size_t beyond = 0;                     // peers further than the bound
  bool out_of_bounds = false;            // beyond > offsets_ms.size() / 2
  // The median of offsets_ms, negated: how far this node's clock is ahead of
  // its peers' (negative: behind). 0 without peers.
  int64_t own_offset_ms = 0;
};

class ClockMonitor {
 public:
  ClockMonitor(uint64_t max_offset_ms, uint64_t window_ms)
      : max_offset_ms_(max_offset_ms), window_ms_(window_ms) {}

  // A message from `peer` stamped `sent_at_ms` by its clock, received at
  // `received_ms` by ours.
  void observe(NodeId peer, uint64_t sent_at_ms, uint64_t received_ms);
  ClockReading read(uint64_t now_ms);

  uint64_t max_offset_ms() const { return max_offset_ms_; }

 private:
  // The largest sample of two half-window buckets: the current one (started
  // at cur_start_ms) and the one before it.
  struct Peer {
    uint64_t cur_start_ms = 0;
    int64_t cur_max = 0;
    int64_t prev_max = 0;
    bool has_prev = false;
    uint64_t last_ms = 0;
  };
  static constexpr size_t kMaxPeers = 4096;  // frames from made-up ids cannot grow it further

  const uint64_t max_offset_ms_;
  const uint64_t window_ms_;
  std::map<NodeId, Peer> peers_;
};

}  // namespace wavekv
