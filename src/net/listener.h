// The one way WaveKV listens: bind a "host:port" (net/address.h), accept with
// backoff and a connection limit, and hand each connection to the server's
// handler; plus the one connection deadline (Deadline). The peer transport,
// the RESP port and the HTTP port all run on it, shaped like mini-redis's
// `run(listener, shutdown)`:
//
//   auto listener = Listener::bind(io, "127.0.0.1:0");   // port() says which
//   (*listener)->start({.max_connections = 1024}, serve_connection);
//   ...
//   (*listener)->close();  // the accept loop ends; connections are the server's
//
// The seam for what comes next (issue 12): a handler gets a Socket. TLS and
// per-source limits go here, between accept and the handler (a handshake, a
// per-address count), so the servers above do not change.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "wavekv/status.h"

namespace wavekv::net {

// What a handler gets: an accepted connection on a strand of its own.
using Socket = asio::ip::tcp::socket;

struct ListenerLimits {
  // Connections whose handler is running; the next one is refused.
  size_t max_connections = 1024;
  // After a failed accept (out of file descriptors, say): wait, doubling up
  // to the cap; the first success resets it.
  std::chrono::milliseconds accept_backoff_initial{10};
  std::chrono::milliseconds accept_backoff_max{1000};
};

struct ListenerStats {
  uint64_t accepted = 0;       // handed to the handler
  uint64_t refused = 0;        // beyond max_connections
  uint64_t accept_errors = 0;  // failed accepts (each followed by a backoff)
  uint64_t open = 0;           // handlers running now
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  // Serves one connection; the connection counts against the limit until the
  // coroutine returns. It must catch its own exceptions.
  using Handler = std::function<asio::awaitable<void>(Socket)>;
  // Takes a refused connection (to say why before it closes); empty: the
  // socket is closed at once. Refused connections do not count.
  using Refuser = std::function<void(Socket)>;

  // Opens, sets reuse_address, binds and listens. Port 0 takes a free port;
  // address() and port() report what was bound. Accepted connections get
  // strands of `io`, which must outlive the listener.
  static Result<std::shared_ptr<Listener>> bind(asio::io_context& io, const std::string& address);

  // Starts the accept loop (once). It holds `handler` and `refuse` until it
  // ends, at close().
  void start(ListenerLimits limits, Handler handler, Refuser refuse = {});
  // Closes the listening socket; the accept loop ends. Running connections
  // are left to the server. Thread-safe, idempotent.
  void close();

  std::string address() const { return address_; }  // "127.0.0.1:40123", "[::1]:6379"
  uint16_t port() const { return port_; }
  ListenerStats stats() const;

  explicit Listener(asio::io_context& io);  // use bind()

 private:
  struct Counters {
    std::atomic<uint64_t> accepted{0}, refused{0}, accept_errors{0}, open{0};
  };
  asio::awaitable<void> accept_loop(ListenerLimits limits, Handler handler, Refuser refuse);

  asio::io_context& io_;
  asio::ip::tcp::acceptor acceptor_;  // on a strand: accept and close do not race
  std::string address_;               // set by bind()
  uint16_t port_ = 0;
  // Shared with the connections' completions, which may outlive the listener.
  std::shared_ptr<Counters> counters_ = std::make_shared<Counters>();
};

// A connection's deadline: before a read or write the owner arms it; if the
// operation makes no progress by then, the watchdog calls `expire` (which
// closes the socket, failing the operation) and ends. One per connection,
// used on the connection's executor only.
class Deadline {
 public:
  explicit Deadline(const asio::any_io_executor& ex) : timer_(ex) {}

  // Spawns the watchdog. `owner` (the connection holding this Deadline) is
  // kept alive until the watchdog ends: at expiry or stop().
  void start(std::shared_ptr<void> owner, std::function<void()> expire);
  void arm(std::chrono::milliseconds timeout);
  void disarm() { deadline_ = Clock::time_point::max(); }
  // The connection is closed: the watchdog ends.
  void stop();

 private:
  using Clock = std::chrono::steady_clock;
  static asio::awaitable<void> watch(Deadline& self, std::shared_ptr<void> owner,
                                     std::function<void()> expire);

  asio::steady_timer timer_;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool stopped_ = false;
};

}  // namespace wavekv::net
