// A WaveKV node: the store, the replication protocol driven over a peer
// transport, and the front ends (Redis-compatible port, HTTP/JSON API). This
// is the one entry point `wavekv serve` and filesync call; embedders and
// tests use it the same way.
//
// Threads: the transport's own; one replication worker that alone touches the
// replica state machine; one io thread for the front ends; the store's.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "wavekv/config.h"
#include "wavekv/log.h"
#include "wavekv/replication.h"
#include "wavekv/status.h"
#include "wavekv/store.h"
#include "wavekv/transport.h"
#include "wavekv/types.h"

namespace wavekv {

// TLS and authentication of the client ports (RESP and HTTP), docs/SECURITY.md.
struct ClientSecurity {
  // Both set: the ports speak TLS only (TLS 1.2 or 1.3), with this
  // certificate and key (PEM).
  std::string tls_cert_file, tls_key_file;
  // Set: clients may present a certificate chaining to this CA;
  // require_client_cert makes it mandatory (the handshake fails without).
  std::string tls_client_ca_file;
  bool require_client_cert = false;
  // Set: every client logs in as a user of this file (AUTH, HELLO AUTH,
  // HTTP Basic or Bearer) and may do what its role and prefixes allow.
  // Empty: everyone may do everything.
  std::string users_file;
  // With a users file, connections that have not logged in yet are bounded:
  // in all, per source address, and in time (then closed).
  size_t max_unauthenticated = 256;
  size_t max_unauthenticated_per_source = 32;
  uint32_t auth_timeout_ms = 10'000;

  bool tls() const { return !tls_cert_file.empty() || !tls_key_file.empty(); }
  // Refuses half a TLS setup (a cert without its key, a client CA or
  // require_client_cert without TLS).
  Status validate() const;
};

struct NodeConfig {
  Config store;  // data_dir, node_id, durability, ...
  // Address and seeds are filled from the fields below; its key and value
  // limits are the store's (derive_limits).
  ReplicaConfig replica;
  std::string listen = "127.0.0.1:7400";  // peer transport; port 0 picks one
  std::string advertise;                  // what peers dial; empty: the bound listen address
  std::vector<std::string> peers;         // seeds: any member's peer address
  std::string resp_listen;                // Redis-compatible port; empty: off
  // The RESP port's memory for all its clients' requests and replies, and
  // its idle timeout (0: none); docs/RESP.md "Memory" and "Limits".
  uint64_t resp_max_client_memory_bytes = 512ull << 20;
  uint64_t resp_idle_timeout_ms = 0;
  // Redis's notify-keyspace-events letters for the RESP port ("": none).
  std::string resp_notify_keyspace_events;
  // The HTTP port's memory for all its clients' bodies, replies and watch
  // queues (docs/HTTP.md, "Memory").
  uint64_t http_max_client_memory_bytes = 512ull << 20;
  std::string http_listen;           // HTTP/JSON API; empty: off
  uint64_t tick_ms = 10;             // the replica's clock granularity (push latency)
  size_t max_inbound_frames = 4096;  // frames waiting for the worker; beyond: dropped
  // The newest peer wire version this node speaks; 0: this build's newest.
  // 2 makes it behave as the previous release on the wire (it sends version 2
  // and refuses newer frames): the rolling-upgrade tests run one.
  uint8_t max_wire_version = 0;
  // transport.security: how peers authenticate (docs/SECURITY.md, "Peers").
  TransportConfig transport;
  ClientSecurity clients;  // the RESP and HTTP ports
  // Let the node listen on a non-loopback address without authentication
  // (check_exposure). For networks the operator trusts completely.
  bool insecure = false;
  LogSink log;  // every log line of the node; empty: logfmt on stderr

