#include "net/tcp_transport.h"

#include <algorithm>
#include <array>
#include <deque>
#include <exception>
#include <vector>

#include "net/address.h"
#include "net/framing.h"
#include "security/cluster_key.h"

namespace wavekv::net {
namespace {

using asio::ip::tcp;
using std::chrono::milliseconds;

// How much of a frame one read asks for; a frame's buffer grows as its bytes
// arrive, so a length header alone never makes us allocate max_frame_bytes.
constexpr size_t kReadChunkBytes = 64 * 1024;

auto redirect(std::error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

// The context builder of a security mode (files read at every build, so a
// reload sees replaced files). Null for kNone.
security::ContextSource::Builder context_builder(const PeerSecurity& sec) {
  switch (sec.mode) {
    case PeerSecurity::Mode::kNone: return nullptr;
    case PeerSecurity::Mode::kClusterKey:
      return [file = sec.cluster_key_file]() -> Result<security::SslContextPtr> {
        auto key = security::load_cluster_key(file);
        if (!key) return key.status();
        return security::make_psk_context(key->key);
      };
    case PeerSecurity::Mode::kMutualTls:
      return [files = security::PeerTlsFiles{sec.ca_file, sec.cert_file, sec.key_file}] {
        return security::make_peer_context(files);
      };
  }
  return nullptr;
}

}  // namespace

// One socket and its deadline: before each read or write the owner arms it; if
// the operation has not completed by then, the watchdog closes the socket,
// which fails the operation.
struct TcpTransport::Conn : std::enable_shared_from_this<Conn> {
  explicit Conn(Stream s) : socket(std::move(s)), deadline(socket.get_executor()) {}
  Stream socket;
  Deadline deadline;
  bool closed = false;

  void start_watchdog() {
    deadline.start(shared_from_this(), [this] { close(); });
  }
  void arm(uint64_t timeout_ms) { deadline.arm(milliseconds(timeout_ms)); }
  void disarm() { deadline.disarm(); }
  void close() {
    closed = true;
    socket.close();
    deadline.stop();
  }
};

// One destination. The queue and the flags are shared with send() under mu_;
// the timer and the connection belong to the transport thread.
struct TcpTransport::Peer : std::enable_shared_from_this<Peer> {
  Peer(std::string a, asio::io_context& io) : address(std::move(a)), wake(io) {}
  const std::string address;

  // Guarded by mu_.
  std::deque<std::string> queue;
  uint64_t queued_bytes = 0;
  bool writer_running = false;         // serve_outgoing() is alive for this peer
  bool parked = false;                 // ... and waits on `wake` for frames
  SteadyClock::time_point retry_at{};  // frames are dropped until then (backoff)
  uint64_t backoff_ms = 0;             // the next backoff; 0 means backoff_initial_ms

