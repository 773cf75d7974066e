#include "resp/server.h"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "auth/authenticator.h"
#include "net/address.h"
#include "net/listener.h"
#include "resp/commands.h"

namespace wavekv::resp {

using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

namespace {

// Bytes read from a socket at a time.
constexpr size_t kReadChunkBytes = 64 * 1024;

// What a connection that has not logged in may send per request (as Redis
// bounds unauthenticated clients): enough for AUTH and HELLO, not for
// strangers to make the server buffer 256 MiB each.
resp::RequestLimits stranger_limits(const resp::RequestLimits& full) {
  resp::RequestLimits l = full;
  l.max_bulk_bytes = std::min<uint64_t>(l.max_bulk_bytes, 16 * 1024);
  l.max_array_elements = std::min<uint64_t>(l.max_array_elements, 16);
  l.max_inline_bytes = std::min<uint64_t>(l.max_inline_bytes, 16 * 1024);
  l.max_request_bytes = std::min<uint64_t>(l.max_request_bytes, 64 * 1024);
  return l;
}

// Lets one conditional write (SET NX/XX/GET) run at a time across the server:
// from its check until its write completed. Ops queue in arrival order.
class SerialGate {
 public:
  // Runs `op` now, or after release() of the ops before it. `op` must not
  // block; it must lead to exactly one release().
  void submit(std::function<void()> op) {
    {
      std::lock_guard lock(mu_);
      if (busy_) {
        waiting_.push_back(std::move(op));
        return;
      }
      busy_ = true;
    }
    op();
  }
  void release() {
    std::function<void()> next;
    {
      std::lock_guard lock(mu_);
      if (waiting_.empty()) {
        busy_ = false;
        return;
      }
      next = std::move(waiting_.front());
      waiting_.pop_front();
    }
    next();
  }
  // Drops ops that never ran (the server is going away).
  void clear() {
    std::deque<std::function<void()>> dropped;
    std::lock_guard lock(mu_);
    dropped.swap(waiting_);
  }

 private:
  std::mutex mu_;
  bool busy_ = false;
  std::deque<std::function<void()>> waiting_;  // at most connections x max_pending_commands
};

class Connection;

}  // namespace

struct RespServer::Shared {
  Shared(asio::io_context& io, Store& s, RespConfig c, RespStatusFn f)
      : io(io),
        store(s),
        config(std::move(c)),
        status(std::move(f)),
        cursors(config.max_scan_cursors) {}

  resp::CommandContext context() {
    return {store, config, status, cursors, stats, port, auth && auth->enabled()};
  }

  // Writes handed to the store whose callbacks have not finished: the server
  // must not go away under them.
  void begin_store_write() {
    std::lock_guard lock(writes_mu);
    ++store_writes_in_flight;
  }
  void end_store_write() {
    std::lock_guard lock(writes_mu);
    --store_writes_in_flight;
    writes_cv.notify_all();  // under the lock: the waiter may destroy us once it has it
  }
  void wait_store_writes() {
    std::unique_lock lock(writes_mu);
    writes_cv.wait(lock, [&] { return store_writes_in_flight == 0; });
  }

  asio::io_context& io;
  Store& store;
  const RespConfig config;
  const RespStatusFn status;
  resp::ScanCursors cursors;
  resp::ServerStats stats;
  SerialGate gate;
  uint16_t port = 0;
  std::string address;
  // Set by start(), before any connection: the users (null or disabled:
  // off) and the TLS context (null: plain TCP).
  std::shared_ptr<auth::Authenticator> auth;
  std::shared_ptr<security::ContextSource> tls;

  std::mutex mu;  // guards `listener`, `stopped` and `connections`
  std::shared_ptr<net::Listener> listener;
  bool stopped = false;
  std::unordered_map<uint64_t, std::weak_ptr<Connection>> connections;

