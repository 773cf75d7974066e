// A connection as the servers see it: a TCP socket, or TLS over one. The peer
// transport, the RESP port and the HTTP port read and write a Stream, so a
// port turns TLS on without its server changing. It is an Asio
// AsyncReadStream and AsyncWriteStream: asio::async_read and async_write work
// on it.
//
// All of it runs on the connection's executor (a strand). A Stream may be
// moved; closer() gives a handle that closes it from a watchdog even after
// the move.
#pragma once

#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <system_error>

#include "security/tls.h"

namespace wavekv::net {

using Socket = asio::ip::tcp::socket;

// What the listener counts for one admitted connection (listener.h): it
// stays "unauthenticated" until the server calls authenticated() on the
// stream, and strangers can hold only so many such slots.
class Admission;

class Stream {
 public:
  using executor_type = asio::any_io_executor;
  using TlsStream = asio::ssl::stream<Socket>;

  explicit Stream(Socket socket);                          // plain TCP
  Stream(Socket socket, security::SslContextPtr context);  // TLS; handshake() first

  Stream(Stream&&) noexcept = default;
  Stream& operator=(Stream&&) noexcept = default;
  ~Stream();  // closes

  executor_type get_executor() { return socket().get_executor(); }
  bool is_tls() const { return core_->tls.has_value(); }
  // Null for plain TCP; the OpenSSL connection (after the handshake: the
  // peer's certificate, security/tls.h peer_node_id()).
  SSL* ssl() { return is_tls() ? core_->tls->native_handle() : nullptr; }

  // TLS only: runs the handshake. No deadline of its own: the owner's
  // watchdog closes the stream to end it.
  asio::awaitable<std::error_code> handshake(asio::ssl::stream_base::handshake_type type);

  template <typename MutableBuffers, typename Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, size_t)>(
        [core = core_.get()](auto handler, const MutableBuffers& b) {
          if (core->tls)
            core->tls->async_read_some(b, std::move(handler));
          else
            core->plain->async_read_some(b, std::move(handler));
        },
        token, buffers);
  }

  template <typename ConstBuffers, typename Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, size_t)>(
        [core = core_.get()](auto handler, const ConstBuffers& b) {
          if (core->tls)
            core->tls->async_write_some(b, std::move(handler));
          else
            core->plain->async_write_some(b, std::move(handler));
        },
        token, buffers);
  }

  // The TCP socket underneath (options, endpoints, half-close).
  Socket& socket() { return core_->tls ? core_->tls->next_layer() : *core_->plain; }
  // The peer's address; default-constructed if the socket is gone.
  asio::ip::tcp::endpoint remote_endpoint();

  // Shuts down and closes the socket: pending operations fail. Idempotent.
  void close();
  bool is_open() { return socket().is_open(); }
  // Closes the stream if it still exists; safe after the Stream has moved or
  // died. Call on the connection's executor.
  std::function<void()> closer() const;

  // The listener's record of this connection (listener.h); may be null.
  void set_admission(std::shared_ptr<Admission> admission) { admission_ = std::move(admission); }
  // This connection proved who it is: it no longer counts against the
  // listener's slots for strangers, and the authentication deadline is off.
  void authenticated();

 private:
  struct Core {
    security::SslContextPtr context;  // declared first: outlives `tls`
    std::optional<Socket> plain;
    std::optional<TlsStream> tls;
    void close();
  };
  std::shared_ptr<Core> core_;
  std::shared_ptr<Admission> admission_;
};

}  // namespace wavekv::net
