// What replication needs from the store beyond the public API: write StateOps
// as they are (replicated entries, ack adoptions, membership) and read the
// state under one consistent view.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "state/state.h"
#include "wavekv/store.h"

namespace wavekv {

// A key whose current version is stamped further ahead of the wall clock than
// a drift bound allows (docs/PROTOCOL.md, "Future timestamps").
struct FutureVersion {
  std::string key;
  Meta meta;  // the version found
  bool tombstone = false;
  Meta repaired;  // what replaced it; zeros when only listed
};

class ReplicatedStore : public Store {
 public:
  // Appends `ops` as one WAL record, applies them in order, and returns once
  // that is durable per the durability mode (persist before you send).
  virtual Status apply_ops(std::vector<StateOp> ops) = 0;
  // Calls `fn` with the state under the shared lock: one consistent view.
  virtual void read_state(const std::function<void(const State&)>& fn) = 0;
  virtual uint64_t incarnation() const = 0;
  // While `why` is not empty, client writes (put, del, write, write_async)
  // fail with kUnavailable and `why`; apply_ops (replication) goes on.
  virtual void refuse_client_writes(const std::string& why) = 0;

  // The keys (all, or only `key`) whose current version is stamped more than
  // `max_drift_ms` ahead of the store's clock, in key order. With `repair`,
  // replaces each, in one WAL record (OpRepairEntry per key, then
  // OpResetClock), by the same value or tombstone written now: own stream, a
  // fresh seq, a timestamp from the wall clock. The hybrid clock is brought
  // back to the newest version that remains. Runs on the commit thread.
  virtual Result<std::vector<FutureVersion>> future_versions(uint64_t max_drift_ms,
                                                             std::optional<std::string> key,
                                                             bool repair) = 0;
};

Result<std::unique_ptr<ReplicatedStore>> open_replicated(Config config);

}  // namespace wavekv
