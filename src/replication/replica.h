// The replication protocol as a pure state machine: no sockets, threads, clock
// or randomness inside. Time and random bits come in as arguments, messages
// come in as calls, and what to persist and what to send come out as data.
//
// Ordering contract (docs/PROTOCOL.md): the driver persists Effects::persist
// (one atomic batch, durable per the store's mode) before it sends any of
// Effects::send, and calls the replica again only after both.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "replication/messages.h"
#include "state/state.h"
#include "wavekv/replication.h"

namespace wavekv {

struct Outgoing {
  NodeId to = 0;  // 0 for a seed whose id is not known yet
  std::string address;
  Message message;
};

struct Effects {
  std::vector<StateOp> persist;
  std::vector<Outgoing> send;
  bool rebootstrap = false;  // a peer said we were evicted: wipe and start over
};

class Replica {
 public:
  Replica(NodeId self, uint64_t incarnation, ReplicaConfig config);

  Effects on_tick(const State& state, uint64_t now_ms, uint64_t random);
  Effects on_message(const State& state, const Message& message, uint64_t now_ms);

  const ReplicaStats& stats() const { return stats_; }
  // The earliest now_ms at which on_tick may push again (pushes are spaced
  // push_delay_ms apart). A driver that ticks coarsely uses it to tick once
  // more for a write that the spacing held back.
  uint64_t next_push_at_ms() const { return last_push_ms_ + config_.push_delay_ms; }
  // When each peer was last heard from (now_ms of on_message), if ever.
  std::map<NodeId, uint64_t> last_seen() const {
    std::map<NodeId, uint64_t> out;
    for (const auto& [id, rt] : runtime_)
      if (rt.last_seen_ms != 0) out[id] = rt.last_seen_ms;
    return out;
  }
  // When `peer` was last heard from; 0 if never (or it is not a member).
  uint64_t last_seen_ms(NodeId peer) const {
    auto it = runtime_.find(peer);
    return it == runtime_.end() ? 0 : it->second.last_seen_ms;
  }
  NodeId self() const { return self_; }
  // The keys of the last few quarantined entries (cut to 64 bytes), oldest
  // first.
  const std::deque<std::string>& quarantined_keys() const { return quarantined_keys_; }
  static constexpr size_t kQuarantinedKeysShown = 8;

 private:
  struct Session {
    NodeId peer = 0;
    VersionVector have;  // what we asked against; the same for every page
    // The responder's claim, from its first page: what it covers, its
    // collected-tombstone horizon and its clock, persisted as is at the end.
    OpAdoptAcks claim;
    uint64_t epoch = 0;  // the responder process that made the claim
    // The responder's arrival count when it built the first page: a page
    // built before it (an answer to a resent first request, overtaken by a
    // later answer) belongs to no chain that can justify the claim.
    uint64_t first_arrivals = 0;
    bool got_first_page = false;
    bool rejected = false;
    bool lost_track = false;
    std::string address;       // where its pages come from
    SyncRequest request;       // the last one sent: sent again if no page comes
    uint64_t progress_ms = 0;  // when it started or its last page came
  };
  struct PeerRuntime {
    uint64_t last_seen_ms = 0;
    uint64_t digest_nonce = 0;    // outstanding divergence check, 0 if none
    uint64_t digest_sent_ms = 0;  // when it was sent
    // The latest now_ms at which it certainly heard from this incarnation: when
    // we sent a request it answered (it echoed our fresh session id or nonce).
    // Its Rebootstrap is refused within member_expiry_ms of it.
    uint64_t heard_us_ms = 0;
    // When this process learned of it (0: it was a member when we started).
    // Its Rebootstrap is refused within member_expiry_ms of it: a member that
    // only just appeared cannot have gone that long without hearing from us.
    uint64_t known_since_ms = 0;
    // Its gossip: new members learned from it in the current window.
    uint64_t gossip_window_ms = 0;
    uint32_t gossip_learned = 0;
    uint64_t acked_recorded_ms = 0;  // when its coverage was last persisted
    // The `stable` vector it last sent, and from which incarnation of it.
    VersionVector stable;
    uint64_t stable_incarnation = 0;
  };

  class SplitMix;  // deterministic, seeded from on_tick's random bits

