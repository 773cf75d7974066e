#include "resp/protocol.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace wavekv::resp {

namespace {

// A length line is a type byte, at most 20 digits with a sign, and "\r\n".
// Anything longer without a CRLF cannot be a length: the framing is lost.
constexpr size_t kMaxLengthLineBytes = 32;
// Parsed bytes are dropped from the front of the buffer once there are this
// many of them (and they are at least half of it), so compaction is amortized.
constexpr size_t kCompactBytes = 4096;
// The buffer's smallest capacity once it grows, and the size kept by shrink().
constexpr size_t kMinCapacityBytes = 64 * 1024;
// A bulk string this large that starts at the front of the buffer becomes its
// argument by moving the buffer, not by a copy.
constexpr size_t kMoveBulkBytes = 64 * 1024;

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

// A byte as it can be shown in an error line.
std::string printable(char c) {
  if (c >= 0x20 && c < 0x7f) return std::string(1, c);
  const char* hex = "0123456789abcdef";
  auto u = static_cast<unsigned char>(c);
  return std::string{'\\', 'x', hex[u >> 4], hex[u & 15]};
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A strict decimal int64: an optional '-', then digits only, no overflow.
std::optional<int64_t> parse_int(std::string_view s) {
  int64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

void write_line(std::string& out, char type, std::string_view s) {
  out.push_back(type);
  size_t start = out.size();
  out.append(s);
  // A CR or LF inside a simple string or error would end the line early and
  // break the framing of every later reply.
  std::replace_if(
      out.begin() + static_cast<std::ptrdiff_t>(start), out.end(),
      [](char c) { return c == '\r' || c == '\n'; }, ' ');
  out.append("\r\n");
}

void write_header(std::string& out, char type, int64_t n) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
  (void)ec;  // 24 bytes always hold an int64
  out.push_back(type);
  out.append(digits, end);
  out.append("\r\n");
}

}  // namespace

RequestParser::RequestParser(RequestLimits limits) : limits_(limits) {}

void RequestParser::feed(std::string_view bytes) {
  // With nothing buffered, bytes that are being skipped need not be copied.
  if (pos_ == buf_.size()) {
    if (state_ == State::kFatal) return;
    if (state_ == State::kSkipBytes) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(skip_bytes_left_, bytes.size()));
      skip_bytes_left_ -= n;
      bytes.remove_prefix(n);
    } else if (state_ == State::kSkipLine) {
      size_t nl = bytes.find('\n');
      bytes.remove_prefix(nl == std::string_view::npos ? bytes.size() : nl);
    }
  }
  compact();
  if (buf_.size() + bytes.size() > buf_.capacity()) {
    // Grow to a capacity chosen here (std::string would double its own):
    // the live bytes move to the front of a buffer sized by capacity_for().
    std::string grown;
    grown.reserve(capacity_for(bytes.size()));
    grown.append(buf_, pos_, std::string::npos);
    buf_.swap(grown);
    pos_ = 0;
  }
  buf_.append(bytes);
}

size_t RequestParser::capacity_for(size_t n) const {
  const size_t live = buf_.size() - pos_;
  const size_t need = live + n;
  // Geometric growth, relative to the bytes held (not to what a length line
  // announced), so reallocations stay amortized...
  size_t target = std::max({need, 2 * live, kMinCapacityBytes});
  // ...but never past the end of the bulk string being read, when the bytes
  // fed do not reach beyond it: a maximal value gets a buffer of its size,
  // not twice that.
  if (state_ == State::kBulkBody) {
    const uint64_t end = bulk_len_ + 2;  // from pos_: the body and its CRLF
    if (need <= end) target = static_cast<size_t>(std::min<uint64_t>(target, end));
  }
  return target;
}

size_t RequestParser::memory_bound_after_feed(size_t n) const {
  size_t cap = buf_.capacity();
  if (buf_.size() - pos_ + n > cap) cap = std::max(cap, capacity_for(n));
  // Parsing may copy up to every buffered byte into arguments (a bulk
  // string of kMoveBulkBytes or more moves out of the buffer instead).
  return cap + args_bytes_ + (buf_.size() - pos_) + n;
}

