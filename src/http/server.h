// The HTTP/JSON API of a WaveKV node (docs/HTTP.md): keys and values, scans,
// a resumable change feed (server-sent events), status and metrics.
//
// Runs on standalone Asio with C++20 coroutines. The caller owns the
// io_context and its threads (any number: each connection runs on its own
// strand). The store's threads are never blocked by a client: writes go
// through Store::write_async, and watch events are copied into a bounded inbox
// and handed to the io_context.
#pragma once

#include <asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "http/protocol.h"
#include "http/watch_feed.h"
#include "wavekv/node.h"
#include "wavekv/status.h"
#include "wavekv/store.h"

namespace wavekv::http {

struct HttpConfig {
  // "host:port", "[v6]:port" or ":port" (every interface) to listen on
  // (net/address.h); port 0 picks a free one (see HttpServer::port()).
  std::string listen = "127.0.0.1:0";
  HttpLimits limits;
  // Connections beyond this get a 503 and are closed.
  size_t max_connections = 1024;
  // A connection that sends no complete request for this long is closed
  // (between keep-alive requests as well as in the middle of one).
  uint32_t idle_timeout_ms = 60'000;
  // A client that takes none of a response for this long is dropped.
  uint32_t write_timeout_ms = 30'000;
  // A request's line and headers must all arrive within this long of its
  // first byte, however the bytes trickle in (slowloris); else the
  // connection is closed.
  uint32_t request_head_timeout_ms = 10'000;
  // TLS and the users file (docs/SECURITY.md, docs/HTTP.md "Authentication").
  ClientSecurity security;
  // Password checks (scrypt) run on this many threads of the server's own;
  // at most auth_max_queued wait, beyond which a request gets a 503.
  uint32_t auth_workers = 1;
  uint32_t auth_max_queued = 32;
  // GET /v1/kv pages: at most this many items, and at most max_page_bytes
  // of keys and values (but always one item).
  size_t default_scan_limit = 100;
  size_t max_scan_limit = 10'000;
  size_t max_page_bytes = 4ull << 20;
  // Every connection's request body, reply and watch queue together
  // (docs/HTTP.md, "Memory"): a body is reserved once its headers are in,
  // a reply before it is built, a watch queue's bound when it opens. A
  // connection that finds no room waits; a watch is refused (503). At least
  // limits.max_body_bytes, so that any request can be served.
  uint64_t max_client_memory_bytes = 512ull << 20;
  // Watch streams: a comment line after this long without events, so proxies
  // and clients see the stream is alive.
  uint32_t heartbeat_ms = 15'000;
  WatchFeedLimits watch;
  // Each subscriber's queue; past either bound it is reset and closed.
  size_t max_subscriber_events = 1000;
  size_t max_subscriber_bytes = 16ull * 1024 * 1024;

  Status validate() const;
};

// Lets the node supply the status /v1/status and /metrics render
// (monitoring/node_status.h). Null: the store's figures and the server's own.
// Called on an io_context thread: keep it quick.
struct HttpHooks {
  std::function<NodeStatus()> status;
};

class HttpServer {
 public:
  // Binds and listens (errors come back here), then serves on `io` as it runs.
  // `store` must outlive the server; destroy the server before `io`.
  static Result<std::unique_ptr<HttpServer>> start(asio::io_context& io, Store& store,
                                                   HttpConfig config, HttpHooks hooks = {});
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The address actually bound, e.g. "127.0.0.1:40123".
  std::string address() const;
  uint16_t port() const;

  // Stops watching the store, closes the listener and every connection.
  // Thread-safe and idempotent; connections wind down as `io` runs on.
  void stop();

  // Loads the users file and the TLS certificate and key again: new requests
  // and new connections use them. On an error nothing changes. Thread-safe.
  Status reload_security();

  // The server's own figures (connections, responses, watch feed), for the
  // node's status. Thread-safe.
  HttpStats stats() const;

  struct Impl;

 private:
  explicit HttpServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

// An HttpServer with an io_context and a thread of its own (tests, tools).
class HttpServerThread {
 public:
  static Result<std::unique_ptr<HttpServerThread>> start(Store& store, HttpConfig config,
                                                         HttpHooks hooks = {});
  // Stops the server and joins the thread once every connection has ended.
  ~HttpServerThread();
  HttpServer& server() { return *server_; }
  std::string address() const { return server_->address(); }

 private:
  HttpServerThread() = default;
  asio::io_context io_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
};

}  // namespace wavekv::http
