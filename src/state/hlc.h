// A hybrid logical clock: timestamps that follow the wall clock, never go
// backwards on one node even if the wall clock does, and advance past any
// timestamp the node has seen. Pure: the wall time is an argument.
#pragma once

#include <algorithm>

#include "wavekv/types.h"

namespace wavekv {

class HybridClock {
 public:
  // A fresh timestamp, greater than every one issued or observed before.
  Timestamp now(uint64_t wall_ms) {
    last_ = std::max(last_ + 1, timestamp_from_millis(wall_ms));
    return last_;
  }
  // Remembers a timestamp seen elsewhere (a replicated entry, a recovered one).
  void observe(Timestamp ts) { last_ = std::max(last_, ts); }
  // The same, but moving the clock at most `step_ms` past the later of its
  // own time and the wall clock (0: no bound).
  void observe_bounded(Timestamp ts, uint64_t wall_ms, uint64_t step_ms) {
    if (step_ms != 0)
      ts = std::min(
          ts, std::max(last_, timestamp_from_millis(wall_ms)) + timestamp_from_millis(step_ms));
    observe(ts);
  }
  Timestamp last() const { return last_; }
  // Forgets a clock that ran ahead: the next timestamp follows `ts` (or the
  // wall clock). Only for the operator repair of future timestamps, after
  // the versions stamped past `ts` were replaced (docs/PROTOCOL.md).
  void reset(Timestamp ts) { last_ = ts; }

 private:
  Timestamp last_ = 0;
};

}  // namespace wavekv
