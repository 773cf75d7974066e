#include "wavekv/node.h"

#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include "http/server.h"
#include "monitoring/node_status.h"
#include "net/address.h"
#include "node/driver.h"
#include "resp/server.h"
#include "security/certs.h"
#include "security/cluster_key.h"
#include "store/store_internal.h"

namespace wavekv {
namespace {

uint64_t wall_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

class NodeImpl final : public Node {
 public:
  NodeImpl(NodeConfig config, std::unique_ptr<ReplicatedStore> store,
           std::unique_ptr<Transport> transport)
      : config_(std::move(config)), store_(std::move(store)), transport_(std::move(transport)) {}

  ~NodeImpl() override { (void)stop(); }

  Status begin() {
    Status st = transport_->start(config_.listen, [this](std::string frame, PeerIdentity from) {
      {
        std::lock_guard lock(mu_);
        if (!driver_) {  // made by start_driver(), just after this returns
          if (early_frames_.size() < config_.max_inbound_frames)
            early_frames_.push_back({std::move(frame), std::move(from)});
          return;
        }
        if (!driver_->enqueue(std::move(frame), std::move(from), now_ms())) return;
      }
      cv_.notify_one();
    });
    if (!st.is_ok()) return st;
    advertise_ = config_.advertise.empty() ? transport_->local_address() : config_.advertise;
    start_driver();
    // A local write wakes the worker for a tick now rather than at the next
    // tick_ms boundary, so its push leaves at once (the replica still spaces
    // pushes push_delay_ms apart, which is what coalesces bursts). One wakeup
    // per tick at most: the driver's flag is set once until step() takes it.
    const NodeId self = store_->node_id();
    const uint64_t incarnation = store_->incarnation();
    local_watch_ = store_->watch("", [this, self, incarnation](const WatchEvent& e) {
      if (e.meta.node != self || e.meta.incarnation != incarnation) return;
      if (!driver_->local_write_committed()) return;
      { std::lock_guard lock(mu_); }  // the worker is waiting, or sees has_work() next
      cv_.notify_one();
    });
    watching_ = true;
    worker_ = std::thread([this] { work(); });

    if (!config_.resp_listen.empty()) {
      resp::RespConfig resp;
      resp.listen_address = config_.resp_listen;
      resp.security = config_.clients;
      resp.max_client_memory_bytes = config_.resp_max_client_memory_bytes;
      resp.idle_timeout_ms = config_.resp_idle_timeout_ms;
      resp.notify_keyspace_events = config_.resp_notify_keyspace_events;
      resp_ = std::make_unique<resp::RespServer>(io_, *store_, resp, [this] { return status(); });
      WAVEKV_RETURN_IF_ERROR(resp_->start());
    }
    if (!config_.http_listen.empty()) {
      http::HttpConfig http;
      http.listen = config_.http_listen;
      http.security = config_.clients;
      http.max_client_memory_bytes = config_.http_max_client_memory_bytes;
      http::HttpHooks hooks;
      hooks.status = [this] { return status(); };
      auto h = http::HttpServer::start(io_, *store_, http, hooks);
      if (!h) return h.status();
      http_ = std::move(h).value();
    }
    io_work_.emplace(io_.get_executor());
    io_thread_ = std::thread([this] { io_.run(); });
    std::vector<LogField> fields = {{"incarnation", std::to_string(store_->incarnation())},
                                    {"peer", advertise_}};
    if (resp_) fields.push_back({"resp", resp_->address()});
    if (http_) fields.push_back({"http", http_->address()});
    fields.push_back({"peer_auth", peer_auth_name(config_.transport.security.mode)});
    log(LogLevel::kInfo, "node started", std::move(fields));
    warn_about_key_file();
    warn_about_recovery();
    return Status::ok();
  }

  Store& store() override { return *store_; }
  std::string peer_address() const override { return advertise_; }
  std::string resp_address() const override { return resp_ ? resp_->address() : ""; }
  std::string http_address() const override { return http_ ? http_->address() : ""; }

