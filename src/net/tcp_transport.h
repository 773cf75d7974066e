// The TCP peer transport (include/wavekv/transport.h): standalone Asio with
// C++20 coroutines on one thread of its own.
//
// Outgoing: one connection per destination address, opened on the first frame
// and reused for every later one, closed after idle_timeout_ms unused. A
// failed connect drops what was queued and puts the destination in backoff.
// Incoming: accepted connections are read-only; a reply travels over the
// replier's own outgoing connection to the sender's address.
//
// With peer security on (TransportConfig::security) both directions run TLS
// 1.3 from a security::ContextSource: the listener runs the server handshake
// (bounded in time and in how many strangers may be in it, ListenerLimits),
// a dial runs the client handshake before the preface. A failed dial
// handshake is a failed connect: its queue is dropped, backoff follows.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "net/listener.h"
#include "security/tls.h"
#include "wavekv/transport.h"

namespace wavekv::net {

class TcpTransport final : public Transport {
 public:
  explicit TcpTransport(TransportConfig config);
  ~TcpTransport() override;

  Status start(const std::string& listen_address, Handler handler) override;
  std::string local_address() const override;
  bool send(const std::string& address, std::string frame) override;
  void stop() override;
  TransportStats stats() const override;
  Status reload_credentials() override;

 private:
  using SteadyClock = std::chrono::steady_clock;
  struct Conn;
  struct Peer;
  enum class State { kNew, kRunning, kStopped };

  void spawn(asio::awaitable<void> task);
  void run_io();
  void close_everything();

  asio::awaitable<void> serve_incoming(Stream socket);
  asio::awaitable<void> read_frames(Conn& conn, PeerIdentity from);
  void deliver(std::string frame, const PeerIdentity& from);
  // The context the next connection uses; null without security.
  security::SslContextPtr tls_context() const;

  asio::awaitable<void> serve_outgoing(std::shared_ptr<Peer> peer);
  asio::awaitable<void> write_frames(Peer& peer);
  asio::awaitable<Status> connect(Peer& peer);
  asio::awaitable<bool> write_frame(Conn& conn, const std::string& frame);
  void drop_connection(Peer& peer);                           // transport thread only
  void drop_queue_locked(Peer& peer);                         // needs mu_
  void prune_idle_peers_locked(SteadyClock::time_point now);  // needs mu_

  static asio::awaitable<void> notice_close(std::shared_ptr<Conn> conn, std::shared_ptr<Peer> peer);

  const TransportConfig config_;
  // Reset by stop(), once its thread is gone (see close_everything()).
  std::unique_ptr<asio::io_context> io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  Handler handler_;
  // Set by start() with security on; thread-safe (current() and reload()).
  std::shared_ptr<security::ContextSource> tls_;

  std::shared_ptr<Listener> listener_;  // set by start(), taken by close_everything(); mu_

  mutable std::mutex mu_;
  State state_ = State::kNew;                           // guarded by mu_
  std::string local_address_;                           // guarded by mu_
  std::map<std::string, std::shared_ptr<Peer>> peers_;  // guarded by mu_
  uint64_t frames_queued_ = 0;                          // guarded by mu_
  uint64_t bytes_queued_ = 0;                           // guarded by mu_

  std::atomic<uint64_t> frames_sent_{0}, frames_received_{0}, bytes_sent_{0}, bytes_received_{0},
      frames_dropped_{0}, frames_refused_{0}, protocol_errors_{0}, connect_failures_{0},
      connections_open_{0}, dial_handshake_failures_{0};
  // Capacity of the frames being read on incoming connections, all together
  // (bounded by TransportConfig::max_inbound_buffer_bytes).
  std::atomic<uint64_t> inbound_buffered_{0};
};

}  // namespace wavekv::net
