#include "sim/scale.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <unordered_map>
#include <vector>

#include "state/state.h"

namespace wavekv::sim {
namespace {

class ScaleSim {
 public:
  explicit ScaleSim(const ScaleOptions& o) : o_(o), rng_(o.seed) {
    const int n = o_.nodes;
    nodes_.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; i++) {
      auto node = std::make_unique<Node>(1000 + static_cast<NodeId>(i), rng_() | 1);
      node->address = "node-" + std::to_string(i);
      by_address_[node->address] = i;
      nodes_.push_back(std::move(node));
    }
    for (int i = 0; i < n; i++) {
      Node& node = *nodes_[static_cast<size_t>(i)];
      ReplicaConfig rc = o_.replica;
      rc.address = node.address;
      rc.seeds.clear();
      if (o_.discover && i > 0) rc.seeds.push_back(nodes_[0]->address);
      if (!o_.discover) {
        // Complete membership up front, as if discovery had already run.
        for (const auto& other : nodes_) {
          if (other.get() == &node) continue;
          node.state.apply(OpSetPeer{other->id, PeerMeta{other->address, other->stream, {}}});
        }
      }
      node.replica = std::make_unique<Replica>(node.id, node.stream, std::move(rc));
      note_members(node);
    }
  }

  ScaleResult run() {
    ScaleResult r;
    const uint64_t interval = o_.replica.sync_interval_ms;
    const uint64_t t0 = now_;
    // Staggered first ticks: nodes do not sync in lockstep.
    for (int i = 0; i < size(); i++) schedule(t0 + rng_() % interval, i, Kind::kRound, {});
    run_until(t0 + o_.warmup_rounds * interval, [] { return false; });

    // The writes, all at one instant; the writers are ticked at once so they
    // push (a real node does so within its tick_ms).
    const uint64_t tw = t0 + o_.warmup_rounds * interval;
    now_ = tw;
    write_all(tw);
    r.keys = reference_.kv().size();
    target_ = reference_.digest();
    matched_ = 0;
    for (auto& node : nodes_) {
      node->matched = node->state.digest() == target_;
      matched_ += node->matched;
    }
    std::vector<uint64_t> mark = node_bytes();
    const uint64_t mark_messages = messages_;
    const auto mark_by_body = bytes_by_body_;

    const bool done =
        run_until(tw + uint64_t{o_.max_rounds} * interval, [&] { return matched_ == size(); });
    std::vector<uint64_t> after = node_bytes();
    for (size_t i = 0; i < after.size(); i++) {
      r.bytes += after[i] - mark[i];
      r.max_node_bytes = std::max(r.max_node_bytes, after[i] - mark[i]);
    }
    r.messages = messages_ - mark_messages;
    for (size_t b = 0; b < r.bytes_by_body.size(); b++)
      r.bytes_by_body[b] = bytes_by_body_[b] - mark_by_body[b];
    r.members_ms = members_at_ == 0 ? -1 : static_cast<int64_t>(members_at_ - t0);
    if (!done) {
      r.failure = "did not converge within " + std::to_string(o_.max_rounds) + " rounds (" +
                  std::to_string(matched_) + " of " + std::to_string(size()) +
                  " nodes hold every write)";
      return r;
    }
    r.converge_ms = static_cast<int64_t>(now_ - tw);
    r.rounds = static_cast<double>(r.converge_ms) / static_cast<double>(interval);
    // Digests agree; confirm the contents do, once.
    for (int i = 0; i < size(); i++) {
      if (nodes_[static_cast<size_t>(i)]->state.kv() != reference_.kv()) {
        r.failure = "node " + std::to_string(i) + " matches the digest but not the contents";
        return r;
      }
    }
    r.converged = true;

    // Steady state: one round to settle, then measure.
    const uint64_t settle = now_ + interval;
    run_until(settle, [] { return false; });
    mark = node_bytes();
    const uint64_t idle_messages = messages_;
    const auto idle_by_body = bytes_by_body_;
    run_until(settle + uint64_t{o_.idle_rounds} * interval, [] { return false; });
    if (o_.idle_rounds > 0) {
      after = node_bytes();
      uint64_t idle_bytes = 0;
      for (size_t i = 0; i < after.size(); i++) idle_bytes += after[i] - mark[i];
      const double denom = static_cast<double>(size()) * o_.idle_rounds;
      r.idle_bytes_per_node_round = static_cast<double>(idle_bytes) / denom;
      r.idle_messages_per_node_round = static_cast<double>(messages_ - idle_messages) / denom;
      for (size_t b = 0; b < r.idle_bytes_by_body.size(); b++)
        r.idle_bytes_by_body[b] = bytes_by_body_[b] - idle_by_body[b];
    }
    // With discovery, membership may still be spreading after the contents converged.
    run_until(t0 + uint64_t{o_.max_rounds} * interval, [&] { return knows_all_ == size(); });
    r.members_ms = members_at_ == 0 ? -1 : static_cast<int64_t>(members_at_ - t0);
    return r;
  }