  // Every input of the status, gathered here: the driver's figures (one
  // copy), the state's under one view, then the transport's and the HTTP
  // server's.
  NodeStatus status() override {
    NodeStatus out;
    out.store = store_->status();
    out.address = advertise_;
    const DriverReport report = driver_->report();
    out.replication = report.replica;
    out.driver = {report.decode_errors, report.persist_errors, report.inbound_dropped,
                  report.impersonations_refused};
    const uint64_t now = now_ms();
    store_->read_state([&](const State& state) {
      for (uint64_t b : state.digest()) out.digest = out.digest * 0x100000001b3ull ^ b;
      out.poisoned_keys = poisoned_keys(state, now);
      out.members = members(state, report.last_seen, now);
    });
    for (auto& m : out.members) {
      auto off = report.clock.offsets_ms.find(m.id);
      if (off != report.clock.offsets_ms.end()) m.clock_offset_ms = off->second;
    }
    out.clock = {report.clock.own_offset_ms, report.clock.offsets_ms.size(),
                 report.clock.beyond,        report.clock_refusing_writes,
                 report.wire_v2_frames,      report.wire_older_frames};
    out.retired_data_dirs = retired_data_dirs(config_.store.data_dir);
    out.quarantined_keys = report.quarantined_keys;
    out.transport = transport_->stats();
    if (http_) out.http = http_->stats();
    return out;
  }

  Status reload_credentials() override {
    // The peer transport's key file or certificates, then the client ports'
    // TLS certificate and users file. Each keeps its old ones on failure.
    Status first = transport_->reload_credentials();
    if (resp_) {
      Status st = resp_->reload_security();
      if (!st.is_ok() && first.is_ok()) first = st;
    }
    if (http_) {
      Status st = http_->reload_security();
      if (!st.is_ok() && first.is_ok()) first = st;
    }
    return first;
  }

  bool rebootstrap_requested() const override {
    std::lock_guard lock(mu_);
    return rebootstrap_;
  }
  bool wait_rebootstrap(uint64_t timeout_ms) override {
    std::unique_lock lock(mu_);
    rebootstrap_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                             [&] { return rebootstrap_; });
    return rebootstrap_;
  }

  Status stop() override {
    {
      std::lock_guard lock(mu_);
      if (stopped_) return close_status_;
      stopped_ = true;
      stopping_ = true;
    }
    cv_.notify_all();
    if (watching_) store_->unwatch(local_watch_);
    watching_ = false;
    if (worker_.joinable()) worker_.join();
    if (http_) http_->stop();
    if (resp_) resp_->stop();
    io_work_.reset();
    io_.stop();
    if (io_thread_.joinable()) io_thread_.join();
    http_.reset();
    resp_.reset();
    transport_->stop();
    Status st = store_->checkpoint();
    if (!st.is_ok())
      log(LogLevel::kWarn, "checkpoint at shutdown failed", {{"error", st.to_string()}});
    close_status_ = store_->close();
    return close_status_;
  }

 private:
  // The driver needs the bound address (the replica's own); frames that came
  // before it existed are handed to it now.
  void start_driver() {
    DriverConfig dc;
    dc.replica = config_.replica;
    dc.replica.address = advertise_;
    dc.replica.seeds = config_.peers;
    std::erase(dc.replica.seeds, advertise_);
    std::erase(dc.replica.seeds, std::string());  // `--peers ''`: no seeds, not a seed nobody has
    dc.tick_ms = config_.tick_ms;
    dc.max_inbound_frames = config_.max_inbound_frames;
    if (config_.max_wire_version != 0) dc.max_wire_version = config_.max_wire_version;
    dc.log = [this](LogLevel level, const std::string& msg) { log(level, msg); };
    std::lock_guard lock(mu_);
    driver_ = std::make_unique<Driver>(*store_, *transport_, std::move(dc));
    for (auto& [frame, from] : early_frames_) driver_->enqueue(std::move(frame), std::move(from));
    early_frames_.clear();
  }

