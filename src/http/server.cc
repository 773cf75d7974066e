#include "http/server.h"

#include <array>
#include <asio.hpp>
#include <atomic>
#include <charconv>
#include <chrono>
#include <mutex>
#include <random>
#include <set>
#include <variant>

#include "auth/authenticator.h"
#include "http/encoding.h"
#include "monitoring/node_status.h"
#include "net/address.h"
#include "net/client_memory.h"
#include "net/listener.h"

namespace wavekv::http {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

Status HttpConfig::validate() const {
  auto hp = net::parse_host_port(listen, net::AddressUse::kListen);
  if (!hp) return Status::invalid("listen: " + hp.status().message());
  if (limits.max_header_bytes < 64) return Status::invalid("max_header_bytes must be >= 64");
  if (max_connections == 0) return Status::invalid("max_connections must be > 0");
  WAVEKV_RETURN_IF_ERROR(security.validate());
  if (auth_workers == 0) return Status::invalid("auth_workers must be at least 1");
  if (idle_timeout_ms == 0 || write_timeout_ms == 0 || heartbeat_ms == 0 ||
      request_head_timeout_ms == 0)
    return Status::invalid("timeouts and heartbeat_ms must be > 0");
  if (default_scan_limit == 0 || default_scan_limit > max_scan_limit)
    return Status::invalid("default_scan_limit must be in 1..max_scan_limit");
  if (max_subscriber_events == 0 || max_subscriber_bytes == 0 || watch.max_inbox_events == 0 ||
      watch.max_ring_events == 0)
    return Status::invalid("watch queue bounds must be > 0");
  if (max_page_bytes == 0) return Status::invalid("max_page_bytes must be > 0");
  if (max_client_memory_bytes < limits.max_body_bytes ||
      max_client_memory_bytes < max_subscriber_bytes)
    return Status::invalid("max_client_memory_bytes must be at least max_body_bytes (" +
                           std::to_string(limits.max_body_bytes) + ") and max_subscriber_bytes (" +
                           std::to_string(max_subscriber_bytes) + ")");
  return Status::ok();
}

namespace {

// ---------------------------------------------------------------------------
// Small helpers

// Keys and values go into JSON as text when they are UTF-8, else as base64
// under "<name>_base64".
// What a reply's status line and headers are charged to the memory budget.
constexpr uint64_t kReplyHeadBytes = 1024;

// GET /v1/kv/{key}: JSON (with its version) or the raw value.
bool wants_json(const HttpRequest& req, const QueryParams& q) {
  auto meta = query_param(q, "meta");
  auto accept = req.header("accept");
  return (meta && *meta != "0" && *meta != "false") ||
         (accept && accept->find("application/json") != std::string_view::npos);
}

void put_bytes(json& j, const char* name, std::string_view bytes) {
  if (is_valid_utf8(bytes))
    j[name] = bytes;
  else
    j[std::string(name) + "_base64"] = base64_encode(bytes);
}

json event_json(const FeedEvent& e) {
  json j = json::object();
  put_bytes(j, "key", e.key);
  if (!e.deleted) put_bytes(j, "value", e.value);
  j["node"] = e.meta.node;
  j["seq"] = e.meta.seq;
  j["timestamp"] = e.meta.timestamp;
  if (e.expired)
    j["expired"] = true;
  else if (e.expires_ms != 0)
    j["expires_ms"] = e.expires_ms;
  return j;
}

// The smallest string above every string starting with `prefix`; empty if none.
std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (!end.empty()) end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

struct Reply {
  int status = 200;
  HttpHeaders headers;
  std::string body;
};

Reply json_reply(int status, const json& j) {
  return {status, {{"Content-Type", "application/json"}}, j.dump() + "\n"};
}
Reply error_reply(int status, std::string_view message) {
  return json_reply(status, {{"error", message}});
}
int status_code_for(const Status& st) {
  switch (st.code()) {
    case Code::kNotFound: return 404;
    case Code::kInvalidArgument: return 400;
    case Code::kFailed:
    case Code::kClosed:
    case Code::kUnavailable: return 503;
    default: return 500;
  }
}

// Store::write_async as an Asio operation: the completion runs on the
// caller's executor (the connection's strand), never on the commit thread.
template <typename Token>
auto async_store_write(Store& store, WriteBatch batch, Token&& token) {
  return asio::async_initiate<Token, void(Status)>(
      [&store](auto handler, WriteBatch b) {
        using Handler = decltype(handler);
        auto ex = asio::get_associated_executor(handler);
        struct Pending {
          Handler handler;
          asio::executor_work_guard<decltype(ex)> work;  // keeps io.run() going meanwhile
        };
        auto pending =
            std::make_shared<Pending>(Pending{std::move(handler), asio::make_work_guard(ex)});
        store.write_async(std::move(b), [pending](Status st) {
          auto ex2 = pending->work.get_executor();
          asio::post(ex2, [pending, st = std::move(st)]() mutable {
            pending->work.reset();
            std::move(pending->handler)(std::move(st));
          });
        });
      },
      token, std::move(batch));
}

// A password check on the authenticator's threads as an Asio operation: the
// completion runs on the caller's executor. A full queue completes with
// kBusy.
template <typename Token>
auto async_verify(auth::Authenticator& authenticator, std::string user, std::string password,
                  Token&& token) {
  return asio::async_initiate<Token, void(Result<auth::Identity>)>(
      [&authenticator](auto handler, std::string u, std::string p) {
        using Handler = decltype(handler);
        auto ex = asio::get_associated_executor(handler);
        struct Pending {
          Handler handler;
          asio::executor_work_guard<decltype(ex)> work;
        };
        auto pending =
            std::make_shared<Pending>(Pending{std::move(handler), asio::make_work_guard(ex)});
        auto finish = [pending](Result<auth::Identity> r) {
          auto ex2 = pending->work.get_executor();
          asio::post(ex2, [pending, r = std::move(r)]() mutable {
            pending->work.reset();
            std::move(pending->handler)(std::move(r));
          });
        };
        if (!authenticator.verify(std::move(u), std::move(p), finish))
          finish(Status::busy("too many log-ins in progress, try again later"));
      },
      token, std::move(user), std::move(password));
}

// The request counters of /metrics, by status code.
constexpr std::array<int, 11> kCountedCodes = {200, 400, 401, 403, 404, 405, 413, 500, 503, 408, 0};
size_t code_slot(int status) {
  for (size_t i = 0; i + 1 < kCountedCodes.size(); ++i)
    if (kCountedCodes[i] == status) return i;
  return kCountedCodes.size() - 1;  // other
}

}  // namespace

// ---------------------------------------------------------------------------
// One connection: a socket on its own strand, a watchdog for its deadline and,
// for watch streams, a timer that wakes it when events arrive.

struct Conn : std::enable_shared_from_this<Conn> {
  explicit Conn(net::Stream s)
      : socket(std::move(s)), deadline(socket.get_executor()), wake(socket.get_executor()) {}