 private:
  struct Node {
    Node(NodeId id_, uint64_t stream_) : id(id_), stream(stream_), state(id_, stream_) {}
    NodeId id;
    uint64_t stream;
    std::string address;
    State state;
    std::unique_ptr<Replica> replica;
    uint64_t bytes = 0;
    bool matched = false;    // holds every write (digest equals the target)
    bool knows_all = false;  // knows every other member
  };
  enum class Kind : uint8_t { kDeliver, kRound, kPush };
  struct Event {
    uint64_t at = 0;
    uint64_t order = 0;
    int node = 0;
    Kind kind = Kind::kDeliver;
    std::string bytes;
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      return std::tie(a.at, a.order) > std::tie(b.at, b.order);
    }
  };

  int size() const { return static_cast<int>(nodes_.size()); }

  std::vector<uint64_t> node_bytes() const {
    std::vector<uint64_t> out;
    out.reserve(nodes_.size());
    for (const auto& node : nodes_) out.push_back(node->bytes);
    return out;
  }

  void schedule(uint64_t at, int node, Kind kind, std::string bytes) {
    events_.push_back({at, order_++, node, kind, std::move(bytes)});
    std::push_heap(events_.begin(), events_.end(), Later{});
  }

  // Processes events up to time `end` (inclusive), or until `stop` holds after
  // one; leaves now_ at the last event's time (or `end`). Returns whether
  // `stop` held.
  template <typename Stop>
  bool run_until(uint64_t end, Stop stop) {
    if (stop()) return true;
    while (!events_.empty() && events_.front().at <= end) {
      std::pop_heap(events_.begin(), events_.end(), Later{});
      Event e = std::move(events_.back());
      events_.pop_back();
      now_ = e.at;
      process(e);
      if (stop()) return true;
    }
    now_ = end;
    return false;
  }

  void process(const Event& e) {
    Node& node = *nodes_[static_cast<size_t>(e.node)];
    Effects fx;
    if (e.kind == Kind::kDeliver) {
      auto msg = decode_message(e.bytes);
      if (!msg) {
        std::fprintf(stderr, "sim: undecodable message: %s\n", msg.status().to_string().c_str());
        std::abort();
      }
      fx = node.replica->on_message(node.state, *msg, now_);
    } else {
      fx = node.replica->on_tick(node.state, now_, rng_());
      if (e.kind == Kind::kRound)
        schedule(now_ + o_.replica.sync_interval_ms, e.node, Kind::kRound, {});
    }
    if (apply(e.node, std::move(fx)))  // pushed: drain the rest after the coalescing window
      schedule(now_ + std::max<uint64_t>(1, o_.replica.push_delay_ms), e.node, Kind::kPush, {});
  }