  static const char* peer_auth_name(PeerSecurity::Mode mode) {
    switch (mode) {
      case PeerSecurity::Mode::kNone: return "none";
      case PeerSecurity::Mode::kClusterKey: return "cluster-key";
      case PeerSecurity::Mode::kMutualTls: return "mutual-tls";
    }
    return "unknown";
  }

  // A cluster key file others can read is logged (it still loads, as ssh's
  // keys do not refuse): the transport loaded it already, this reads it again
  // only to say so.
  void warn_about_key_file() const {
    const PeerSecurity& sec = config_.transport.security;
    if (sec.mode != PeerSecurity::Mode::kClusterKey) return;
    auto key = security::load_cluster_key(sec.cluster_key_file);
    if (key && !key->warning.empty()) log(LogLevel::kWarn, key->warning);
  }

  // What opening the store passed over or cut, at the default level: a
  // fallback to an older snapshot loses nothing but says the disk lost bytes.
  void warn_about_recovery() const {
    const RecoveryReport r = store_->status().recovery;
    for (const auto& skipped : r.snapshots_skipped)
      log(LogLevel::kWarn, "skipped a corrupt snapshot", {{"why", skipped}});
    if (!r.wal_damage.empty())
      log(LogLevel::kWarn, "cut a torn WAL tail",
          {{"bytes", std::to_string(r.wal_bytes_cut)}, {"why", r.wal_damage}});
    if (!r.new_incarnation.empty())
      log(LogLevel::kInfo, "new incarnation", {{"why", r.new_incarnation}});
  }

  // Keys whose current version is stamped more than the drift bound ahead of
  // `now_ms`. O(1) unless there are some.
  uint64_t poisoned_keys(const State& state, uint64_t now_ms) const {
    uint64_t n = 0;
    state.for_each_stamped_after(now_ms + config_.replica.max_clock_drift_ms,
                                 [&](const std::string&, const Entry&) {
                                   n++;
                                   return true;
                                 });
    return n;
  }

  static std::vector<MemberStatus> members(const State& state,
                                           const std::map<NodeId, uint64_t>& last_seen,
                                           uint64_t now_ms) {
    std::vector<MemberStatus> out;
    const uint64_t own = state.next_seq() - 1;
    for (const auto& [id, meta] : state.peers()) {
      MemberStatus m{id, meta.incarnation, meta.address, std::nullopt, 0, std::nullopt};
      auto seen = last_seen.find(id);
      if (seen != last_seen.end() && now_ms >= seen->second)
        m.last_seen_ms_ago = now_ms - seen->second;
      auto acked = meta.acked.find(state.stream());
      const uint64_t theirs = acked == meta.acked.end() ? 0 : acked->second;
      m.ack_lag = own > theirs ? own - theirs : 0;
      out.push_back(std::move(m));
    }
    return out;
  }

  // Every log line of the node: the embedder's sink, with this node's id.
  void log(LogLevel level, std::string message, std::vector<LogField> fields = {}) const {
    fields.insert(fields.begin(), {"node", std::to_string(store_->node_id())});
    wavekv::log(config_.log, level, "node", std::move(message), std::move(fields));
  }

  // The clock the store stamps writes with (the wall clock unless a test
  // injects one): the clock offset check must measure that one.
  uint64_t now_ms() const {
    return config_.store.clock ? config_.store.clock->now_ms() : wall_ms();
  }

