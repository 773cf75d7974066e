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
#include "net/client_memory.h"
#include "net/listener.h"
#include "resp/commands.h"
#include "resp/pubsub.h"

namespace wavekv::resp {

using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

namespace {

// Bytes read from a socket at a time.
constexpr size_t kReadChunkBytes = 64 * 1024;
// The smallest client memory budget: room for a read and a small reply of a
// few connections.
constexpr uint64_t kMinClientMemoryBytes = 1024 * 1024;

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

// Where a connection's pub/sub messages go: called by the PubSub under its
// lock (from any thread), it frames the message and posts it to the
// connection's strand. Messages the client has not read yet are bounded by
// max_pubsub_output_bytes; beyond it the connection is closed (Redis does
// the same: a subscriber that does not read would hold unbounded memory).
class PushSink final : public resp::Subscriber {
 public:
  PushSink(std::weak_ptr<Connection> conn, uint64_t limit, std::atomic<uint64_t>& overflows)
      : conn_(std::move(conn)), limit_(limit), overflows_(overflows) {}
  void deliver(std::string_view pattern, std::string_view channel,
               std::string_view message) override;
  void set_protocol(resp::Protocol p) {
    resp3_.store(p == resp::Protocol::kResp3, std::memory_order_relaxed);
  }
  // The socket took `n` bytes of messages.
  void sent(uint64_t n) { queued_.fetch_sub(n, std::memory_order_relaxed); }

 private:
  const std::weak_ptr<Connection> conn_;
  const uint64_t limit_;
  std::atomic<uint64_t>& overflows_;
  std::atomic<bool> resp3_{false};
  std::atomic<bool> overflowed_{false};
  std::atomic<uint64_t> queued_{0};  // framed, not yet taken by the socket
};

}  // namespace

struct RespServer::Shared {
  Shared(asio::io_context& io, Store& s, RespConfig c, RespStatusFn f)
      : io(io),
        store(s),
        config(std::move(c)),
        status(std::move(f)),
        cursors(config.max_scan_cursors),
        pubsub(&s, resp::NotifyFlags::parse(config.notify_keyspace_events)
                       .value_or(*resp::NotifyFlags::parse(""))) {
    stats.memory.set_limit(config.max_client_memory_bytes);
  }