  // Applies the ops (in memory, as the store would after its WAL write), then
  // sends. Returns whether a push went out.
  bool apply(int i, Effects fx) {
    Node& node = *nodes_[static_cast<size_t>(i)];
    bool entries = false, peers = false;
    for (const auto& op : fx.persist) {
      entries = entries || std::holds_alternative<OpSetEntry>(op);
      peers = peers || std::holds_alternative<OpSetPeer>(op);
      node.state.apply(op);
    }
    if (entries && !node.matched && node.state.digest() == target_) {
      node.matched = true;
      matched_++;
    }
    if (peers) note_members(node);
    if (fx.rebootstrap) {
      std::fprintf(stderr, "sim: node %d was told to re-bootstrap in a fault-free run\n", i);
      std::abort();
    }
    bool pushed = false;
    for (const auto& out : fx.send) {
      pushed = pushed || std::holds_alternative<Push>(out.message.body);
      std::string bytes = encode_message(out.message);
      node.bytes += bytes.size();
      bytes_by_body_[out.message.body.index()] += bytes.size();
      messages_++;
      auto it = by_address_.find(out.address);
      if (it == by_address_.end()) continue;
      const uint64_t delay = o_.min_delay_ms + rng_() % (o_.max_delay_ms - o_.min_delay_ms + 1);
      schedule(now_ + delay, it->second, Kind::kDeliver, std::move(bytes));
    }
    return pushed;
  }

  void note_members(Node& node) {
    if (node.knows_all || node.state.peers().size() + 1 < nodes_.size()) return;
    node.knows_all = true;
    if (++knows_all_ == size()) members_at_ = now_;
  }

  // Each writer puts writes_per_writer distinct keys, stamped as a local write.
  void write_all(uint64_t at) {
    const int n = size();
    const int writers = o_.writers <= 0 || o_.writers >= n ? n : o_.writers;
    for (int w = 0; w < writers; w++) {
      const int i = static_cast<int>(static_cast<int64_t>(w) * n / writers);
      Node& node = *nodes_[static_cast<size_t>(i)];
      for (int k = 0; k < o_.writes_per_writer; k++) {
        Entry e;
        e.value.resize(o_.value_bytes);
        for (auto& c : e.value) c = static_cast<char>('a' + rng_() % 26);
        e.meta.node = node.id;
        e.meta.incarnation = node.stream;
        e.meta.seq = node.state.next_seq();
        e.meta.timestamp = timestamp_from_millis(at) + static_cast<uint64_t>(k);
        OpSetEntry op{"key:" + std::to_string(i) + ":" + std::to_string(k), std::move(e)};
        reference_.apply(op);
        node.state.apply(op);
      }
      schedule(at, i, Kind::kPush, {});
    }
  }

  const ScaleOptions o_;
  std::mt19937_64 rng_;
  uint64_t now_ = 1'000'000;
  uint64_t order_ = 0;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::unordered_map<std::string, int> by_address_;
  std::vector<Event> events_;  // a min-heap by (at, order)
  State reference_{1, 1};      // every write, merged: what every node must end with
  std::array<uint64_t, State::kBuckets> target_{};
  int matched_ = 0;
  int knows_all_ = 0;
  uint64_t members_at_ = 0;
  uint64_t messages_ = 0;
  std::array<uint64_t, std::variant_size_v<Body>> bytes_by_body_{};
};

}  // namespace

ScaleResult run_scale(const ScaleOptions& options) {
  ScaleSim sim(options);
  return sim.run();
}

const char* body_name(size_t index) {
  static constexpr const char* kNames[] = {"SyncRequest",   "SyncPage",    "Push",
                                           "DigestRequest", "DigestReply", "BucketRequest",
                                           "BucketReply",   "Rebootstrap"};
  static_assert(std::size(kNames) == std::variant_size_v<Body>);
  return index < std::size(kNames) ? kNames[index] : "?";
}

}  // namespace wavekv::sim