  // Steps the driver whenever it has work or asks to be called, until stop().
  void work() {
    std::mt19937_64 rng(std::random_device{}());
    uint64_t next_step_ms = 0;
    while (true) {
      {
        std::unique_lock lock(mu_);
        const uint64_t now = now_ms();
        // At most a tick: the wall clock may step, and the driver copes.
        const uint64_t wait_ms =
            std::min(next_step_ms > now ? next_step_ms - now : 0, config_.tick_ms);
        cv_.wait_for(lock, std::chrono::milliseconds(wait_ms),
                     [&] { return stopping_ || driver_->has_work(); });
        if (stopping_) return;
      }
      const StepResult r = driver_->step(now_ms(), rng());
      next_step_ms = r.next_step_ms;
      if (r.rebootstrap) {
        {
          std::lock_guard lock(mu_);
          rebootstrap_ = true;
        }
        rebootstrap_cv_.notify_all();
      }
    }
  }

  const NodeConfig config_;
  std::unique_ptr<ReplicatedStore> store_;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<Driver> driver_;  // set once in begin(), under mu_
  std::string advertise_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable rebootstrap_cv_;
  std::deque<std::pair<std::string, PeerIdentity>> early_frames_;  // came before driver_ existed
  bool stopping_ = false;
  bool stopped_ = false;
  bool rebootstrap_ = false;
  WatchId local_watch_ = 0;
  bool watching_ = false;
  Status close_status_;
  std::thread worker_;

  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> io_work_;
  std::thread io_thread_;
  std::unique_ptr<resp::RespServer> resp_;
  std::unique_ptr<http::HttpServer> http_;
};

}  // namespace

void NodeConfig::derive_limits() {
  replica.max_key_bytes = store.max_key_bytes;
  replica.max_value_bytes = store.max_value_bytes;
}

Status NodeConfig::validate() const {
  WAVEKV_RETURN_IF_ERROR(store.validate());
  WAVEKV_RETURN_IF_ERROR(transport.validate());
  if (listen.empty()) return Status::invalid("listen: a peer address is required");
  if (tick_ms == 0) return Status::invalid("tick_ms must be at least 1");
  if (max_wire_version != 0 &&
      (max_wire_version < kOldestWireVersion || max_wire_version > kWireVersion))
    return Status::invalid("max_wire_version must be 0 or " + std::to_string(kOldestWireVersion) +
                           ".." + std::to_string(kWireVersion));
  if (max_inbound_frames == 0) return Status::invalid("max_inbound_frames must be at least 1");
  if (replica.max_key_bytes != store.max_key_bytes ||
      replica.max_value_bytes != store.max_value_bytes)
    return Status::invalid(
        "replica.max_key_bytes and max_value_bytes must equal the store's (a node must not take "
        "from a peer what its own store refuses); call derive_limits()");
  return Status::ok();
}

Status ClientSecurity::validate() const {
  if (tls_cert_file.empty() != tls_key_file.empty())
    return Status::invalid("client TLS needs both --tls-cert-file and --tls-key-file");
  if (!tls() && !tls_client_ca_file.empty())
    return Status::invalid("--tls-client-ca-file needs --tls-cert-file and --tls-key-file");
  if (require_client_cert && tls_client_ca_file.empty())
    return Status::invalid("requiring client certificates needs --tls-client-ca-file");
  if (!users_file.empty() && (max_unauthenticated == 0 || auth_timeout_ms == 0))
    return Status::invalid("max_unauthenticated and auth_timeout_ms must be at least 1");
  return Status::ok();
}

namespace {

// Only this host can reach the address: 127.0.0.0/8, ::1, "localhost". An
// empty host (":port") is every interface; another name may resolve to
// anything.
bool is_loopback_host(const std::string& host) {
  if (host == "localhost") return true;
  std::error_code ec;
  const asio::ip::address ip = asio::ip::make_address(host, ec);
  if (ec) return false;
  if (ip.is_v6() && ip.to_v6().is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, ip.to_v6()).is_loopback();
  return ip.is_loopback();
}

}  // namespace