  // Everything below is touched on the connection's strand only.
  net::Stream socket;
  net::Deadline deadline;
  asio::steady_timer wake;
  bool closed = false;
  // The last Basic credentials (the header's value) that verified, and who
  // they are: a keep-alive connection pays for scrypt once.
  std::string basic_header;
  std::optional<auth::Identity> basic_identity;

  void start_watchdog() {
    deadline.start(shared_from_this(), [this] { close(); });
  }
  void set_deadline_ms(uint32_t ms) { deadline.arm(std::chrono::milliseconds(ms)); }
  void clear_deadline() { deadline.disarm(); }
  void close() {
    if (closed) return;
    closed = true;
    socket.close();
    deadline.stop();
    wake.cancel();
  }
};

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(asio::io_context& io_, Store& store_, HttpConfig config_, HttpHooks hooks_, uint64_t epoch)
      : io(io_),
        store(store_),
        config(std::move(config_)),
        hooks(std::move(hooks_)),
        feed_strand(asio::make_strand(io_)),
        feed(std::make_shared<WatchFeed>(epoch, config.watch)),
        memory(config.max_client_memory_bytes) {}

  asio::io_context& io;
  Store& store;
  const HttpConfig config;
  const HttpHooks hooks;
  std::shared_ptr<auth::Authenticator> auth;     // disabled: no users file
  std::shared_ptr<security::ContextSource> tls;  // null: plain TCP
  std::shared_ptr<net::Listener> listener;
  asio::strand<asio::io_context::executor_type> feed_strand;  // drains run in order
  std::shared_ptr<WatchFeed> feed;
  WatchId watch_id = 0;
  bool watching = false;
  std::string bound_address;
  uint16_t bound_port = 0;

  mutable std::mutex mu;  // conns, stopped
  std::set<std::shared_ptr<Conn>> conns;
  bool stopped = false;

  std::atomic<uint64_t> connections_total{0};
  std::atomic<uint64_t> connections_refused{0};

  // Request bodies, replies and watch queues of every connection
  // (HttpConfig::max_client_memory_bytes). A request holds its share from
  // the moment its headers are in until its reply is written.
  net::ClientMemory memory;
  std::atomic<uint64_t> memory_waits{0};
  std::array<std::atomic<uint64_t>, kCountedCodes.size()> requests{};

  // --- lifecycle
  void begin_watching();
  void stop();
  asio::awaitable<void> admit(net::Stream socket);
  void refuse(net::Socket socket);
  asio::awaitable<void> send_503(std::shared_ptr<Conn> c);
  asio::awaitable<void> serve(std::shared_ptr<Conn> c);
  void forget(const std::shared_ptr<Conn>& c);

  // --- the memory budget, on a connection's strand. `held` is what the
  // request holds; reserve() adds `n` to it once `n` fits, waiting as long
  // as needed (false: the connection closed while waiting).
  asio::awaitable<bool> reserve(std::shared_ptr<Conn> c, uint64_t n, uint64_t& held);
  void settle(uint64_t actual, uint64_t& held);  // held becomes `actual`
  void release(uint64_t& held) { settle(0, held); }