  // One source of key and value limits, the store's: copies them into
  // `replica`, which holds replicated entries (and the decoder frames) to
  // them. Node::start calls it.
  void derive_limits();
  // Also refuses replica limits that differ from the store's.
  Status validate() const;
};

// What the replication worker counts besides the protocol's own figures.
struct DriverStats {
  uint64_t decode_errors = 0;    // peer frames that failed to decode
  uint64_t persist_errors = 0;   // replicated ops the store failed to persist
  uint64_t inbound_dropped = 0;  // frames dropped: the worker's queue was full
  // Mutual TLS: messages whose sender id is not the one its certificate binds.
  uint64_t impersonations_refused = 0;
};

// One member of the cluster as this node sees it.
struct MemberStatus {
  NodeId id = 0;
  uint64_t incarnation = 0;
  std::string address;
  std::optional<uint64_t> last_seen_ms_ago;  // never heard from by this process: none
  uint64_t ack_lag = 0;                      // our writes it has not acknowledged
  // Its clock minus ours (ms), estimated from its recent messages; none if it
  // sent none in the clock check's window (or speaks wire version 2).
  std::optional<int64_t> clock_offset_ms;
};

// The clock offset check (docs/PROTOCOL.md, "Clock offset").
struct ClockStatus {
  int64_t offset_ms = 0;      // this node's clock minus its peers' (median); 0 without peers
  uint64_t peers = 0;         // peers whose clocks were heard in the window
  uint64_t peers_beyond = 0;  // of them, further than max_clock_offset_ms
  bool refusing_writes = false;
  uint64_t wire_v2_frames = 0;     // frames from peers that speak wire version 2 (no clock)
  uint64_t wire_older_frames = 0;  // frames in any wire version before this build's
};

// The HTTP server's own figures.
struct HttpStats {
  uint64_t connections = 0;  // open now
  uint64_t connections_total = 0;
  uint64_t connections_refused = 0;  // beyond max_connections
  uint64_t watch_subscribers = 0;    // open watch streams
  uint64_t watch_events = 0;         // changes that entered the watch feed
  uint64_t watch_resets = 0;         // streams reset: fell behind or lost events
  // The clients' memory budget (HttpConfig::max_client_memory_bytes):
  // request bodies, replies and watch queues held now, the most ever held,
  // the limit, and how often a connection waited for room (or, for a watch
  // stream, was refused with a 503).
  uint64_t client_memory_bytes = 0;
  uint64_t client_memory_peak_bytes = 0;
  uint64_t client_memory_limit_bytes = 0;
  uint64_t client_memory_waits = 0;
  // Responses sent, by status code ("200", "404", ..., "other").
  std::vector<std::pair<std::string, uint64_t>> responses;
};

// Everything a node reports (GET /v1/status, /metrics and INFO render it).
struct NodeStatus {
  StoreStatus store;
  std::string address;  // the advertised peer address
  // A hash of the state's digest buckets: equal on nodes that hold the same data.
  uint64_t digest = 0;
  // Keys stamped further ahead of this clock than the drift bound: peers
  // refuse them (docs/PROTOCOL.md, "Future timestamps").
  uint64_t poisoned_keys = 0;
  // Copies of this data directory a re-bootstrap moved aside, oldest first.
  std::vector<std::string> retired_data_dirs;
  // The last few keys whose replicated versions were too large for this
  // node's limits (replication.entries_quarantined counts them).
  std::vector<std::string> quarantined_keys;
  ReplicaStats replication;
  ClockStatus clock;
  DriverStats driver;
  TransportStats transport;
  std::vector<MemberStatus> members;
  std::optional<HttpStats> http;  // when the HTTP API is on
};

// Secure by default: refuses (kInvalidArgument, naming the flags to add) a
// config that would listen on an address other hosts can reach without
// authentication: a peer port without a cluster key or certificates, a RESP
// or HTTP port without both a users file and TLS. Loopback (127.0.0.0/8,
// ::1, "localhost") is always allowed; `insecure` allows everything. An
// empty host (":7400") is every interface. Node::start calls it.
Status check_exposure(const NodeConfig& config);

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

  // The node's figures now. Thread-safe; not while stop() runs.
  virtual NodeStatus status() = 0;

  // Reads the credentials again (SIGHUP): the peer transport's key file or
  // certificates, the client ports' TLS certificate and key and their users
  // file. New connections use the new ones (connections keep the identity
  // they have); on failure the old ones stay and the error says why.
  virtual Status reload_credentials() = 0;

