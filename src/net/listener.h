// The one way WaveKV listens: bind a "host:port" (net/address.h), accept with
// backoff and a connection limit, optionally run the TLS handshake, and hand
// each connection to the server's handler as a Stream (net/stream.h); plus
// the one connection deadline (Deadline). The peer transport, the RESP port
// and the HTTP port all run on it, shaped like mini-redis's
// `run(listener, shutdown)`:
//
//   auto listener = Listener::bind(io, "127.0.0.1:0");   // port() says which
//   (*listener)->start({.max_connections = 1024}, serve_connection);
//   ...
//   (*listener)->close();  // the accept loop ends; connections are the server's
//
// Strangers and members. A connection is admitted "unauthenticated" and
// stays so until its server calls Stream::authenticated() (a peer after its
// TLS handshake, a client after AUTH). Unauthenticated connections are
// bounded in all, per source address, and in time (auth_timeout), and the
// rest of max_connections is kept for connections that authenticated: a
// stranger holding connections open cannot lock members or clients out.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "net/stream.h"
#include "security/tls.h"
#include "wavekv/status.h"

namespace wavekv::net {

struct ListenerLimits {
  // Connections whose handler is running; the next one is refused.
  size_t max_connections = 1024;
  // Of those, how many may be unauthenticated at once, and from one source
  // address (0: no per-source bound). Beyond either, a new connection is
  // refused; the difference to max_connections is reserved for connections
  // that authenticated.
  size_t max_unauthenticated = 1024;
  size_t max_unauthenticated_per_source = 0;
  // An unauthenticated connection is closed this long after it was accepted
  // (0: never). With TLS the handshake counts.
  std::chrono::milliseconds auth_timeout{0};
  // TLS on this port: the context for each new connection (read once per
  // connection, so a reload applies to the next one). Empty: plain TCP.
  std::function<security::SslContextPtr()> tls;
  // The TLS handshake itself proves who the other side is (the peer port):
  // the connection counts as authenticated once it completes.
  bool tls_authenticates = false;
  // After a failed accept (out of file descriptors, say): wait, doubling up
  // to the cap; the first success resets it.
  std::chrono::milliseconds accept_backoff_initial{10};
  std::chrono::milliseconds accept_backoff_max{1000};
};

struct ListenerStats {
  uint64_t accepted = 0;            // admitted (then handshaken, if TLS)
  uint64_t refused = 0;             // beyond max_connections or max_unauthenticated
  uint64_t refused_source = 0;      // beyond max_unauthenticated_per_source
  uint64_t accept_errors = 0;       // failed accepts (each followed by a backoff)
  uint64_t handshake_failures = 0;  // TLS handshakes that failed (or timed out)
  uint64_t auth_timeouts = 0;       // closed unauthenticated after auth_timeout
  uint64_t open = 0;                // admitted connections now
  uint64_t unauthenticated = 0;     // of which not yet authenticated
};

// One admitted connection's place in the listener's counts (see
// Stream::authenticated()). Used on the connection's executor.
class Admission {
 public:
  struct Counters {
    std::mutex mu;
    uint64_t accepted = 0, refused = 0, refused_source = 0, accept_errors = 0,
             handshake_failures = 0, auth_timeouts = 0, open = 0, unauthenticated = 0;
    std::map<asio::ip::address, size_t> unauthenticated_by_source;
  };
  Admission(std::shared_ptr<Counters> counters, asio::ip::address source,
            const asio::any_io_executor& ex)
      : counters_(std::move(counters)), source_(std::move(source)), timer_(ex) {}

  // Leaves the unauthenticated counts (once); the auth deadline is off.
  void authenticate();
  bool is_authenticated() const { return authenticated_; }
  // The connection ended: leaves every count (once).
  void release();

 private:
  friend class Listener;
  void leave_unauthenticated_locked();

  std::shared_ptr<Counters> counters_;
  const asio::ip::address source_;
  asio::steady_timer timer_;  // the auth deadline
  bool authenticated_ = false;
  bool released_ = false;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  // Serves one connection; the connection counts against the limit until the
  // coroutine returns. It must catch its own exceptions.
  using Handler = std::function<asio::awaitable<void>(Stream)>;
  // Takes a refused connection, before any TLS (to say why before it closes);
  // empty: the socket is closed at once. Refused connections do not count.
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
  using Counters = Admission::Counters;
  asio::awaitable<void> accept_loop(ListenerLimits limits, Handler handler, Refuser refuse);
  // Admits `socket` or says why not (the counts are taken on success).
  enum class Verdict { kAdmit, kRefuse, kRefuseSource };
  Verdict admit(const ListenerLimits& limits, const asio::ip::address& source);
  struct Serving {  // shared with the connections, which may outlive the loop
    ListenerLimits limits;
    Handler handler;
  };
  static asio::awaitable<void> serve_one(Socket socket, std::shared_ptr<Admission> admission,
                                         std::shared_ptr<const Serving> serving,
                                         std::shared_ptr<Counters> counters);
  static asio::awaitable<void> auth_deadline(std::shared_ptr<Admission> admission,
                                             std::function<void()> close,
                                             std::chrono::milliseconds timeout);

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