  std::mutex writes_mu;
  std::condition_variable writes_cv;
  uint64_t store_writes_in_flight = 0;
};

namespace {

using Shared = RespServer::Shared;

// One client connection. Everything in it runs on its strand (the socket's
// executor): the reader coroutine, the writer coroutine, and the completions
// of its store writes, which are posted there.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<Shared> shared, net::Stream socket, uint64_t id)
      : shared_(std::move(shared)),
        socket_(std::move(socket)),
        reader_wake_(socket_.get_executor()),
        writer_wake_(socket_.get_executor()),
        parser_(shared_->config.limits) {
    session_.id = id;
    if (!shared_->auth->enabled()) {
      session_.identity = resp::default_identity();
      socket_.authenticated();
    } else {
      parser_.set_limits(stranger_limits(shared_->config.limits));
    }
  }

  // The connection's whole life: the reader runs beside, the writer here.
  // The writer ends last (it answers what the reader left) and leaves the
  // server's books.
  awaitable<void> run() {
    auto self = shared_from_this();
    asio::co_spawn(socket_.get_executor(), read_loop(), [self](std::exception_ptr e) {
      if (e) self->abort();  // an exception escaped (e.g. bad_alloc): drop the connection
    });
    try {
      co_await write_loop();
    } catch (...) {
      abort();
    }
    finish();
  }

