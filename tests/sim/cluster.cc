#include "sim/cluster.h"

#include <algorithm>

namespace wavekv::sim {

class Cluster::NodeClock final : public Clock {
 public:
  explicit NodeClock(const uint64_t& cluster_now) : now_(cluster_now) {}
  uint64_t now_ms() override { return static_cast<uint64_t>(static_cast<int64_t>(now_) + skew_); }
  int64_t skew_ = 0;

 private:
  const uint64_t& now_;
};

// What a node's driver sends through: the cluster's seeded network.
class Cluster::NodeTransport final : public Transport {
 public:
  NodeTransport(Cluster& cluster, int node) : cluster_(cluster), node_(node) {}
  Status start(const std::string&, Handler) override { return Status::ok(); }
  std::string local_address() const override { return cluster_.nodes_[node_]->address; }
  bool send(const std::string& address, std::string frame) override {
    stats_.frames_sent++;
    stats_.bytes_sent += frame.size();
    cluster_.post(node_, address, std::move(frame));
    return true;
  }
  void stop() override {}
  TransportStats stats() const override { return stats_; }

 private:
  Cluster& cluster_;
  const int node_;
  TransportStats stats_;
};

Cluster::Cluster(SimOptions options) : options_(std::move(options)), rng_(options_.seed) {
  for (int i = 0; i < options_.nodes; i++) {
    auto n = std::make_unique<Node>();
    n->id = 1000 + static_cast<NodeId>(i);
    n->address = "node-" + std::to_string(i);
    n->fs = std::make_shared<testing::MemFileSystem>();
    n->clock = std::make_shared<NodeClock>(now_ms_);
    n->transport = std::make_unique<NodeTransport>(*this, i);
    n->replica_config = options_.replica;
    n->replica_config.address = n->address;
    n->replica_config.seeds.clear();
    if (options_.chain_seeds) {
      if (i > 0) n->replica_config.seeds.push_back("node-" + std::to_string(i - 1));
    } else {
      for (int j = 0; j < options_.nodes; j++)
        if (j != i) n->replica_config.seeds.push_back("node-" + std::to_string(j));
    }
    by_address_[n->address] = i;
    nodes_.push_back(std::move(n));
  }
  newest_held_.resize(nodes_.size());
  for (int i = 0; i < options_.nodes; i++) open(i);
}

Cluster::~Cluster() = default;

uint64_t Cluster::node_now(int i) const { return nodes_[i]->clock->now_ms(); }

void Cluster::open(int i) {
  Node& n = *nodes_[i];
  Config c;
  c.data_dir = "/data";
  c.fs = n.fs;
  c.clock = n.clock;
  c.node_id = n.id;
  c.durability = Durability::kAlways;
  c.wal_segment_bytes = 64 * 1024;
  c.wal_preallocate = false;
  c.checkpoint_ops = 2000;
  c.expire_interval_ms = 0;  // step() sweeps at simulated times (a thread would not replay)
  c.random = [this] { return rng_(); };  // new incarnations replay from the seed
  if (auto limit = options_.max_value_bytes.find(i); limit != options_.max_value_bytes.end())
    c.max_value_bytes = limit->second;
  auto s = open_replicated(c);
  if (!s) {
    std::fprintf(stderr, "sim: node %d failed to open: %s\n", i, s.status().to_string().c_str());
    std::abort();
  }
  n.store = std::move(s).value();
  DriverConfig dc;
  dc.replica = n.replica_config;
  dc.replica.max_key_bytes = c.max_key_bytes;  // as NodeConfig::derive_limits does
  dc.replica.max_value_bytes = c.max_value_bytes;
  dc.tick_ms = options_.tick_ms;
  dc.log = [i](LogLevel level, const std::string& msg) {
    if (level == LogLevel::kError) std::fprintf(stderr, "sim: node %d: %s\n", i, msg.c_str());
  };
  n.driver = std::make_unique<Driver>(*n.store, *n.transport, std::move(dc));
}

void Cluster::close(int i) {
  Node& n = *nodes_[i];
  if (n.driver) tombstones_dropped_ += n.driver->report().replica.tombstones_dropped;
  n.driver.reset();  // it holds the store
  n.store.reset();
}

uint64_t Cluster::tombstones_dropped() const {
  uint64_t n = tombstones_dropped_;
  for (const auto& node : nodes_)
    if (node->driver) n += node->driver->report().replica.tombstones_dropped;
  return n;
}

void Cluster::crash(int i) {
  Node& n = *nodes_[i];
  if (!n.store) return;
  n.fs->crash(rng_() | 1);  // the power goes first: the dying store writes nothing more
  close(i);
  n.fs->power_on();
}

void Cluster::restart(int i) {
  if (!nodes_[i]->store) open(i);
}

void Cluster::wipe(int i) {
  Node& n = *nodes_[i];
  close(i);
  n.fs = std::make_shared<testing::MemFileSystem>();
  newest_held_[i].clear();
  for (auto& w : acked_)
    if (w.node == i) w.node = -1;  // may be lost with the disk unless it replicated
  // A wiped node has only its seeds to find its way back: give it everyone.
  n.replica_config.seeds.clear();
  for (const auto& other : nodes_)
    if (other.get() != &n) n.replica_config.seeds.push_back(other->address);
  open(i);
}

void Cluster::partition(const std::set<int>& side) {
  for (int a = 0; a < size(); a++)
    for (int b = 0; b < size(); b++)
      if (side.count(a) != side.count(b)) cut_.insert({a, b});
}

void Cluster::set_clock_skew(int i, int64_t ms) { nodes_[i]->clock->skew_ = ms; }

void Cluster::post(int from, const std::string& address, std::string bytes) {
  nodes_[from]->bytes_sent += bytes.size();
  auto it = by_address_.find(address);
  if (it == by_address_.end()) return;
  const int to = it->second;
  std::uniform_real_distribution<double> unit(0, 1);
  if (cut_.count({from, to}) || unit(rng_) < options_.drop) {
    dropped_++;
    return;
  }
  const int copies = unit(rng_) < options_.duplicate ? 2 : 1;
  for (int c = 0; c < copies; c++) {
    uint64_t delay =
        options_.min_delay_ms + rng_() % (options_.max_delay_ms - options_.min_delay_ms + 1);
    network_.push({now_ms_ + delay, order_++, to, bytes});
  }
}

void Cluster::step(int i) {
  Node& n = *nodes_[i];
  if (!n.driver) return;
  const StepResult r = n.driver->step(node_now(i), rng_());
  // Every frame here was encoded by a real replica and every store is
  // healthy: either failing is a bug, not a fault to ride out.
  const DriverReport stats = n.driver->report();
  if (stats.decode_errors != 0 || stats.persist_errors != 0) {
    std::fprintf(stderr, "sim: node %d: %llu undecodable frames, %llu failed persists\n", i,
                 static_cast<unsigned long long>(stats.decode_errors),
                 static_cast<unsigned long long>(stats.persist_errors));
    std::abort();
  }
  if (r.rebootstrap) {
    rebootstraps_++;
    wipe(i);
    return;
  }
  // The expiry sweep, every 100 ms of simulated time, as Config's default.
  if (now_ms_ % 100 == 0) {
    auto swept = n.store->expire_now();
    if (!swept) {
      std::fprintf(stderr, "sim: node %d: expiry sweep failed: %s\n", i,
                   swept.status().to_string().c_str());
      std::abort();
    }
  }
}

void Cluster::deliver(const InFlight& m) {
  Node& n = *nodes_[m.to];
  if (!n.driver || !n.driver->enqueue(m.bytes)) dropped_++;
}

void Cluster::run_for(uint64_t ms) {
  const uint64_t end = now_ms_ + ms;
  while (now_ms_ < end) {
    while (!network_.empty() && network_.top().deliver_at <= now_ms_) {
      InFlight m = network_.top();
      network_.pop();
      deliver(m);
    }
    for (int i = 0; i < size(); i++) step(i);
    if (const char* k = getenv("SIM_TRACE_KEY")) {
      static std::map<int, std::string> last;
      for (int i = 0; i < size(); i++) {
        if (!up(i)) continue;
        std::string d = "absent";
        nodes_[i]->store->read_state([&](const State& s) {
          auto it = s.kv().find(k);
          if (it != s.kv().end())
            d = std::to_string(it->second.meta.node) + "/" +
                std::to_string(it->second.meta.incarnation) + " seq " +
                std::to_string(it->second.meta.seq) + " ts " +
                std::to_string(it->second.meta.timestamp >> 16) +
                (it->second.tombstone ? " del" : "") + " exp " +
                std::to_string(it->second.expires_ms);
          d += " cb " + std::to_string(s.collected_before() >> 16);
          std::string acks;
          for (auto& [o, q] : s.acks())
            acks += " " + std::to_string(o % 1000) + ":" + std::to_string(q);
          d += " acks" + acks;
        });
        if (last[i] != d)
          fprintf(stderr, "%llu node %d (clock %llu): %s\n", (unsigned long long)now_ms_, i,
                  (unsigned long long)node_now(i), d.c_str());
        last[i] = d;
      }
    }
    now_ms_ += options_.tick_ms;
  }
}

bool Cluster::converged() {
  const State::KvMap* first = nullptr;
  std::vector<State::KvMap> copies;
  copies.reserve(nodes_.size());
  for (auto& n : nodes_) {
    if (!n->store) continue;
    n->store->read_state([&](const State& s) { copies.push_back(s.kv()); });
  }
  for (const auto& kv : copies) {
    if (first == nullptr)
      first = &kv;
    else if (kv != *first)
      return false;
  }
  return true;
}

int64_t Cluster::run_until_converged(uint64_t max_ms) {
  const uint64_t start = now_ms_;
  while (now_ms_ - start <= max_ms) {
    if (network_.empty() || (now_ms_ - start) % 100 == 0) {
      if (converged()) return static_cast<int64_t>(now_ms_ - start);
    }
    run_for(options_.tick_ms);
  }
  return -1;
}

bool Cluster::put(int i, const std::string& key, const std::string& value, uint64_t ttl_ms) {
  if (!up(i)) return false;
  WriteBatch b;
  b.put(key, value, ttl_ms == 0 ? 0 : node_now(i) + ttl_ms);
  if (!nodes_[i]->store->write(b).is_ok()) return false;
  nodes_[i]->driver->local_write_committed();  // as the node's store watch does
  acked_.push_back({key, *nodes_[i]->store->get_entry(key), i});
  if (const char* k = getenv("SIM_TRACE_KEY"); k && key == k) {
    const Entry& e = acked_.back().entry;
    fprintf(stderr, "%llu PUT node %d %s seq %llu inc %llu exp %llu tomb %d\n",
            (unsigned long long)now_ms_, i, key.c_str(), (unsigned long long)e.meta.seq,
            (unsigned long long)e.meta.incarnation % 1000, (unsigned long long)e.expires_ms,
            e.tombstone);
  }
  return true;
}

bool Cluster::del(int i, const std::string& key) {
  if (!up(i) || !nodes_[i]->store->del(key).is_ok()) return false;
  nodes_[i]->driver->local_write_committed();
  acked_.push_back({key, *nodes_[i]->store->get_entry(key), i});
  return true;
}

std::string Cluster::describe_divergence() {
  std::vector<State::KvMap> kvs;
  std::string out;
  for (int i = 0; i < size(); i++) {
    if (!up(i)) continue;
    nodes_[i]->store->read_state([&](const State& s) {
      kvs.push_back(s.kv());
      out += "node " + std::to_string(i) + " (id " + std::to_string(nodes_[i]->id) + ") acks:";
      for (const auto& [o, q] : s.acks()) out += " " + std::to_string(o) + ":" + std::to_string(q);
      out += " peers " + std::to_string(s.peers().size()) + "\n";
    });
  }
  std::set<std::string> keys;
  for (const auto& kv : kvs)
    for (const auto& [k, e] : kv) keys.insert(k);
  int shown = 0;
  for (const auto& k : keys) {
    std::string line = "  " + k + ":";
    bool differ = false;
    for (const auto& kv : kvs) {
      auto it = kv.find(k);
      if (it == kv.end()) {
        line += " absent";
      } else {
        const Meta& m = it->second.meta;
        line += " (" + std::to_string(m.node) + "/" + std::to_string(m.incarnation) + "," +
                std::to_string(m.seq) + "," + std::to_string(m.timestamp) +
                (it->second.tombstone ? ",del" : "") +
                (it->second.expires_ms != 0 ? ",expires " + std::to_string(it->second.expires_ms)
                                            : std::string()) +
                ")";
      }
      if (it == kv.end() || kvs[0].count(k) == 0 || it->second != kvs[0].find(k)->second)
        differ = true;
    }
    if (differ && shown++ < 8) out += line + "\n";
  }
  return out;
}

std::string Cluster::check_claims() {
  std::string out;
  for (int i = 0; i < size() && out.empty(); i++) {
    if (!up(i)) continue;
    nodes_[i]->store->read_state([&](const State& s) {
      const VersionVector acks = s.acks();
      for (const auto& w : acked_) {
        auto c = acks.find(w.entry.meta.incarnation);
        if (c == acks.end() || c->second < w.entry.meta.seq) continue;
        auto it = s.kv().find(w.key);
        // Absent is fine only where a tombstone at least as new was collected
        // (by this node, or by one whose claim it adopted: its horizon says);
        // a value with an expiry may have become such a tombstone.
        if (it == s.kv().end() &&
            std::any_of(acked_.begin(), acked_.end(), [&](const AckedWrite& t) {
              auto h = s.collected().find(t.entry.meta.incarnation);
              return t.key == w.key && (t.entry.tombstone || t.entry.expires_ms != 0) &&
                     !lww_less(t.entry.meta, w.entry.meta) && h != s.collected().end() &&
                     h->second >= t.entry.meta.seq;
            }))
          continue;
        if (it == s.kv().end() || lww_less(it->second.meta, w.entry.meta)) {
          out = "node " + std::to_string(i) + " claims " +
                std::to_string(w.entry.meta.incarnation) + ":" + std::to_string(c->second) +
                " but lacks seq " + std::to_string(w.entry.meta.seq) + " (key '" + w.key + "'" +
                (it == s.kv().end() ? ", absent" : ", older") + ") at " + std::to_string(now_ms_);
          return;
        }
      }
    });
  }
  return out;
}

std::string Cluster::check_versions_only_advance() {
  std::string out;
  for (int i = 0; i < size() && out.empty(); i++) {
    if (!up(i)) continue;
    nodes_[i]->store->read_state([&](const State& s) {
      for (const auto& [key, e] : s.kv()) {
        auto [it, fresh] = newest_held_[i].try_emplace(key, e.meta);
        if (fresh || !lww_less(e.meta, it->second)) {
          it->second = e.meta;
          continue;
        }
        out = "node " + std::to_string(i) + " went back on key '" + key + "': it held (" +
              std::to_string(it->second.node) + "," + std::to_string(it->second.seq) + "," +
              std::to_string(it->second.timestamp) + ") and now (" + std::to_string(e.meta.node) +
              "," + std::to_string(e.meta.seq) + "," + std::to_string(e.meta.timestamp) +
              (e.tombstone ? ",del" : "") + ") at " + std::to_string(now_ms_);
        return;
      }
    });
  }
  return out;
}

std::string Cluster::check_model() {
  if (!converged()) return "replicas hold different contents:\n" + describe_divergence();
  int probe = -1;
  for (int i = 0; i < size() && probe < 0; i++)
    if (up(i)) probe = i;
  if (probe < 0) return "";
  State::KvMap kv;
  nodes_[probe]->store->read_state([&](const State& s) { kv = s.kv(); });
  std::map<std::string, const AckedWrite*> expected;  // per key, the LWW-latest must-keep write
  std::set<std::pair<NodeId, uint64_t>> written;
  for (const auto& w : acked_) {
    written.insert({w.entry.meta.incarnation, w.entry.meta.seq});
    if (w.node < 0) continue;  // acknowledged by a node whose disk was wiped since
    auto& cur = expected[w.key];
    if (cur == nullptr || lww_less(cur->entry.meta, w.entry.meta)) cur = &w;
  }
  // A write acknowledged by a node wiped since need not survive, but if it
  // did, it supersedes by LWW like any other: a key may hold it, or be absent
  // if it was a tombstone (collected).
  // A value with an expiry may have become a tombstone (OpExpire), and that
  // tombstone may have been collected, once some node's clock passed it.
  uint64_t latest_clock = 0;
  for (int i = 0; i < size(); i++) latest_clock = std::max(latest_clock, node_now(i));
  auto expired = [&](const Entry& e) { return e.expired_at(latest_clock); };
  auto newer_tombstone_written = [&](const std::string& key, const Meta& than) {
    return std::any_of(acked_.begin(), acked_.end(), [&](const AckedWrite& w) {
      return w.key == key && (w.entry.tombstone || expired(w.entry)) &&
             lww_less(than, w.entry.meta);
    });
  };
  auto same_version = [&](const Entry& held, const Entry& written) {
    return held == written || (expired(written) && held.tombstone && held.value.empty() &&
                               held.meta == written.meta && held.expires_ms == written.expires_ms);
  };
  for (const auto& [key, w] : expected) {
    auto it = kv.find(key);
    if (it == kv.end()) {
      // The tombstone was collected.
      if (w->entry.tombstone || expired(w->entry) || newer_tombstone_written(key, w->entry.meta))
        continue;
      return "acknowledged write lost: key '" + key + "'";
    }
    if (lww_less(it->second.meta, w->entry.meta))
      return "acknowledged write lost: key '" + key + "' holds an older version";
    if (it->second.meta == w->entry.meta && !same_version(it->second, w->entry))
      return "key '" + key + "': same version, different contents";
  }
  for (const auto& [key, e] : kv) {
    if (!written.count({e.meta.incarnation, e.meta.seq}))
      return "key '" + key + "' holds a version nobody wrote";
    if (!e.tombstone && expected.count(key) && expected[key]->entry.tombstone &&
        lww_less(e.meta, expected[key]->entry.meta))
      return "deleted key '" + key + "' came back";
  }
  return "";
}

}  // namespace wavekv::sim
