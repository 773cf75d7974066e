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
  Timestamp last() const { return last_; }
  // Forgets a clock that ran ahead: the next timestamp follows `ts` (or the
  // wall clock). Only for the operator repair of future timestamps, after
  // the versions stamped past `ts` were replaced (docs/PROTOCOL.md).
  void reset(Timestamp ts) { last_ = ts; }

 private:
  Timestamp last_ = 0;
};

}  // namespace wavekv
