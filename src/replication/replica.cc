#include "replication/replica.h"

#include <xxhash.h>

#include <algorithm>

#include "util/coding.h"
#include "util/overloaded.h"

namespace wavekv {

// DigestReply carries the state's digest bucket by bucket.
static_assert(State::kBuckets == kDigestBuckets,
              "the state's digest buckets are the DigestReply's buckets");

// A small deterministic generator, seeded from the caller's random bits.
class Replica::SplitMix {
 public:
  explicit SplitMix(uint64_t seed) : x_(seed) {}
  uint64_t next() {
    uint64_t z = (x_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

 private:
  uint64_t x_;
};

namespace {

// Up to `k` distinct elements of `from`, chosen at random.
template <typename T, typename Rng>
std::vector<T> sample(std::vector<T> from, size_t k, Rng& rng) {
  for (size_t i = 0; i < from.size() && i < k; i++) {
    size_t j = i + rng.next() % (from.size() - i);
    std::swap(from[i], from[j]);
  }
  if (from.size() > k) from.resize(k);
  return from;
}

// A key as status shows it: printable ASCII as is, every other byte \xNN.
std::string printable(std::string_view key) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : key) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

constexpr size_t kMembersPerMessage = 32;
constexpr uint64_t kSessionTimeoutRounds = 5;

uint64_t entry_bytes(const std::string& key, const Entry& e) {
  return key.size() + e.value.size() + 40;
}

// True if `vv` covers every (stream, seq) of `needed`.
bool covers_all(const VersionVector& vv, const VersionVector& needed) {
  for (const auto& [stream, seq] : needed) {
    auto it = vv.find(stream);
    if (seq > (it == vv.end() ? 0 : it->second)) return false;
  }
  return true;
}

}  // namespace

Replica::Replica(NodeId self, uint64_t incarnation, ReplicaConfig config)
    : self_(self), incarnation_(incarnation), config_(std::move(config)) {}

uint64_t Replica::keyed_bucket(uint64_t nonce, uint64_t bucket_digest) {
  std::string buf;
  put_u64(buf, nonce);
  put_u64(buf, bucket_digest);
  return XXH3_64bits(buf.data(), buf.size());
}

Message Replica::envelope(const State& state, Body body) const {
  Message m;
  m.from = self_;
  m.from_incarnation = incarnation_;
  m.from_address = config_.address;
  // A rotating window of the members we know: discovery reaches everyone over
  // a few exchanges without making every message O(members). The window
  // starts at a per-node offset, so different nodes gossip different members
  // at the same time (they count rounds at the same pace).
  const auto& peers = state.peers();
  if (!peers.empty()) {
    size_t start =
        (self_ * 0x9e3779b97f4a7c15ull + state.next_seq() + stats_.rounds + stats_.pages_served) %
        peers.size();
    auto it = std::next(peers.begin(), static_cast<ptrdiff_t>(start));
    for (size_t i = 0; i < std::min(kMembersPerMessage, peers.size()); i++) {
      if (it == peers.end()) it = peers.begin();
      if (!it->second.address.empty())
        m.members.push_back({it->first, it->second.incarnation, it->second.address});
      ++it;
    }
  }
  m.body = std::move(body);
  return m;
}

void Replica::note_sender(const State& state, const Message& m, uint64_t now_ms, Effects& fx) {
  auto& sender = runtime_[m.from];
  sender.last_seen_ms = now_ms;
  if (now_ms >= sender.gossip_window_ms + config_.sync_interval_ms) {
    sender.gossip_window_ms = now_ms;
    sender.gossip_learned = 0;
  }
  // New members in this message, against max_members and the sender's rate.
  size_t added = 0;
  // Whom we know: the sender speaks for itself (a new incarnation replaces the
  // old, whose progress is void); gossip only adds ids we do not know, since
  // incarnation ids carry no order and a stale rumour must not undo news.
  auto learn = [&](NodeId id, uint64_t incarnation, const std::string& address, bool direct) {
    if (id == 0 || id == self_ || address.empty() || state.is_removed(id, incarnation)) return;
    auto it = state.peers().find(id);
    PeerMeta meta;
    meta.address = address;
    meta.incarnation = incarnation;
    if (it != state.peers().end()) {
      if (!direct) return;
      if (it->second.incarnation == incarnation) {
        if (it->second.address == address) return;
        meta.acked = it->second.acked;
      }
    } else {
      if (state.peers().size() + added >= config_.max_members ||
          (!direct && sender.gossip_learned >= config_.max_new_members_per_sender)) {
        stats_.members_refused++;
        return;
      }
      added++;
      if (!direct) sender.gossip_learned++;
      runtime_[id].known_since_ms = now_ms;
    }
    fx.persist.emplace_back(std::in_place_type<OpSetPeer>, id, std::move(meta));
  };
  learn(m.from, m.from_incarnation, m.from_address, true);
  for (const auto& member : m.members) learn(member.id, member.incarnation, member.address, false);
}

// What a peer covers, from a vector it sent about itself (a request's `have`,
// a page's or digest reply's `covers`): tombstone GC waits for every member's.
// Persisted at most once per sync interval per peer.
void Replica::record_coverage(const State& state, NodeId peer, const VersionVector& covers,
                              uint64_t now_ms, Effects& fx) {
  auto it = state.peers().find(peer);
  if (it == state.peers().end()) return;
  for (const auto& op : fx.persist)  // registered or renewed by this very message
    if (const auto* sp = std::get_if<OpSetPeer>(&op); sp != nullptr && sp->peer == peer) return;
  auto& rt = runtime_[peer];
  if (it->second.acked == covers) return;
  if (rt.acked_recorded_ms != 0 && now_ms < rt.acked_recorded_ms + config_.sync_interval_ms) return;
  rt.acked_recorded_ms = now_ms;
  PeerMeta meta = it->second;
  meta.acked = covers;
  fx.persist.emplace_back(std::in_place_type<OpSetPeer>, peer, std::move(meta));
}

const VersionVector& Replica::recorded_coverage(const State& state, const Message& m) {
  static const VersionVector kNothing;
  auto it = state.peers().find(m.from);
  if (it == state.peers().end() || it->second.incarnation != m.from_incarnation) return kNothing;
  return it->second.acked;
}

uint64_t Replica::merge(const State& state, const std::vector<WireEntry>& entries,
                        const VersionVector& sender_covers, uint64_t now_ms, Source source,
                        bool* rejected, Effects& fx) {
  const uint64_t horizon_ms = now_ms + config_.max_clock_drift_ms;
  // A sender that does not cover our collected horizon may hold versions that
  // a tombstone we (or a peer whose claim we adopted) forgot had deleted; we
  // could no longer tell. Only its versions stamped after every forgotten
  // tombstone are certainly not such.
  const bool sender_clean = covers_all(sender_covers, state.collected());
  // An entry our vector covers, for a key we do not hold, is old news: the
  // newer version that covered it was a tombstone we collected, and merging
  // the entry (from a delayed page, say) would bring a deleted key back.
  // Bucket repair exists for divergence the vectors cannot see, so it merges
  // values regardless; a covered tombstone for a key we do not hold is one we
  // collected, and taking it back would only start another round of GC.
  const VersionVector covered = state.acks();
  uint64_t merged = 0;
  uint64_t added_keys = 0;  // by earlier entries of this batch, not yet applied
  uint64_t added_bytes = 0;
  for (const auto& e : entries) {
    stats_.entries_received++;
    const Meta& meta = e.entry.meta;
    if (e.key.size() > config_.max_key_bytes || e.entry.value.size() > config_.max_value_bytes) {
      // Never storable here, whoever sends it and however often: rejecting
      // it would block ack adoption with every peer that holds it, for good.
      // Skipped, and covered like a version we merged and lost by LWW.
      quarantine(e);
      continue;
    }
    if (meta.node == 0 || meta.incarnation == 0 || meta.seq == 0 ||
        timestamp_millis(meta.timestamp) > horizon_ms ||
        (e.entry.tombstone && !e.entry.value.empty()) ||
        (!sender_clean && meta.timestamp <= state.collected_before())) {
      stats_.entries_rejected++;
      *rejected = true;
      continue;
    }
    auto it = state.kv().find(e.key);
    if (it != state.kv().end() && !State::supersedes(e.entry, it->second)) continue;
    if (auto c = covered.find(meta.incarnation); it == state.kv().end() && c != covered.end() &&
                                                 meta.seq <= c->second &&
                                                 (source == Source::kSync || e.entry.tombstone))
      continue;
    // Total limits: a version that would grow the store past them is refused
    // (and counted), like any other rejection.
    const bool new_key = it == state.kv().end();
    const uint64_t old_bytes =
        new_key || it->second.tombstone ? 0 : e.key.size() + it->second.value.size();
    const uint64_t new_bytes = e.entry.tombstone ? 0 : e.key.size() + e.entry.value.size();
    if ((new_key && config_.max_total_keys != 0 &&
         state.live_keys() + state.tombstones() + added_keys >= config_.max_total_keys) ||
        (new_bytes > old_bytes && config_.max_total_bytes != 0 &&
         state.data_bytes() + added_bytes + (new_bytes - old_bytes) > config_.max_total_bytes)) {
      stats_.entries_rejected++;
      *rejected = true;
      continue;
    }
    if (new_key) added_keys++;
    added_bytes += new_bytes > old_bytes ? new_bytes - old_bytes : 0;
    fx.persist.emplace_back(std::in_place_type<OpSetEntry>, e.key, e.entry);
    stats_.entries_merged++;
    merged++;
  }
  return merged;
}

void Replica::quarantine(const WireEntry& e) {
  stats_.entries_quarantined++;
  quarantined_keys_.push_back(printable(std::string_view(e.key).substr(0, 64)));
  if (quarantined_keys_.size() > kQuarantinedKeysShown) quarantined_keys_.pop_front();
  const Meta& meta = e.entry.meta;
  auto& seqs = quarantined_[meta.incarnation];
  if (seqs.count(meta.seq)) return;
  // The key is kept whole: a cut one would not find its newer versions.
  seqs.emplace(meta.seq, std::make_pair(e.key.size() <= 4096 ? e.key : std::string(), meta));
  if (++quarantined_count_ <= kMaxQuarantined) return;
  auto highest = std::max_element(quarantined_.begin(), quarantined_.end(), [](auto& a, auto& b) {
    return (a.second.empty() ? 0 : a.second.rbegin()->first) <
           (b.second.empty() ? 0 : b.second.rbegin()->first);
  });
  highest->second.erase(std::prev(highest->second.end()));
  quarantined_count_--;
}

VersionVector Replica::served_covers(const State& state) const {
  VersionVector out = state.acks();
  for (const auto& [stream, seqs] : quarantined_) {
    auto c = out.find(stream);
    if (c == out.end()) continue;
    for (const auto& [seq, version] : seqs) {
      if (seq > c->second) break;
      auto held = state.kv().find(version.first);
      // A newer version of the key here stands in for it, as for any version
      // we lost by LWW (a key too long to keep never does).
      if (!version.first.empty() && held != state.kv().end() &&
          !lww_less(held->second.meta, version.second))
        continue;
      c->second = seq - 1;
      break;
    }
  }
  return out;
}

// Every current version in `buckets`, up to a bound (repair resumes at the
// next check). A scan of the whole map: repair is rare.
std::vector<WireEntry> Replica::entries_in_buckets(const State& state,
                                                   const std::vector<uint16_t>& buckets) const {
  std::set<uint16_t> wanted(buckets.begin(), buckets.end());
  std::vector<WireEntry> out;
  uint64_t bytes = 0;
  for (const auto& [key, e] : state.kv()) {
    if (!wanted.count(static_cast<uint16_t>(State::bucket_of(key)))) continue;
    if (bytes >= config_.max_page_bytes * 4) break;
    out.push_back({key, e});
    bytes += entry_bytes(key, e);
  }
  return out;
}

SyncPage Replica::build_page(const State& state, const SyncRequest& req) const {
  SyncPage page;
  page.session = req.session;
  page.covers = served_covers(state);
  if (req.cursor == Cursor{}) page.stable = stable(state);  // read from first pages only
  page.collected = state.collected();
  page.collected_before = state.collected_before();
  page.clock = state.max_timestamp();
  page.epoch = epoch_;
  page.arrivals = state.arrivals();
  page.last = true;
  const auto& index = state.index();
  uint64_t bytes = 0;
  auto add = [&](const std::string& key) {
    const Entry& e = state.kv().find(key)->second;
    page.entries.push_back({key, e});
    bytes += entry_bytes(key, e);
  };
  auto above_have = [&](StreamId origin, uint64_t seq) {
    auto h = req.have.find(origin);
    return h == req.have.end() || seq > h->second;
  };
  if (!(req.cursor == Cursor{})) {
    // A next page. A version claimed by the first page and not shipped yet may
    // have been superseded since the previous page by one that arrived behind
    // the cursor, where no later page looks: ship those arrivals now, or say
    // that this session cannot adopt its claim.
    const Cursor& c = req.cursor;
    bool remembered = epoch_ != 0 && req.epoch == epoch_ &&
                      state.for_each_arrival_after(req.after, [&](StreamId origin, uint64_t seq) {
                        bool behind = origin < c.origin || (origin == c.origin && seq < c.seq);
                        if (!behind || !above_have(origin, seq)) return;
                        auto oit = index.find(origin);
                        if (oit == index.end()) return;
                        // Superseded again: its successor is a later arrival.
                        if (auto sit = oit->second.find(seq); sit != oit->second.end())
                          add(*sit->second);
                      });
    page.lost_track = !remembered;
  }
  size_t in_range = 0;  // at least one per page, so the cursor always moves
  for (auto oit = index.lower_bound(req.cursor.origin); oit != index.end(); ++oit) {
    const StreamId origin = oit->first;
    uint64_t from = 1;
    if (auto h = req.have.find(origin); h != req.have.end()) from = h->second + 1;
    if (origin == req.cursor.origin) from = std::max(from, req.cursor.seq);
    for (auto sit = oit->second.lower_bound(from); sit != oit->second.end(); ++sit) {
      if (in_range > 0 &&
          (page.entries.size() >= config_.max_page_entries || bytes >= config_.max_page_bytes)) {
        page.last = false;
        page.next = Cursor{origin, sit->first};
        return page;
      }
      add(*sit->second);
      in_range++;
    }
  }
  return page;
}

// 0 stands for a seed whose id we do not know yet.
bool Replica::has_session_with(NodeId peer) const {
  return std::any_of(sessions_.begin(), sessions_.end(),
                     [&](const auto& s) { return s.second.peer == peer; });
}

void Replica::start_session(const State& state, NodeId peer, const std::string& address,
                            uint64_t now_ms, Effects& fx) {
  uint64_t id = next_session_++;
  Session s;
  s.peer = peer;
  s.address = address;
  s.have = state.acks();
  s.progress_ms = now_ms;
  s.request = SyncRequest{id, s.have, Cursor{}, stable(state)};
  fx.send.push_back({peer, address, envelope(state, s.request)});
  sessions_[id] = std::move(s);
}

namespace {
// Lowers `into` to the pointwise minimum with `other` (a stream missing from
// `other` counts as 0).
void lower_to(VersionVector& into, const VersionVector& other) {
  for (auto it = into.begin(); it != into.end();) {
    auto o = other.find(it->first);
    if (o == other.end()) {
      it = into.erase(it);
    } else {
      it->second = std::min(it->second, o->second);
      ++it;
    }
  }
}
}  // namespace

VersionVector Replica::stable(const State& state) {
  VersionVector out = state.acks();
  for (const auto& [id, meta] : state.peers()) lower_to(out, meta.acked);
  return out;
}

VersionVector Replica::gc_floor(const State& state) const {
  VersionVector out = stable(state);
  for (const auto& [id, meta] : state.peers()) {
    auto rt = runtime_.find(id);
    if (rt == runtime_.end() || rt->second.stable_incarnation != meta.incarnation) return {};
    lower_to(out, rt->second.stable);
  }
  return out;
}

void Replica::note_stable(const Message& m, const VersionVector& stable) {
  auto& rt = runtime_[m.from];
  rt.stable = stable;
  rt.stable_incarnation = m.from_incarnation;
}

// docs/PROTOCOL.md, "Eviction": a member that has been silent longer than the
// expiry is removed for good (this incarnation of it), so it stops pinning
// tombstones.
void Replica::evict_expired(const State& state, uint64_t now_ms, Effects& fx) {
  if (config_.member_expiry_ms == 0) return;
  // A node that has heard from nobody is the one cut off: it evicts no one,
  // so that when the link returns it accepts the others' verdict on itself.
  bool heard_anyone = false;
  for (const auto& [id, rt] : runtime_)
    heard_anyone = heard_anyone ||
                   (rt.last_seen_ms != 0 && now_ms < rt.last_seen_ms + config_.member_expiry_ms);
  if (!heard_anyone) return;
  for (const auto& [id, meta] : state.peers()) {
    uint64_t last = started_ms_;
    if (auto rt = runtime_.find(id); rt != runtime_.end())
      last = std::max(last, rt->second.last_seen_ms);
    if (now_ms >= last + config_.member_expiry_ms) {
      fx.persist.emplace_back(std::in_place_type<OpRemovePeer>, id, meta.incarnation);
      runtime_.erase(id);
      stats_.members_evicted++;
    }
  }
}

// A tombstone may be forgotten once every current member covers it: none of
// them can then hold (or send) an older version of its key. Walks only the
// tombstone index, per origin stream up to the lowest coverage among members.
void Replica::collect_tombstones(const State& state, uint64_t now_ms, Effects& fx) {
  // Until every seed is a known member we may not know who else holds data.
  for (const auto& seed : config_.seeds) {
    bool known = std::any_of(state.peers().begin(), state.peers().end(),
                             [&](const auto& p) { return p.second.address == seed; });
    if (!known) return;
  }
  uint32_t budget = config_.max_tombstones_dropped_per_round;
  const VersionVector floors = gc_floor(state);
  for (const auto& [stream, seqs] : state.tombstone_index()) {
    auto f = floors.find(stream);
    const uint64_t floor = f == floors.end() ? 0 : f->second;
    for (auto it = seqs.begin(); it != seqs.end() && it->first <= floor && budget > 0; ++it) {
      const Entry& e = state.kv().find(*it->second)->second;
      if (timestamp_millis(e.meta.timestamp) + config_.tombstone_grace_ms > now_ms) continue;
      fx.persist.emplace_back(std::in_place_type<OpDropTombstone>, *it->second, e.meta);
      stats_.tombstones_dropped++;
      budget--;
    }
    if (budget == 0) break;
  }
}

Effects Replica::on_tick(const State& state, uint64_t now_ms, uint64_t random) {
  Effects fx;
  SplitMix rng(random);
  // A node that did not run (SIGSTOP, a paused VM, a suspended host) cannot
  // judge anyone's silence over that time: after a gap between ticks of half
  // the expiry or more, silence counts afresh from now, as after a start.
  // Else a node thawed after its peers evicted it would evict the one whose
  // frame it happened to read last (docs/PROTOCOL.md, "Eviction").
  if (!first_tick_ && config_.member_expiry_ms != 0 &&
      now_ms >= last_tick_ms_ + config_.member_expiry_ms / 2)
    started_ms_ = now_ms;
  last_tick_ms_ = now_ms;
  PeerList peers;
  for (const auto& [id, meta] : state.peers())
    if (!meta.address.empty()) peers.emplace_back(id, meta.address);
  if (first_tick_ || now_ms >= last_round_ms_ + config_.sync_interval_ms)
    run_round(state, peers, now_ms, rng, fx);
  if (!peers.empty() && now_ms >= last_push_ms_ + config_.push_delay_ms)
    push_own_writes(state, peers, now_ms, rng, fx);
  return fx;
}

void Replica::run_round(const State& state, const PeerList& peers, uint64_t now_ms, SplitMix& rng,
                        Effects& fx) {
  if (first_tick_) {
    started_ms_ = now_ms;
    epoch_ = rng.next() | 1;
    // Session ids must not repeat across restarts: a delayed page of a
    // session from before a crash must not pass for a page of a new one.
    next_session_ = rng.next() >> 1;
  }
  first_tick_ = false;
  last_round_ms_ = now_ms;
  stats_.rounds++;
  retry_or_abort_sessions(state, now_ms, fx);
  // Seeds are contacted until they are known members: hearing first from
  // someone else must not leave us in a clique that never meets the seed.
  for (const auto& seed : config_.seeds) {
    bool known =
        std::any_of(peers.begin(), peers.end(), [&](const auto& p) { return p.second == seed; });
    bool busy = has_session_with(0);
    if (!known && !busy) start_session(state, 0, seed, now_ms, fx);
  }
  for (const auto& [id, address] : sample(peers, config_.fanout, rng)) {
    bool busy = has_session_with(id);
    if (!busy) start_session(state, id, address, now_ms, fx);
  }
  evict_expired(state, now_ms, fx);
  if (config_.collect_tombstones) collect_tombstones(state, now_ms, fx);
  if (!peers.empty() && config_.digest_every_rounds != 0 &&
      stats_.rounds % config_.digest_every_rounds == 0) {
    const auto& [id, address] = peers[rng.next() % peers.size()];
    uint64_t nonce = rng.next() | 1;
    runtime_[id].digest_nonce = nonce;
    runtime_[id].digest_sent_ms = now_ms;
    fx.send.push_back({id, address, envelope(state, DigestRequest{nonce})});
  }
}

// A session that made no progress for a round asks again for the page it is
// waiting for (requests are idempotent: a page is rebuilt from its cursor,
// with what arrived behind it since the previous page), so a lost message
// costs a round, not the session. One that made no progress for
// kSessionTimeoutRounds is given up; a long one that keeps progressing (a
// large bootstrap) is not.
void Replica::retry_or_abort_sessions(const State& state, uint64_t now_ms, Effects& fx) {
  const uint64_t timeout = kSessionTimeoutRounds * config_.sync_interval_ms;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    Session& s = it->second;
    if (now_ms >= s.progress_ms + timeout) {
      stats_.sessions_aborted++;
      it = sessions_.erase(it);
      continue;
    }
    if (now_ms >= s.progress_ms + config_.sync_interval_ms) {
      stats_.requests_retried++;
      fx.send.push_back({s.peer, s.address, envelope(state, s.request)});
    }
    ++it;
  }
}

// Pushes our own recent writes. The "queue" is the index range of our stream
// above pushed_upto_: bounded per tick, and drained over the next ticks.
void Replica::push_own_writes(const State& state, const PeerList& peers, uint64_t now_ms,
                              SplitMix& rng, Effects& fx) {
  auto own = state.index().find(state.stream());
  if (own == state.index().end()) return;
  Push push;
  uint64_t bytes = 0;
  for (auto it = own->second.upper_bound(pushed_upto_);
       it != own->second.end() && push.entries.size() < config_.max_page_entries &&
       bytes < config_.max_page_bytes;
       ++it) {
    const Entry& e = state.kv().find(*it->second)->second;
    push.entries.push_back({*it->second, e});
    bytes += entry_bytes(*it->second, e);
    pushed_upto_ = it->first;
  }
  if (push.entries.empty()) return;
  last_push_ms_ = now_ms;
  for (const auto& [id, address] : sample(peers, config_.fanout, rng)) {
    fx.send.push_back({id, address, envelope(state, push)});
    stats_.pushes_sent++;
  }
}

Effects Replica::on_message(const State& state, const Message& m, uint64_t now_ms) {
  Effects fx;
  if (m.from == 0 || m.from == self_) return fx;
  if (state.is_removed(m.from, m.from_incarnation)) {
    // An evicted member may hold versions whose tombstones are gone here
    // (docs/PROTOCOL.md, "Eviction"). Nothing it sends is taken; it must
    // start over as a new incarnation.
    if (!std::holds_alternative<Rebootstrap>(m.body)) {
      stats_.rebootstraps_sent++;
      fx.send.push_back({m.from, m.from_address,
                         envelope(state, Rebootstrap{"this incarnation was evicted after being "
                                                     "unreachable; wipe and bootstrap again"})});
    }
    return fx;
  }
  if (state.peers().count(m.from) == 0 && state.peers().size() >= config_.max_members) {
    // A full table: an unknown sender is not heard (nor remembered) at all.
    stats_.members_refused++;
    return fx;
  }
  note_sender(state, m, now_ms, fx);
  Incoming in{state, m, now_ms, fx};
  std::visit(Overloaded{
                 [&](const SyncRequest& b) { on_sync_request(in, b); },
                 [&](const SyncPage& b) { on_sync_page(in, b); },
                 [&](const Push& b) { on_push(in, b); },
                 [&](const DigestRequest& b) { on_digest_request(in, b); },
                 [&](const DigestReply& b) { on_digest_reply(in, b); },
                 [&](const BucketRequest& b) { on_bucket_request(in, b); },
                 [&](const BucketReply& b) { on_bucket_reply(in, b); },
                 [&](const Rebootstrap& b) { on_rebootstrap(in, b); },
             },
             m.body);
  return fx;
}

void Replica::on_sync_request(Incoming& in, const SyncRequest& req) {
  if (req.cursor == Cursor{}) {
    record_coverage(in.state, in.m.from, req.have, in.now_ms, in.fx);
    note_stable(in.m, req.stable);
  }
  stats_.pages_served++;
  in.reply(envelope(in.state, build_page(in.state, req)));
}

void Replica::on_sync_page(Incoming& in, const SyncPage& page) {
  bool rejected = false;
  merge(in.state, page.entries, page.covers, in.now_ms, Source::kSync, &rejected, in.fx);
  auto it = sessions_.find(page.session);
  if (it == sessions_.end()) return;  // stray or finished: merged, acks untouched
  Session& s = it->second;
  if (s.peer == 0) s.peer = in.m.from;  // a seed answered: now we know its id
  if (s.peer != in.m.from) return;
  // It answered a request of ours sent no earlier than progress_ms.
  auto& heard = runtime_[in.m.from].heard_us_ms;
  heard = std::max(heard, s.progress_ms);
  if (!s.got_first_page && !take_first_page(in, page, s)) {
    sessions_.erase(it);
    return;
  }
  // An answer to the first request built before the page the claim came
  // from: the responder may have taken writes between the two, which this
  // one does not ship though the claim covers them (its entries were merged
  // above; that is always safe). Not part of this chain.
  if (page.epoch == s.epoch && page.arrivals < s.first_arrivals) return;
  s.rejected = s.rejected || rejected;
  // Every page must come from the process that made the claim: a responder
  // that restarted (or was wiped) in between may hold less than it claimed,
  // and a duplicated first request may be answered by both.
  s.lost_track = s.lost_track || page.lost_track || page.epoch == 0 || page.epoch != s.epoch;
  if (!page.last) {
    // A second copy of a page we already followed (a duplicate, or the
    // answer to a resent request): asking again would run two chains.
    if (s.request.cursor == page.next) return;
    s.request = SyncRequest{page.session, s.have, page.next, {}, page.epoch, page.arrivals};
    s.address = in.m.from_address;
    s.progress_ms = in.now_ms;
    in.reply(envelope(in.state, s.request));
    return;
  }
  // The whole delta is in: adopt the responder's claim, in the same batch as
  // the last page's entries, unless anything was rejected or the responder
  // lost track of what arrived behind the cursor.
  if (s.rejected || s.lost_track) {
    stats_.sessions_aborted++;
  } else if (!covers_all(in.state.acks(), s.claim.collected) &&
             in.state.holds_version_stamped_by(s.claim.collected_before, s.claim.covers)) {
    // The first page's check again, for what arrived since from others: a
    // version the claimant forgot a tombstone over may have come in meanwhile
    // (from a member that was away while the tombstone was collected); with
    // the horizon adopted it would pass for a clean one and spread. No one can
    // tell which versions those are: start over, as on a first page.
    stats_.rebootstraps_needed++;
    in.fx.rebootstrap = true;
  } else {
    in.fx.persist.emplace_back(std::move(s.claim));
    stats_.sessions_completed++;
  }
  sessions_.erase(it);
}

bool Replica::take_first_page(Incoming& in, const SyncPage& page, Session& s) {
  note_stable(in.m, page.stable);
  s.epoch = page.epoch;
  s.first_arrivals = page.arrivals;
  s.claim = OpAdoptAcks{page.covers, page.collected, page.collected_before, page.clock};
  s.got_first_page = true;
  if (!possible_claim(in.state, page)) {
    // A claim no correct node can make: a wipe on its word would destroy data
    // (a buggy or compromised member). Not adopted, and nothing wiped.
    stats_.claims_refused++;
    return false;
  }
  record_coverage(in.state, in.m.from, page.covers, in.now_ms, in.fx);
  if (!covers_all(in.state.acks(), page.collected) &&
      in.state.holds_version_stamped_by(page.collected_before)) {
    // The responder (or a node whose claim it adopted) forgot tombstones we
    // never saw, and we hold versions old enough to be ones they deleted: no
    // one can tell which. Start over from an empty directory.
    stats_.rebootstraps_needed++;
    in.fx.rebootstrap = true;
    return false;
  }
  // A clock beyond the drift bound is refused like an entry stamped there.
  if (timestamp_millis(page.clock) > in.now_ms + config_.max_clock_drift_ms) {
    stats_.entries_rejected++;
    s.rejected = true;
  }
  return true;
}

void Replica::on_push(Incoming& in, const Push& push) {
  bool rejected = false;  // a push never moves acks
  merge(in.state, push.entries, recorded_coverage(in.state, in.m), in.now_ms, Source::kSync,
        &rejected, in.fx);
}

void Replica::on_digest_request(Incoming& in, const DigestRequest& req) {
  DigestReply reply;
  reply.nonce = req.nonce;
  reply.covers = served_covers(in.state);
  for (size_t i = 0; i < kDigestBuckets; i++)
    reply.buckets[i] = keyed_bucket(req.nonce, in.state.digest()[i]);
  in.reply(envelope(in.state, std::move(reply)));
}

void Replica::on_digest_reply(Incoming& in, const DigestReply& reply) {
  auto& rt = runtime_[in.m.from];
  // Only an answer to our own fresh nonce counts; anything else proves nothing.
  if (rt.digest_nonce == 0 || reply.nonce != rt.digest_nonce) return;
  rt.digest_nonce = 0;
  rt.heard_us_ms = std::max(rt.heard_us_ms, rt.digest_sent_ms);
  record_coverage(in.state, in.m.from, reply.covers, in.now_ms, in.fx);
  if (reply.covers != served_covers(in.state)) return;  // still catching up: not comparable
  BucketRequest req;
  for (size_t i = 0; i < kDigestBuckets; i++) {
    if (reply.buckets[i] != keyed_bucket(reply.nonce, in.state.digest()[i]) &&
        req.buckets.size() < config_.max_repair_buckets)
      req.buckets.push_back(static_cast<uint16_t>(i));
  }
  if (req.buckets.empty()) return;
  stats_.digest_mismatches++;
  in.reply(envelope(in.state, std::move(req)));
}

void Replica::on_bucket_request(Incoming& in, const BucketRequest& req) {
  BucketReply reply;
  reply.buckets = req.buckets;
  reply.entries = entries_in_buckets(in.state, req.buckets);
  in.reply(envelope(in.state, std::move(reply)));
}

void Replica::on_bucket_reply(Incoming& in, const BucketReply& reply) {
  bool rejected = false;
  stats_.repairs += merge(in.state, reply.entries, recorded_coverage(in.state, in.m), in.now_ms,
                          Source::kBucketRepair, &rejected, in.fx);
  // Bucket repair goes both ways: send back our versions of the same buckets.
  Push back{entries_in_buckets(in.state, reply.buckets)};
  if (!back.entries.empty()) in.reply(envelope(in.state, std::move(back)));
}

// A collected horizon only ever covers what its holder covers: a node drops a
// tombstone only at or below its GC floor, which is at most its own vector,
// and adopts a horizon only with the claim that covers it. And no one covers
// seqs of our own stream that we never issued.
bool Replica::possible_claim(const State& state, const SyncPage& page) {
  if (!covers_all(page.covers, page.collected)) return false;
  auto own = page.collected.find(state.stream());
  return own == page.collected.end() || own->second < state.next_seq();
}

// The protocol sends Rebootstrap only to an incarnation the sender evicted,
// which it does only after not hearing from it for member_expiry_ms
// (docs/PROTOCOL.md, "Eviction", "Checked claims"). So it is honoured only
// from a sender we knew as a member before this message, that we have known
// for at least the expiry (or since before this process started), and that
// has not answered a request of this incarnation's within the expiry: an
// answer proves it heard from us.
void Replica::on_rebootstrap(Incoming& in, const Rebootstrap&) {
  // A member expiry of 0 here means this cluster evicts no one.
  const uint64_t expiry = config_.member_expiry_ms == 0 ? UINT64_MAX : config_.member_expiry_ms;
  auto within_expiry = [&](uint64_t since) {
    return since != 0 && (expiry == UINT64_MAX || in.now_ms < since + expiry);
  };
  bool refutable = in.state.peers().count(in.m.from) == 0;
  if (auto rt = runtime_.find(in.m.from); rt != runtime_.end())
    refutable = refutable || within_expiry(rt->second.heard_us_ms) ||
                within_expiry(rt->second.known_since_ms);
  if (refutable) {
    stats_.rebootstraps_refused++;
    return;
  }
  in.fx.rebootstrap = true;
}

}  // namespace wavekv