  // Closes the connection from any thread.
  void close() {
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->abort(); });
  }

 private:
  struct Slot {
    bool ready = false;
    std::string reply;
  };

  void abort() {
    dead_ = true;
    socket_.close();
    reader_wake_.cancel();
    writer_wake_.cancel();
  }

  // Suspends until the timer is cancelled by a wake_*(). All conditions are
  // checked on the strand right before waiting, so no wake-up is lost.
  awaitable<void> wait(asio::steady_timer& t) {
    t.expires_at(asio::steady_timer::time_point::max());
    asio::error_code ec;
    co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
  }

  bool backpressured() const {
    return slots_.size() >= shared_->config.max_pending_commands ||
           ready_bytes_ > shared_->config.max_output_bytes;
  }

  void push_ready(std::string reply) {
    ready_bytes_ += reply.size();
    slots_.push_back({true, std::move(reply)});
    writer_wake_.cancel();
  }

  uint64_t push_pending() {
    slots_.push_back({false, {}});
    ++writes_in_flight_;
    return first_slot_ + slots_.size() - 1;
  }

  // A write (or serialized op) finished: its reply can go out.
  void complete(uint64_t slot, std::string reply, bool serialized) {
    Slot& s = slots_[static_cast<size_t>(slot - first_slot_)];
    s.ready = true;
    s.reply = std::move(reply);
    ready_bytes_ += s.reply.size();
    --writes_in_flight_;
    if (serialized) --serialized_in_flight_;
    writer_wake_.cancel();
    reader_wake_.cancel();
  }

  void submit_write(uint64_t slot, WriteBatch batch, std::string ok_reply, bool serialized) {
    shared_->begin_store_write();
    auto done = [self = shared_from_this(), slot, ok = std::move(ok_reply),
                 serialized](Status st) mutable {
      std::string reply = st.is_ok() ? std::move(ok) : resp::write_error_reply(st);
      // The write is visible now, so the next conditional write may check.
      if (serialized) self->shared_->gate.release();
      Shared* shared = self->shared_.get();
      {
        // `self` moves into the posted handler: this callback keeps no
        // reference to the connection once the store is done with it. The
        // executor copy (a strand) must be gone before end_store_write():
        // after it, the server may be destroyed and its io_context with it.
        auto ex = self->socket_.get_executor();
        asio::post(ex,
                   [self = std::move(self), slot, reply = std::move(reply), serialized]() mutable {
                     self->complete(slot, std::move(reply), serialized);
                   });
      }
      shared->end_store_write();
    };
    shared_->store.write_async(std::move(batch), std::move(done));
  }

  resp::Outcome run(const std::vector<std::string>& args) {
    auto ctx = shared_->context();
    try {
      return resp::execute(ctx, session_, args);
    } catch (const std::exception& e) {
      resp::Outcome o;
      resp::write_error(o.reply, std::string("ERR internal error: ") + e.what());
      return o;
    }
  }

  // A check-then-write command, run when the server-wide gate is ours.
  void run_serialized(uint64_t slot, const std::vector<std::string>& args) {
    resp::Outcome o;
    if (!dead_) o = run(args);
    if (o.write) {
      submit_write(slot, std::move(*o.write), std::move(o.reply), true);
    } else {
      shared_->gate.release();
      complete(slot, std::move(o.reply), true);
    }
  }

  // AUTH or HELLO ... AUTH: the password check runs on the authenticator's
  // threads; the reply waits in its slot, and every later command waits
  // for it (it counts as a serialized op), so they see the new identity.
  void start_auth(std::vector<std::string> args, resp::Credentials creds) {
    uint64_t slot = push_pending();
    ++serialized_in_flight_;
    auth_in_flight_ = true;        // the next request is parsed with the limits the outcome sets
    shared_->begin_store_write();  // the callback posts to the io_context
    auto done = [self = shared_from_this(), slot,
                 args = std::move(args)](Result<auth::Identity> r) mutable {
      Shared* shared = self->shared_.get();
      {
        auto ex = self->socket_.get_executor();  // gone before end_store_write()
        asio::post(
            ex, [self = std::move(self), slot, args = std::move(args), r = std::move(r)]() mutable {
              self->finish_auth(slot, args, std::move(r));
            });
      }
      shared->end_store_write();
    };
    if (!shared_->auth->verify(std::move(creds.user), std::move(creds.password), std::move(done))) {
      shared_->end_store_write();
      std::string reply;
      resp::write_error(reply, "ERR too many log-ins in progress, try again later");
      auth_in_flight_ = false;
      complete(slot, std::move(reply), true);
    }
  }

  void finish_auth(uint64_t slot, const std::vector<std::string>& args, Result<auth::Identity> r) {
    std::string reply;
    auth_in_flight_ = false;
    if (r) {
      // A failed AUTH leaves the session as it was; a good one replaces it.
      session_.identity = std::move(*r);
      socket_.authenticated();
      parser_.set_limits(shared_->config.limits);
      session_.credentials_verified = true;
      reply = run(args).reply;
      session_.credentials_verified = false;
    } else if (r.status().code() == Code::kClosed) {
      resp::write_error(reply, "ERR the server is shutting down");
    } else {
      resp::write_error(reply, auth::kWrongPassMessage);
    }
    complete(slot, std::move(reply), true);
  }

  // Executes one parsed request, in order. Suspends while ordering requires.
  awaitable<void> dispatch(resp::Request r) {
    if (r.kind != resp::Request::Kind::kCommand) {
      std::string reply;
      resp::write_error(reply, r.error);
      push_ready(std::move(reply));
      if (r.kind == resp::Request::Kind::kFatal) closing_ = true;
      co_return;
    }
    ++shared_->stats.total_commands;
    resp::Ordering ord = resp::ordering_of(r.args);
    // Read-your-writes: whatever reads waits for this connection's writes;
    // a blind write waits only for a check-then-write before it.
    for (;;) {
      if (dead_) co_return;
      bool wait_needed =
          ord == resp::Ordering::kBlindWrite ? serialized_in_flight_ > 0 : writes_in_flight_ > 0;
      if (!wait_needed) break;
      co_await wait(reader_wake_);
    }
    if (shared_->auth->enabled()) {
      if (auto creds = resp::credentials_of(r.args)) {
        start_auth(std::move(r.args), std::move(*creds));
        co_return;
      }
    }
    if (ord == resp::Ordering::kSerialized) {
      uint64_t slot = push_pending();
      ++serialized_in_flight_;
      auto self = shared_from_this();
      shared_->gate.submit([self, slot, args = std::move(r.args)] {
        asio::post(self->socket_.get_executor(),
                   [self, slot, args] { self->run_serialized(slot, args); });
      });
      co_return;
    }
    resp::Outcome o = run(r.args);
    if (o.write) {
      uint64_t slot = push_pending();
      submit_write(slot, std::move(*o.write), std::move(o.reply), false);
    } else {
      push_ready(std::move(o.reply));
    }
    if (o.close) closing_ = true;
  }

  awaitable<void> read_loop() {
    std::vector<char> buf(kReadChunkBytes);
    while (!dead_ && !closing_) {
      if (backpressured() || auth_in_flight_) {
        co_await wait(reader_wake_);
        continue;
      }
      // Execute what is parsed already before reading more.
      if (auto r = parser_.next()) {
        co_await dispatch(std::move(*r));
        continue;
      }
      asio::error_code ec;
      size_t n = co_await socket_.async_read_some(asio::buffer(buf),
                                                  asio::redirect_error(use_awaitable, ec));
      if (ec) break;  // EOF or error: answer what is pending, then close
      parser_.feed(std::string_view(buf.data(), n));
    }
    closing_ = true;
    writer_wake_.cancel();
  }

  awaitable<void> write_loop() {
    std::string out;
    for (;;) {
      // Coalesce every reply that is ready, in request order, into one write.
      out.clear();
      while (!slots_.empty() && slots_.front().ready) {
        ready_bytes_ -= slots_.front().reply.size();
        if (out.empty())
          out.swap(slots_.front().reply);
        else
          out += slots_.front().reply;
        slots_.pop_front();
        ++first_slot_;
      }
      if (out.empty()) {
        if (dead_ || (closing_ && slots_.empty())) break;
        co_await wait(writer_wake_);
        continue;
      }
      reader_wake_.cancel();  // room for more requests
      asio::error_code ec;
      co_await asio::async_write(socket_, asio::buffer(out),
                                 asio::redirect_error(use_awaitable, ec));
      if (ec) break;
    }
  }

  // The writer is done: close the socket and leave the server's books.
  void finish() {
    abort();
    --shared_->stats.connected_clients;
    std::lock_guard lock(shared_->mu);
    shared_->connections.erase(session_.id);
  }

  std::shared_ptr<Shared> shared_;
  net::Stream socket_;
  asio::steady_timer reader_wake_;
  asio::steady_timer writer_wake_;
  resp::RequestParser parser_;
  resp::Session session_;

  // Replies in request order; slot ids count from first_slot_.
  std::deque<Slot> slots_;
  uint64_t first_slot_ = 0;
  uint64_t ready_bytes_ = 0;           // in ready slots, not yet taken by the writer
  uint32_t writes_in_flight_ = 0;      // pending slots: store writes and serialized ops
  uint32_t serialized_in_flight_ = 0;  // of which serialized ops
  bool auth_in_flight_ = false;        // a password check runs: parse nothing more until it ends
  bool closing_ = false;               // no more requests: send what is pending, then close
  bool dead_ = false;                  // the socket is closed
};

