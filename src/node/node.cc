#include "node/node.h"

#include <pthread.h>
#include <signal.h>

#include <asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "http/server.h"
#include "monitoring/node_status.h"
#include "replication/messages.h"
#include "replication/replica.h"
#include "resp/server.h"
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
    Status st = transport_->start(config_.listen, [this](std::string frame) {
      {
        std::lock_guard lock(mu_);
        if (inbound_.size() >= config_.max_inbound_frames) {
          inbound_dropped_++;
          return;
        }
        inbound_.push_back(std::move(frame));
      }
      cv_.notify_one();
    });
    if (!st.is_ok()) return st;
    advertise_ = config_.advertise.empty() ? transport_->local_address() : config_.advertise;
    ReplicaConfig rc = config_.replica;
    rc.address = advertise_;
    rc.seeds = config_.peers;
    std::erase(rc.seeds, advertise_);
    std::erase(rc.seeds, std::string());  // `--peers ''`: no seeds, not a seed nobody has

    replica_ = std::make_unique<Replica>(store_->node_id(), store_->incarnation(), rc);
    // A local write wakes the worker for a tick now rather than at the next
    // tick_ms boundary, so its push leaves at once (the replica still spaces
    // pushes push_delay_ms apart, which is what coalesces bursts). One wakeup
    // per tick at most: the flag is set once until the worker takes it.
    const NodeId self = store_->node_id();
    const uint64_t incarnation = store_->incarnation();
    local_watch_ = store_->watch("", [this, self, incarnation](const WatchEvent& e) {
      if (e.meta.node != self || e.meta.incarnation != incarnation) return;
      {
        std::lock_guard lock(mu_);
        if (local_write_) return;
        local_write_ = true;
      }
      cv_.notify_one();
    });
    watching_ = true;
    worker_ = std::thread([this] { work(); });

    if (!config_.resp_listen.empty()) {
      resp::RespConfig resp;
      resp.listen_address = config_.resp_listen;
      resp_ = std::make_unique<resp::RespServer>(io_, *store_, resp, [this] { return status(); });
      WAVEKV_RETURN_IF_ERROR(resp_->start());
    }
    if (!config_.http_listen.empty()) {
      http::HttpConfig http;
      http.listen = config_.http_listen;
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
    log(LogLevel::kInfo, "node started", std::move(fields));
    return Status::ok();
  }

  Store& store() override { return *store_; }
  std::string peer_address() const override { return advertise_; }
  std::string resp_address() const override { return resp_ ? resp_->address() : ""; }
  std::string http_address() const override { return http_ ? http_->address() : ""; }

  // Every input of the status, gathered here: the worker's figures from
  // snapshot_ (one read), the state's under one view, then the transport's
  // and the HTTP server's.
  NodeStatus status() override {
    NodeStatus out;
    out.store = store_->status();
    out.address = advertise_;
    Snapshot snap;
    {
      std::lock_guard lock(mu_);
      snap = snapshot_;
    }
    out.replication = snap.stats;
    out.driver = {snap.decode_errors, snap.persist_errors, snap.inbound_dropped};
    const uint64_t now = wall_ms();
    store_->read_state([&](const State& state) {
      for (uint64_t b : state.digest()) out.digest = out.digest * 0x100000001b3ull ^ b;
      out.poisoned_keys = poisoned_keys(state, now);
      out.members = members(state, snap.last_seen, now);
    });
    out.transport = transport_->stats();
    if (http_) out.http = http_->stats();
    return out;
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
  struct Snapshot {
    ReplicaStats stats;
    std::map<NodeId, uint64_t> last_seen;
    uint64_t decode_errors = 0;
    uint64_t persist_errors = 0;
    uint64_t inbound_dropped = 0;
  };

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
      MemberStatus m{id, meta.incarnation, meta.address, std::nullopt, 0};
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

  // Persist, then send (docs/PROTOCOL.md, the ordering contract).
  void execute(Effects fx) {
    if (!fx.persist.empty()) {
      Status st = store_->apply_ops(std::move(fx.persist));
      if (!st.is_ok()) {
        persist_errors_++;
        log(LogLevel::kError, "persisting replicated ops failed; nothing sent",
            {{"error", st.to_string()}});
        return;
      }
    }
    for (auto& out : fx.send) transport_->send(out.address, encode_message(out.message));
    if (fx.rebootstrap) {
      log(LogLevel::kWarn,
          "this node must wipe its data and bootstrap again: a peer evicted it, or forgot "
          "tombstones older than versions this node holds");
      {
        std::lock_guard lock(mu_);
        rebootstrap_ = true;
      }
      rebootstrap_cv_.notify_all();
    }
  }

  void work() {
    std::mt19937_64 rng(std::random_device{}());
    DecodeLimits limits;
    limits.max_key_bytes = config_.replica.max_key_bytes;
    limits.max_value_bytes = config_.replica.max_value_bytes;
    auto next_tick = std::chrono::steady_clock::now();
    bool push_owed = false;  // a local write woke us; its push has not left yet
    while (true) {
      std::deque<std::string> frames;
      {
        std::unique_lock lock(mu_);
        cv_.wait_until(lock, next_tick,
                       [&] { return stopping_ || !inbound_.empty() || local_write_; });
        if (stopping_) return;
        frames.swap(inbound_);
        if (local_write_) {
          local_write_ = false;
          next_tick = std::chrono::steady_clock::now();
          push_owed = true;
        }
      }
      for (auto& frame : frames) {
        auto m = decode_message(frame, limits);
        if (!m) {
          decode_errors_++;
          continue;
        }
        Effects fx;
        const uint64_t now = wall_ms();
        store_->read_state([&](const State& s) { fx = replica_->on_message(s, *m, now); });
        execute(std::move(fx));
      }
      if (std::chrono::steady_clock::now() >= next_tick) {
        Effects fx;
        const uint64_t now = wall_ms();
        const uint64_t random = rng();
        const uint64_t pushes_before = replica_->stats().pushes_sent;
        store_->read_state([&](const State& s) { fx = replica_->on_tick(s, now, random); });
        execute(std::move(fx));
        const auto after = std::chrono::steady_clock::now();
        next_tick = after + std::chrono::milliseconds(config_.tick_ms);
        if (push_owed && replica_->stats().pushes_sent == pushes_before) {
          // Held back by the push spacing: tick again when it allows, not a
          // whole tick_ms later. Once: if that tick cannot push either (no
          // peers), the regular ticks carry on.
          const uint64_t ready = replica_->next_push_at_ms(), wall = wall_ms();
          next_tick = std::min(next_tick,
                               after + std::chrono::milliseconds(ready > wall ? ready - wall : 0));
        }
        push_owed = false;
      }
      std::lock_guard lock(mu_);
      snapshot_.stats = replica_->stats();
      snapshot_.last_seen = replica_->last_seen();
      snapshot_.decode_errors = decode_errors_;
      snapshot_.persist_errors = persist_errors_;
      snapshot_.inbound_dropped = inbound_dropped_;
    }
  }

  const NodeConfig config_;
  std::unique_ptr<ReplicatedStore> store_;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<Replica> replica_;  // the worker thread's alone
  std::string advertise_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable rebootstrap_cv_;
  std::deque<std::string> inbound_;
  uint64_t inbound_dropped_ = 0;
  bool stopping_ = false;
  bool stopped_ = false;
  bool rebootstrap_ = false;
  bool local_write_ = false;  // a local write committed since the worker last looked
  WatchId local_watch_ = 0;
  bool watching_ = false;
  Snapshot snapshot_;
  Status close_status_;
  uint64_t decode_errors_ = 0;   // worker only
  uint64_t persist_errors_ = 0;  // worker only
  std::thread worker_;

  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> io_work_;
  std::thread io_thread_;
  std::unique_ptr<resp::RespServer> resp_;
  std::unique_ptr<http::HttpServer> http_;
};

}  // namespace

Status NodeConfig::validate() const {
  WAVEKV_RETURN_IF_ERROR(store.validate());
  WAVEKV_RETURN_IF_ERROR(transport.validate());
  if (listen.empty()) return Status::invalid("listen: a peer address is required");
  if (tick_ms == 0) return Status::invalid("tick_ms must be at least 1");
  if (max_inbound_frames == 0) return Status::invalid("max_inbound_frames must be at least 1");
  return Status::ok();
}

Result<std::unique_ptr<Node>> Node::start(NodeConfig config, std::unique_ptr<Transport> transport) {
  WAVEKV_RETURN_IF_ERROR(config.validate());
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

NodeStatusJson Node::status_json() { return NodeStatusJson(monitoring::to_json(status())); }

const std::atomic<int>& catch_stop_signals() {
  static std::atomic<int> got_signal{0};
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread([signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    got_signal = sig;
  }).detach();
  return got_signal;
}

Status wipe_data_dir(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::filesystem::remove_all(entry.path(), ec);
    if (ec) return Status::io_error("wipe " + entry.path().string() + ": " + ec.message());
  }
  if (ec) return Status::io_error("wipe " + dir + ": " + ec.message());
  return Status::ok();
}

}  // namespace wavekv
