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
#include "monitoring/metrics.h"
#include "replication/messages.h"
#include "resp/server.h"
#include "store/store_internal.h"

namespace wavekv {
namespace {

uint64_t wall_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// One line per event, logfmt-style, on stderr.
void log_line(const std::string& level, const std::string& msg) {
  std::fprintf(stderr, "ts=%llu level=%s msg=\"%s\"\n", static_cast<unsigned long long>(wall_ms()),
               level.c_str(), msg.c_str());
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
      resp_ =
          std::make_unique<resp::RespServer>(io_, *store_, resp, [this] { return status_json(); });
      WAVEKV_RETURN_IF_ERROR(resp_->start());
    }
    if (!config_.http_listen.empty()) {
      http::HttpConfig http;
      http.listen = config_.http_listen;
      http::HttpHooks hooks;
      hooks.status = [this] { return status_json(); };
      hooks.metrics = [this] { return metrics_text(); };
      auto h = http::HttpServer::start(io_, *store_, http, hooks);
      if (!h) return h.status();
      http_ = std::move(h).value();
    }
    io_work_.emplace(io_.get_executor());
    io_thread_ = std::thread([this] { io_.run(); });
    log_line("info", "node " + std::to_string(store_->node_id()) + " incarnation " +
                         hex64(store_->incarnation()) + " peers on " + advertise_ +
                         (resp_ ? ", RESP on " + resp_->address() : std::string()) +
                         (http_ ? ", HTTP on " + http_->address() : std::string()));
    return Status::ok();
  }

  Store& store() override { return *store_; }
  std::string peer_address() const override { return advertise_; }
  std::string resp_address() const override { return resp_ ? resp_->address() : ""; }
  std::string http_address() const override { return http_ ? http_->address() : ""; }

  nlohmann::json status_json() override {
    const StoreStatus s = store_->status();
    nlohmann::json j = http::store_status_json(s);
    j["address"] = advertise_;
    Snapshot snap;
    {
      std::lock_guard lock(mu_);
      snap = snapshot_;
    }
    const uint64_t now = wall_ms();
    nlohmann::json members = nlohmann::json::array();
    uint64_t digest = 0;
    uint64_t poisoned = 0;
    store_->read_state([&](const State& state) {
      for (uint64_t b : state.digest()) digest = digest * 0x100000001b3ull ^ b;
      poisoned = poisoned_keys(state, now);
      const uint64_t own = state.next_seq() - 1;
      for (const auto& [id, meta] : state.peers()) {
        nlohmann::json m = {
            {"id", id}, {"incarnation", meta.incarnation}, {"address", meta.address}};
        auto seen = snap.last_seen.find(id);
        if (seen != snap.last_seen.end() && now >= seen->second)
          m["last_seen_ms_ago"] = now - seen->second;
        else
          m["last_seen_ms_ago"] = nullptr;
        auto acked = meta.acked.find(state.stream());
        const uint64_t theirs = acked == meta.acked.end() ? 0 : acked->second;
        m["ack_lag"] = own > theirs ? own - theirs : 0;
        members.push_back(std::move(m));
      }
    });
    j["digest"] = hex64(digest);
    // Keys stamped past the drift bound: peers refuse them (docs/PROTOCOL.md,
    // "Future timestamps"); `wavekv repair-timestamps` rewrites them.
    j["poisoned_keys"] = poisoned;
    const ReplicaStats& r = snap.stats;
    j["replication"] = {{"rounds", r.rounds},
                        {"sessions_completed", r.sessions_completed},
                        {"sessions_aborted", r.sessions_aborted},
                        {"requests_retried", r.requests_retried},
                        {"pages_served", r.pages_served},
                        {"entries_received", r.entries_received},
                        {"entries_merged", r.entries_merged},
                        {"entries_rejected", r.entries_rejected},
                        {"pushes_sent", r.pushes_sent},
                        {"digest_mismatches", r.digest_mismatches},
                        {"repairs", r.repairs},
                        {"members_evicted", r.members_evicted},
                        {"tombstones_dropped", r.tombstones_dropped},
                        {"rebootstraps_sent", r.rebootstraps_sent},
                        {"rebootstraps_needed", r.rebootstraps_needed},
                        {"decode_errors", snap.decode_errors},
                        {"persist_errors", snap.persist_errors},
                        {"inbound_dropped", snap.inbound_dropped}};
    j["members"] = std::move(members);
    return j;
  }