// A connection the listener admitted: it counts against max_connections
// until this returns.
awaitable<void> serve_client(std::shared_ptr<Shared> sh, net::Stream socket) {
  ++sh->stats.total_connections;
  uint64_t id = sh->stats.next_client_id++;
  asio::error_code ec;
  socket.socket().set_option(tcp::no_delay(true), ec);
  auto conn = std::make_shared<Connection>(sh, std::move(socket), id);
  {
    std::lock_guard lock(sh->mu);
    if (sh->stopped) co_return;  // conn goes away, closing its socket
    sh->connections.emplace(id, conn);
  }
  ++sh->stats.connected_clients;
  co_await conn->run();
}

// A connection beyond max_connections: told so, then closed.
void refuse_client(Shared& sh, tcp::socket socket) {
  ++sh.stats.total_connections;
  ++sh.stats.rejected_connections;
  // A fresh socket's send buffer is empty: this small write cannot block.
  asio::error_code ec;
  asio::write(socket, asio::buffer(std::string_view("-ERR max number of clients reached\r\n")), ec);
}

}  // namespace

Status RespConfig::validate() const {
  auto hp = net::parse_host_port(listen_address, net::AddressUse::kListen);
  if (!hp) return hp.status();
  if (max_connections == 0) return Status::invalid("max_connections must be at least 1");
  WAVEKV_RETURN_IF_ERROR(security.validate());
  if (auth_workers == 0) return Status::invalid("auth_workers must be at least 1");
  if (max_pending_commands == 0) return Status::invalid("max_pending_commands must be at least 1");
  if (max_output_bytes == 0) return Status::invalid("max_output_bytes must be at least 1");
  if (max_scan_cursors == 0) return Status::invalid("max_scan_cursors must be at least 1");
  if (limits.max_bulk_bytes == 0 || limits.max_array_elements == 0 ||
      limits.max_inline_bytes == 0 || limits.max_request_bytes == 0)
    return Status::invalid("request limits must be at least 1");
  return Status::ok();
}

