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
  return {counters_->accepted, counters_->refused, counters_->accept_errors, counters_->open};
}

asio::awaitable<void> Listener::accept_loop(ListenerLimits limits, Handler handler,
                                            Refuser refuse) {
  auto self = shared_from_this();  // the loop outlives any caller's reference
  auto backoff = limits.accept_backoff_initial;
  asio::steady_timer pause(acceptor_.get_executor());
  for (;;) {
    std::error_code ec;
    Socket socket = co_await acceptor_.async_accept(asio::make_strand(io_), redirect(ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      // Out of file descriptors and the like: spinning would not help.
      ++counters_->accept_errors;
      pause.expires_after(backoff);
      co_await pause.async_wait(redirect(ec));
      backoff = std::min(backoff * 2, limits.accept_backoff_max);
      continue;
    }
    backoff = limits.accept_backoff_initial;
    if (counters_->open >= limits.max_connections) {
      ++counters_->refused;
      if (refuse) refuse(std::move(socket));
      continue;  // else `socket` closes here
    }
    ++counters_->open;
    ++counters_->accepted;
    auto ex = socket.get_executor();
    asio::co_spawn(ex, handler(std::move(socket)),
                   [counters = counters_](std::exception_ptr) { --counters->open; });
  }
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