  // A peer told this node it was evicted: the caller should stop() it, wipe
  // the data directory and start again (a new incarnation).
  virtual bool rebootstrap_requested() const = 0;
  // Blocks until rebootstrap_requested() or `timeout_ms` passes.
  virtual bool wait_rebootstrap(uint64_t timeout_ms) = 0;

  // Graceful: stops the front ends and the worker, checkpoints and closes the
  // store (drain, fsync). Idempotent; returns the store's close status.
  virtual Status stop() = 0;
};

// For programs that run until SIGINT or SIGTERM: blocks both, and SIGHUP, in
// the calling thread (call it before any other thread starts, so every
// thread inherits the mask) and starts a thread that waits for them. The
// flag it returns is 0 until a stop signal arrives, then that signal's
// number. Each SIGHUP adds one to reload_requests(). Call it once.
const std::atomic<int>& catch_stop_signals();
// How many SIGHUPs catch_stop_signals() caught (0 if it was never called).
const std::atomic<uint64_t>& reload_requests();

// Removes the files of a data directory; keeps the directory itself.
Status wipe_data_dir(const std::string& dir);

// Where a re-bootstrap puts a data directory's old contents:
// <dir>/retired/rebootstrap-<UTC yyyymmddThhmmssZ>-<n>/, n counting up. The
// store never reads a subdirectory, so a retired copy is not live data.
constexpr char kRetiredDir[] = "retired";
// Moves every entry of `dir` (but `retired/`) into a new retired copy, then
// deletes the oldest copies beyond `keep` (0: keeps none, the old wipe).
// Returns the new copy's path ("" if keep is 0). A re-bootstrap never deletes
// the data it replaces outright: a forged or mistaken request costs disk, not
// data (docs/SECURITY.md, "Re-bootstrap").
Result<std::string> retire_data_dir(const std::string& dir, size_t keep, uint64_t wall_ms);
// The retired copies under `dir`, oldest first.
std::vector<std::string> retired_data_dirs(const std::string& dir);

// What differs between the programs supervise() runs (`wavekv serve` runs a
// Node, `filesync run` a Mirror around one). The hooks are called from the
// thread that calls supervise(), one run at a time.
struct SuperviseHooks {
  // Starts one run; returns its node, which the caller owns until the next
  // start. Called again, on an empty data directory, after a re-bootstrap.
  std::function<Result<Node*>()> start;
  // Called once each run is up: report its addresses (and pin them in the
  // config, so the next start binds the same ports). An error stops the run
  // and ends supervise().
  std::function<Status(Node&)> announce;
  // Stops the run: its front ends, its node, its store's close status.
  std::function<Status()> stop;
  // When this count changes (SIGHUP: reload_requests()), the running node
  // reloads its credentials (Node::reload_credentials) and the result is
  // logged; the node keeps serving either way. Null: never.
  const std::atomic<uint64_t>* reload_requests = nullptr;
  std::string data_dir;     // the store's directory, retired on a re-bootstrap
  size_t keep_retired = 2;  // retired copies kept (retire_data_dir)
  std::string component;    // of the log lines ("serve", "filesync")
  LogSink log;              // empty: logfmt on stderr
};

// How supervise() ended.
struct SuperviseEnd {
  enum class Failed {
    kNothing,  // a signal ended it
    kStart,    // a start or an announce: the program could not serve
    kClose,    // stopping a run: closing its store
    kWipe,     // retiring the data directory for a re-bootstrap
  };
  Failed failed = Failed::kNothing;
  Status error;    // what failed; ok when a signal ended it
  int signal = 0;  // the stop signal that ended it
};

// The life of a program around one node: start, announce, wait until
// `stop_signal` is set (catch_stop_signals()) or a peer asks for a
// re-bootstrap; then stop, and on a re-bootstrap retire `data_dir`'s contents
// (retire_data_dir) and start again (a new incarnation), for as long as it takes.
SuperviseEnd supervise(const SuperviseHooks& hooks, const std::atomic<int>& stop_signal);

}  // namespace wavekv
