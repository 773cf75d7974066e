#include "net/stream.h"

#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

#include "net/listener.h"

namespace wavekv::net {

Stream::Stream(Socket socket) : core_(std::make_shared<Core>()) {
  core_->plain.emplace(std::move(socket));
}

Stream::Stream(Socket socket, security::SslContextPtr context) : core_(std::make_shared<Core>()) {
  core_->context = std::move(context);
  core_->tls.emplace(std::move(socket), *core_->context);
}

Stream::~Stream() {
  if (core_) core_->close();
}

void Stream::Core::close() {
  Socket& s = tls ? tls->next_layer() : *plain;
  std::error_code ignored;
  s.shutdown(Socket::shutdown_both, ignored);
  s.close(ignored);
}

void Stream::close() { core_->close(); }

std::function<void()> Stream::closer() const {
  return [weak = std::weak_ptr<Core>(core_)] {
    if (auto core = weak.lock()) core->close();
  };
}

asio::ip::tcp::endpoint Stream::remote_endpoint() {
  std::error_code ec;
  auto endpoint = socket().remote_endpoint(ec);
  return ec ? asio::ip::tcp::endpoint() : endpoint;
}

asio::awaitable<std::error_code> Stream::handshake(asio::ssl::stream_base::handshake_type type) {
  std::error_code ec;
  if (!core_->tls) co_return ec;
  co_await core_->tls->async_handshake(type, asio::redirect_error(asio::use_awaitable, ec));
  co_return ec;
}

void Stream::authenticated() {
  if (admission_) admission_->authenticate();
}

}  // namespace wavekv::net