  // --- I/O helpers on a connection's strand
  asio::awaitable<bool> write(Conn& c, std::string_view head, std::string_view body = {});
  asio::awaitable<bool> send_reply(Conn& c, const Reply& r, bool keep_alive);
  asio::awaitable<void> linger_close(Conn& c);

  // --- authentication: the identity the request carries, or the reply
  // that refuses it (401, or 503 when the checks are saturated).
  asio::awaitable<std::variant<auth::Identity, Reply>> authenticate(Conn& c,
                                                                    const HttpRequest& req);

  // --- routes; `id` null: no users file, everything allowed
  asio::awaitable<Reply> handle(std::shared_ptr<Conn> c, HttpRequest& req, const auth::Identity* id,
                                uint64_t& held);
  Reply get_key(const HttpRequest& req, const std::string& key, const QueryParams& q);
  asio::awaitable<Reply> write_key(HttpRequest& req, const std::string& key, bool del,
                                   const QueryParams& q);
  Reply list(const QueryParams& q, const auth::Identity* id);
  Reply status_reply();
  Reply metrics_reply();
  asio::awaitable<void> watch(std::shared_ptr<Conn> c, const HttpRequest& req,
                              const QueryParams& q);
  asio::awaitable<void> discard_input(std::shared_ptr<Conn> c);

  HttpStats stats() const;
  NodeStatus status() const;
};

void HttpServer::Impl::begin_watching() {
  // Runs on the commit thread: copy into the bounded inbox, and schedule a
  // drain on the feed's strand when none is pending.
  std::shared_ptr<WatchFeed> f = feed;
  auto strand = feed_strand;
  watch_id = store.watch("", [f, strand](const WatchEvent& e) {
    if (f->offer(e)) asio::post(strand, [f] { f->drain(); });
  });
  watching = true;
}

void HttpServer::Impl::stop() {
  std::set<std::shared_ptr<Conn>> to_close;
  {
    std::lock_guard lock(mu);
    if (stopped) return;
    stopped = true;
    to_close.swap(conns);
  }
  // After unwatch returns no callback runs: nothing posts to `io` any more.
  if (watching) store.unwatch(watch_id);
  listener->close();
  for (const auto& c : to_close) asio::post(c->socket.get_executor(), [c] { c->close(); });
}

void HttpServer::Impl::forget(const std::shared_ptr<Conn>& c) {
  std::lock_guard lock(mu);
  conns.erase(c);
}

