#include "net/listener.h"

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>
#include <exception>

#include "net/address.h"

namespace wavekv::net {

using asio::ip::tcp;

namespace {

auto redirect(std::error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

Result<tcp::endpoint> listen_endpoint(asio::io_context& io, const std::string& address) {
  auto hp = parse_host_port(address, AddressUse::kListen);
  if (!hp) return hp.status();
  // ":port": every IPv4 interface (IPv6 may be off on the host).
  if (hp->host.empty()) return tcp::endpoint(tcp::v4(), hp->port);
  std::error_code ec;
  asio::ip::address ip = asio::ip::make_address(hp->host, ec);
  if (!ec) return tcp::endpoint(ip, hp->port);
  tcp::resolver resolver(io);
  auto results = resolver.resolve(hp->host, std::to_string(hp->port),
                                  tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty())
    return Status::invalid("cannot resolve listen address '" + address + "': " + ec.message());
  return results.begin()->endpoint();
}

}  // namespace

Listener::Listener(asio::io_context& io) : io_(io), acceptor_(asio::make_strand(io)) {}

Result<std::shared_ptr<Listener>> Listener::bind(asio::io_context& io, const std::string& address) {
  auto endpoint = listen_endpoint(io, address);
  if (!endpoint) return endpoint.status();
  auto listener = std::make_shared<Listener>(io);
  tcp::acceptor& acceptor = listener->acceptor_;
  std::error_code ec;
  auto fail = [&](const char* what) {
    return Status::io_error(std::string("cannot ") + what + " " + address + ": " + ec.message());
  };
  acceptor.open(endpoint->protocol(), ec);
  if (ec) return fail("open a socket for");
  acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (ec) return fail("set up");
  acceptor.bind(*endpoint, ec);
  if (ec) return fail("bind");
  acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen on");
  tcp::endpoint bound = acceptor.local_endpoint(ec);
  if (ec) return fail("read the bound address of");
  listener->port_ = bound.port();
  listener->address_ = format_host_port(bound.address().to_string(), bound.port());
  return listener;
}

void Listener::start(ListenerLimits limits, Handler handler, Refuser refuse) {
  asio::co_spawn(acceptor_.get_executor(),
                 accept_loop(limits, std::move(handler), std::move(refuse)), asio::detached);
}

void Listener::close() {
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    std::error_code ignored;
    self->acceptor_.close(ignored);
  });
}

ListenerStats Listener::stats() const {
  std::lock_guard lock(counters_->mu);
  const Counters& c = *counters_;
  return {c.accepted,           c.refused,       c.refused_source, c.accept_errors,
          c.handshake_failures, c.auth_timeouts, c.open,           c.unauthenticated};
}

Listener::Verdict Listener::admit(const ListenerLimits& limits, const asio::ip::address& source) {
  std::lock_guard lock(counters_->mu);
  Counters& c = *counters_;
  if (c.open >= limits.max_connections || c.unauthenticated >= limits.max_unauthenticated) {
    ++c.refused;
    return Verdict::kRefuse;
  }
  size_t& from_source = c.unauthenticated_by_source[source];
  if (limits.max_unauthenticated_per_source > 0 &&
      from_source >= limits.max_unauthenticated_per_source) {
    ++c.refused_source;
    return Verdict::kRefuseSource;
  }
  ++from_source;
  ++c.open;
  ++c.unauthenticated;
  ++c.accepted;
  return Verdict::kAdmit;
}

