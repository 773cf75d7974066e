// A WaveKV node: the store, the replication state machine driven over a peer
// transport, and the front ends (Redis-compatible port, HTTP/JSON API). This
// is the one entry point `wavekv serve` calls; embedders and tests use it the
// same way.
//
// Threads: the transport's own; one replication worker that alone steps the
// replica Driver (node/driver.h: it decodes frames, reads a consistent view of
// the state, persists the effects, then sends); one io thread for the front
// ends; the store's.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "replication/replica.h"
#include "wavekv/config.h"
#include "wavekv/store.h"
#include "wavekv/transport.h"

namespace wavekv {

struct NodeConfig {
  Config store;  // data_dir, node_id, durability, ...
  ReplicaConfig
      replica;  // address, seeds and key/value limits are filled from the fields above and below
  std::string listen = "127.0.0.1:7400";  // peer transport; port 0 picks one
  std::string advertise;                  // what peers dial; empty: the bound listen address
  std::vector<std::string> peers;         // seeds: any member's peer address
  std::string resp_listen;                // Redis-compatible port; empty: off
  std::string http_listen;                // HTTP/JSON API; empty: off
  uint64_t tick_ms = 10;                  // the replica's clock granularity (push latency)
  size_t max_inbound_frames = 4096;       // frames waiting for the worker; beyond: dropped
  TransportConfig transport;

  // One source of key and value limits, the store's: copies them into
  // `replica`, which holds replicated entries (and the decoder frames) to
  // them. Node::start calls it.
  void derive_limits();
  // Also refuses replica limits that differ from the store's.
  Status validate() const;
};

class Node {
 public:
  // Opens the store, starts the transport, the worker and the front ends.
  // `transport` null: TCP.
  static Result<std::unique_ptr<Node>> start(NodeConfig config,
                                             std::unique_ptr<Transport> transport = nullptr);
  virtual ~Node() = default;  // stop()

  virtual Store& store() = 0;
  virtual std::string peer_address() const = 0;
  virtual std::string resp_address() const = 0;  // empty if off
  virtual std::string http_address() const = 0;  // empty if off

  // /v1/status: node, members with lag, digest, counters, storage figures.
  virtual nlohmann::json status_json() = 0;
  // /metrics: Prometheus text.
  virtual std::string metrics_text() = 0;

  // A peer told this node it was evicted: the caller should stop() it, wipe
  // the data directory and start again (a new incarnation).
  virtual bool rebootstrap_requested() const = 0;
  // Blocks until rebootstrap_requested() or `timeout_ms` passes.
  virtual bool wait_rebootstrap(uint64_t timeout_ms) = 0;

  // Graceful: stops the front ends and the worker, checkpoints and closes the
  // store (drain, fsync). Idempotent; returns the store's close status.
  virtual Status stop() = 0;
};

// For programs that run until SIGINT or SIGTERM: blocks both in the calling
// thread (call it before any other thread starts, so every thread inherits
// the mask) and starts a thread that waits for one. The flag it returns is 0
// until a signal arrives, then that signal's number. Call it once.
const std::atomic<int>& catch_stop_signals();

// Removes the files of a data directory (for a re-bootstrap); keeps the
// directory itself.
Status wipe_data_dir(const std::string& dir);

}  // namespace wavekv