void RequestParser::shrink() {
  if (pos_ == buf_.size() && buf_.capacity() > kMinCapacityBytes) {
    std::string().swap(buf_);
    pos_ = 0;
  }
}

void RequestParser::compact() {
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ >= kCompactBytes && pos_ * 2 >= buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
}

void RequestParser::reset_request() {
  elements_left_ = 0;
  bulk_len_ = 0;
  request_bytes_ = 0;
  args_.clear();
  args_bytes_ = 0;
  skip_error_.clear();
  skip_bytes_left_ = 0;
}

Request RequestParser::fatal(std::string message) {
  state_ = State::kFatal;
  fatal_error_ = "ERR Protocol error: " + std::move(message);
  buf_.clear();
  pos_ = 0;
  reset_request();
  return Request{Request::Kind::kFatal, {}, fatal_error_};
}

std::optional<int64_t> RequestParser::read_length_line(char type) {
  size_t avail = buf_.size() - pos_;
  size_t scan = std::min(avail, kMaxLengthLineBytes);
  const char* start = buf_.data() + pos_;
  const void* cr = std::memchr(start, '\r', scan);
  const char* what = type == '*' ? "multibulk" : "bulk";
  if (cr == nullptr) {
    if (avail >= kMaxLengthLineBytes) fatal(std::string("too big ") + what + " count string");
    return std::nullopt;
  }
  size_t cr_at = static_cast<size_t>(static_cast<const char*>(cr) - start);
  if (cr_at + 1 >= avail) return std::nullopt;  // the '\n' has not arrived yet
  if (start[cr_at + 1] != '\n') {
    fatal(std::string(what) + " length not terminated by CRLF");
    return std::nullopt;
  }
  auto n = parse_int(std::string_view(start + 1, cr_at - 1));
  if (!n) {
    fatal(std::string("invalid ") + what + " length");
    return std::nullopt;
  }
  pos_ += cr_at + 2;
  return n;
}

RequestParser::Step RequestParser::finish_array() {
  state_ = State::kStart;
  Request r;
  if (!skip_error_.empty()) {
    r.kind = Request::Kind::kError;
    r.error = std::move(skip_error_);
  } else {
    r.args = std::move(args_);
  }
  reset_request();
  return done(std::move(r));
}

std::optional<Request> RequestParser::next() {
  // Every step either consumes bytes, changes state, or ends this call.
  for (;;) {
    Step step = this->step();
    if (step.kind == Step::Kind::kNeedBytes) return std::nullopt;
    if (step.kind == Step::Kind::kDone) return std::move(step.request);
  }
}

RequestParser::Step RequestParser::step() {
  const size_t avail = buf_.size() - pos_;
  switch (state_) {
    case State::kFatal: return done(Request{Request::Kind::kFatal, {}, fatal_error_});
    case State::kStart:
      if (avail == 0) {
        compact();
        return need_bytes();
      }
      return buf_[pos_] == '*' ? start_array() : read_inline(avail);
    case State::kBulkHeader: return read_bulk_header(avail);
    case State::kBulkBody: return read_bulk_body(avail);
    case State::kSkipBytes: return skip_bytes(avail);
    case State::kSkipLine: return skip_line(avail);
  }
  return done(fatal("parser in an unknown state"));  // unreachable: every state is above
}

// A length line read_length_line could not return: more bytes, or fatal.
RequestParser::Step RequestParser::no_length_line() const {
  return state_ == State::kFatal ? go_on() : need_bytes();
}

RequestParser::Step RequestParser::start_array() {
  auto n = read_length_line('*');
  if (!n) return no_length_line();
  if (*n <= 0) return go_on();  // "*0" and "*-1" are empty requests: Redis ignores them
  reset_request();
  elements_left_ = static_cast<uint64_t>(*n);
  if (elements_left_ > limits_.max_array_elements) {
    skip_error_ = "ERR Protocol error: request of " + std::to_string(elements_left_) +
                  " arguments exceeds the limit of " + std::to_string(limits_.max_array_elements);
  } else {
    // Reserve only what the bytes already here can hold: a declared count is
    // a claim, not memory we owe the client.
    args_.reserve(static_cast<size_t>(std::min<uint64_t>(elements_left_, 64)));
  }
  state_ = State::kBulkHeader;
  return go_on();
}