namespace {

// Mutual TLS binds a node id to the certificate, and peers refuse messages
// from any other id (the identity rule): a node whose own id differs could
// never be heard. No id given: the certificate's. Another id: refused here,
// before anything is opened.
Status take_certificate_id(NodeConfig& config) {
  const PeerSecurity& sec = config.transport.security;
  if (sec.mode != PeerSecurity::Mode::kMutualTls) return Status::ok();
  auto id = security::node_id_of_file(sec.cert_file);
  if (!id) return id.status();
  if (config.store.node_id == 0) {
    config.store.node_id = *id;
    return Status::ok();
  }
  if (config.store.node_id != *id)
    return Status::invalid("the certificate " + sec.cert_file + " binds node " +
                           std::to_string(*id) + " but this node's id is " +
                           std::to_string(config.store.node_id) +
                           ": peers would refuse every message; give --id " + std::to_string(*id) +
                           " or this node's own certificate");
  return Status::ok();
}

}  // namespace

Status check_exposure(const NodeConfig& config) {
  if (config.insecure) return Status::ok();
  // The peer port.
  if (!config.transport.security.authenticates()) {
    auto hp = net::parse_host_port(config.listen, net::AddressUse::kListen);
    if (!hp) return hp.status();
    if (!is_loopback_host(hp->host))
      return Status::invalid(
          "the peer port " + config.listen +
          " would listen beyond this host without authentication: anyone who reaches it could "
          "read, change and wipe every key. Give the cluster a key (--cluster-key-file FILE, "
          "from `wavekv keygen`) or node certificates (--ca-file, --cert-file, --key-file, from "
          "`wavekv cert`), or, on a network you trust completely, add --insecure");
  }
  // The client ports (RESP, HTTP): a users file and TLS.
  const bool users = !config.clients.users_file.empty();
  const bool tls = config.clients.tls();
  if (users && tls) return Status::ok();
  for (const auto& [flag, address] :
       {std::pair<const char*, const std::string&>{"--resp", config.resp_listen},
        std::pair<const char*, const std::string&>{"--http", config.http_listen}}) {
    if (address.empty()) continue;
    auto hp = net::parse_host_port(address, net::AddressUse::kListen);
    if (!hp) continue;  // the server's own validation names the problem
    if (is_loopback_host(hp->host)) continue;
    std::string missing;
    if (!users) missing = "--users-file FILE";
    if (!tls)
      missing +=
          std::string(missing.empty() ? "" : " and ") + "--tls-cert-file FILE --tls-key-file FILE";
    return Status::invalid(std::string(flag) + " " + address +
                           " is reachable from other hosts but clients are not " +
                           (users ? "encrypted"
                            : tls ? "authenticated"
                                  : "authenticated or encrypted") +
                           ": add " + missing + " (or --insecure to serve it anyway)");
  }
  return Status::ok();
}

Result<std::unique_ptr<Node>> Node::start(NodeConfig config, std::unique_ptr<Transport> transport) {
  config.derive_limits();
  WAVEKV_RETURN_IF_ERROR(config.validate());
  WAVEKV_RETURN_IF_ERROR(config.clients.validate());
  WAVEKV_RETURN_IF_ERROR(check_exposure(config));
  WAVEKV_RETURN_IF_ERROR(take_certificate_id(config));
  if (!config.store.on_damage) {
    // The scrubber's findings, in the node's log (and in status and metrics).
    config.store.on_damage = [sink = config.log](const std::string& what) {
      wavekv::log(sink, LogLevel::kError, "store", "scrub found damage", {{"what", what}});
    };
  }
  auto store = open_replicated(config.store);
  if (!store) return store.status();
  if (!transport) transport = make_tcp_transport(config.transport);
  auto node =
      std::make_unique<NodeImpl>(std::move(config), std::move(store).value(), std::move(transport));
  Status st = node->begin();
  if (!st.is_ok()) {
    (void)node->stop();
    return st;
  }
  return std::unique_ptr<Node>(std::move(node));
}

}  // namespace wavekv