  std::string metrics_text() override {
    monitoring::MetricsWriter out;
    monitoring::write_store_metrics(store_->status(), out);
    Snapshot snap;
    {
      std::lock_guard lock(mu_);
      snap = snapshot_;
    }
    const ReplicaStats& r = snap.stats;
    auto counter = [&](const char* name, const char* help, uint64_t v) {
      out.counter(name, help, static_cast<double>(v));
    };
    counter("wavekv_sync_rounds_total", "Sync rounds started.", r.rounds);
    counter("wavekv_sync_sessions_completed_total", "Delta sessions adopted.",
            r.sessions_completed);
    counter("wavekv_sync_sessions_aborted_total",
            "Delta sessions aborted (rejection, lost track, or no progress).", r.sessions_aborted);
    counter("wavekv_sync_requests_retried_total",
            "Sync requests sent again after a round without a page.", r.requests_retried);
    counter("wavekv_entries_received_total", "Replicated entries received.", r.entries_received);
    counter("wavekv_entries_merged_total", "Replicated entries newer than ours.", r.entries_merged);
    counter("wavekv_entries_rejected_total", "Replicated entries refused by admission.",
            r.entries_rejected);
    counter("wavekv_pushes_sent_total", "Push messages sent.", r.pushes_sent);
    counter("wavekv_digest_mismatches_total", "Divergence checks that found differing buckets.",
            r.digest_mismatches);
    counter("wavekv_repairs_total", "Entries merged by bucket repair.", r.repairs);
    counter("wavekv_members_evicted_total", "Members evicted after the expiry.", r.members_evicted);
    counter("wavekv_tombstones_dropped_total", "Tombstones collected by tombstone GC.",
            r.tombstones_dropped);
    counter("wavekv_rebootstraps_sent_total", "Rebootstrap replies sent to evicted members.",
            r.rebootstraps_sent);
    counter("wavekv_rebootstraps_needed_total",
            "Times this node had to wipe and bootstrap again (below a peer's collected horizon).",
            r.rebootstraps_needed);
    counter("wavekv_frames_decode_errors_total", "Peer frames that failed to decode.",
            snap.decode_errors);
    const TransportStats t = transport_->stats();
    counter("wavekv_transport_frames_sent_total", "Peer frames sent.", t.frames_sent);
    counter("wavekv_transport_frames_received_total", "Peer frames received.", t.frames_received);
    counter("wavekv_transport_frames_dropped_total", "Peer frames dropped.", t.frames_dropped);
    counter("wavekv_transport_bytes_sent_total", "Peer frame bytes sent.", t.bytes_sent);
    out.gauge("wavekv_members", "Members this node knows.", static_cast<double>(members_count()));
    uint64_t poisoned = 0;
    store_->read_state([&](const State& state) { poisoned = poisoned_keys(state, wall_ms()); });
    out.gauge("wavekv_poisoned_keys",
              "Keys stamped further ahead of this clock than the drift bound.",
              static_cast<double>(poisoned));
    if (http_) http_->write_metrics(out);
    return out.text();
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
    if (!st.is_ok()) log_line("warn", "checkpoint at shutdown failed: " + st.to_string());
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

  size_t members_count() {
    size_t n = 0;
    store_->read_state([&](const State& s) { n = s.peers().size(); });
    return n;
  }

  // Persist, then send (docs/PROTOCOL.md, the ordering contract).
  void execute(Effects fx) {
    if (!fx.persist.empty()) {
      Status st = store_->apply_ops(std::move(fx.persist));
      if (!st.is_ok()) {
        persist_errors_++;
        log_line("error", "persisting replicated ops failed; nothing sent: " + st.to_string());
        return;
      }
    }
    for (auto& out : fx.send) transport_->send(out.address, encode_message(out.message));
    if (fx.rebootstrap) {
      log_line("warn",
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