// An inline command: one line.
RequestParser::Step RequestParser::read_inline(size_t avail) {
  const char* start = buf_.data() + pos_;
  const void* nl = std::memchr(start, '\n', avail);
  if (nl == nullptr) {
    // +1: the line may still end in "\r" before the "\n" arrives.
    if (avail > limits_.max_inline_bytes + 1) {
      skip_error_ = "ERR Protocol error: too big inline request";
      pos_ = buf_.size();
      state_ = State::kSkipLine;
      return go_on();
    }
    return need_bytes();
  }
  size_t len = static_cast<size_t>(static_cast<const char*>(nl) - start);
  std::string_view line(start, len);
  pos_ += len + 1;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > limits_.max_inline_bytes)
    return done(Request{Request::Kind::kError, {}, "ERR Protocol error: too big inline request"});
  auto args = split_inline(line);
  if (!args)
    return done(
        Request{Request::Kind::kError, {}, "ERR Protocol error: unbalanced quotes in request"});
  if (args->empty()) return go_on();  // a blank line
  return done(Request{Request::Kind::kCommand, std::move(*args), {}});
}

RequestParser::Step RequestParser::read_bulk_header(size_t avail) {
  if (elements_left_ == 0) return finish_array();
  if (avail == 0) return need_bytes();
  if (buf_[pos_] != '$') return done(fatal("expected '$', got '" + printable(buf_[pos_]) + "'"));
  auto len = read_length_line('$');
  if (!len) return no_length_line();
  if (*len < 0) return done(fatal("invalid bulk length"));
  auto ulen = static_cast<uint64_t>(*len);
  if (skip_error_.empty()) {
    if (ulen > limits_.max_bulk_bytes) {
      skip_error_ = "ERR Protocol error: bulk string of " + std::to_string(ulen) +
                    " bytes exceeds the limit of " + std::to_string(limits_.max_bulk_bytes) +
                    " bytes";
    } else if (request_bytes_ + ulen > limits_.max_request_bytes) {
      skip_error_ = "ERR Protocol error: request exceeds the limit of " +
                    std::to_string(limits_.max_request_bytes) + " bytes";
    }
  }
  if (!skip_error_.empty()) {
    // The request is refused already: drop this argument unread. Its
    // trailing CRLF is skipped too, unchecked.
    skip_bytes_left_ = ulen + 2;
    state_ = State::kSkipBytes;
    return go_on();
  }
  bulk_len_ = ulen;
  request_bytes_ += ulen;
  state_ = State::kBulkBody;
  return go_on();
}

RequestParser::Step RequestParser::read_bulk_body(size_t avail) {
  // The buffer grows in feed() as bytes arrive; a length line reserves nothing.
  if (avail < bulk_len_ + 2) return need_bytes();
  const char* body = buf_.data() + pos_;
  if (body[bulk_len_] != '\r' || body[bulk_len_ + 1] != '\n')
    return done(fatal("bulk string not terminated by CRLF"));
  const size_t len = static_cast<size_t>(bulk_len_);
  if (pos_ == 0 && len >= kMoveBulkBytes) {
    // feed() grew the buffer with this body at its front: hand the buffer
    // over as the argument and keep only what follows it.
    std::string rest(buf_, len + 2);
    buf_.resize(len);
    args_.push_back(std::move(buf_));
    buf_ = std::move(rest);
  } else {
    args_.emplace_back(body, len);
    pos_ += len + 2;
  }
  args_bytes_ += args_.back().capacity();
  --elements_left_;
  state_ = State::kBulkHeader;
  return go_on();
}

