// HTTP/1.1 on the wire: an incremental request parser (on Debian's http-parser)
// with WaveKV's limits, a response parser for the client, and the response writer.
//
// The request parser stops after every complete request, so a server handles
// pipelined requests one at a time, in order, and never holds more than one
// parsed request per connection.
#pragma once

#include <http_parser.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wavekv::http {

struct HttpLimits {
  // Request line plus header lines, including their line ends and the empty
  // line that ends them.
  size_t max_header_bytes = 64 * 1024;
  // The body as received (after chunked decoding). Values may be 64 MiB; the
  // slack is for nothing in particular but keeps the limit from being exact.
  size_t max_body_bytes = 64ull * 1024 * 1024 + 64 * 1024;
  // A body over max_body_bytes that is at most this large is read and thrown
  // away, so the connection carries on after the 413; a larger one ends it.
  size_t max_discard_bytes = 1024 * 1024;
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;  // names lower-case

// The first value of header `lower_name`, if present.
std::optional<std::string_view> find_header(const HttpHeaders& headers,
                                            std::string_view lower_name);

struct HttpRequest {
  std::string method;  // "GET", "PUT", ...
  std::string target;  // the request-target as sent: "/v1/kv/a%20b?meta=1"
  HttpHeaders headers;
  std::string body;
  unsigned version_minor = 1;  // HTTP/1.x
  // Whether the connection may carry another request (HTTP/1.1 rules:
  // keep-alive unless "Connection: close"; HTTP/1.0 only with keep-alive).
  bool keep_alive = true;

  std::optional<std::string_view> header(std::string_view lower_name) const {
    return find_header(headers, lower_name);
  }
};

// Why a request was refused: the status to answer with, a message for the
// client, and whether the connection must then be closed.
struct HttpError {
  int status = 400;
  std::string message;
  bool close = true;
};

class HttpRequestParser {
 public:
  enum class Event {
    kNeedMore,  // every byte was consumed; no complete request yet
    kContinue,  // headers read and the client waits for "100 Continue" before the body
    kRequest,   // request() is complete
    kError,     // error() says what to answer; if !error().close, parsing carries on
  };

  explicit HttpRequestParser(HttpLimits limits = {});
  HttpRequestParser(const HttpRequestParser&) = delete;
  HttpRequestParser& operator=(const HttpRequestParser&) = delete;

  // Parses from `data` and returns how many bytes it consumed. It stops early
  // at an event; the caller handles it and feeds the rest again. After kRequest
  // or a non-closing kError, the next feed starts the next request.
  size_t feed(std::string_view data);
  // The peer closed its side. Returns kError if a request was cut short.
  Event finish();

  Event event() const { return event_; }
  HttpRequest& request() { return request_; }
  const HttpError& error() const { return error_; }
  // True between requests: nothing of a next request has arrived yet.
  bool idle() const { return !in_message_; }
  // True while a request's line and headers are arriving (not its body).
  bool in_head() const { return in_message_ && !headers_done_; }
  // True once a request's headers are in, until the request is complete.
  bool in_body() const { return in_message_ && headers_done_; }
  // How many body bytes this request may make the parser hold, known once
  // its headers are in: its Content-Length, max_body_bytes for a chunked
  // body (its size is not known), 0 for no body or one read to be discarded.
  uint64_t body_to_hold() const { return body_to_hold_; }

 private:
  static int on_message_begin(http_parser* p);
  static int on_url(http_parser* p, const char* at, size_t n);
  static int on_header_field(http_parser* p, const char* at, size_t n);
  static int on_header_value(http_parser* p, const char* at, size_t n);
  static int on_headers_complete(http_parser* p);
  static int on_body(http_parser* p, const char* at, size_t n);
  static int on_message_complete(http_parser* p);

  void start_next();
  size_t fail(int status, std::string message, bool close, size_t consumed);

  HttpLimits limits_;
  http_parser parser_;
  http_parser_settings settings_;
  Event event_ = Event::kNeedMore;
  HttpRequest request_;
  HttpError error_;
  bool in_message_ = false;
  bool headers_done_ = false;
  bool last_was_value_ = false;  // header callbacks: field after value starts a new header
  bool discarding_ = false;      // reading a too-large body to throw it away
  bool dead_ = false;            // a closing error happened; nothing more is parsed
  bool pending_error_ = false;   // a too-large body was discarded: report once complete
  size_t header_bytes_ = 0;
  size_t body_bytes_ = 0;
  uint64_t body_to_hold_ = 0;
};

struct HttpResponse {
  int status = 0;
  HttpHeaders headers;  // names lower-case
  std::string body;
  std::optional<std::string_view> header(std::string_view lower_name) const {
    return find_header(headers, lower_name);
  }
};

// Parses one response (the client side). Bodies are bounded by max_body_bytes.
class HttpResponseParser {
 public:
  explicit HttpResponseParser(size_t max_body_bytes);
  HttpResponseParser(const HttpResponseParser&) = delete;
  HttpResponseParser& operator=(const HttpResponseParser&) = delete;

  // Feeds bytes; returns an error message if the response is malformed or too
  // large, else an empty string. done() tells when the response is complete.
  std::string feed(std::string_view data);
  // The server closed the connection (ends a body without a length).
  std::string finish();
  bool done() const { return done_; }
  HttpResponse& response() { return response_; }

 private:
  static int on_header_field(http_parser* p, const char* at, size_t n);
  static int on_header_value(http_parser* p, const char* at, size_t n);
  static int on_headers_complete(http_parser* p);
  static int on_body(http_parser* p, const char* at, size_t n);
  static int on_message_complete(http_parser* p);

  size_t max_body_bytes_;
  http_parser parser_;
  http_parser_settings settings_;
  HttpResponse response_;
  bool last_was_value_ = false;
  bool too_large_ = false;
  bool done_ = false;
};

const char* reason_phrase(int status);

// The bytes of a response with a Content-Length body. `headers` must not hold
// Content-Length or Connection; "Connection: close" is added when !keep_alive.
std::string write_response(int status, const HttpHeaders& headers, std::string_view body,
                           bool keep_alive);
// The same without the body, for writing a large body from where it is.
std::string write_response_head(int status, const HttpHeaders& headers, size_t body_bytes,
                                bool keep_alive);
// The status line and headers of a response whose body follows until the
// connection closes (server-sent events): no Content-Length, Connection: close.
std::string write_stream_head(int status, const HttpHeaders& headers);

}  // namespace wavekv::http
