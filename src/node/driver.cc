#include "node/driver.h"

#include <algorithm>
#include <bit>
#include <cassert>

namespace wavekv {
namespace {

// The wire's limits (at least this node's own): an entry larger than this
// node takes must not fail the whole frame, with every other entry and the
// session's progress in it; the replica quarantines that one entry.
DecodeLimits decode_limits(const ReplicaConfig& rc) {
  DecodeLimits limits;
  limits.max_key_bytes = std::max(limits.max_key_bytes, rc.max_key_bytes);
  limits.max_value_bytes = std::max(limits.max_value_bytes, rc.max_value_bytes);
  return limits;
}

// The clock offset estimate's window, and how long a peer's wire version is
// believed after its last frame in it.
constexpr uint64_t kClockWindowMs = 10'000;
constexpr uint64_t kWireVersionMemoryMs = 60'000;
constexpr size_t kMaxWireAddresses = 4096;

// Whether a message's entries carry an expiry (docs/FORMAT.md, "Wire versions").
bool carries_expiry(const Message& m) {
  const std::vector<WireEntry>* entries = nullptr;
  if (const auto* p = std::get_if<SyncPage>(&m.body)) entries = &p->entries;
  if (const auto* p = std::get_if<Push>(&m.body)) entries = &p->entries;
  if (const auto* p = std::get_if<BucketReply>(&m.body)) entries = &p->entries;
  return entries != nullptr && std::any_of(entries->begin(), entries->end(),
                                           [](const auto& e) { return e.entry.expires_ms != 0; });
}

}  // namespace

Driver::Driver(ReplicatedStore& store, Transport& transport, DriverConfig config)
    : store_(store),
      transport_(transport),
      config_(std::move(config)),
      limits_(decode_limits(config_.replica)),
      replica_(store.node_id(), store.incarnation(), config_.replica),
      clock_(config_.replica.max_clock_offset_ms, kClockWindowMs) {
  assert(config_.tick_ms > 0 && config_.max_inbound_frames > 0);
  assert(config_.max_wire_version >= kOldestWireVersion &&
         config_.max_wire_version <= kWireVersion);
}

bool Driver::enqueue(std::string frame, PeerIdentity from, uint64_t received_ms) {
  std::lock_guard lock(mu_);
  if (inbound_.size() >= config_.max_inbound_frames) {
    inbound_dropped_++;
    return false;
  }
  inbound_.push_back({std::move(frame), std::move(from), received_ms});
  return true;
}

bool Driver::local_write_committed() {
  std::lock_guard lock(mu_);
  if (local_write_) return false;
  local_write_ = true;
  return true;
}

bool Driver::has_work() const {
  std::lock_guard lock(mu_);
  return local_write_ || !inbound_.empty();
}

DriverReport Driver::report() const {
  std::lock_guard lock(mu_);
  DriverReport s = report_;
  s.inbound_dropped = inbound_dropped_;
  return s;
}

StepResult Driver::step(uint64_t now_ms, uint64_t random) {
  if (worker_ == std::thread::id()) worker_ = std::this_thread::get_id();
  assert(worker_ == std::this_thread::get_id() && "Driver::step from a second thread");
  std::deque<Inbound> frames;  // at most max_inbound_frames
  bool push_owed = false;      // a local write's push has not left yet
  {
    std::lock_guard lock(mu_);
    frames.swap(inbound_);
    push_owed = local_write_;
    local_write_ = false;
  }
  for (const auto& in : frames) {
    if (rebootstrap_) break;
    handle_frame(in.frame, in.from, in.received_ms != 0 ? in.received_ms : now_ms, now_ms);
  }
  check_clock(now_ms);
  // next_tick_ms_ is never set more than tick_ms ahead: beyond that, the
  // clock stepped back, and waiting for it to catch up would stall the node.
  const bool due = push_owed || now_ms >= next_tick_ms_ || next_tick_ms_ > now_ms + config_.tick_ms;
  if (due && !rebootstrap_) tick(now_ms, random, push_owed);
  if (rebootstrap_) next_tick_ms_ = now_ms + config_.tick_ms;

  std::lock_guard lock(mu_);
  report_.replica = replica_.stats();
  report_.quarantined_keys.assign(replica_.quarantined_keys().begin(),
                                  replica_.quarantined_keys().end());
  report_.last_seen = replica_.last_seen();
  report_.decode_errors = decode_errors_;
  report_.persist_errors = persist_errors_;
  report_.impersonations_refused = impersonations_refused_;
  report_.clock_refusing_writes = clock_refusing_writes_;
  report_.wire_v2_frames = wire_v2_frames_;
  report_.wire_older_frames = wire_older_frames_;
  return {next_tick_ms_, rebootstrap_};
}

void Driver::handle_frame(const std::string& frame, const PeerIdentity& from, uint64_t received_ms,
                          uint64_t now_ms) {
  auto m = decode_message(frame, limits_);
  if (!m || m->version > config_.max_wire_version) {
    decode_errors_++;
    return;
  }
  // The identity rule (docs/SECURITY.md, "Peers"): with certificates a
  // member speaks only as itself. A message claiming another id would let
  // one compromised node act (acks, evictions, rebootstraps) in any other's
  // name; it changes nothing.
  if (from.node_id && *from.node_id != m->from) {
    impersonations_refused_++;
    // Powers of two: a member that keeps trying cannot flood the log.
    if (config_.log && std::has_single_bit(impersonations_refused_))
      config_.log(LogLevel::kWarn,
                  "refused a peer message: its certificate is node " +
                      std::to_string(*from.node_id) + " but the message says it is from node " +
                      std::to_string(m->from) + " (" + std::to_string(impersonations_refused_) +
                      " refused so far)");
    return;
  }
  Effects fx;
  store_.read_state([&](const State& s) { fx = replica_.on_message(s, *m, now_ms); });
  // Before the replies leave, so they go by what this frame says of its sender.
  heard_version(m->from_address, m->version, now_ms);
  if (m->version == 2) wire_v2_frames_++;
  if (m->version < kWireVersion) wire_older_frames_++;
  execute(std::move(fx), now_ms);
  // Only members' clocks count: the replica heard from this sender just now
  // (a message it ignored, from an evicted or refused sender, leaves no mark).
  if (m->version >= 3 && replica_.last_seen_ms(m->from) == now_ms)
    clock_.observe(m->from, m->sent_at_ms, received_ms);
}

Driver::PeerWire& Driver::wire_of(const std::string& address) {
  if (wire_.size() >= kMaxWireAddresses && !wire_.count(address)) wire_.clear();
  return wire_[address];
}

uint8_t Driver::wire_version_for(const std::string& address, uint64_t now_ms, bool expiry) {
  PeerWire& w = wire_of(address);
  const uint64_t n = w.sends++;
  auto recent = [&](uint64_t at) { return at != 0 && now_ms <= at + kWireVersionMemoryMs; };
  const uint8_t top = config_.max_wire_version;
  if (top == kOldestWireVersion) return top;
  // Entries with an expiry go only in a version that keeps it, whatever the
  // peer spoke lately: an older version turns them into tombstones
  // (put_entries), and a peer that speaks ours but was taken for an older
  // one (peers try both versions on each other at first) would miss those
  // keys until they expire. A peer that really is older drops the frame:
  // what it lacks waits for its upgrade (docs/FORMAT.md, "Wire versions").
  if (expiry && top >= kExpiryWireVersion) return top;
  // The newest version it spoke lately, if any.
  uint8_t heard = 0;
  for (uint8_t v = kOldestWireVersion; v <= kWireVersion; v++)
    if (recent(w.last_ms[v])) heard = v;
  if (heard >= top) return top;
  // A peer that spoke only an older version lately still gets ours now and
  // then (a frame it drops, at worst) so that one upgraded since is noticed;
  // one not heard from at all gets every other frame in ours and the oldest.
  if (heard != 0) return n % 16 == 0 ? top : heard;
  return n % 2 == 0 ? top : kOldestWireVersion;
}

void Driver::heard_version(const std::string& address, uint8_t version, uint64_t now_ms) {
  if (address.empty()) return;
  PeerWire& w = wire_of(address);
  if (version <= kWireVersion) w.last_ms[version] = now_ms;
}

void Driver::check_clock(uint64_t now_ms) {
  ClockReading reading = clock_.read(now_ms);
  const bool refuse = config_.replica.max_clock_offset_ms != 0 && reading.out_of_bounds;
  if (refuse != clock_refusing_writes_) {
    clock_refusing_writes_ = refuse;
    const int64_t off = reading.own_offset_ms;
    const std::string where =
        std::to_string(off < 0 ? -off : off) + " ms " + (off < 0 ? "behind" : "ahead of") +
        " its peers' (" + std::to_string(reading.beyond) + " of " +
        std::to_string(reading.offsets_ms.size()) + " peers are further than max_clock_offset_ms " +
        std::to_string(config_.replica.max_clock_offset_ms) + " ms)";
    if (refuse) {
      const std::string why = "this node's clock is about " + where +
                              ": client writes are refused until it is fixed (replication goes on)";
      store_.refuse_client_writes(why);
      if (config_.log) config_.log(LogLevel::kError, why);
    } else {
      store_.refuse_client_writes("");
      if (config_.log)
        config_.log(LogLevel::kInfo,
                    "this node's clock is within max_clock_offset_ms of its "
                    "peers' again: client writes are accepted");
    }
  }
  std::lock_guard lock(mu_);
  report_.clock = std::move(reading);
}

void Driver::tick(uint64_t now_ms, uint64_t random, bool push_owed) {
  const uint64_t pushes_before = replica_.stats().pushes_sent;
  Effects fx;
  store_.read_state([&](const State& s) { fx = replica_.on_tick(s, now_ms, random); });
  execute(std::move(fx), now_ms);
  next_tick_ms_ = now_ms + config_.tick_ms;
  if (push_owed && replica_.stats().pushes_sent == pushes_before) {
    // Held back by the push spacing: tick again when it allows, not a whole
    // tick_ms later. Once: if that tick cannot push either (no peers), the
    // regular ticks carry on.
    next_tick_ms_ = std::min(next_tick_ms_, std::max(replica_.next_push_at_ms(), now_ms));
  }
}

void Driver::execute(Effects fx, uint64_t now_ms) {
  if (!fx.persist.empty()) {
    Status st = store_.apply_ops(std::move(fx.persist));
    if (!st.is_ok()) {
      persist_errors_++;
      if (config_.log)
        config_.log(LogLevel::kError,
                    "persisting replicated ops failed; nothing sent: " + st.to_string());
      return;
    }
  }
  for (auto& out : fx.send) {
    out.message.version = wire_version_for(out.address, now_ms, carries_expiry(out.message));
    out.message.sent_at_ms = now_ms;
    transport_.send(out.address, encode_message(out.message));
  }
  if (fx.rebootstrap) {
    if (config_.log)
      config_.log(LogLevel::kWarn,
                  "this node must wipe its data and bootstrap again: a peer evicted it, or forgot "
                  "tombstones older than versions this node holds");
    rebootstrap_ = true;
  }
}

}  // namespace wavekv