  // Transport thread only.
  asio::steady_timer wake;
  std::shared_ptr<Conn> conn;
};

TcpTransport::TcpTransport(TransportConfig config)
    : config_(config), io_(std::make_unique<asio::io_context>()) {}

TcpTransport::~TcpTransport() {
  stop();
  if (thread_.joinable()) {
    // Left running by a stop() from the handler.
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();
    } else {
      thread_.join();
      close_everything();
    }
  }
}

void TcpTransport::spawn(asio::awaitable<void> task) {
  // Every coroutine catches its own exceptions; this is the last guard so that
  // none can escape io_context::run().
  asio::co_spawn(*io_, std::move(task), [](std::exception_ptr) {});
}

void TcpTransport::run_io() {
  for (;;) {
    try {
      io_->run();
      return;
    } catch (...) {
      // A handler threw; keep serving the other connections.
    }
  }
}

Status TcpTransport::start(const std::string& listen_address, Handler handler) {
  WAVEKV_RETURN_IF_ERROR(config_.validate());
  if (!handler) return Status::invalid("start: the handler is empty");
  std::lock_guard lock(mu_);
  if (state_ != State::kNew) return Status::invalid("start: the transport was already started");
  if (auto build = context_builder(config_.security)) {
    auto source = security::ContextSource::create(std::move(build));
    if (!source) return source.status();
    tls_ = std::move(*source);
  }
  auto listener = Listener::bind(*io_, listen_address);
  if (!listener) return listener.status();
  listener_ = std::move(*listener);
  local_address_ = listener_->address();

  handler_ = std::move(handler);
  work_.emplace(io_->get_executor());
  ListenerLimits limits;
  limits.max_connections = config_.max_incoming_connections;
  limits.max_unauthenticated = config_.max_incoming_connections;
  if (tls_) {
    // The handshake is the authentication: until it completes a connection
    // is a stranger's, bounded in number, per source and in time.
    limits.tls = [source = tls_] { return source->current(); };
    limits.tls_authenticates = true;
    limits.auth_timeout = milliseconds(config_.handshake_timeout_ms);
    limits.max_unauthenticated = config_.max_unauthenticated;
    limits.max_unauthenticated_per_source = config_.max_unauthenticated_per_source;
  }
  listener_->start(limits, [this](Stream socket) { return serve_incoming(std::move(socket)); });
  state_ = State::kRunning;
  thread_ = std::thread([this] { run_io(); });
  return Status::ok();
}

std::string TcpTransport::local_address() const {
  std::lock_guard lock(mu_);
  return local_address_;
}

void TcpTransport::stop() {
  {
    std::lock_guard lock(mu_);
    if (state_ == State::kStopped) return;
    state_ = State::kStopped;
  }
  work_.reset();
  io_->stop();
  // The handler must not call stop(); if it does anyway, do not join ourselves
  // (the destructor deals with the thread).
  if (thread_.joinable() && thread_.get_id() == std::this_thread::get_id()) return;
  if (thread_.joinable()) thread_.join();
  close_everything();
}

// After the thread is gone. Joining it waited out a handler call in progress,
// so none follows.
void TcpTransport::close_everything() {
  std::map<std::string, std::shared_ptr<Peer>> peers;
  {
    std::lock_guard lock(mu_);
    frames_queued_ = 0;
    bytes_queued_ = 0;
    connections_open_ = 0;
    peers.swap(peers_);
  }
  peers.clear();
  std::shared_ptr<Listener> listener;
  {
    std::lock_guard lock(mu_);
    listener.swap(listener_);
  }
  listener.reset();
  // Destroying the io_context destroys the coroutines where they are
  // suspended, and with them every socket they hold, incoming and outgoing:
  // the peers see their connections closed. send() no longer touches it: the
  // state is kStopped.
  io_.reset();
}

TransportStats TcpTransport::stats() const {
  TransportStats s;
  s.frames_sent = frames_sent_;
  s.frames_received = frames_received_;
  s.bytes_sent = bytes_sent_;
  s.bytes_received = bytes_received_;
  s.frames_dropped = frames_dropped_;
  s.frames_refused = frames_refused_;
  s.protocol_errors = protocol_errors_;
  s.connect_failures = connect_failures_;
  s.connections_open = connections_open_;
  s.dial_handshake_failures = dial_handshake_failures_;
  s.inbound_buffered_bytes = inbound_buffered_;
  std::lock_guard lock(mu_);
  s.frames_queued = frames_queued_;
  s.bytes_queued = bytes_queued_;
  if (listener_) {
    const ListenerStats ls = listener_->stats();
    s.handshake_failures = ls.handshake_failures;
    s.auth_timeouts = ls.auth_timeouts;
    s.connections_refused = ls.refused + ls.refused_source;
  }
  return s;
}

Status TcpTransport::reload_credentials() {
  if (!tls_) return Status::ok();  // plain TCP: nothing to read
  return tls_->reload();
}

security::SslContextPtr TcpTransport::tls_context() const {
  return tls_ ? tls_->current() : nullptr;
}

// ---- sending ----

bool TcpTransport::send(const std::string& address, std::string frame) {
  if (frame.size() > config_.max_frame_bytes) {
    ++frames_refused_;
    return false;
  }
  std::lock_guard lock(mu_);
  auto now = SteadyClock::now();
  if (state_ != State::kRunning) {
    ++frames_dropped_;
    return false;
  }
  auto it = peers_.find(address);
  if (it == peers_.end()) {
    if (peers_.size() >= config_.max_destinations) prune_idle_peers_locked(now);
    if (peers_.size() >= config_.max_destinations) {
      ++frames_dropped_;
      return false;
    }
    it = peers_.emplace(address, std::make_shared<Peer>(address, *io_)).first;
  }
  std::shared_ptr<Peer> peer = it->second;
  if (now < peer->retry_at || peer->queue.size() >= config_.max_queued_frames ||
      peer->queued_bytes + frame.size() > config_.max_queued_bytes) {
    ++frames_dropped_;
    return false;
  }
  peer->queued_bytes += frame.size();
  bytes_queued_ += frame.size();
  ++frames_queued_;
  peer->queue.push_back(std::move(frame));
  if (!peer->writer_running) {
    peer->writer_running = true;
    asio::post(*io_, [this, peer] { spawn(serve_outgoing(peer)); });
  } else if (peer->parked) {
    peer->parked = false;
    asio::post(*io_, [peer] { peer->wake.cancel(); });
  }
  return true;
}

void TcpTransport::prune_idle_peers_locked(SteadyClock::time_point now) {
  std::erase_if(peers_, [&](const auto& kv) {
    const Peer& p = *kv.second;
    return !p.writer_running && p.queue.empty() && now >= p.retry_at;
  });
}

void TcpTransport::drop_queue_locked(Peer& peer) {
  frames_dropped_ += peer.queue.size();
  frames_queued_ -= peer.queue.size();
  bytes_queued_ -= peer.queued_bytes;
  peer.queue.clear();
  peer.queued_bytes = 0;
}

void TcpTransport::drop_connection(Peer& peer) {
  if (!peer.conn) return;
  peer.conn->close();
  peer.conn.reset();
  --connections_open_;
}

asio::awaitable<void> TcpTransport::serve_outgoing(std::shared_ptr<Peer> peer) {
  try {
    co_await write_frames(*peer);
    co_return;
  } catch (...) {
  }
  // Unexpected: give up this destination's queue and connection so that the
  // next send() starts afresh.
  drop_connection(*peer);
  std::lock_guard lock(mu_);
  drop_queue_locked(*peer);
  peer->writer_running = false;
  peer->parked = false;
}

// The writer of one destination: connects on demand, writes the queue in
// order, and exits when the queue is empty and the connection is closed
// (idle, broken) or could not be opened.
asio::awaitable<void> TcpTransport::write_frames(Peer& peer) {
  auto last_used = SteadyClock::now();
  for (;;) {
    if (peer.conn && peer.conn->closed) drop_connection(peer);  // the remote closed it
    std::string frame;
    bool have_frame = false;
    {
      std::lock_guard lock(mu_);
      if (!peer.queue.empty()) {
        frame = std::move(peer.queue.front());
        peer.queue.pop_front();
        peer.queued_bytes -= frame.size();
        bytes_queued_ -= frame.size();
        --frames_queued_;
        have_frame = true;
      } else if (!peer.conn ||
                 SteadyClock::now() - last_used >= milliseconds(config_.idle_timeout_ms)) {
        drop_connection(peer);
        peer.writer_running = false;
        co_return;
      } else {
        peer.parked = true;  // send() wakes us from here on
      }
    }
    if (!have_frame) {
      std::error_code ec;
      peer.wake.expires_at(last_used + milliseconds(config_.idle_timeout_ms));
      co_await peer.wake.async_wait(redirect(ec));
      std::lock_guard lock(mu_);
      peer.parked = false;
      continue;
    }

    if (!peer.conn) {
      Status st = co_await connect(peer);
      std::lock_guard lock(mu_);
      if (!st) {
        ++connect_failures_;
        ++frames_dropped_;  // this frame
        drop_queue_locked(peer);
        uint64_t backoff_ms = peer.backoff_ms ? peer.backoff_ms : config_.backoff_initial_ms;
        peer.retry_at = SteadyClock::now() + milliseconds(backoff_ms);
        peer.backoff_ms = std::min(backoff_ms * 2, config_.backoff_max_ms);
        peer.writer_running = false;
        co_return;
      }
      peer.backoff_ms = 0;
    }
    size_t size = frame.size();
    if (co_await write_frame(*peer.conn, frame)) {
      ++frames_sent_;
      bytes_sent_ += size;
    } else {
      // The connection broke under this frame: it is lost; the next one
      // reconnects (without backoff: the destination was up a moment ago).
      ++frames_dropped_;
      drop_connection(peer);
    }
    last_used = SteadyClock::now();
  }
}

asio::awaitable<Status> TcpTransport::connect(Peer& peer) {
  auto hp = parse_host_port(peer.address, AddressUse::kDial);
  if (!hp) co_return hp.status();
  std::error_code ec;
  std::vector<tcp::endpoint> endpoints;
  asio::ip::address ip = asio::ip::make_address(hp->host, ec);
  if (!ec) {
    endpoints.emplace_back(ip, hp->port);
  } else {
    // A name: resolve it (the connect timeout does not cover the lookup).
    tcp::resolver resolver(*io_);
    auto results = co_await resolver.async_resolve(hp->host, std::to_string(hp->port),
                                                   tcp::resolver::numeric_service, redirect(ec));
    if (ec) co_return Status::io_error("cannot resolve " + peer.address + ": " + ec.message());
    for (const auto& r : results) endpoints.push_back(r.endpoint());
  }
  if (endpoints.empty()) co_return Status::io_error("no address for " + peer.address);

  // With security the context is taken now: this connection keeps it for
  // its life, whatever a reload does meanwhile.
  security::SslContextPtr context = tls_context();
  auto conn = std::make_shared<Conn>(context ? Stream(tcp::socket(*io_), std::move(context))
                                             : Stream(tcp::socket(*io_)));
  conn->start_watchdog();
  conn->arm(config_.connect_timeout_ms);
  co_await asio::async_connect(conn->socket.socket(), endpoints, redirect(ec));
  if (ec || conn->closed) {
    conn->close();
    co_return Status::io_error("cannot connect to " + peer.address + ": " + ec.message());
  }
  conn->socket.socket().set_option(tcp::no_delay(true),
                                   ec);  // frames are latency-bound; best effort
  if (conn->socket.is_tls()) {
    // Nothing is written before the other side proved it is a member: a
    // stranger named as a peer address learns nothing from our dial.
    conn->arm(config_.connect_timeout_ms);
    ec = co_await conn->socket.handshake(asio::ssl::stream_base::client);
    if (ec || conn->closed) {
      conn->close();
      ++dial_handshake_failures_;
      co_return Status::io_error("TLS handshake with " + peer.address +
                                 " failed (not a member?): " + ec.message());
    }
  }
  conn->arm(config_.io_timeout_ms);
  co_await asio::async_write(conn->socket, asio::buffer(kPreface), redirect(ec));
  if (ec) {
    conn->close();
    co_return Status::io_error("cannot write the preface to " + peer.address + ": " + ec.message());
  }
  conn->disarm();
  peer.conn = conn;
  ++connections_open_;
  // The peer is not expected to send anything back: a read that completes means
  // it closed the connection (or misbehaves), so the writer learns of it before
  // it loses a frame to a dead socket.
  spawn(notice_close(conn, peer.shared_from_this()));
  co_return Status::ok();
}

asio::awaitable<bool> TcpTransport::write_frame(Conn& conn, const std::string& frame) {
  const auto header = encode_frame_header(static_cast<uint32_t>(frame.size()));
  const size_t total = header.size() + frame.size();
  size_t done = 0;
  while (done < total) {
    std::array<asio::const_buffer, 2> buffers;
    if (done < header.size()) {
      buffers = {asio::buffer(header.data() + done, header.size() - done), asio::buffer(frame)};
    } else {
      size_t offset = done - header.size();
      buffers = {asio::buffer(frame.data() + offset, frame.size() - offset), asio::const_buffer()};
    }
    std::error_code ec;
    conn.arm(config_.io_timeout_ms);
    size_t n = co_await conn.socket.async_write_some(buffers, redirect(ec));
    if (ec || conn.closed) {
      conn.close();
      co_return false;
    }
    done += n;
  }
  conn.disarm();
  co_return true;
}

asio::awaitable<void> TcpTransport::notice_close(std::shared_ptr<Conn> conn,
                                                 std::shared_ptr<Peer> peer) {
  try {
    std::array<char, 1> byte;
    std::error_code ec;
    co_await conn->socket.async_read_some(asio::buffer(byte), redirect(ec));
    conn->close();
    if (peer) peer->wake.cancel();  // a parked writer notices now, not at the idle timeout
  } catch (...) {
  }
}

// ---- receiving ----

// One accepted connection, for the listener: it counts against
// max_incoming_connections until this returns.
asio::awaitable<void> TcpTransport::serve_incoming(Stream socket) {
  // With security the listener has run the handshake: the other side holds
  // the key, or a certificate of the cluster CA binding a node id.
  PeerIdentity from;
  if (socket.is_tls()) {
    from.authenticated = true;
    if (config_.security.mode == PeerSecurity::Mode::kMutualTls) {
      auto id = security::peer_node_id(socket.ssl());
      if (!id) co_return;  // the context refuses such a certificate; never trust one
      from.node_id = *id;
    }
  }
  auto conn = std::make_shared<Conn>(std::move(socket));
  conn->start_watchdog();
  ++connections_open_;
  try {
    co_await read_frames(*conn, from);
  } catch (...) {
  }
  conn->close();
  --connections_open_;
}

// Reads the preface, then frames until the peer closes, sends something we
// refuse, or stalls. Whatever ends it ends only this connection.
asio::awaitable<void> TcpTransport::read_frames(Conn& conn, PeerIdentity from) {
  std::error_code ec;
  std::array<char, kPrefaceBytes> preface;
  conn.arm(config_.io_timeout_ms);
  co_await asio::async_read(conn.socket, asio::buffer(preface), redirect(ec));
  if (ec || conn.closed) co_return;
  if (check_preface(std::string_view(preface.data(), preface.size())) != PrefaceCheck::kOk) {
    ++protocol_errors_;
    co_return;
  }
  for (;;) {
    std::array<char, kFrameHeaderBytes> header;
    // Between frames the connection may rest: the sender closes it after
    // idle_timeout_ms; we wait a little longer so that the close is theirs.
    conn.arm(config_.idle_timeout_ms + config_.io_timeout_ms);
    co_await asio::async_read(conn.socket, asio::buffer(header), redirect(ec));
    if (ec || conn.closed) co_return;
    const uint32_t length = decode_frame_header(header.data());
    if (length > config_.max_frame_bytes) {
      ++frames_refused_;
      co_return;
    }
    // The frame's buffer grows as its bytes arrive (doubling, capped at the
    // announced length), and every capacity it takes is charged to the
    // transport-wide max_inbound_buffer_bytes first: a connection whose
    // frame would go past it is closed (counted as refused).
    std::string frame;
    uint64_t charged = 0;
    struct Release {
      std::atomic<uint64_t>& total;
      uint64_t& n;
      ~Release() { total -= n; }
    } release{inbound_buffered_, charged};
    while (frame.size() < length) {
      const size_t old_size = frame.size();
      const size_t chunk = std::min<size_t>(length - old_size, kReadChunkBytes);
      if (old_size + chunk > frame.capacity()) {
        const size_t cap =
            std::min<size_t>(length, std::max(old_size + chunk, 2 * frame.capacity()));
        uint64_t cur = inbound_buffered_.load();
        const uint64_t more = cap - charged;
        do {
          if (cur + more > config_.max_inbound_buffer_bytes) {
            ++frames_refused_;
            co_return;
          }
        } while (!inbound_buffered_.compare_exchange_weak(cur, cur + more));
        charged = cap;
        std::string grown;
        grown.reserve(cap);  // exactly `cap`: a fresh string does not round up
        grown.append(frame);
        frame.swap(grown);
      }
      frame.resize(old_size + chunk);
      conn.arm(config_.io_timeout_ms);
      size_t n = co_await conn.socket.async_read_some(asio::buffer(frame.data() + old_size, chunk),
                                                      redirect(ec));
      frame.resize(old_size + n);
      if (ec || conn.closed) co_return;
    }
    ++frames_received_;
    bytes_received_ += length;
    deliver(std::move(frame), from);
  }
}

void TcpTransport::deliver(std::string frame, const PeerIdentity& from) {
  try {
    handler_(std::move(frame), from);
  } catch (...) {
    // The handler's exception is its own bug; it must not end the connection.
  }
}

}  // namespace wavekv::net

namespace wavekv {

std::unique_ptr<Transport> make_tcp_transport(TransportConfig config) {
  return std::make_unique<net::TcpTransport>(config);
}

}  // namespace wavekv
