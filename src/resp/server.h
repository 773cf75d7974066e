// RespServer: WaveKV's Redis-compatible port. redis-cli, redis-benchmark and
// Redis client libraries talk to a WaveKV store through it unchanged, within
// the commands of docs/RESP.md.
//
// Standalone Asio with C++20 coroutines: one coroutine reads and executes a
// connection's requests, one writes its replies. The caller owns the
// io_context and the threads that run it (any number); each connection runs
// on its own strand. RespServerThread runs a server on a thread of its own.
//
// Pipelining: a connection keeps up to max_pending_commands requests in
// flight. Writes go to Store::write_async (the io thread never waits for an
// fsync); replies go out strictly in request order, coalesced into as few
// socket writes as there are bursts. A command that reads waits until the
// connection's earlier writes have completed, so a connection always reads
// its own writes.
//
// Lifetime: start() after construction; stop() (or destruction) closes the
// listener and every connection. The io_context must outlive the RespServer,
// and the Store must outlive it too: the destructor waits for the store to
// answer every write this server submitted.
#pragma once

#include <asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "resp/protocol.h"
#include "wavekv/node.h"
#include "wavekv/status.h"
#include "wavekv/store.h"

namespace wavekv::resp {

struct RespConfig {
  // "host:port" (net/address.h); host may be an IPv4 or IPv6 address
  // ("[::1]:6379") or a name, or empty (":6379", every interface); port 0
  // takes an ephemeral port (see RespServer::port()).
  std::string listen_address = "127.0.0.1:6379";
  resp::RequestLimits limits;
  // Further connections get "-ERR max number of clients reached" and are closed.
  uint32_t max_connections = 1024;
  // Requests of one connection parsed but not yet answered; beyond it the
  // connection is not read until replies drain.
  uint32_t max_pending_commands = 1024;
  // Reply bytes one connection may hold (built, queued or being written).
  // A command runs only once its reply fits: until then the connection
  // waits (is not read) for the client to read. A reply that alone exceeds
  // it (or max_client_memory_bytes) is answered with "-ERR reply of N bytes
  // exceeds the client output limit". The default fits a GET of the largest
  // value (64 MiB).
  uint64_t max_output_bytes = 64ull * 1024 * 1024 + 64 * 1024;
  // Request and reply bytes of all connections together (Redis's
  // maxmemory-clients): reply bytes are reserved before a reply is built
  // (a GET's value is sized before it is copied); a command whose reply
  // finds no room waits, and a connection between requests stops reading,
  // until room frees. docs/RESP.md, "Memory".
  uint64_t max_client_memory_bytes = 512ull * 1024 * 1024;
  // A connection with nothing in progress (no partial request, no pending
  // command or reply) that sends nothing for this long is closed (Redis's
  // `timeout`). 0: never.
  uint64_t idle_timeout_ms = 0;
  // Open SCAN cursors kept server-wide; the oldest is forgotten beyond it.
  uint32_t max_scan_cursors = 4096;
  // KEYS refuses to reply with more keys than this (use SCAN).
  uint64_t max_keys_reply = 1'000'000;
  // Keyspace notifications: Redis's notify-keyspace-events letters ("" is
  // off, "KEA" all; CONFIG SET changes it at run time). docs/RESP.md, "Pub/sub".
  std::string notify_keyspace_events;
  // Pub/sub messages queued for one subscribed connection that its client
  // has not read; beyond it the connection is closed (Redis's pubsub
  // client-output-buffer-limit, 32 MiB). Counted in INFO stats as
  // client_output_buffer_limit_disconnections.
  uint64_t max_pubsub_output_bytes = 32ull * 1024 * 1024;
  // TLS and the users file (docs/SECURITY.md). Without a users file every
  // client may do everything, as before.
  ClientSecurity security;
  // Password checks (scrypt) run on this many threads of the server's own,
  // never on an io thread; at most auth_max_queued wait, beyond which AUTH
  // gets "-ERR too many log-ins in progress".
  uint32_t auth_workers = 1;
  uint32_t auth_max_queued = 32;

  Status validate() const;
};

// The server's memory figures (also in INFO: clients and stats sections).
struct RespMemoryStats {
  uint64_t client_memory_bytes = 0;       // held for clients now (requests and replies)
  uint64_t client_memory_peak_bytes = 0;  // the most ever held at once
  uint64_t client_memory_limit_bytes = 0;
  uint64_t paused_clients = 0;     // connections waiting for memory now
  uint64_t client_pauses = 0;      // times a connection waited for memory
  uint64_t replies_too_large = 0;  // replies refused: larger than max_output_bytes
  uint64_t idle_timeouts = 0;      // connections closed after idle_timeout_ms
};

// What the embedding node reports for INFO (rendered by monitoring/node_status.h).
// Null: the store's figures only.
using RespStatusFn = std::function<NodeStatus()>;

class RespServer {
 public:
  RespServer(asio::io_context& io, Store& store, RespConfig config, RespStatusFn status = nullptr);
  ~RespServer();
  RespServer(const RespServer&) = delete;
  RespServer& operator=(const RespServer&) = delete;

  // Validates the config, binds, listens and starts accepting.
  Status start();
  // Closes the listener and every connection. Idempotent; any thread.
  void stop();

  // Loads the users file and the TLS certificate and key again: new log-ins
  // and new connections use them. On an error nothing changes. Any thread.
  Status reload_security();

  // The bound port (useful with port 0) and "host:port"; valid after start().
  uint16_t port() const;
  std::string address() const;
  RespMemoryStats memory_stats() const;

  struct Shared;  // state shared with the connections (resp_server.cc)

 private:
  asio::io_context& io_;
  std::shared_ptr<Shared> shared_;
};

// A RespServer with its own io_context and thread: for tests and small tools.
class RespServerThread {
 public:
  static Result<std::unique_ptr<RespServerThread>> start(Store& store, RespConfig config,
                                                         RespStatusFn status = nullptr);
  ~RespServerThread();  // stops the server and joins the thread

  uint16_t port() const { return server_->port(); }
  std::string address() const { return server_->address(); }
  RespServer& server() { return *server_; }

 private:
  RespServerThread() = default;
  asio::io_context io_;
  std::unique_ptr<RespServer> server_;
  std::thread thread_;
};

}  // namespace wavekv::resp