  // One inbound message being handled: what every handler reads, and where
  // its effects go.
  struct Incoming {
    const State& state;
    const Message& m;
    uint64_t now_ms;
    Effects& fx;
    void reply(Message message) { fx.send.push_back({m.from, m.from_address, std::move(message)}); }
  };
  // One handler per body type (on_message dispatches with std::visit).
  void on_sync_request(Incoming& in, const SyncRequest& req);
  void on_sync_page(Incoming& in, const SyncPage& page);
  // Takes the claim of a session's first page; false if the session ends
  // here: we must re-bootstrap, or the claim is one no correct node makes.
  bool take_first_page(Incoming& in, const SyncPage& page, Session& s);
  // False for a first page's claim its sender cannot make (docs/PROTOCOL.md,
  // "Checked claims").
  static bool possible_claim(const State& state, const SyncPage& page);
  void on_push(Incoming& in, const Push& push);
  void on_digest_request(Incoming& in, const DigestRequest& req);
  void on_digest_reply(Incoming& in, const DigestReply& reply);
  void on_bucket_request(Incoming& in, const BucketRequest& req);
  void on_bucket_reply(Incoming& in, const BucketReply& reply);
  void on_rebootstrap(Incoming& in, const Rebootstrap& body);

  using PeerList = std::vector<std::pair<NodeId, std::string>>;  // (id, address)
  // A sync round: sessions, evictions, tombstone GC, a divergence check.
  void run_round(const State& state, const PeerList& peers, uint64_t now_ms, SplitMix& rng,
                 Effects& fx);
  void retry_or_abort_sessions(const State& state, uint64_t now_ms, Effects& fx);
  void push_own_writes(const State& state, const PeerList& peers, uint64_t now_ms, SplitMix& rng,
                       Effects& fx);

  Message envelope(const State& state, Body body) const;
  void note_sender(const State& state, const Message& m, uint64_t now_ms, Effects& fx);
  void record_coverage(const State& state, NodeId peer, const VersionVector& covers,
                       uint64_t now_ms, Effects& fx);
  void evict_expired(const State& state, uint64_t now_ms, Effects& fx);
  // What we and every member cover: the pointwise minimum of our vector and
  // each member's recorded coverage. Sent to peers in requests and pages.
  static VersionVector stable(const State& state);
  // What tombstone GC may collect up to: `stable` lowered further by each
  // member's own `stable`, so a member's members count too (one hop: a
  // recursive minimum would keep a stale low value alive around a cycle).
  // Empty until every member has sent one.
  VersionVector gc_floor(const State& state) const;
  void note_stable(const Message& m, const VersionVector& stable);
  void collect_tombstones(const State& state, uint64_t now_ms, Effects& fx);
  // What we recorded of the sender's coverage (empty for an unknown sender or
  // a new incarnation of it).
  static const VersionVector& recorded_coverage(const State& state, const Message& m);
  enum class Source { kSync, kBucketRepair };
  // Admits and merges `entries` from a sender that covers `sender_covers`;
  // returns how many were newer than ours.
  uint64_t merge(const State& state, const std::vector<WireEntry>& entries,
                 const VersionVector& sender_covers, uint64_t now_ms, Source source, bool* rejected,
                 Effects& fx);
  SyncPage build_page(const State& state, const SyncRequest& req) const;
  std::vector<WireEntry> entries_in_buckets(const State& state,
                                            const std::vector<uint16_t>& buckets) const;
  bool has_session_with(NodeId peer) const;
  void start_session(const State& state, NodeId peer, const std::string& address, uint64_t now_ms,
                     Effects& fx);
  static uint64_t keyed_bucket(uint64_t nonce, uint64_t bucket_digest);

  const NodeId self_;
  const uint64_t incarnation_;
  const ReplicaConfig config_;
  ReplicaStats stats_;
  uint64_t next_session_ = 1;
  uint64_t last_round_ms_ = 0;
  bool first_tick_ = true;
  uint64_t epoch_ = 0;  // names this process in pages; chosen at the first tick
  // The first tick, or the tick after a pause: a member unseen since counts
  // from here.
  uint64_t started_ms_ = 0;
  uint64_t last_tick_ms_ = 0;
  uint64_t last_push_ms_ = 0;
  uint64_t pushed_upto_ = 0;  // own seqs already pushed
  std::map<uint64_t, Session> sessions_;
  std::map<NodeId, PeerRuntime> runtime_;
  std::deque<std::string> quarantined_keys_;
  // Quarantined versions, per stream by seq: what we cover but do not hold.
  // What we serve as `covers` stops below the lowest one we hold no newer
  // version of, so no one adopts from us a claim over a version we lack.
  // At most kMaxQuarantined (the highest seqs go first: what is kept still
  // lowers the claim at least as far).
  static constexpr size_t kMaxQuarantined = 1024;
  std::map<StreamId, std::map<uint64_t, std::pair<std::string, Meta>>> quarantined_;
  size_t quarantined_count_ = 0;
  void quarantine(const WireEntry& e);
  // acks() lowered below every quarantined version we hold nothing newer of.
  VersionVector served_covers(const State& state) const;
};

}  // namespace wavekv
