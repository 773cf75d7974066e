#include "http/client.h"

#include <array>
#include <asio.hpp>
#include <asio/ssl.hpp>
#include <chrono>
#include <optional>

#include "net/address.h"

namespace wavekv::http {

using asio::ip::tcp;

// Asio's blocking calls have no timeouts, so the exchange runs as a chain of
// asynchronous steps on a private io_context, and run_for bounds it.
Result<HttpResponse> http_request(const std::string& host_port, std::string_view method,
                                  std::string_view target, std::string_view body,
                                  uint64_t timeout_ms) {
  return http_request(host_port, method, target, body, timeout_ms, RequestOptions{});
}

Result<HttpResponse> http_request(const std::string& host_port, std::string_view method,
                                  std::string_view target, std::string_view body,
                                  uint64_t timeout_ms, const RequestOptions& options) {
  auto hp = net::parse_host_port(host_port, net::AddressUse::kDial);
  if (!hp) return hp.status();
  std::string request;
  request.reserve(256 + body.size());
  request.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  request += "Host: " + host_port + "\r\n";
  request += "User-Agent: wavekv\r\nConnection: close\r\n";
  if (!options.authorization.empty()) request += "Authorization: " + options.authorization + "\r\n";
  if (!body.empty() || method == "PUT" || method == "POST")
    request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  request += "\r\n";
  request.append(body);

  asio::io_context io;
  tcp::resolver resolver(io);
  tcp::socket socket(io);
  // https: TLS over `socket`, the server verified against the CA file.
  std::optional<asio::ssl::context> tls_context;
  std::optional<asio::ssl::stream<tcp::socket&>> tls;
  if (!options.ca_file.empty()) {
    tls_context.emplace(asio::ssl::context::tls_client);
    asio::error_code ec;
    tls_context->load_verify_file(options.ca_file, ec);
    if (ec) return Status::invalid("cannot load CA file " + options.ca_file + ": " + ec.message());
    tls_context->set_verify_mode(asio::ssl::verify_peer);
    tls.emplace(socket, *tls_context);
    tls->set_verify_callback(asio::ssl::host_name_verification(hp->host));
    // SNI for names (an address is not sent as a server name).
    asio::ip::make_address(hp->host, ec);
    if (ec) SSL_set_tlsext_host_name(tls->native_handle(), hp->host.c_str());
  }
  auto read_some = [&](auto buffer, auto handler) {
    if (tls)
      tls->async_read_some(buffer, std::move(handler));
    else
      socket.async_read_some(buffer, std::move(handler));
  };
  auto write_all = [&](auto buffer, auto handler) {
    if (tls)
      asio::async_write(*tls, buffer, std::move(handler));
    else
      asio::async_write(socket, buffer, std::move(handler));
  };
  HttpResponseParser parser(kMaxClientResponseBytes);
  std::array<char, 16 * 1024> buf;
  std::string failure;  // what went wrong, if anything
  bool finished = false;

  auto fail = [&](std::string what) {
    if (failure.empty() && !finished) failure = std::move(what);
    finished = true;
    asio::error_code ignored;
    socket.close(ignored);
  };
  std::function<void()> read_more = [&] {
    read_some(asio::buffer(buf), [&](asio::error_code ec, size_t n) {
      if (finished) return;
      if (n > 0) {
        std::string err = parser.feed(std::string_view(buf.data(), n));
        if (!err.empty()) return fail(err);
        if (parser.done()) {
          finished = true;
          return;
        }
      }
      // A TLS server that closes without close_notify: the body's length
      // framing still tells whether the response is complete.
      if (ec == asio::error::eof || (tls && ec == asio::ssl::error::stream_truncated)) {
        std::string err = parser.finish();
        if (!err.empty()) return fail(err);
        finished = true;
        return;
      }
      if (ec) return fail("reading the response: " + ec.message());
      read_more();
    });
  };
  resolver.async_resolve(
      hp->host, std::to_string(hp->port), [&](asio::error_code ec, tcp::resolver::results_type r) {
        if (ec) return fail("cannot resolve: " + ec.message());
        asio::async_connect(socket, r, [&](asio::error_code ec2, const tcp::endpoint&) {
          if (ec2) return fail("cannot connect: " + ec2.message());
          auto exchange = [&] {
            write_all(asio::buffer(request), [&](asio::error_code ec3, size_t) {
              // A server may answer (413) and close before reading the whole
              // body: still read what it said.
              if (ec3 && ec3 != asio::error::broken_pipe && ec3 != asio::error::connection_reset)
                return fail("sending the request: " + ec3.message());
            });
            read_more();
          };
          if (!tls) return exchange();
          tls->async_handshake(asio::ssl::stream_base::client, [&, exchange](asio::error_code ec4) {
            if (ec4) return fail("TLS handshake: " + ec4.message());
            exchange();
          });
        });
      });
  io.run_for(std::chrono::milliseconds(timeout_ms));
  if (!finished) fail("no complete response within " + std::to_string(timeout_ms) + " ms");
  // Let pending handlers run (they see `finished`) before the locals they use go.
  asio::error_code ignored;
  socket.close(ignored);
  resolver.cancel();
  io.restart();
  io.poll();
  if (!failure.empty()) return Status::io_error("node at " + host_port + ": " + failure);
  return std::move(parser.response());
}

}  // namespace wavekv::http