asio::awaitable<bool> HttpServer::Impl::reserve(std::shared_ptr<Conn> c, uint64_t n,
                                                uint64_t& held) {
  n = std::min(n, memory.limit());  // a larger reply is charged as built (settle)
  bool counted = false;
  while (!memory.try_take(n)) {
    if (c->closed) co_return false;
    if (!counted) ++memory_waits;
    counted = true;
    // The wake posts to this strand, so it cannot run before the wait
    // below starts (a give() in between is not lost).
    std::weak_ptr<Conn> weak = c;
    auto wake = [weak] {
      if (auto conn = weak.lock())
        asio::post(conn->socket.get_executor(), [conn] { conn->wake.cancel(); });
    };
    if (!memory.wait_for_room(n, std::move(wake))) continue;
    c->wake.expires_at(asio::steady_timer::time_point::max());
    asio::error_code ec;
    co_await c->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  held += n;
  co_return !c->closed;
}

void HttpServer::Impl::settle(uint64_t actual, uint64_t& held) {
  if (actual > held)
    memory.take(actual - held);
  else
    memory.give(held - actual);
  held = actual;
}

// A connection the listener admitted: it counts against max_connections
// until this returns.
asio::awaitable<void> HttpServer::Impl::admit(net::Stream socket) {
  auto self = shared_from_this();
  auto c = std::make_shared<Conn>(std::move(socket));
  {
    std::lock_guard lock(mu);
    if (stopped) co_return;  // c goes away, closing its socket
    conns.insert(c);
  }
  ++connections_total;
  c->start_watchdog();
  co_await serve(c);
}

// A connection beyond max_connections gets a 503 before it closes.
void HttpServer::Impl::refuse(net::Socket socket) {
  ++connections_refused;
  auto c = std::make_shared<Conn>(net::Stream(std::move(socket)));
  asio::co_spawn(c->socket.get_executor(), send_503(c), asio::detached);
}

asio::awaitable<void> HttpServer::Impl::send_503(std::shared_ptr<Conn> c) {
  auto self = shared_from_this();
  c->start_watchdog();
  Reply r = error_reply(503, "too many connections");
  ++requests[code_slot(503)];
  co_await send_reply(*c, r, false);
  co_await linger_close(*c);
}

asio::awaitable<bool> HttpServer::Impl::write(Conn& c, std::string_view head,
                                              std::string_view body) {
  if (c.closed) co_return false;
  c.set_deadline_ms(config.write_timeout_ms);
  std::array<asio::const_buffer, 2> bufs = {asio::buffer(head), asio::buffer(body)};
  asio::error_code ec;
  co_await asio::async_write(c.socket, bufs, asio::redirect_error(asio::use_awaitable, ec));
  c.clear_deadline();
  if (ec) c.close();
  co_return !ec;
}

asio::awaitable<bool> HttpServer::Impl::send_reply(Conn& c, const Reply& r, bool keep_alive) {
  ++requests[code_slot(r.status)];
  std::string head = write_response_head(r.status, r.headers, r.body.size(), keep_alive);
  co_return co_await write(c, head, r.body);
}

// After an error that ends the connection: stop sending, read (and drop) what
// the client still sends for a moment, then close. Closing with unread input
// would reset the connection and could destroy the response before the client
// reads it.
asio::awaitable<void> HttpServer::Impl::linger_close(Conn& c) {
  if (c.closed) co_return;
  asio::error_code ec;
  c.socket.socket().shutdown(tcp::socket::shutdown_send, ec);
  c.set_deadline_ms(std::min<uint32_t>(config.idle_timeout_ms, 2000));
  std::array<char, 16 * 1024> buf;
  size_t drained = 0;
  while (!c.closed && drained < 4 * 1024 * 1024) {
    size_t n = co_await c.socket.async_read_some(asio::buffer(buf),
                                                 asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    drained += n;
  }
  c.close();
}

asio::awaitable<void> HttpServer::Impl::serve(std::shared_ptr<Conn> c) {
  auto self = shared_from_this();
  HttpRequestParser parser(config.limits);
  std::vector<char> buf(16 * 1024);
  std::string_view pending;
  // When the request now arriving began (its head must be in by then +
  // request_head_timeout_ms).
  std::optional<Clock::time_point> head_began;
  uint64_t held = 0;           // this request's share of the memory budget
  bool body_reserved = false;  // held covers the body of the request arriving
  // A request ends (its reply written): what it held goes back.
  auto request_done = [&] {
    release(held);
    body_reserved = false;
  };
  try {
    for (;;) {
      if (parser.in_head()) {
        if (!head_began) head_began = Clock::now();
      } else {
        head_began.reset();
      }
      if (pending.empty() && parser.in_body() && !body_reserved) {
        // The headers are in: room for the body before reading it.
        body_reserved = true;
        if (!co_await reserve(c, parser.body_to_hold(), held)) break;
      }
      if (pending.empty()) {
        uint32_t wait_ms = config.idle_timeout_ms;
        if (head_began) {
          auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
              *head_began + std::chrono::milliseconds(config.request_head_timeout_ms) -
              Clock::now());
          if (left.count() <= 0) break;  // the head is late: slowloris or a dead client
          wait_ms = std::min<uint32_t>(wait_ms, static_cast<uint32_t>(left.count()));
        }
        c->set_deadline_ms(wait_ms);
        asio::error_code ec;
        size_t n = co_await c->socket.async_read_some(
            asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
          // The peer closed (or the deadline did). A request cut short cannot
          // be answered on a socket that is gone; just end.
          break;
        }
        pending = std::string_view(buf.data(), n);
      }
      size_t used = parser.feed(pending);
      pending.remove_prefix(used);
      auto event = parser.event();
      if (event == HttpRequestParser::Event::kNeedMore) continue;
      if (event == HttpRequestParser::Event::kContinue) {
        // No body is asked for from a client that could not send the request.
        if (auth->enabled()) {
          auto who = co_await authenticate(*c, parser.request());
          if (auto* refusal = std::get_if<Reply>(&who)) {
            if (co_await send_reply(*c, *refusal, false)) co_await linger_close(*c);
            break;
          }
        }
        if (!co_await write(*c, "HTTP/1.1 100 Continue\r\n\r\n")) break;
        continue;
      }
      if (event == HttpRequestParser::Event::kError) {
        const HttpError& err = parser.error();
        bool keep = !err.close;
        if (!co_await send_reply(*c, error_reply(err.status, err.message), keep)) break;
        request_done();
        if (!keep) {
          co_await linger_close(*c);
          break;
        }
        continue;
      }
      // A complete request.
      HttpRequest& req = parser.request();
      c->clear_deadline();
      head_began.reset();
      auto target = split_target(req.target);
      std::optional<auth::Identity> identity;
      if (auth->enabled() && target.path != "/healthz") {
        auto who = co_await authenticate(*c, req);
        if (auto* refusal = std::get_if<Reply>(&who)) {
          bool keep = req.keep_alive;
          if (!co_await send_reply(*c, *refusal, keep)) break;
          request_done();
          if (!keep) {
            co_await linger_close(*c);
            break;
          }
          continue;
        }
        identity = std::move(std::get<auth::Identity>(who));
        c->socket.authenticated();
      }
      const auth::Identity* id = identity ? &*identity : nullptr;
      if (target.path == "/v1/watch" && req.method == "GET") {
        auto q = parse_query(target.query);
        if (q) {
          std::string prefix = query_param(*q, "prefix").value_or("");
          if (id && !id->allows_range(auth::Action::kRead, prefix)) {
            Reply r =
                error_reply(403, "user " + id->name + " may not read every key under prefix '" +
                                     prefix + "' (watch a prefix it may read)");
            if (!co_await send_reply(*c, r, req.keep_alive)) break;
            request_done();
            if (!req.keep_alive) {
              co_await linger_close(*c);
              break;
            }
            continue;
          }
          // A stream holds its queue's bound for its life: refused, not
          // kept waiting, when the budget has no room.
          request_done();
          if (!memory.try_take(config.max_subscriber_bytes)) {
            ++memory_waits;
            Reply r = error_reply(503, "no memory for another watch stream; try again later");
            r.headers.emplace_back("Retry-After", "1");
            if (co_await send_reply(*c, r, false)) co_await linger_close(*c);
            break;
          }
          struct GiveBack {  // also when the stream ends by an exception
            net::ClientMemory& m;
            uint64_t n;
            ~GiveBack() { m.give(n); }
          } give_back{memory, config.max_subscriber_bytes};
          co_await watch(c, req, *q);  // the stream owns the connection to its end
          break;
        }
      }
      Reply r = co_await handle(c, req, id, held);
      // The body is gone (a write copied it); the reply is what is held.
      settle(r.body.size() + kReplyHeadBytes, held);
      bool keep = req.keep_alive;
      if (!co_await send_reply(*c, r, keep)) break;
      request_done();
      if (!keep) {
        co_await linger_close(*c);
        break;
      }
    }
  } catch (const std::exception&) {
    // Nothing escapes a connection; it just ends.
  }
  release(held);
  c->close();
  forget(c);
}

// ---------------------------------------------------------------------------
// Authentication

namespace {

Reply unauthorized(std::string_view message) {
  Reply r = error_reply(401, message);
  r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"wavekv\", charset=\"UTF-8\"");
  r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"wavekv\"");
  return r;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Reply forbidden(const auth::Identity& id, std::string_view what) {
  return error_reply(403, "user " + id.name + " may not " + std::string(what));
}

}  // namespace