RequestParser::Step RequestParser::skip_bytes(size_t avail) {
  size_t n = static_cast<size_t>(std::min<uint64_t>(skip_bytes_left_, avail));
  pos_ += n;
  skip_bytes_left_ -= n;
  if (skip_bytes_left_ > 0) {
    compact();
    return need_bytes();
  }
  --elements_left_;
  state_ = State::kBulkHeader;
  return go_on();
}

RequestParser::Step RequestParser::skip_line(size_t avail) {
  const void* nl = std::memchr(buf_.data() + pos_, '\n', avail);
  if (nl == nullptr) {
    pos_ = buf_.size();
    compact();
    return need_bytes();
  }
  pos_ = static_cast<size_t>(static_cast<const char*>(nl) - buf_.data()) + 1;
  state_ = State::kStart;
  Request r{Request::Kind::kError, {}, std::move(skip_error_)};
  reset_request();
  return done(std::move(r));
}

std::optional<std::vector<std::string>> split_inline(std::string_view line) {
  std::vector<std::string> out;
  size_t i = 0;
  const size_t n = line.size();
  for (;;) {
    while (i < n && is_space(line[i])) ++i;
    if (i == n) return out;
    std::string cur;
    bool in_double = false, in_single = false;
    for (;;) {
      if (in_double) {
        if (i == n) return std::nullopt;  // no closing quote
        char c = line[i];
        if (c == '\\' && i + 3 < n && line[i + 1] == 'x' && hex_digit(line[i + 2]) >= 0 &&
            hex_digit(line[i + 3]) >= 0) {
          cur.push_back(static_cast<char>(hex_digit(line[i + 2]) * 16 + hex_digit(line[i + 3])));
          i += 4;
        } else if (c == '\\' && i + 1 < n) {
          char e = line[i + 1];
          switch (e) {
            case 'n': cur.push_back('\n'); break;
            case 'r': cur.push_back('\r'); break;
            case 't': cur.push_back('\t'); break;
            case 'b': cur.push_back('\b'); break;
            case 'a': cur.push_back('\a'); break;
            default: cur.push_back(e); break;
          }
          i += 2;
        } else if (c == '"') {
          ++i;
          // The closing quote must end the argument.
          if (i < n && !is_space(line[i])) return std::nullopt;
          break;
        } else {
          cur.push_back(c);
          ++i;
        }
      } else if (in_single) {
        if (i == n) return std::nullopt;
        char c = line[i];
        if (c == '\\' && i + 1 < n && line[i + 1] == '\'') {
          cur.push_back('\'');
          i += 2;
        } else if (c == '\'') {
          ++i;
          if (i < n && !is_space(line[i])) return std::nullopt;
          break;
        } else {
          cur.push_back(c);
          ++i;
        }
      } else {
        if (i == n || is_space(line[i])) break;
        char c = line[i++];
        if (c == '"') {
          in_double = true;
        } else if (c == '\'') {
          in_single = true;
        } else {
          cur.push_back(c);
        }
      }
    }
    out.push_back(std::move(cur));
  }
}

void write_simple(std::string& out, std::string_view s) { write_line(out, '+', s); }
void write_error(std::string& out, std::string_view s) { write_line(out, '-', s); }
void write_integer(std::string& out, int64_t v) { write_header(out, ':', v); }

void write_bulk(std::string& out, std::string_view s) {
  write_header(out, '$', static_cast<int64_t>(s.size()));
  out.append(s);
  out.append("\r\n");
}

void write_null(std::string& out, Protocol p) {
  out.append(p == Protocol::kResp3 ? "_\r\n" : "$-1\r\n");
}

void write_array(std::string& out, size_t n) { write_header(out, '*', static_cast<int64_t>(n)); }

void write_map(std::string& out, size_t n, Protocol p) {
  if (p == Protocol::kResp3)
    write_header(out, '%', static_cast<int64_t>(n));
  else
    write_header(out, '*', static_cast<int64_t>(2 * n));
}

void write_push(std::string& out, size_t n, Protocol p) {
  write_header(out, p == Protocol::kResp3 ? '>' : '*', static_cast<int64_t>(n));
}

}  // namespace wavekv::resp