  resp::CommandContext context() {
    return {store,   config,   status,  cursors, stats, port, auth && auth->enabled(),
            nullptr, &clients, &pubsub, nullptr};
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
  resp::ClientRegistry clients;
  resp::PubSub pubsub;  // watches `store` while keyspace notifications are on
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

// The bytes a request's arguments hold.
uint64_t request_bytes(const std::vector<std::string>& args) {
  uint64_t n = 0;
  for (const auto& a : args) n += a.capacity();
  return n;
}

// Most replies one socket write gathers; small replies are coalesced into
// pieces of about kCoalesceBytes, larger ones are written from where they are.
constexpr size_t kMaxWriteBuffers = 64;
constexpr size_t kCoalesceBytes = 64 * 1024;

// One client connection. Everything in it runs on its strand (the socket's
// executor): the reader coroutine, the writer coroutine, and the completions
// of its store writes, which are posted there.
//
// Memory (docs/RESP.md, "Memory"): every byte the connection holds for its
// client is charged to the server's ClientMemory: the parser's buffer and
// partial request, parsed requests until their command is done (a write's
// until the store has it committed), and replies from before they are built
// until the socket took them, and what the session keeps between commands
// (a MULTI's queued commands, WATCHed keys). reply_charge_, request_charge_
// and session_charge_ are what it holds; all go back in finish().
class Connection : public std::enable_shared_from_this<Connection>, public resp::ReplyBudget {
 public:
  Connection(std::shared_ptr<Shared> shared, net::Stream socket, uint64_t id)
      : shared_(std::move(shared)),
        socket_(std::move(socket)),
        reader_wake_(socket_.get_executor()),
        writer_wake_(socket_.get_executor()),
        idle_(socket_.get_executor()),
        parser_(shared_->config.limits) {
    session_.id = id;
    if (!shared_->auth->enabled()) {
      session_.identity = resp::default_identity();
      socket_.authenticated();
    } else {
      parser_.set_limits(stranger_limits(shared_->config.limits));
    }
    output_cap_ =
        std::min(shared_->config.max_output_bytes, shared_->config.max_client_memory_bytes);
  }

  // The connection's whole life: the reader runs beside, the writer here.
  // The writer ends last (it answers what the reader left) and leaves the
  // server's books.
  awaitable<void> run() {
    auto self = shared_from_this();
    sink_ = std::make_shared<PushSink>(self, shared_->config.max_pubsub_output_bytes,
                                       shared_->stats.pubsub_overflows);
    if (shared_->config.idle_timeout_ms > 0) {
      idle_.start(self, [self] {
        ++self->shared_->stats.idle_timeouts;
        self->abort();
      });
    }
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

  // A pub/sub message for the client (from PushSink, any thread).
  void post_message(std::string frame) {
    asio::post(socket_.get_executor(), [self = shared_from_this(), f = std::move(frame)]() mutable {
      self->push_message(std::move(f));
    });
  }

  // ReplyBudget: memory for `bytes` more of the running command's reply.
  // The command's reservation is max(its base, the data parts it asked for).
  Grant reserve(uint64_t bytes) override {
    if (!budget_on_) return Grant::kYes;
    cmd_parts_ += bytes;
    if (cmd_parts_ > output_cap_) return Grant::kNever;
    return cmd_parts_ <= cmd_reserved_ ? Grant::kYes : take_reply(cmd_parts_ - cmd_reserved_);
  }

 private:
  struct Slot {
    bool ready = false;
    std::string reply;
    uint64_t request_bytes = 0;  // a pending write's request, held until it completes
    uint64_t message_bytes = 0;  // a pub/sub message (not a reply): its size
  };

  void abort() {
    dead_ = true;
    socket_.close();
    reader_wake_.cancel();
    writer_wake_.cancel();
    idle_.stop();
  }

  // Suspends until the timer is cancelled by a wake_*(). All conditions are
  // checked on the strand right before waiting, so no wake-up is lost.
  awaitable<void> wait(asio::steady_timer& t) {
    t.expires_at(asio::steady_timer::time_point::max());
    asio::error_code ec;
    co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
  }

  bool backpressured() const { return slots_.size() >= shared_->config.max_pending_commands; }

  // A subscriber waits for messages, not requests: never idle (as in Redis).
  void arm_idle() {
    if (shared_->config.idle_timeout_ms > 0 && !session_.subscribed())
      idle_.arm(std::chrono::milliseconds(shared_->config.idle_timeout_ms));
  }

  // ---- memory ----

  net::ClientMemory& memory() { return shared_->stats.memory; }

  // Reply memory for the running command: within this connection's cap
  // (else it waits for its own writer) and the server's budget (else for
  // room anywhere).
  Grant take_reply(uint64_t n) {
    if (reply_charge_ + n > output_cap_) {
      wait_for_ = WaitFor::kOwnOutput;
      return Grant::kLater;
    }
    if (!memory().try_take(n)) {
      wait_for_ = WaitFor::kServer;
      wait_bytes_ = n;
      return Grant::kLater;
    }
    reply_charge_ += n;
    cmd_reserved_ += n;
    return Grant::kYes;
  }

  // The running command is done with its reservation: what it built stays
  // charged (a little more than reserved is taken as it is: fixed parts).
  void settle_reply(uint64_t built) {
    if (built < cmd_reserved_) {
      memory().give(cmd_reserved_ - built);
      reply_charge_ -= cmd_reserved_ - built;
    } else if (built > cmd_reserved_) {
      memory().take(built - cmd_reserved_);
      reply_charge_ += built - cmd_reserved_;
    }
    cmd_reserved_ = 0;
    cmd_parts_ = 0;
  }

  void give_reply(uint64_t n) {
    reply_charge_ -= n;
    memory().give(n);
  }

  // Request memory: the parser's and the requests it handed out that are
  // not done; charged as it is (see read_loop for when reading waits).
  void settle_requests() {
    uint64_t want = parser_.memory_bytes() + held_requests_;
    if (want > request_charge_)
      memory().take(want - request_charge_);
    else
      memory().give(request_charge_ - want);
    request_charge_ = want;
  }
  void release_request(uint64_t n) {
    held_requests_ -= n;
    settle_requests();
  }

  // Waits until the reason of the last kLater may be gone: this connection's
  // writer made progress, or the server gave memory back.
  awaitable<void> pause() {
    ++shared_->stats.client_pauses;
    ++shared_->stats.paused_clients;
    if (wait_for_ == WaitFor::kServer) {
      std::weak_ptr<Connection> weak = shared_from_this();
      auto wake = [weak] {
        if (auto c = weak.lock())
          asio::post(c->socket_.get_executor(), [c] { c->reader_wake_.cancel(); });
      };
      if (memory().wait_for_room(wait_bytes_, std::move(wake))) co_await wait(reader_wake_);
    } else if (reply_charge_ > 0) {
      co_await wait(reader_wake_);  // the writer wakes us as it sends
    }
    --shared_->stats.paused_clients;
  }

  // ---- replies ----

  void push_ready(std::string reply) {
    slots_.push_back({true, std::move(reply), 0, 0});
    writer_wake_.cancel();
  }

  // A message goes out after the replies queued before it; it is charged
  // as it is (PushSink bounds what one connection holds of them).
  void push_message(std::string frame) {
    const uint64_t n = frame.size();
    if (dead_ || finished_) {
      sink_->sent(n);
      return;
    }
    memory().take(n);
    reply_charge_ += n;
    slots_.push_back({true, std::move(frame), 0, n});
    writer_wake_.cancel();
  }

  uint64_t push_pending(uint64_t request_bytes) {
    slots_.push_back({false, {}, request_bytes, 0});
    ++writes_in_flight_;
    return first_slot_ + slots_.size() - 1;
  }

  // A write (or serialized op) finished: its reply can go out.
  void complete(uint64_t slot, std::string reply, bool serialized) {
    Slot& s = slots_[static_cast<size_t>(slot - first_slot_)];
    if (finished_) {
      // Nobody will send it: only the request's bytes are still ours.
      memory().give(s.request_bytes);
      s.request_bytes = 0;
      return;
    }
    s.ready = true;
    s.reply = std::move(reply);
    // A write's reply ("+OK", an error) is small: charged as it is.
    memory().take(s.reply.size());
    reply_charge_ += s.reply.size();
    release_request(s.request_bytes);
    s.request_bytes = 0;
    --writes_in_flight_;
    if (serialized) --serialized_in_flight_;
    writer_wake_.cancel();
    reader_wake_.cancel();
  }

  // `silent` (CLIENT REPLY OFF or SKIP): no reply, not even an error.
  void submit_write(uint64_t slot, WriteBatch batch, std::string ok_reply, bool serialized,
                    bool silent) {
    shared_->begin_store_write();
    auto done = [self = shared_from_this(), slot, ok = std::move(ok_reply), serialized,
                 silent](Status st) mutable {
      std::string reply = silent       ? std::string()
                          : st.is_ok() ? std::move(ok)
                                       : resp::write_error_reply(st);
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

  resp::Outcome run(const std::vector<std::string>& args, bool budgeted) {
    auto ctx = shared_->context();
    ctx.budget = this;
    ctx.subscriber = sink_;
    budget_on_ = budgeted;
    resp::Outcome o;
    try {
      o = resp::execute(ctx, session_, args);
    } catch (const std::exception& e) {
      o = resp::Outcome{};
      resp::write_error(o.reply, std::string("ERR internal error: ") + e.what());
    }
    settle_session();
    sink_->set_protocol(session_.protocol);
    shared_->clients.update(session_, args[0]);
    return o;
  }

  // What the session holds (a MULTI's queued commands, WATCHed keys) is
  // charged to the client memory budget as it is, like requests.
  void settle_session() {
    const uint64_t want = session_.held_bytes();
    if (want > session_charge_)
      memory().take(want - session_charge_);
    else
      memory().give(session_charge_ - want);
    session_charge_ = want;
  }

  // A check-then-write command, run when the server-wide gate is ours. It
  // cannot wait for memory while it holds the gate: its reply is charged as
  // built (the gate runs one such command at a time server-wide, so this
  // exceeds the budget by at most one value).
  void run_serialized(uint64_t slot, const std::vector<std::string>& args) {
    resp::Outcome o;
    if (!dead_) o = run(args, false);
    if (o.write) {
      submit_write(slot, std::move(*o.write), std::move(o.reply), true, o.silent);
    } else {
      shared_->gate.release();
      complete(slot, std::move(o.reply), true);
    }
  }

  // AUTH or HELLO ... AUTH: the password check runs on the authenticator's
  // threads; the reply waits in its slot, and every later command waits
  // for it (it counts as a serialized op), so they see the new identity.
  void start_auth(std::vector<std::string> args, resp::Credentials creds, uint64_t req_bytes) {
    uint64_t slot = push_pending(req_bytes);
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
      if (session_.subscribed())  // keyspace notifications follow the new rights
        shared_->pubsub.update_identity(session_.id,
                                        std::make_shared<const auth::Identity>(*session_.identity));
      socket_.authenticated();
      parser_.set_limits(shared_->config.limits);
      session_.credentials_verified = true;
      reply = run(args, false).reply;  // a small reply (+OK, HELLO's map)
      session_.credentials_verified = false;
    } else if (r.status().code() == Code::kClosed) {
      resp::write_error(reply, "ERR the server is shutting down");
    } else {
      resp::write_error(reply, auth::kWrongPassMessage);
    }
    complete(slot, std::move(reply), true);
  }

  // Runs a command that is not check-then-write: its reply's memory is
  // reserved before it is built, waiting for room as needed.
  awaitable<resp::Outcome> run_budgeted(const std::vector<std::string>& args) {
    for (;;) {
      cmd_parts_ = 0;
      Grant base = take_reply(std::min(resp::kBaseReplyBytes, output_cap_));
      resp::Outcome o;
      if (base == Grant::kYes) o = run(args, true);
      if (base == Grant::kYes && o.stopped == resp::Outcome::Stopped::kNo) {
        settle_reply(o.reply.size());
        co_return o;
      }
      settle_reply(0);
      if (base == Grant::kYes && o.stopped == resp::Outcome::Stopped::kTooLarge) {
        ++shared_->stats.replies_too_large;
        resp::Outcome err;
        err.reply = resp::too_large_reply(o.reply_bytes, output_cap_);
        settle_reply(err.reply.size());
        co_return err;
      }
      co_await pause();
      if (dead_) co_return resp::Outcome{};
    }
  }

  // Executes one parsed request, in order. Suspends while ordering or
  // memory requires.
  awaitable<void> dispatch(resp::Request r) {
    if (r.kind != resp::Request::Kind::kCommand) {
      std::string reply;
      resp::write_error(reply, r.error);
      memory().take(reply.size());
      reply_charge_ += reply.size();
      push_ready(std::move(reply));
      if (r.kind == resp::Request::Kind::kFatal) closing_ = true;
      co_return;
    }
    ++shared_->stats.total_commands;
    const uint64_t req_bytes = request_bytes(r.args);
    held_requests_ += req_bytes;  // moved out of the parser: still ours
    settle_requests();
    resp::Ordering ord = resp::ordering_of(r.args);
    // Read-your-writes: whatever reads waits for this connection's writes;
    // a blind write waits only for a check-then-write before it.
    for (;;) {
      if (dead_) co_return;  // finish() gives back what is held
      bool wait_needed =
          ord == resp::Ordering::kBlindWrite ? serialized_in_flight_ > 0 : writes_in_flight_ > 0;
      if (!wait_needed) break;
      co_await wait(reader_wake_);
    }
    if (shared_->auth->enabled() && !session_.tx) {  // inside MULTI, execute() refuses AUTH
      if (auto creds = resp::credentials_of(r.args)) {
        start_auth(std::move(r.args), std::move(*creds), req_bytes);
        co_return;
      }
    }
    if (ord == resp::Ordering::kSerialized) {
      uint64_t slot = push_pending(req_bytes);
      ++serialized_in_flight_;
      auto self = shared_from_this();
      shared_->gate.submit([self, slot, args = std::move(r.args)] {
        asio::post(self->socket_.get_executor(),
                   [self, slot, args] { self->run_serialized(slot, args); });
      });
      co_return;
    }
    resp::Outcome o = co_await run_budgeted(r.args);
    if (dead_) co_return;
    if (o.write) {
      // Its reply is charged again when the write completes.
      give_reply(o.reply.size());
      uint64_t slot = push_pending(req_bytes);
      r.args.clear();
      r.args.shrink_to_fit();
      submit_write(slot, std::move(*o.write), std::move(o.reply), false, o.silent);
    } else {
      release_request(req_bytes);
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
      parser_.shrink();
      settle_requests();
      // Between requests, a connection reads only while the server has
      // room. Inside a request it reads on to the request's end (bounded by
      // the request limits), so two large uploads never wait on each other.
      if (!parser_.in_request() && memory().used() + kReadChunkBytes > memory().limit()) {
        wait_for_ = WaitFor::kServer;
        wait_bytes_ = kReadChunkBytes;
        co_await pause();
        continue;
      }
      // Waiting for a request, not inside one: the idle clock runs (replies
      // still going out push it back, as in Redis: progress either way).
      awaiting_request_ = !parser_.in_request();
      if (awaiting_request_) arm_idle();
      asio::error_code ec;
      size_t n = co_await socket_.async_read_some(asio::buffer(buf),
                                                  asio::redirect_error(use_awaitable, ec));
      awaiting_request_ = false;
      idle_.disarm();
      if (ec || dead_) break;  // EOF or error: answer what is pending, then close
      parser_.feed(std::string_view(buf.data(), n));
      settle_requests();
    }
    closing_ = true;
    writer_wake_.cancel();
  }

  awaitable<void> write_loop() {
    std::vector<std::string> pieces;
    std::vector<asio::const_buffer> buffers;
    for (;;) {
      // Gather the replies that are ready, in request order: small ones
      // coalesced, large ones written from where they are (no copy).
      pieces.clear();
      uint64_t bytes = 0, message_bytes = 0;
      while (!slots_.empty() && slots_.front().ready && pieces.size() < kMaxWriteBuffers) {
        std::string& reply = slots_.front().reply;
        bytes += reply.size();
        message_bytes += slots_.front().message_bytes;
        if (!pieces.empty() && pieces.back().size() + reply.size() <= kCoalesceBytes)
          pieces.back() += reply;
        else
          pieces.push_back(std::move(reply));
        slots_.pop_front();
        ++first_slot_;
      }
      if (pieces.empty()) {
        if (dead_ || (closing_ && slots_.empty())) break;
        co_await wait(writer_wake_);
        continue;
      }
      reader_wake_.cancel();  // room for more requests
      buffers.clear();
      for (const auto& p : pieces) buffers.emplace_back(asio::buffer(p));
      asio::error_code ec;
      co_await asio::async_write(socket_, buffers, asio::redirect_error(use_awaitable, ec));
      // The bytes stay charged until the socket took them.
      pieces.clear();
      give_reply(bytes);
      if (message_bytes > 0) sink_->sent(message_bytes);
      reader_wake_.cancel();
      if (awaiting_request_) arm_idle();
      if (ec) break;
    }
  }

  // The writer is done: close the socket, give back every byte still held
  // and leave the server's books.
  void finish() {
    shared_->pubsub.remove(session_.id);  // no more messages are posted here
    abort();
    for (auto& s : slots_) {
      if (s.ready) give_reply(s.reply.size());
      // A pending write's request stays held by its completion, which runs
      // later and gives it back.
    }
    // Bytes of replies not yet queued (a command stopped mid-way) and of
    // the parser: what is held beyond the pending writes' requests.
    uint64_t pending_requests = 0;
    for (const auto& s : slots_)
      if (!s.ready) pending_requests += s.request_bytes;
    memory().give(reply_charge_);
    reply_charge_ = 0;
    memory().give(session_charge_);
    session_charge_ = 0;
    memory().give(request_charge_ - pending_requests);
    request_charge_ = pending_requests;
    held_requests_ = pending_requests;
    finished_ = true;
    --shared_->stats.connected_clients;
    shared_->clients.remove(session_.id);
    std::lock_guard lock(shared_->mu);
    shared_->connections.erase(session_.id);
  }

  enum class WaitFor { kOwnOutput, kServer };

  std::shared_ptr<Shared> shared_;
  net::Stream socket_;
  asio::steady_timer reader_wake_;
  asio::steady_timer writer_wake_;
  net::Deadline idle_;  // idle_timeout_ms
  resp::RequestParser parser_;
  resp::Session session_;
  std::shared_ptr<PushSink> sink_;  // set by run()

  // Replies in request order; slot ids count from first_slot_.
  std::deque<Slot> slots_;
  uint64_t first_slot_ = 0;
  uint32_t writes_in_flight_ = 0;      // pending slots: store writes and serialized ops
  uint32_t serialized_in_flight_ = 0;  // of which serialized ops
  bool auth_in_flight_ = false;        // a password check runs: parse nothing more until it ends
  bool awaiting_request_ = false;      // the reader waits for a request's first bytes
  bool closing_ = false;               // no more requests: send what is pending, then close
  bool dead_ = false;                  // the socket is closed
  bool finished_ = false;              // finish() ran: completions give back on their own

  // Memory charged to the server (see the class comment).
  uint64_t output_cap_ = 0;                 // min(max_output_bytes, max_client_memory_bytes)
  uint64_t reply_charge_ = 0;               // replies: reserved, queued, being written
  uint64_t request_charge_ = 0;             // parser_.memory_bytes() + held_requests_
  uint64_t held_requests_ = 0;              // requests out of the parser, not done
  uint64_t session_charge_ = 0;             // session_.held_bytes()
  uint64_t cmd_reserved_ = 0;               // of reply_charge_: the running command's reservation
  uint64_t cmd_parts_ = 0;                  // the data parts the running command asked for
  bool budget_on_ = false;                  // the running command's reserve() calls count
  WaitFor wait_for_ = WaitFor::kOwnOutput;  // why the last kLater
  uint64_t wait_bytes_ = 0;                 // kServer: how many bytes it wanted
};

void PushSink::deliver(std::string_view pattern, std::string_view channel,
                       std::string_view message) {
  if (overflowed_.load(std::memory_order_relaxed)) return;
  auto conn = conn_.lock();
  if (!conn) return;
  const auto proto =
      resp3_.load(std::memory_order_relaxed) ? resp::Protocol::kResp3 : resp::Protocol::kResp2;
  std::string frame;
  if (pattern.empty()) {
    resp::write_push(frame, 3, proto);
    resp::write_bulk(frame, "message");
  } else {
    resp::write_push(frame, 4, proto);
    resp::write_bulk(frame, "pmessage");
    resp::write_bulk(frame, pattern);
  }
  resp::write_bulk(frame, channel);
  resp::write_bulk(frame, message);
  const uint64_t n = frame.size();
  if (queued_.fetch_add(n, std::memory_order_relaxed) + n > limit_) {
    overflowed_.store(true, std::memory_order_relaxed);
    ++overflows_;
    conn->close();
    return;
  }
  conn->post_message(std::move(frame));
}

// "ip:port" as Redis writes it in CLIENT LIST (IPv6 without brackets).
std::string endpoint_text(const tcp::endpoint& ep) {
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

// A connection the listener admitted: it counts against max_connections
// until this returns.
awaitable<void> serve_client(std::shared_ptr<Shared> sh, net::Stream socket) {
  ++sh->stats.total_connections;
  uint64_t id = sh->stats.next_client_id++;
  asio::error_code ec;
  socket.socket().set_option(tcp::no_delay(true), ec);
  resp::ClientRecord record;
  record.id = id;
  record.addr = endpoint_text(socket.socket().remote_endpoint(ec));
  record.laddr = endpoint_text(socket.socket().local_endpoint(ec));
  record.created = record.last_command = std::chrono::steady_clock::now();
  if (!sh->auth || !sh->auth->enabled()) record.user = std::string(auth::kDefaultUser);
  auto conn = std::make_shared<Connection>(sh, std::move(socket), id);
  {
    std::lock_guard lock(sh->mu);
    if (sh->stopped) co_return;  // conn goes away, closing its socket
    sh->connections.emplace(id, conn);
  }
  sh->clients.add(record, [weak = std::weak_ptr<Connection>(conn)] {
    if (auto c = weak.lock()) c->close();
  });
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
  if (max_client_memory_bytes < kMinClientMemoryBytes)
    return Status::invalid("max_client_memory_bytes must be at least " +
                           std::to_string(kMinClientMemoryBytes) + " (1 MiB)");
  if (max_scan_cursors == 0) return Status::invalid("max_scan_cursors must be at least 1");
  if (!NotifyFlags::parse(notify_keyspace_events))
    return Status::invalid("notify_keyspace_events: unknown letter in '" + notify_keyspace_events +
                           "' (Redis's letters: K E g $ l s h z x e t d m n A)");
  if (max_pubsub_output_bytes == 0)
    return Status::invalid("max_pubsub_output_bytes must be at least 1");
  if (limits.max_bulk_bytes == 0 || limits.max_array_elements == 0 ||
      limits.max_inline_bytes == 0 || limits.max_request_bytes == 0)
    return Status::invalid("request limits must be at least 1");
  return Status::ok();
}

RespServer::RespServer(asio::io_context& io, Store& store, RespConfig config, RespStatusFn status)
    : io_(io), shared_(std::make_shared<Shared>(io, store, std::move(config), std::move(status))) {}

RespServer::~RespServer() {
  shared_->pubsub.detach();  // the store may go once we are gone; connections may not
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

RespMemoryStats RespServer::memory_stats() const {
  const resp::ServerStats& s = shared_->stats;
  return {s.memory.used(),         s.memory.peak(),        s.memory.limit(),
          s.paused_clients.load(), s.client_pauses.load(), s.replies_too_large.load(),
          s.idle_timeouts.load()};
}
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