RespServer::RespServer(asio::io_context& io, Store& store, RespConfig config, RespStatusFn status)
    : io_(io), shared_(std::make_shared<Shared>(io, store, std::move(config), std::move(status))) {}

RespServer::~RespServer() {
  stop();
  if (shared_->auth) shared_->auth->shutdown();  // answers queued checks: they post to io
  // Store callbacks post to the io_context and touch shared_: wait them out.
  shared_->wait_store_writes();
  shared_->gate.clear();
}

Status RespServer::start() {
  WAVEKV_RETURN_IF_ERROR(shared_->config.validate());
  const ClientSecurity& sec = shared_->config.security;
  auto auth = auth::Authenticator::open(
      sec.users_file, {shared_->config.auth_workers, shared_->config.auth_max_queued});
  if (!auth) return auth.status();
  shared_->auth = std::move(*auth);
  if (sec.tls()) {
    auto tls = security::ContextSource::server(
        {sec.tls_cert_file, sec.tls_key_file, sec.tls_client_ca_file, sec.require_client_cert});
    if (!tls) return tls.status();
    shared_->tls = std::move(*tls);
  }
  auto listener = net::Listener::bind(io_, shared_->config.listen_address);
  if (!listener) return listener.status();
  shared_->port = (*listener)->port();
  shared_->address = (*listener)->address();
  net::ListenerLimits limits;
  limits.max_connections = shared_->config.max_connections;
  if (shared_->auth->enabled()) {
    limits.max_unauthenticated = std::min(sec.max_unauthenticated, limits.max_connections);
    limits.max_unauthenticated_per_source = sec.max_unauthenticated_per_source;
    limits.auth_timeout = std::chrono::milliseconds(sec.auth_timeout_ms);
  }
  if (shared_->tls) limits.tls = [tls = shared_->tls] { return tls->current(); };
  auto serve = [sh = shared_](net::Stream s) { return serve_client(sh, std::move(s)); };
  auto refuse = [sh = shared_](net::Socket s) {
    if (sh->tls) {  // a TLS client could not read the plain error: just closed
      ++sh->stats.total_connections;
      ++sh->stats.rejected_connections;
      return;
    }
    refuse_client(*sh, std::move(s));
  };
  (*listener)->start(limits, serve, refuse);
  std::lock_guard lock(shared_->mu);
  shared_->listener = *listener;
  if (shared_->stopped) shared_->listener->close();  // stop() came first
  return Status::ok();
}

void RespServer::stop() {
  std::vector<std::shared_ptr<Connection>> conns;
  {
    std::lock_guard lock(shared_->mu);
    if (shared_->stopped) return;
    shared_->stopped = true;
    if (shared_->listener) shared_->listener->close();
    for (auto& [id, weak] : shared_->connections)
      if (auto c = weak.lock()) conns.push_back(std::move(c));
  }
  for (auto& c : conns) c->close();
}

Status RespServer::reload_security() {
  if (shared_->auth) WAVEKV_RETURN_IF_ERROR(shared_->auth->reload());
  if (shared_->tls) WAVEKV_RETURN_IF_ERROR(shared_->tls->reload());
  return Status::ok();
}

uint16_t RespServer::port() const { return shared_->port; }
std::string RespServer::address() const { return shared_->address; }

Result<std::unique_ptr<RespServerThread>> RespServerThread::start(Store& store, RespConfig config,
                                                                  RespStatusFn status) {
  std::unique_ptr<RespServerThread> t(new RespServerThread());
  t->server_ = std::make_unique<RespServer>(t->io_, store, std::move(config), std::move(status));
  WAVEKV_RETURN_IF_ERROR(t->server_->start());
  t->thread_ = std::thread([io = &t->io_] {
    auto guard = asio::make_work_guard(*io);
    io->run();
  });
  return t;
}

RespServerThread::~RespServerThread() {
  if (server_) server_->stop();
  io_.stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();  // before io_: it waits for store callbacks that post to io_
}

}  // namespace wavekv::resp