asio::awaitable<std::variant<auth::Identity, Reply>> HttpServer::Impl::authenticate(
    Conn& c, const HttpRequest& req) {
  auto header = req.header("authorization");
  if (!header) co_return unauthorized("authentication required (Basic or Bearer)");
  std::string_view value = trim(*header);
  size_t sp = value.find(' ');
  std::string_view scheme = value.substr(0, sp);
  std::string_view cred = sp == std::string_view::npos ? "" : trim(value.substr(sp + 1));
  if (iequals(scheme, "Bearer")) {
    auto id = auth->verify_token(cred);
    if (!id) co_return unauthorized(auth::kWrongPassMessage);
    co_return std::move(*id);
  }
  if (!iequals(scheme, "Basic")) co_return unauthorized("unsupported authorization scheme");
  if (c.basic_identity && auth::secrets_equal(c.basic_header, *header)) co_return *c.basic_identity;
  auto decoded = auth::base64_decode(cred);
  if (!decoded) co_return unauthorized("malformed Basic credentials");
  size_t colon = decoded->find(':');
  if (colon == std::string::npos) co_return unauthorized("malformed Basic credentials");
  auto id = co_await async_verify(*auth, decoded->substr(0, colon), decoded->substr(colon + 1),
                                  asio::use_awaitable);
  if (!id) {
    if (id.status().code() == Code::kBusy || id.status().code() == Code::kClosed) {
      Reply r = error_reply(503, id.status().message());
      r.headers.emplace_back("Retry-After", "1");
      co_return r;
    }
    co_return unauthorized(auth::kWrongPassMessage);
  }
  c.basic_header = std::string(*header);
  c.basic_identity = *id;
  co_return std::move(*id);
}

// ---------------------------------------------------------------------------
// Routes

asio::awaitable<Reply> HttpServer::Impl::handle(std::shared_ptr<Conn> c, HttpRequest& req,
                                                const auth::Identity* id, uint64_t& held) {
  try {
    auto target = split_target(req.target);
    std::string_view path = target.path;
    auto q = parse_query(target.query);
    if (!q) co_return error_reply(400, "malformed percent-encoding in the query string");
    const std::string& m = req.method;

    constexpr std::string_view kKeyPrefix = "/v1/kv/";
    if (path.starts_with(kKeyPrefix)) {
      auto key = percent_decode(path.substr(kKeyPrefix.size()), false);
      if (!key) co_return error_reply(400, "malformed percent-encoding in the key");
      if (key->empty()) co_return error_reply(400, "empty key");
      if (id && (m == "GET" || m == "PUT" || m == "DELETE")) {
        auto action = m == "GET" ? auth::Action::kRead : auth::Action::kWrite;
        if (!id->allows(action)) co_return forbidden(*id, m == "GET" ? "read" : "write");
        if (!id->allows(action, *key))
          co_return forbidden(
              *id, std::string(m == "GET" ? "read" : "write") + " keys outside its prefixes");
      }
      if (m == "GET") {
        // Room for the reply before it is built: the value's size, up to
        // 8 times over as JSON (escapes, and the copies while encoding).
        uint64_t size = 0;
        if (store.view(*key, [&](std::string_view v) { size = v.size(); }).is_ok()) {
          const uint64_t need = (wants_json(req, *q) ? 8 * size : size) + kReplyHeadBytes;
          if (!co_await reserve(c, need, held)) co_return error_reply(503, "connection closed");
        }
        co_return get_key(req, *key, *q);
      }
      if (m == "PUT") co_return co_await write_key(req, *key, false, *q);
      if (m == "DELETE") co_return co_await write_key(req, *key, true, *q);
      Reply r =
          error_reply(405, "method " + m + " not allowed on " + std::string(kKeyPrefix) + "{key}");
      r.headers.emplace_back("Allow", "GET, PUT, DELETE");
      co_return r;
    }
    auto only_get = [&](auto make) -> Reply {
      if (m != "GET") {
        Reply r = error_reply(405, "method " + m + " not allowed on " + std::string(path));
        r.headers.emplace_back("Allow", "GET");
        return r;
      }
      return make();
    };
    if (id && !id->allows(auth::Action::kRead)) co_return forbidden(*id, "read");
    if (path == "/v1/kv") {
      // A page is at most max_page_bytes of keys and values (one item
      // beyond, if that item alone is larger): room for it as JSON first.
      if (m == "GET" && !co_await reserve(c, 8 * config.max_page_bytes + kReplyHeadBytes, held))
        co_return error_reply(503, "connection closed");
      co_return only_get([&] { return list(*q, id); });
    }
    if (path == "/v1/watch")
      co_return only_get([&] { return error_reply(400, "bad watch request"); });
    if (path == "/v1/status") co_return only_get([&] { return status_reply(); });
    if (path == "/metrics") co_return only_get([&] { return metrics_reply(); });
    if (path == "/healthz")
      co_return only_get([] { return Reply{200, {{"Content-Type", "text/plain"}}, "ok\n"}; });
    co_return error_reply(404, "no such resource: " + std::string(path));
  } catch (const std::exception& e) {
    co_return error_reply(500, std::string("internal error: ") + e.what());
  }
}

