// RESP2 (the Redis protocol): an incremental request parser and a reply
// encoder. Pure: no sockets, no threads; bytes in, commands and bytes out.
//
// Requests are arrays of bulk strings ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n") or
// inline commands ("GET k\r\n"). Bulk strings are binary-safe.
//
// Bad input falls in two classes:
//  - Recoverable: the framing is intact, so the parser can find where the
//    next request starts. An oversized bulk string, too many array elements,
//    a request larger than max_request_bytes, an inline line that is too long
//    or has unbalanced quotes. The parser returns one kError for the request
//    and skips its remaining bytes without buffering them (the declared bytes
//    of a bulk string, the rest of a long inline line); the connection lives
//    on. Redis closes the connection for most of these; we keep it because we
//    can.
//  - Fatal: the framing is lost (a length that is not a number, a negative
//    bulk length, an element that is not a bulk string, a bulk string not
//    followed by CRLF, a length line without CRLF). Nothing after it can be
//    trusted, so the parser returns kFatal (and keeps returning it); the
//    server replies with the error and closes, as Redis does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wavekv::resp {

struct RequestLimits {
  // The largest bulk string (one argument). WaveKV's largest value is 64 MiB;
  // the slack lets a maximal value reach the store, which gives the precise error.
  uint64_t max_bulk_bytes = 64ull * 1024 * 1024 + 1024;
  // The most arguments in one request (command name included).
  uint64_t max_array_elements = 1024 * 1024;
  // The longest inline command line, without its "\r\n" or "\n".
  uint64_t max_inline_bytes = 64 * 1024;
  // The most argument bytes of one request in total (bounds what one request
  // can make the parser buffer).
  uint64_t max_request_bytes = 256ull * 1024 * 1024;
};

// What the parser produced.
struct Request {
  enum class Kind {
    kCommand,  // args holds the command and its arguments (never empty)
    kError,    // a bad request was skipped: reply `error`, keep the connection
    kFatal,    // framing lost: reply `error`, then close the connection
  };
  Kind kind = Kind::kCommand;
  std::vector<std::string> args;
  std::string error;  // an error line without the leading '-', e.g. "ERR Protocol error: ..."
};

class RequestParser {
 public:
  explicit RequestParser(RequestLimits limits = {});

  // Limits for the requests that start from now on (a connection that has
  // logged in gets more room than a stranger).
  void set_limits(const RequestLimits& limits) { limits_ = limits; }

  // Appends bytes read from the connection. Bytes that belong to a request
  // being skipped are dropped here, never buffered.
  void feed(std::string_view bytes);
  // The next complete request, or nullopt if more bytes are needed.
  std::optional<Request> next();

  // Bytes held for requests not yet complete.
  size_t buffered_bytes() const { return buf_.size() - pos_; }
  // The memory the parser holds: its buffer's capacity and the arguments of
  // the request being parsed. The buffer grows only as bytes arrive (never
  // by what a length line announces), to at most twice the bytes buffered
  // plus the bytes fed at once.
  size_t memory_bytes() const { return buf_.capacity() + args_bytes_; }
  // What memory_bytes() can be at most after feed() of `n` bytes and the
  // next() calls that follow: a bound a server reserves before it reads.
  size_t memory_bound_after_feed(size_t n) const;
  // Gives back the buffer's memory beyond what it holds (after a large
  // request, so an idle connection keeps no large buffer).
  void shrink();
  bool failed() const { return state_ == State::kFatal; }
  // Bytes of a request that is not complete yet are held (or being skipped).
  bool in_request() const { return state_ != State::kStart || pos_ < buf_.size(); }

 private:
  enum class State {
    kStart,       // at the start of a request
    kBulkHeader,  // in an array: expecting "$<len>\r\n"
    kBulkBody,    // in an array: expecting <len> bytes and "\r\n"
    kSkipBytes,   // dropping the declared bytes of an oversized bulk string
    kSkipLine,    // dropping the rest of an oversized inline line
    kFatal,
  };

  // What one step of next() did: consumed bytes or changed state (go on),
  // ran out of bytes, or produced what next() returns.
  struct Step {
    enum class Kind { kGoOn, kNeedBytes, kDone };
    Kind kind = Kind::kGoOn;
    Request request;  // kDone only
  };
  static Step go_on() { return Step{Step::Kind::kGoOn, {}}; }
  static Step need_bytes() { return Step{Step::Kind::kNeedBytes, {}}; }
  static Step done(Request r) { return Step{Step::Kind::kDone, std::move(r)}; }
  Step step();  // one step in the current state
  // One per state: kStart (an array or an inline line), kBulkHeader,
  // kBulkBody, kSkipBytes, kSkipLine.
  Step start_array();
  Step read_inline(size_t avail);
  Step read_bulk_header(size_t avail);
  Step read_bulk_body(size_t avail);
  Step skip_bytes(size_t avail);
  Step skip_line(size_t avail);
  Step finish_array();
  // Reads a "<type><integer>\r\n" line at pos_. nullopt: incomplete (or fatal,
  // which sets state_). On success advances pos_.
  std::optional<int64_t> read_length_line(char type);
  Step no_length_line() const;
  Request fatal(std::string message);
  void reset_request();
  void compact();
  // The capacity feed() gives the buffer for `n` more bytes (after compaction).
  size_t capacity_for(size_t n) const;

  RequestLimits limits_;
  State state_ = State::kStart;
  std::string buf_;
  size_t pos_ = 0;  // the first unparsed byte of buf_

  // The array being parsed.
  uint64_t elements_left_ = 0;
  uint64_t bulk_len_ = 0;
  uint64_t request_bytes_ = 0;
  std::vector<std::string> args_;
  uint64_t args_bytes_ = 0;  // the bytes of args_
  // Set when the current request is being skipped: what to reply once it ends.
  std::string skip_error_;
  uint64_t skip_bytes_left_ = 0;
  std::string fatal_error_;
};

// Splits an inline command line the way redis-cli quotes: whitespace separates
// arguments; "..." understands \n \r \t \b \a \\ \" and \xHH; '...' understands
// \'. nullopt if quotes are unbalanced.
std::optional<std::vector<std::string>> split_inline(std::string_view line);

// The protocol a connection speaks: 2 by default, 3 after HELLO 3. Only the
// encodings of null and maps differ for the replies WaveKV gives.
enum class Protocol { kResp2 = 2, kResp3 = 3 };

// Reply encoders: each appends one value to `out`.
void write_simple(std::string& out, std::string_view s);  // "+s"; CR/LF become spaces
void write_error(std::string& out, std::string_view s);   // "-s"; s starts with a code ("ERR ...")
void write_integer(std::string& out, int64_t v);
void write_bulk(std::string& out, std::string_view s);
void write_null(std::string& out, Protocol p);  // "$-1" (RESP2) or "_" (RESP3)
void write_array(std::string& out, size_t n);   // header; n values follow
// A map header; n key/value pairs follow. RESP2 has no maps: an array of 2n.
void write_map(std::string& out, size_t n, Protocol p);
// An out-of-band message's header (pub/sub); n values follow. RESP3 has a
// push type for it; RESP2 sends an array.
void write_push(std::string& out, size_t n, Protocol p);

}  // namespace wavekv::resp
