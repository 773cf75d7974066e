#include "http/protocol.h"

#include <algorithm>
#include <cctype>
#include <climits>

namespace wavekv::http {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Header callbacks arrive in pieces; a field after a value starts a new header.
void add_header_piece(HttpHeaders& headers, bool& last_was_value, bool is_value,
                      std::string_view piece) {
  if (!is_value) {
    if (last_was_value || headers.empty()) headers.emplace_back();
    headers.back().first += lower(piece);
  } else {
    if (headers.empty()) headers.emplace_back();  // http-parser never does this
    headers.back().second.append(piece);
  }
  last_was_value = is_value;
}

}  // namespace

std::optional<std::string_view> find_header(const HttpHeaders& headers,
                                            std::string_view lower_name) {
  for (const auto& [name, value] : headers)
    if (name == lower_name) return std::string_view(value);
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// Requests

HttpRequestParser::HttpRequestParser(HttpLimits limits) : limits_(limits) {
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
  http_parser_settings_init(&settings_);
  settings_.on_message_begin = &HttpRequestParser::on_message_begin;
  settings_.on_url = &HttpRequestParser::on_url;
  settings_.on_header_field = &HttpRequestParser::on_header_field;
  settings_.on_header_value = &HttpRequestParser::on_header_value;
  settings_.on_headers_complete = &HttpRequestParser::on_headers_complete;
  settings_.on_body = &HttpRequestParser::on_body;
  settings_.on_message_complete = &HttpRequestParser::on_message_complete;
}

void HttpRequestParser::start_next() {
  request_ = HttpRequest();
  in_message_ = false;
  headers_done_ = false;
  last_was_value_ = false;
  discarding_ = false;
  pending_error_ = false;
  header_bytes_ = 0;
  body_bytes_ = 0;
  body_to_hold_ = 0;
}

size_t HttpRequestParser::fail(int status, std::string message, bool close, size_t consumed) {
  event_ = Event::kError;
  error_ = {status, std::move(message), close};
  if (close) dead_ = true;
  return consumed;
}

size_t HttpRequestParser::feed(std::string_view data) {
  if (dead_) {
    event_ = Event::kError;
    return 0;
  }
  // The previous event was handled: the next request starts now.
  if (event_ == Event::kRequest || event_ == Event::kError) start_next();
  event_ = Event::kNeedMore;
  const bool headers_were_done = headers_done_;
  size_t consumed = 0;
  while (consumed < data.size()) {
    std::string_view rest = data.substr(consumed);
    // Before the headers are complete, the parser gets no more than the header
    // budget allows: if they are still incomplete after that, they are too large.
    size_t slice = rest.size();
    if (!headers_done_) slice = std::min(slice, limits_.max_header_bytes - header_bytes_);
    bool was_in_headers = !headers_done_;
    size_t n = http_parser_execute(&parser_, &settings_, rest.data(), slice);
    consumed += n;
    if (was_in_headers && !headers_done_) header_bytes_ += n;
    http_errno err = HTTP_PARSER_ERRNO(&parser_);
    if (err == HPE_PAUSED) {
      http_parser_pause(&parser_, 0);
      if (dead_) return consumed;  // a callback refused the request; error_ says why
      // on_message_complete paused: one whole request.
      if (pending_error_) {
        return fail(413,
                    "request body larger than " + std::to_string(limits_.max_body_bytes) + " bytes",
                    !request_.keep_alive, consumed);
      }
      event_ = Event::kRequest;
      return consumed;
    }
    if (err != HPE_OK) {
      return fail(400, std::string("malformed request: ") + http_errno_description(err), true,
                  consumed);
    }
    if (!headers_done_ && header_bytes_ >= limits_.max_header_bytes) {
      return fail(
          413, "request headers larger than " + std::to_string(limits_.max_header_bytes) + " bytes",
          true, consumed);
    }
    if (n == 0) break;  // cannot happen without an error; guards the loop
  }
  // The headers completed in this call, the body has not, and the client waits
  // for a go-ahead before sending it.
  if (headers_done_ && !headers_were_done) {
    auto expect = request_.header("expect");
    if (expect && lower(*expect) == "100-continue") event_ = Event::kContinue;
  }
  return consumed;
}

HttpRequestParser::Event HttpRequestParser::finish() {
  if (dead_) return event_ = Event::kError;
  if (!in_message_) return event_ = Event::kNeedMore;
  fail(400, "connection closed in the middle of a request", true, 0);
  return event_;
}

int HttpRequestParser::on_message_begin(http_parser* p) {
  auto* self = static_cast<HttpRequestParser*>(p->data);
  self->in_message_ = true;
  return 0;
}

int HttpRequestParser::on_url(http_parser* p, const char* at, size_t n) {
  static_cast<HttpRequestParser*>(p->data)->request_.target.append(at, n);
  return 0;
}

int HttpRequestParser::on_header_field(http_parser* p, const char* at, size_t n) {
  auto* self = static_cast<HttpRequestParser*>(p->data);
  add_header_piece(self->request_.headers, self->last_was_value_, false, {at, n});
  return 0;
}

int HttpRequestParser::on_header_value(http_parser* p, const char* at, size_t n) {
  auto* self = static_cast<HttpRequestParser*>(p->data);
  add_header_piece(self->request_.headers, self->last_was_value_, true, {at, n});
  return 0;
}

int HttpRequestParser::on_headers_complete(http_parser* p) {
  auto* self = static_cast<HttpRequestParser*>(p->data);
  self->headers_done_ = true;
  HttpRequest& r = self->request_;
  r.method = http_method_str(static_cast<http_method>(p->method));
  r.version_minor = p->http_minor;
  r.keep_alive = http_should_keep_alive(p) != 0;
  bool chunked = (p->flags & F_CHUNKED) != 0;
  if (!chunked && p->content_length != ULLONG_MAX &&
      p->content_length > self->limits_.max_body_bytes) {
    auto expect = r.header("expect");
    // A client waiting for 100 Continue may never send the body: do not wait for it.
    if (p->content_length <= self->limits_.max_discard_bytes && !expect) {
      self->discarding_ = true;
      self->pending_error_ = true;
    } else {
      self->fail(
          413,
          "request body larger than " + std::to_string(self->limits_.max_body_bytes) + " bytes",
          true, 0);
      http_parser_pause(p, 1);
    }
  }
  if (!self->discarding_)
    self->body_to_hold_ = chunked                           ? self->limits_.max_body_bytes
                          : p->content_length == ULLONG_MAX ? 0
                                                            : p->content_length;
  return 0;
}

int HttpRequestParser::on_body(http_parser* p, const char* at, size_t n) {
  auto* self = static_cast<HttpRequestParser*>(p->data);
  self->body_bytes_ += n;
  if (!self->discarding_ && self->body_bytes_ > self->limits_.max_body_bytes) {
    // Only a chunked body gets here: its size was not known up front.
    self->discarding_ = true;
    self->pending_error_ = true;
    self->request_.body.clear();
    self->request_.body.shrink_to_fit();
  }
  if (self->discarding_) {
    if (self->body_bytes_ > self->limits_.max_discard_bytes) {
      self->fail(
          413,
          "request body larger than " + std::to_string(self->limits_.max_body_bytes) + " bytes",
          true, 0);
      http_parser_pause(p, 1);
    }
    return 0;
  }
  self->request_.body.append(at, n);
  return 0;
}

int HttpRequestParser::on_message_complete(http_parser* p) {
  auto* self = static_cast<HttpRequestParser*>(p->data);
  // Upgrades (and CONNECT) are not spoken here: answer, then close.
  if (p->upgrade)
    self->request_.keep_alive = false;
  else
    self->request_.keep_alive = http_should_keep_alive(p) != 0;
  self->in_message_ = false;
  http_parser_pause(p, 1);
  return 0;
}

// ---------------------------------------------------------------------------
// Responses (client side)

HttpResponseParser::HttpResponseParser(size_t max_body_bytes) : max_body_bytes_(max_body_bytes) {
  http_parser_init(&parser_, HTTP_RESPONSE);
  parser_.data = this;
  http_parser_settings_init(&settings_);
  settings_.on_header_field = &HttpResponseParser::on_header_field;
  settings_.on_header_value = &HttpResponseParser::on_header_value;
  settings_.on_headers_complete = &HttpResponseParser::on_headers_complete;
  settings_.on_body = &HttpResponseParser::on_body;
  settings_.on_message_complete = &HttpResponseParser::on_message_complete;
}

std::string HttpResponseParser::feed(std::string_view data) {
  if (done_) return "";
  http_parser_execute(&parser_, &settings_, data.data(), data.size());
  if (too_large_) return "response body larger than " + std::to_string(max_body_bytes_) + " bytes";
  http_errno err = HTTP_PARSER_ERRNO(&parser_);
  if (err == HPE_PAUSED) return "";  // the response is complete
  if (err != HPE_OK) return std::string("malformed response: ") + http_errno_description(err);
  return "";
}

std::string HttpResponseParser::finish() {
  if (done_) return "";
  http_parser_execute(&parser_, &settings_, nullptr, 0);
  if (done_) return "";
  return "connection closed before the response was complete";
}

int HttpResponseParser::on_header_field(http_parser* p, const char* at, size_t n) {
  auto* self = static_cast<HttpResponseParser*>(p->data);
  add_header_piece(self->response_.headers, self->last_was_value_, false, {at, n});
  return 0;
}

int HttpResponseParser::on_header_value(http_parser* p, const char* at, size_t n) {
  auto* self = static_cast<HttpResponseParser*>(p->data);
  add_header_piece(self->response_.headers, self->last_was_value_, true, {at, n});
  return 0;
}

int HttpResponseParser::on_headers_complete(http_parser* p) {
  static_cast<HttpResponseParser*>(p->data)->response_.status = static_cast<int>(p->status_code);
  return 0;
}

int HttpResponseParser::on_body(http_parser* p, const char* at, size_t n) {
  auto* self = static_cast<HttpResponseParser*>(p->data);
  if (self->response_.body.size() + n > self->max_body_bytes_) {
    self->too_large_ = true;
    return 1;  // stops the parser
  }
  self->response_.body.append(at, n);
  return 0;
}

int HttpResponseParser::on_message_complete(http_parser* p) {
  auto* self = static_cast<HttpResponseParser*>(p->data);
  // A "100 Continue" is not the response; wait for the real one.
  if (self->response_.status >= 100 && self->response_.status < 200) {
    self->response_ = HttpResponse();
    self->last_was_value_ = false;
    return 0;
  }
  self->done_ = true;
  http_parser_pause(p, 1);
  return 0;
}

// ---------------------------------------------------------------------------
// Writing

const char* reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

namespace {
void append_head(std::string& out, int status, const HttpHeaders& headers) {
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += reason_phrase(status);
  out += "\r\n";
  for (const auto& [name, value] : headers) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
}
}  // namespace

std::string write_response_head(int status, const HttpHeaders& headers, size_t body_bytes,
                                bool keep_alive) {
  std::string out;
  append_head(out, status, headers);
  out += "Content-Length: ";
  out += std::to_string(body_bytes);
  out += keep_alive ? "\r\nConnection: keep-alive\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
  return out;
}

std::string write_response(int status, const HttpHeaders& headers, std::string_view body,
                           bool keep_alive) {
  std::string out = write_response_head(status, headers, body.size(), keep_alive);
  out.append(body);
  return out;
}

std::string write_stream_head(int status, const HttpHeaders& headers) {
  std::string out;
  append_head(out, status, headers);
  out += "Connection: close\r\n\r\n";
  return out;
}

}  // namespace wavekv::http
