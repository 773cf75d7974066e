// A small blocking client of a node's HTTP API (docs/HTTP.md): what
// `wavekv get|put|del|scan|status --addr` call, and what an embedder can call
// to reach a node in another process. Keys and values are bytes; the client
// percent-encodes keys and decodes base64 itself. Each call is one request on
// its own connection, bounded by the client's timeout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "wavekv/status.h"
#include "wavekv/types.h"

namespace wavekv {

// One page of a listing, in key order.
struct ScanPage {
  std::vector<KeyValue> items;  // meta: node, seq and timestamp as the node sent them
  // The first key not returned: pass it as `start` for the next page. None:
  // the listing is complete.
  std::optional<std::string> next;
};

// Errors of every call: kIOError naming the address when there is no answer
// (refused, timed out, reset, malformed reply) or the answer is not the JSON
// the API promises; kInvalidArgument when the node refused the request with a
// 4xx; kIOError for any other status. The message reads
// "node answered <status>: <the node's error>" for the latter two.
// Credentials and TLS for a node with a users file or TLS (docs/SECURITY.md).
struct HttpClientOptions {
  uint64_t timeout_ms = 10000;
  std::string token;           // non-empty: Authorization: Bearer <token>
  std::string user, password;  // user non-empty: Authorization: Basic
  std::string ca_file;         // non-empty: https, the node verified against this CA (PEM)
};

class HttpClient {
 public:
  // `addr`: HOST:PORT of the node's HTTP listener. Nothing is dialled yet.
  explicit HttpClient(std::string addr, uint64_t timeout_ms = 10000)
      : addr_(std::move(addr)), timeout_ms_(timeout_ms) {}
  HttpClient(std::string addr, HttpClientOptions options);

  const std::string& address() const { return addr_; }

  // The value, or none if the key does not exist (or was deleted).
  Result<std::optional<std::string>> get(std::string_view key) const;
  // `ttl_ms` > 0: the key expires that many milliseconds after the node
  // writes it (PUT ?ttl_ms=, docs/HTTP.md); 0: never.
  Status put(std::string_view key, std::string_view value, uint64_t ttl_ms = 0) const;
  Status del(std::string_view key) const;
  // Up to `limit` live keys starting with `prefix`, from `start` on (empty:
  // from the first). The node accepts limits of 1 to 10,000.
  Result<ScanPage> scan(std::string_view prefix, std::string_view start = {},
                        size_t limit = 1000) const;
  // The body of GET /v1/status as the node sent it (docs/HTTP.md: a JSON
  // object; not checked here, so a caller can show whatever came).
  Result<std::string> status_json() const;

 private:
  std::string addr_;
  uint64_t timeout_ms_;
  std::string authorization_;  // the header's value; empty: none
  std::string ca_file_;
};

}  // namespace wavekv