Reply HttpServer::Impl::get_key(const HttpRequest& req, const std::string& key,
                                const QueryParams& q) {
  auto entry = store.get_entry(key);
  const uint64_t now = store.now_ms();
  if (!entry || !entry->live_at(now)) return error_reply(404, "key not found");
  const uint64_t expires = entry->expires_ms;
  if (wants_json(req, q)) {
    json j = json::object();
    put_bytes(j, "key", key);
    put_bytes(j, "value", entry->value);
    j["node"] = entry->meta.node;
    j["seq"] = entry->meta.seq;
    j["timestamp"] = entry->meta.timestamp;
    if (expires != 0) {
      j["expires_ms"] = expires;
      j["ttl_ms"] = expires - std::min(expires, now);
    }
    return json_reply(200, j);
  }
  Reply r{200,
          {{"Content-Type", "application/octet-stream"},
           {"X-WaveKV-Node", std::to_string(entry->meta.node)},
           {"X-WaveKV-Seq", std::to_string(entry->meta.seq)},
           {"X-WaveKV-Timestamp", std::to_string(entry->meta.timestamp)}},
          std::move(entry->value)};
  if (expires != 0) r.headers.emplace_back("X-WaveKV-Expires-Ms", std::to_string(expires));
  return r;
}

asio::awaitable<Reply> HttpServer::Impl::write_key(HttpRequest& req, const std::string& key,
                                                   bool del, const QueryParams& q) {
  // PUT ...?ttl_ms=N: the key expires N ms from now (docs/HTTP.md).
  uint64_t expires_ms = 0;
  if (auto ttl = query_param(q, "ttl_ms"); ttl && !del) {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(ttl->data(), ttl->data() + ttl->size(), v);
    const uint64_t now = store.now_ms();
    if (ttl->empty() || ec != std::errc() || end != ttl->data() + ttl->size() || v == 0 ||
        v > UINT64_MAX - now)
      co_return error_reply(400, "ttl_ms must be a whole number of milliseconds, at least 1");
    expires_ms = now + v;
  }
  WriteBatch batch;
  if (del)
    batch.del(key);
  else
    batch.put(key, req.body, expires_ms);
  req.body.clear();
  req.body.shrink_to_fit();  // the batch has its copy
  Status st = co_await async_store_write(store, std::move(batch), asio::use_awaitable);
  if (!st.is_ok()) co_return error_reply(status_code_for(st), st.to_string());
  co_return json_reply(200, {{"ok", true}, {"node", store.node_id()}});
}

