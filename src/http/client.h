// A small blocking HTTP/1.1 client: one request per connection, with one
// deadline for the whole exchange. For the `wavekv` CLI and tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "http/protocol.h"
#include "wavekv/status.h"

namespace wavekv::http {

// The largest response body http_request accepts.
inline constexpr size_t kMaxClientResponseBytes = 256ull * 1024 * 1024;

// Sends `method target` (target: path and query, already percent-encoded) with
// `body` to host_port ("host:port") and waits at most timeout_ms for the whole
// response. Any status is a response; errors are for transport failures
// (kIOError naming the address: refused, timed out, reset, malformed reply).
Result<HttpResponse> http_request(const std::string& host_port, std::string_view method,
                                  std::string_view target, std::string_view body,
                                  uint64_t timeout_ms);

// What a request may add: credentials, and TLS.
struct RequestOptions {
  std::string authorization;  // the Authorization header's value; empty: none
  // Non-empty: https, the server's certificate verified against this CA
  // file (PEM) and the host name or address of host_port.
  std::string ca_file;
};
Result<HttpResponse> http_request(const std::string& host_port, std::string_view method,
                                  std::string_view target, std::string_view body,
                                  uint64_t timeout_ms, const RequestOptions& options);

}  // namespace wavekv::http
