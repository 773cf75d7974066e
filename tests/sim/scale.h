// The scaling experiment behind `sim --scale`: how many sync rounds a write
// takes to reach every node of a large cluster, and what each node sends on
// the way, against fanout.
//
// Unlike Cluster (tests/sim/cluster.h), which runs the real store on a
// fault-injecting file system, a node here is just the pure core: a State in
// memory that applies the replica's ops directly (what the store does after
// its WAL write) and the real Replica. Messages still go through the wire
// encoding, so byte counts are the real ones. There are no faults. Time is
// event-driven: a node is ticked only when something can happen (its next
// sync round, or draining a push after a local write), so 1,000 nodes cost
// what their messages cost, not 1,000 idle ticks every 10 ms.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <variant>

#include "replication/messages.h"
#include "replication/replica.h"

namespace wavekv::sim {

struct ScaleOptions {
  uint64_t seed = 1;
  int nodes = 100;
  // Nodes that write, spread evenly over the cluster; 0 (or >= nodes): all.
  int writers = 10;
  int writes_per_writer = 10;  // distinct keys each writer puts
  size_t value_bytes = 100;
  // Default: every node knows every member from the start (the experiment
  // measures dissemination). With discover, node 0 is every other node's only
  // seed and membership spreads by gossip.
  bool discover = false;
  uint64_t min_delay_ms = 1;  // one-way network delay, uniform
  uint64_t max_delay_ms = 20;
  uint32_t warmup_rounds = 2;  // idle rounds before the writes (first ticks are staggered)
  uint32_t max_rounds = 300;   // give up if not converged by then
  uint32_t idle_rounds = 5;    // measured after convergence (one more settles first)
  ReplicaConfig replica;       // address and seeds are set per node
};

struct ScaleResult {
  bool converged = false;
  std::string failure;       // set if it did not converge or contents differ
  int64_t converge_ms = -1;  // from the writes until every node holds the same contents
  double rounds = 0;         // converge_ms / sync_interval_ms
  int64_t members_ms = -1;   // from the first tick until every node knows every other one
  uint64_t keys = 0;
  // Sent by all nodes from the writes until convergence.
  uint64_t bytes = 0;
  uint64_t messages = 0;
  uint64_t max_node_bytes = 0;
  std::array<uint64_t, std::variant_size_v<Body>> bytes_by_body{};  // by Body alternative
  // Steady state after convergence, per node per sync round.
  double idle_bytes_per_node_round = 0;
  double idle_messages_per_node_round = 0;
  std::array<uint64_t, std::variant_size_v<Body>> idle_bytes_by_body{};  // whole idle window

  double bytes_per_node(int nodes) const { return static_cast<double>(bytes) / nodes; }
  double messages_per_node(int nodes) const { return static_cast<double>(messages) / nodes; }
};

ScaleResult run_scale(const ScaleOptions& options);

// "SyncRequest", "SyncPage", ... by Body alternative index.
const char* body_name(size_t index);

}  // namespace wavekv::sim
