// What replication needs from the store beyond the public API: write StateOps
// as they are (replicated entries, ack adoptions, membership) and read the
// state under one consistent view.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "state/state.h"
#include "wavekv/store.h"

namespace wavekv {

class ReplicatedStore : public Store {
 public:
  // Appends `ops` as one WAL record, applies them in order, and returns once
  // that is durable per the durability mode (persist before you send).
  virtual Status apply_ops(std::vector<StateOp> ops) = 0;
  // Calls `fn` with the state under the shared lock: one consistent view.
  virtual void read_state(const std::function<void(const State&)>& fn) = 0;
  virtual uint64_t incarnation() const = 0;
};

Result<std::unique_ptr<ReplicatedStore>> open_replicated(Config config);

}  // namespace wavekv
