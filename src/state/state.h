// The core state of a node: the KV map (tombstones included), what it knows of
// its peers, and next_seq. It changes only by apply(StateOp); it does no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "state/state_op.h"
#include "wavekv/types.h"

namespace wavekv {

class State {
 public:
  explicit State(NodeId self) : self_(self) {}

  struct Applied {
    bool changed = false;  // the op altered the state
    std::optional<Entry> previous;
  };
  // Applies one op. Idempotent: applying the same op twice changes nothing the
  // second time. OpSetEntry installs its entry only if it wins by LWW.
  Applied apply(const StateOp& op);

  const std::map<std::string, Entry, std::less<>>& kv() const { return kv_; }
  const std::map<NodeId, PeerMeta>& peers() const { return peers_; }
  NodeId self() const { return self_; }
  // The seq the next local write takes: one past the highest seq of our own
  // origin ever seen in an OpSetEntry, won or lost.
  uint64_t next_seq() const { return next_seq_; }
  // The highest timestamp of any OpSetEntry applied (the clock must not fall
  // behind it after a restart).
  Timestamp max_timestamp() const { return max_timestamp_; }
  uint64_t live_keys() const { return live_keys_; }
  uint64_t tombstones() const { return tombstones_; }
  uint64_t data_bytes() const { return data_bytes_; }

  // Restores the scalar fields from a snapshot.
  void restore_counters(uint64_t next_seq, Timestamp max_timestamp);

 private:
  void account(const Entry& e, const std::string& key, int sign);

  NodeId self_;
  std::map<std::string, Entry, std::less<>> kv_;
  std::map<NodeId, PeerMeta> peers_;
  uint64_t next_seq_ = 1;
  Timestamp max_timestamp_ = 0;
  uint64_t live_keys_ = 0;
  uint64_t tombstones_ = 0;
  uint64_t data_bytes_ = 0;
};

}  // namespace wavekv