Reply HttpServer::Impl::list(const QueryParams& q, const auth::Identity* id) {
  std::string prefix = query_param(q, "prefix").value_or("");
  std::string start = query_param(q, "start").value_or("");
  size_t limit = config.default_scan_limit;
  if (auto l = query_param(q, "limit")) {
    size_t v = 0;
    auto [end, ec] = std::from_chars(l->data(), l->data() + l->size(), v);
    if (l->empty() || ec != std::errc() || end != l->data() + l->size() || v == 0 ||
        v > config.max_scan_limit)
      return error_reply(
          400, "limit must be a number from 1 to " + std::to_string(config.max_scan_limit));
    limit = v;
  }
  if (start < prefix) start = prefix;
  // A user limited to prefixes sees only its keys: a page may then hold
  // fewer items than the limit; "next" still walks the whole range.
  const bool filter = id && !id->allows_range(auth::Action::kRead, prefix);
  const std::string end = prefix_end(prefix);
  // One entry at a time, so that no more than the page (and the entry that
  // ends it) is ever copied out of the store: the page stops at `limit`
  // items or max_page_bytes of keys and values, whichever comes first, and
  // the key after it is where the next page starts.
  json items = json::array();
  std::optional<std::string> next;
  size_t taken = 0;
  uint64_t bytes = 0;
  if (!id || id->allows_some(auth::Action::kRead, prefix)) {
    std::string from = start;
    for (;;) {
      std::vector<KeyValue> one = store.scan_range(from, end, 1);
      if (one.empty()) break;
      KeyValue& kv = one.front();
      const uint64_t size = kv.key.size() + kv.value.size();
      if (taken == limit || (taken > 0 && bytes + size > config.max_page_bytes)) {
        next = std::move(kv.key);
        break;
      }
      ++taken;
      bytes += size;
      from = kv.key;
      from.push_back('\0');  // the smallest key after this one
      if (filter && !id->allows(auth::Action::kRead, kv.key)) continue;
      json j = json::object();
      put_bytes(j, "key", kv.key);
      put_bytes(j, "value", kv.value);
      j["node"] = kv.meta.node;
      j["seq"] = kv.meta.seq;
      j["timestamp"] = kv.meta.timestamp;
      if (kv.expires_ms != 0) j["expires_ms"] = kv.expires_ms;
      items.push_back(std::move(j));
    }
  }
  json out = {{"items", std::move(items)}};
  if (next)
    put_bytes(out, "next", *next);
  else
    out["next"] = nullptr;
  return json_reply(200, out);
}

NodeStatus HttpServer::Impl::status() const {
  if (hooks.status) return hooks.status();
  NodeStatus s = monitoring::store_only_status(store.status());
  s.http = stats();
  return s;
}

Reply HttpServer::Impl::status_reply() { return json_reply(200, monitoring::to_json(status())); }

Reply HttpServer::Impl::metrics_reply() {
  monitoring::MetricsWriter w;
  monitoring::write_prometheus(status(), w);
  return {200, {{"Content-Type", monitoring::kMetricsContentType}}, w.text()};
}

HttpStats HttpServer::Impl::stats() const {
  HttpStats s;
  {
    std::lock_guard lock(mu);
    s.connections = conns.size();
  }
  s.connections_total = connections_total.load();
  s.connections_refused = connections_refused.load();
  for (size_t i = 0; i < kCountedCodes.size(); ++i) {
    std::string code = kCountedCodes[i] ? std::to_string(kCountedCodes[i]) : "other";
    s.responses.emplace_back(std::move(code), requests[i].load());
  }
  s.watch_subscribers = feed->subscribers();
  s.watch_events = feed->head_id();
  s.watch_resets = feed->resets();
  s.client_memory_bytes = memory.used();
  s.client_memory_peak_bytes = memory.peak();
  s.client_memory_limit_bytes = memory.limit();
  s.client_memory_waits = memory_waits.load();
  return s;
}

// ---------------------------------------------------------------------------
// Watch streams (server-sent events)

namespace {

std::string sse_event(const std::string& id, std::string_view event, const json& data) {
  std::string out;
  if (!id.empty()) out += "id: " + id + "\n";
  out += "event: ";
  out += event;
  out += "\ndata: ";
  out += data.dump();  // one line: dump() escapes newlines
  out += "\n\n";
  return out;
}

}  // namespace