asio::awaitable<void> Listener::accept_loop(ListenerLimits limits, Handler handler,
                                            Refuser refuse) {
  auto self = shared_from_this();  // the loop outlives any caller's reference
  auto serving = std::make_shared<const Serving>(Serving{limits, std::move(handler)});
  auto backoff = limits.accept_backoff_initial;
  asio::steady_timer pause(acceptor_.get_executor());
  for (;;) {
    std::error_code ec;
    Socket socket = co_await acceptor_.async_accept(asio::make_strand(io_), redirect(ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      // Out of file descriptors and the like: spinning would not help.
      {
        std::lock_guard lock(counters_->mu);
        ++counters_->accept_errors;
      }
      pause.expires_after(backoff);
      co_await pause.async_wait(redirect(ec));
      backoff = std::min(backoff * 2, limits.accept_backoff_max);
      continue;
    }
    backoff = limits.accept_backoff_initial;
    const auto source = socket.remote_endpoint(ec).address();
    if (ec) continue;  // already gone
    switch (admit(limits, source)) {
      case Verdict::kAdmit: break;
      case Verdict::kRefuse:
        if (refuse) refuse(std::move(socket));
        continue;                             // else `socket` closes here
      case Verdict::kRefuseSource: continue;  // a source over its share hears nothing
    }
    auto ex = socket.get_executor();
    auto admission = std::make_shared<Admission>(counters_, source, ex);
    asio::co_spawn(ex, serve_one(std::move(socket), admission, serving, counters_),
                   [admission](std::exception_ptr) { admission->release(); });
  }
}

asio::awaitable<void> Listener::serve_one(Socket socket, std::shared_ptr<Admission> admission,
                                          std::shared_ptr<const Serving> serving,
                                          std::shared_ptr<Counters> counters) {
  const ListenerLimits& limits = serving->limits;
  security::SslContextPtr context = limits.tls ? limits.tls() : nullptr;
  if (limits.tls && !context) co_return;  // no context to serve with: refuse quietly
  Stream stream =
      context ? Stream(std::move(socket), std::move(context)) : Stream(std::move(socket));
  stream.set_admission(admission);
  if (limits.auth_timeout.count() > 0) {
    asio::co_spawn(stream.get_executor(),
                   auth_deadline(admission, stream.closer(), limits.auth_timeout), asio::detached);
  }
  if (stream.is_tls()) {
    std::error_code ec = co_await stream.handshake(asio::ssl::stream_base::server);
    if (ec) {
      std::lock_guard lock(counters->mu);
      ++counters->handshake_failures;
      co_return;
    }
    if (limits.tls_authenticates) stream.authenticated();
  }
  co_await serving->handler(std::move(stream));
}

asio::awaitable<void> Listener::auth_deadline(std::shared_ptr<Admission> admission,
                                              std::function<void()> close,
                                              std::chrono::milliseconds timeout) {
  admission->timer_.expires_after(timeout);
  std::error_code ec;
  co_await admission->timer_.async_wait(redirect(ec));
  if (admission->authenticated_ || admission->released_) co_return;
  {
    std::lock_guard lock(admission->counters_->mu);
    ++admission->counters_->auth_timeouts;
  }
  close();
}

// ---- Admission ----

void Admission::leave_unauthenticated_locked() {
  --counters_->unauthenticated;
  auto it = counters_->unauthenticated_by_source.find(source_);
  if (it != counters_->unauthenticated_by_source.end() && --it->second == 0)
    counters_->unauthenticated_by_source.erase(it);
}

void Admission::authenticate() {
  if (authenticated_ || released_) return;
  authenticated_ = true;
  {
    std::lock_guard lock(counters_->mu);
    leave_unauthenticated_locked();
  }
  timer_.cancel();
}

void Admission::release() {
  if (released_) return;
  released_ = true;
  {
    std::lock_guard lock(counters_->mu);
    if (!authenticated_) leave_unauthenticated_locked();
    --counters_->open;
  }
  timer_.cancel();
}

// ---- Deadline ----

void Deadline::start(std::shared_ptr<void> owner, std::function<void()> expire) {
  asio::co_spawn(timer_.get_executor(), watch(*this, std::move(owner), std::move(expire)),
                 asio::detached);
}

void Deadline::arm(std::chrono::milliseconds timeout) {
  deadline_ = Clock::now() + timeout;
  // Wake the watchdog only if it sleeps past the new deadline.
  if (deadline_ < timer_.expiry()) timer_.cancel();
}

void Deadline::stop() {
  stopped_ = true;
  timer_.cancel();
}

asio::awaitable<void> Deadline::watch(Deadline& self, [[maybe_unused]] std::shared_ptr<void> owner,
                                      std::function<void()> expire) {
  while (!self.stopped_) {
    if (Clock::now() >= self.deadline_) {
      self.stopped_ = true;
      expire();
      co_return;
    }
    std::error_code ec;
    self.timer_.expires_at(self.deadline_);
    co_await self.timer_.async_wait(redirect(ec));
  }
}

}  // namespace wavekv::net