asio::awaitable<void> HttpServer::Impl::discard_input(std::shared_ptr<Conn> c) {
  // A watch client sends nothing more; reading tells when it goes away, so
  // an idle stream does not outlive its client until the next heartbeat.
  std::array<char, 4096> buf;
  for (;;) {
    asio::error_code ec;
    co_await c->socket.async_read_some(asio::buffer(buf),
                                       asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
  }
  c->close();
}

asio::awaitable<void> HttpServer::Impl::watch(std::shared_ptr<Conn> c, const HttpRequest& req,
                                              const QueryParams& q) {
  std::string prefix = query_param(q, "prefix").value_or("");
  std::optional<std::string> cursor = query_param(q, "cursor");
  if (!cursor) {
    if (auto h = req.header("last-event-id")) cursor = std::string(*h);
  }
  if (cursor && cursor->empty()) cursor.reset();
  if (cursor && !WatchFeed::well_formed_cursor(*cursor)) {
    co_await send_reply(*c, error_reply(400, "malformed cursor '" + *cursor + "'"), false);
    co_await linger_close(*c);
    co_return;
  }
  std::weak_ptr<Conn> weak = c;
  auto ex = c->socket.get_executor();
  auto notify = [weak, ex] {
    asio::post(ex, [weak] {
      if (auto conn = weak.lock()) conn->wake.cancel();
    });
  };
  auto start = feed->subscribe(prefix, cursor, config.max_subscriber_events,
                               config.max_subscriber_bytes, notify);
  auto sub = start.subscription;

  ++requests[code_slot(200)];
  std::string out = write_stream_head(
      200, {{"Content-Type", "text/event-stream"}, {"Cache-Control", "no-cache"}});
  if (start.reset) {
    out += sse_event(start.head_cursor, "reset",
                     {{"cursor", start.head_cursor},
                      {"reason",
                       "cursor is from another server run, too old, or unknown; "
                       "re-list, then carry on with this stream"}});
  } else if (!cursor) {
    out += sse_event(start.head_cursor, "ready", {{"cursor", start.head_cursor}});
  }
  for (const auto& e : start.backlog)
    out += sse_event(feed->cursor(e->id), e->deleted ? "delete" : "put", event_json(*e));
  start.backlog.clear();
  bool ok = co_await write(*c, out);
  if (ok) asio::co_spawn(ex, discard_input(c), asio::detached);

  while (ok && !c->closed) {
    auto batch = sub->take();
    if (batch.events.empty() && !batch.reset) {
      c->wake.expires_after(std::chrono::milliseconds(config.heartbeat_ms));
      asio::error_code ec;
      co_await c->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (!ec) ok = co_await write(*c, ": heartbeat\n\n");  // expired: no event for a while
      continue;  // woken (or cancelled by close): look again
    }
    out.clear();
    for (const auto& e : batch.events) {
      out += sse_event(feed->cursor(e->id), e->deleted ? "delete" : "put", event_json(*e));
      // Bound what one write holds; the queue bound already bounds the total.
      if (out.size() >= 1024 * 1024) {
        ok = co_await write(*c, out);
        out.clear();
        if (!ok) break;
      }
    }
    if (ok && batch.reset) {
      out += sse_event("", "reset",
                       {{"reason",
                         "this stream fell behind and events were dropped; re-list "
                         "and watch again"}});
    }
    if (ok && !out.empty()) ok = co_await write(*c, out);
    if (batch.reset) break;
  }
  feed->unsubscribe(sub);
  if (!c->closed) co_await linger_close(*c);
}

// ---------------------------------------------------------------------------
// HttpServer

Result<std::unique_ptr<HttpServer>> HttpServer::start(asio::io_context& io, Store& store,
                                                      HttpConfig config, HttpHooks hooks) {
  WAVEKV_RETURN_IF_ERROR(config.validate());
  std::random_device rd;
  uint64_t epoch = (uint64_t(rd()) << 32) ^ rd();
  auto impl = std::make_shared<Impl>(io, store, config, std::move(hooks), epoch);
  const ClientSecurity& sec = config.security;
  auto authenticator =
      auth::Authenticator::open(sec.users_file, {config.auth_workers, config.auth_max_queued});
  if (!authenticator) return authenticator.status();
  impl->auth = std::move(*authenticator);
  if (sec.tls()) {
    auto tls = security::ContextSource::server(
        {sec.tls_cert_file, sec.tls_key_file, sec.tls_client_ca_file, sec.require_client_cert});
    if (!tls) return tls.status();
    impl->tls = std::move(*tls);
  }
  auto listener = net::Listener::bind(io, config.listen);
  if (!listener) return listener.status();
  impl->listener = *listener;
  impl->bound_port = impl->listener->port();
  impl->bound_address = impl->listener->address();

  impl->begin_watching();
  net::ListenerLimits limits;
  limits.max_connections = config.max_connections;
  if (impl->auth->enabled()) {
    limits.max_unauthenticated = std::min(sec.max_unauthenticated, limits.max_connections);
    limits.max_unauthenticated_per_source = sec.max_unauthenticated_per_source;
    limits.auth_timeout = std::chrono::milliseconds(sec.auth_timeout_ms);
  }
  if (impl->tls) limits.tls = [tls = impl->tls] { return tls->current(); };
  impl->listener->start(
      limits, [impl](net::Stream s) { return impl->admit(std::move(s)); },
      [impl](net::Socket s) {
        // A TLS client could not read a plain 503: it is just closed.
        if (!impl->tls) impl->refuse(std::move(s));
      });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::~HttpServer() {
  stop();
  impl_->auth->shutdown();  // answers queued checks; joins the workers
}

Status HttpServer::reload_security() {
  WAVEKV_RETURN_IF_ERROR(impl_->auth->reload());
  if (impl_->tls) WAVEKV_RETURN_IF_ERROR(impl_->tls->reload());
  return Status::ok();
}
void HttpServer::stop() { impl_->stop(); }
std::string HttpServer::address() const { return impl_->bound_address; }
uint16_t HttpServer::port() const { return impl_->bound_port; }
HttpStats HttpServer::stats() const { return impl_->stats(); }

Result<std::unique_ptr<HttpServerThread>> HttpServerThread::start(Store& store, HttpConfig config,
                                                                  HttpHooks hooks) {
  std::unique_ptr<HttpServerThread> t(new HttpServerThread());
  auto server = HttpServer::start(t->io_, store, std::move(config), std::move(hooks));
  if (!server) return server.status();
  t->server_ = std::move(*server);
  t->thread_ = std::thread([io = &t->io_] { io->run(); });
  return t;
}

HttpServerThread::~HttpServerThread() {
  // Once stopped, the acceptor and every connection end, and run() returns
  // when the last of them (and any write still in the store) has finished.
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace wavekv::http
