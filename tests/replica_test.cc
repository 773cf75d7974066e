// The replication state machine driven by hand, message by message, for the
// rules that tombstone GC rests on (docs/PROTOCOL.md): exact claims across
// pages, the collected-horizon gate, and the stable vector.
#include "replication/replica.h"

#include <gtest/gtest.h>

namespace wavekv {
namespace {

constexpr uint64_t kNow = 1'000'000'000;

Timestamp at(uint64_t ms) { return timestamp_from_millis(ms); }

OpSetEntry version(const std::string& key, const std::string& value, uint64_t stream, uint64_t seq,
                   uint64_t ms, bool tombstone = false) {
  return OpSetEntry{key,
                    Entry{tombstone ? "" : value, tombstone, Meta{stream, seq, at(ms), stream}}};
}

Message from(NodeId id, const std::string& address, Body body) {
  Message m;
  m.from = id;
  m.from_incarnation = id;
  m.from_address = address;
  m.body = std::move(body);
  return m;
}

// Delivers `m` and applies what the replica persists, as a driver would.
Effects deliver(Replica& r, State& s, const Message& m) {
  Effects fx = r.on_message(s, m, kNow);
  for (const auto& op : fx.persist) (void)s.apply(op);
  return fx;
}

bool adopted(const Effects& fx) {
  for (const auto& op : fx.persist)
    if (std::holds_alternative<OpAdoptAcks>(op)) return true;
  return false;
}

// A responder (node 10) holding stream 1 (a1..a3) and stream 2 (k), and a
// requester (node 20) that pages through it three entries at a time: page 1
// is stream 1, the cursor then stands at stream 2. Between the pages, a newer
// version of k arrives at the responder in stream 1, behind the cursor, and
// k's stream-2 version leaves the index. The claim of page 1 covers 2:1.
struct TwoPageSession : ::testing::Test {
  State resp_state{10, 10};
  State req_state{20, 20};
  ReplicaConfig resp_config;
  std::unique_ptr<Replica> resp;
  std::unique_ptr<Replica> req;
  Message first_page;
  Message next_request;

  void SetUp() override {
    for (uint64_t i = 1; i <= 3; i++)
      (void)resp_state.apply(version("a" + std::to_string(i), "v", 1, i, kNow - 5000));
    (void)resp_state.apply(version("k", "old", 2, 1, kNow - 4000));
    (void)resp_state.apply(OpAdoptAcks{{{1, 3}, {2, 1}}});
    resp_config.address = "resp";
    resp_config.max_page_entries = 3;
    resp = std::make_unique<Replica>(10, 10, resp_config);
    (void)resp->on_tick(resp_state, kNow, 7);
    ReplicaConfig rc;
    rc.address = "req";
    rc.seeds = {"resp"};
    req = std::make_unique<Replica>(20, 20, rc);
    Effects fx = req->on_tick(req_state, kNow, 1);
    ASSERT_EQ(fx.send.size(), 1u);
    Effects page1 = deliver(*resp, resp_state, fx.send[0].message);
    ASSERT_EQ(page1.send.size(), 1u);
    const auto& p = std::get<SyncPage>(page1.send[0].message.body);
    ASSERT_FALSE(p.last);
    ASSERT_EQ(p.entries.size(), 3u);
    ASSERT_EQ(p.covers.at(2), 1u) << "the first page's claim covers k's stream-2 version";
    first_page = page1.send[0].message;
    Effects asked = deliver(*req, req_state, first_page);
    ASSERT_EQ(asked.send.size(), 1u);
    next_request = asked.send[0].message;
    (void)resp_state.apply(version("k", "new", 1, 4, kNow - 1000));
  }
};

TEST_F(TwoPageSession, NextPageShipsWhatArrivedBehindTheCursor) {
  Effects page2 = deliver(*resp, resp_state, next_request);
  ASSERT_EQ(page2.send.size(), 1u);
  const auto& p = std::get<SyncPage>(page2.send[0].message.body);
  EXPECT_TRUE(p.last);
  EXPECT_FALSE(p.lost_track);
  ASSERT_EQ(p.entries.size(), 1u) << "nothing is left at or past the cursor but the catch-up";
  EXPECT_EQ(p.entries[0].key, "k");
  Effects end = deliver(*req, req_state, page2.send[0].message);
  EXPECT_TRUE(adopted(end));
  EXPECT_EQ(req_state.acks().at(2), 1u);
  ASSERT_EQ(req_state.kv().count("k"), 1u) << "a claim over 2:1 without k would be a lie";
  EXPECT_EQ(req_state.kv().at("k").value, "new");
}

TEST_F(TwoPageSession, ASecondCopyOfAFollowedPageAsksForNothing) {
  Effects dup = deliver(*req, req_state, first_page);
  EXPECT_TRUE(dup.send.empty()) << "the next page is already asked for";
}

TEST_F(TwoPageSession, AResponderThatRestartedBetweenPagesCannotCompleteTheClaim) {
  Replica restarted(10, 10, resp_config);
  (void)restarted.on_tick(resp_state, kNow, 99);  // another process: another epoch
  Effects page2 = deliver(restarted, resp_state, next_request);
  ASSERT_EQ(page2.send.size(), 1u);
  EXPECT_TRUE(std::get<SyncPage>(page2.send[0].message.body).lost_track);
  Effects end = deliver(*req, req_state, page2.send[0].message);
  EXPECT_FALSE(adopted(end));
  EXPECT_EQ(req_state.acks().count(2), 0u);
  EXPECT_EQ(req->stats().sessions_aborted, 1u);
}

TEST_F(TwoPageSession, ALostPageIsAskedForAgainAfterARoundAndTheSessionCompletes) {
  // The next request (or its page) is lost. Within the round nothing is resent.
  const uint64_t round = ReplicaConfig{}.sync_interval_ms;
  Effects early = req->on_tick(req_state, kNow + round - 1, 3);
  EXPECT_TRUE(early.send.empty());
  Effects retry = req->on_tick(req_state, kNow + round, 4);
  ASSERT_EQ(retry.send.size(), 1u);
  EXPECT_EQ(retry.send[0].address, "resp");
  EXPECT_EQ(std::get<SyncRequest>(retry.send[0].message.body),
            std::get<SyncRequest>(next_request.body))
      << "the same cursor, epoch and arrival count: the page is rebuilt from there";
  EXPECT_EQ(req->stats().requests_retried, 1u);
  Effects page2 = deliver(*resp, resp_state, retry.send[0].message);
  Effects end = deliver(*req, req_state, page2.send[0].message);
  EXPECT_TRUE(adopted(end));
  EXPECT_EQ(req_state.kv().at("k").value, "new");
}

// A responder (node 10, "resp", three entries a page) that has ticked, and
// a requester (node 20) seeded with it.
std::pair<Replica, Replica> responder_and_requester(const State& resp_state) {
  ReplicaConfig rc;
  rc.address = "resp";
  rc.max_page_entries = 3;
  Replica resp(10, 10, rc);
  (void)resp.on_tick(resp_state, kNow, 7);
  ReplicaConfig qc;
  qc.address = "req";
  qc.seeds = {"resp"};
  return {std::move(resp), Replica(20, 20, qc)};
}

// A resent first request is answered twice, and the answers cross: the
// later one (built after more writes arrived; more than a page now) comes
// first and gives the claim; the earlier one, a complete last page of less,
// then comes. It must not complete a claim that covers writes it lacks
// (found by the simulator: seed 52 at 4 nodes, 6 s of faults).
TEST(ReplicaSession, AnOlderAnswerToTheFirstRequestCannotCompleteTheClaimOfALaterOne) {
  State resp_state{10, 10}, req_state{20, 20};
  for (uint64_t i = 1; i <= 2; i++)
    (void)resp_state.apply(version("a" + std::to_string(i), "v", 10, i, kNow - 5000));
  auto [resp, req] = responder_and_requester(resp_state);
  Effects fx = req.on_tick(req_state, kNow, 1);
  ASSERT_EQ(fx.send.size(), 1u);
  const Message first_request = fx.send[0].message;
  Effects early = deliver(resp, resp_state, first_request);
  ASSERT_TRUE(std::get<SyncPage>(early.send.at(0).message.body).last);
  for (uint64_t i = 3; i <= 4; i++)
    (void)resp_state.apply(version("a" + std::to_string(i), "v", 10, i, kNow - 1000));
  Effects late = deliver(resp, resp_state, first_request);  // the resent request
  const auto& lp = std::get<SyncPage>(late.send.at(0).message.body);
  ASSERT_FALSE(lp.last);
  ASSERT_EQ(lp.covers.at(10), 4u);

  Effects asked = deliver(req, req_state, late.send[0].message);
  ASSERT_EQ(asked.send.size(), 1u) << "the later answer is followed";
  Effects stale = deliver(req, req_state, early.send[0].message);
  EXPECT_FALSE(adopted(stale)) << "a claim over 10:4 without a4 would be a lie";
  EXPECT_EQ(req_state.acks().count(10), 0u);
  Effects page2 = deliver(resp, resp_state, asked.send[0].message);
  Effects end = deliver(req, req_state, page2.send.at(0).message);
  EXPECT_TRUE(adopted(end));
  EXPECT_EQ(req_state.acks().at(10), 4u);
  EXPECT_EQ(req_state.kv().count("a4"), 1u);
}

// A claim's collected horizon that this node has not seen is checked on the
// first page against what it holds; a version that arrives from another
// member before the last page (one that was away while the tombstone over
// it was collected) must be checked too: adopting the horizon would let it
// pass for a version of a clean node and spread (found by the simulator:
// seed 101 at 4 nodes with repair and wipes).
TEST(ReplicaSession, AVersionArrivingBeforeTheLastPageUnderAForgottenTombstoneMeansStartingOver) {
  State resp_state{10, 10}, req_state{20, 20};
  for (uint64_t i = 1; i <= 4; i++)
    (void)resp_state.apply(version("a" + std::to_string(i), "v", 10, i, kNow - 5000));
  // The responder collected a tombstone of stream 9 stamped kNow - 3000.
  (void)resp_state.apply(OpAdoptAcks{{{10, 4}, {9, 5}}, {{9, 5}}, at(kNow - 3000)});
  auto [resp, req] = responder_and_requester(resp_state);
  Effects fx = req.on_tick(req_state, kNow, 1);
  Effects page1 = deliver(resp, resp_state, fx.send.at(0).message);
  ASSERT_FALSE(std::get<SyncPage>(page1.send.at(0).message.body).last);
  Effects asked = deliver(req, req_state, page1.send[0].message);
  ASSERT_FALSE(asked.rebootstrap) << "nothing old here yet";
  ASSERT_EQ(asked.send.size(), 1u);
  // Meanwhile an old version of stream 3, which the claim does not cover,
  // arrives from elsewhere.
  (void)req_state.apply(version("k", "old", 3, 1, kNow - 4000));
  Effects page2 = deliver(resp, resp_state, asked.send[0].message);
  Effects end = deliver(req, req_state, page2.send.at(0).message);
  EXPECT_FALSE(adopted(end));
  EXPECT_TRUE(end.rebootstrap);
}

// Node 10 has forgotten tombstones of stream 5 up to seq 3, the newest stamped
// at T. A sender not known to cover that horizon may hold versions those
// tombstones deleted: its versions stamped at or before T are refused, later
// ones taken. Once it is known to cover the horizon, everything is taken.
TEST(Replica, HorizonGateRefusesVersionsStampedByTheHorizonFromASenderBelowIt) {
  const uint64_t t_ms = kNow - 60'000;
  State s(10, 10);
  (void)s.apply(OpAdoptAcks{{{5, 3}}, {{5, 3}}, at(t_ms), at(t_ms)});
  ReplicaConfig rc;
  rc.address = "us";
  Replica r(10, 10, rc);
  Push push{{{"at-horizon", Entry{"x", false, Meta{30, 1, at(t_ms), 30}}},
             {"after-horizon", Entry{"y", false, Meta{30, 2, at(t_ms) + 1, 30}}}}};
  (void)deliver(r, s, from(30, "peer", push));
  EXPECT_EQ(s.kv().count("at-horizon"), 0u) << "stamped exactly at the horizon: refused";
  EXPECT_EQ(s.kv().count("after-horizon"), 1u) << "stamped just after it: taken";
  EXPECT_EQ(r.stats().entries_rejected, 1u);

  PeerMeta covers_horizon;
  covers_horizon.address = "peer";
  covers_horizon.incarnation = 30;
  covers_horizon.acked = {{5, 3}};
  (void)s.apply(OpSetPeer{30, covers_horizon});
  (void)deliver(r, s, from(30, "peer", push));
  EXPECT_EQ(s.kv().count("at-horizon"), 1u) << "a sender that covers the horizon is clean";
  EXPECT_EQ(r.stats().entries_rejected, 1u);
}

// Node 10's own tombstone is covered by its only member, node 20, and is past
// the grace period; but node 20 reports a stable vector that does not cover
// it (a member of node 20's, unknown here, lacks it). Node 10 keeps it until
// node 20 reports otherwise.
TEST(Replica, AMembersReportedStableVectorPinsTombstones) {
  State s(10, 10);
  (void)s.apply(version("gone", "", 10, 1, kNow - 10'000, /*tombstone=*/true));
  PeerMeta b;
  b.address = "b";
  b.incarnation = 20;
  b.acked = {{10, 1}};
  (void)s.apply(OpSetPeer{20, b});
  ReplicaConfig rc;
  rc.address = "a";
  rc.tombstone_grace_ms = 1000;
  rc.fanout = 0;
  Replica r(10, 10, rc);
  auto request = [](VersionVector stable) {
    SyncRequest q;
    q.session = 1;
    q.have = {{10, 1}};
    q.stable = std::move(stable);
    return from(20, "b", q);
  };
  auto drops = [](const Effects& fx) {
    int n = 0;
    for (const auto& op : fx.persist) n += std::holds_alternative<OpDropTombstone>(op);
    return n;
  };
  (void)deliver(r, s, request({}));
  EXPECT_EQ(drops(r.on_tick(s, kNow, 1)), 0) << "node 20's members do not all cover it";
  (void)deliver(r, s, request({{10, 1}}));
  EXPECT_EQ(drops(r.on_tick(s, kNow + rc.sync_interval_ms, 2)), 1);
}

// Checked claims (docs/PROTOCOL.md): node 20 knows node 10 as a member and
// syncs with it. Each fixture pair differs in exactly the fact checked.
struct CheckedClaims : ::testing::Test {
  State s{20, 20};
  ReplicaConfig rc;
  std::unique_ptr<Replica> r;
  uint64_t session = 0;

  void SetUp() override {
    // Our own writes 20:1..3, stamped a minute ago.
    for (uint64_t i = 1; i <= 3; i++)
      (void)s.apply(version("own" + std::to_string(i), "v", 20, i, kNow - 60'000));
    PeerMeta peer;
    peer.address = "ten";
    peer.incarnation = 10;
    (void)s.apply(OpSetPeer{10, peer});
    rc.address = "us";
    rc.fanout = 1;
    rc.digest_every_rounds = 0;
    rc.member_expiry_ms = 60'000;
    r = std::make_unique<Replica>(20, 20, rc);
  }
  // Opens a session to node 10 at `now`; its id.
  uint64_t open_session(uint64_t now) {
    Effects fx = r->on_tick(s, now, 5);
    for (const auto& out : fx.send)
      if (const auto* q = std::get_if<SyncRequest>(&out.message.body)) return q->session;
    ADD_FAILURE() << "no session opened";
    return 0;
  }
  // Node 10's answer: a one-page delta claiming `covers` and a horizon.
  Message page(uint64_t id, VersionVector covers, VersionVector collected, Timestamp before) {
    SyncPage p;
    p.session = id;
    p.covers = std::move(covers);
    p.collected = std::move(collected);
    p.collected_before = before;
    p.clock = before;
    p.epoch = 77;
    return from(10, "ten", p);
  }
  Message rebootstrap(NodeId sender) { return from(sender, "ten", Rebootstrap{"evicted"}); }
  Effects deliver_at(const Message& m, uint64_t now) {
    Effects fx = r->on_message(s, m, now);
    for (const auto& op : fx.persist) (void)s.apply(op);
    return fx;
  }
};

TEST_F(CheckedClaims, ARebootstrapFromAPeerThatAnsweredUsWithinTheExpiryIsRefused) {
  const uint64_t id = open_session(kNow);
  (void)deliver_at(page(id, {{20, 3}}, {}, 0), kNow + 10);  // it heard from us at kNow
  Effects early = deliver_at(rebootstrap(10), kNow + rc.member_expiry_ms - 1);
  EXPECT_FALSE(early.rebootstrap) << "it answered us less than the expiry ago: a lie";
  EXPECT_EQ(r->stats().rebootstraps_refused, 1u);
  Effects due = deliver_at(rebootstrap(10), kNow + rc.member_expiry_ms);
  EXPECT_TRUE(due.rebootstrap) << "silent for the whole expiry: it may have evicted us";
  EXPECT_EQ(r->stats().rebootstraps_refused, 1u);
}

TEST_F(CheckedClaims, ARebootstrapIsHonouredOnlyFromAKnownMember) {
  Effects stranger = deliver_at(rebootstrap(99), kNow);
  EXPECT_FALSE(stranger.rebootstrap);
  EXPECT_EQ(r->stats().rebootstraps_refused, 1u);
  // The same message from the member we know, never heard from: nothing
  // refutes it.
  Effects member = deliver_at(rebootstrap(10), kNow);
  EXPECT_TRUE(member.rebootstrap);
  // A stranger that registered itself with a message first is still refused:
  // membership is what this node knew before the Rebootstrap came.
  Message hello = from(98, "elsewhere", DigestRequest{1});
  (void)deliver_at(hello, kNow);
  ASSERT_EQ(s.peers().count(98), 1u);
  EXPECT_FALSE(deliver_at(rebootstrap(98), kNow + rc.member_expiry_ms - 1).rebootstrap)
      << "known for less than the expiry: it cannot have missed us for that long";
  EXPECT_EQ(r->stats().rebootstraps_refused, 2u);
  EXPECT_TRUE(deliver_at(rebootstrap(98), kNow + rc.member_expiry_ms).rebootstrap);
}

TEST_F(CheckedClaims, AHorizonBeyondTheSendersOwnCoversIsRefusedNotWipedFor) {
  const Timestamp t = at(kNow - 30'000);  // after our versions: we hold older ones
  // Legitimate: node 10 covers 5:3 and forgot tombstones up to 5:3. We do not
  // cover 5:3 and hold versions stamped before T: we must start over.
  const uint64_t id = open_session(kNow);
  Effects legit = deliver_at(page(id, {{5, 3}, {20, 3}}, {{5, 3}}, t), kNow + 10);
  EXPECT_TRUE(legit.rebootstrap);
  EXPECT_EQ(r->stats().claims_refused, 0u);
  // Forged: the same horizon from a node that claims to cover only 5:2.
  SetUp();
  const uint64_t id2 = open_session(kNow);
  Effects forged = deliver_at(page(id2, {{5, 2}, {20, 3}}, {{5, 3}}, t), kNow + 10);
  EXPECT_FALSE(forged.rebootstrap);
  EXPECT_FALSE(adopted(forged));
  EXPECT_EQ(r->stats().claims_refused, 1u);
  EXPECT_EQ(s.live_keys(), 3u) << "nothing dropped";
}

TEST_F(CheckedClaims, AHorizonOverOurOwnStreamBeyondItsNextSeqIsRefused) {
  const Timestamp t = at(kNow - 30'000);
  // Our stream is 20:1..3 (next_seq 4). A horizon up to 20:3 is one a peer
  // can hold; one up to 20:4 covers a write we never issued.
  const uint64_t id = open_session(kNow);
  Effects ok = deliver_at(page(id, {{20, 3}}, {{20, 3}}, t), kNow + 10);
  EXPECT_TRUE(adopted(ok));
  EXPECT_EQ(r->stats().claims_refused, 0u);
  SetUp();
  const uint64_t id2 = open_session(kNow);
  Effects forged = deliver_at(page(id2, {{20, 4}}, {{20, 4}}, t), kNow + 10);
  EXPECT_FALSE(adopted(forged));
  EXPECT_FALSE(forged.rebootstrap);
  EXPECT_EQ(r->stats().claims_refused, 1u);
}

// An entry too large for this node's limits, in a page with an ordinary one:
// quarantined (skipped, counted), and the session still adopts the claim
// that covers it; one the node could store but that fails admission (a 0
// seq) still blocks adoption.
TEST(Replica, AnEntryTooLargeForUsIsQuarantinedAndDoesNotBlockAdoption) {
  for (bool too_large : {true, false}) {
    State s(20, 20);
    ReplicaConfig rc;
    rc.address = "us";
    rc.seeds = {"ten"};
    rc.max_value_bytes = 100;
    Replica r(20, 20, rc);
    Effects open = r.on_tick(s, kNow, 1);
    ASSERT_EQ(open.send.size(), 1u);
    SyncPage p;
    p.session = std::get<SyncRequest>(open.send[0].message.body).session;
    p.covers = {{10, 2}};
    p.epoch = 9;
    p.entries.push_back({"small", Entry{"v", false, Meta{10, 1, at(kNow - 10), 10}}});
    Entry big{std::string(too_large ? 101 : 100, 'b'), false, Meta{10, 2, at(kNow - 5), 10}};
    if (!too_large) big.meta.seq = 0;  // storable, but malformed: a real rejection
    p.entries.push_back({"big\x01", big});
    Effects fx = deliver(r, s, from(10, "ten", p));
    EXPECT_EQ(s.kv().count("small"), 1u);
    EXPECT_EQ(s.kv().count("big\x01"), 0u);
    if (too_large) {
      EXPECT_TRUE(adopted(fx)) << "a version we can never store must not stall the pair";
      EXPECT_EQ(s.acks().at(10), 2u);
      EXPECT_EQ(r.stats().entries_quarantined, 1u);
      EXPECT_EQ(r.stats().entries_rejected, 0u);
      ASSERT_EQ(r.quarantined_keys().size(), 1u);
      EXPECT_EQ(r.quarantined_keys().back(), "big\\x01") << "shown printable";
    } else {
      EXPECT_FALSE(adopted(fx));
      EXPECT_EQ(r.stats().entries_rejected, 1u);
      EXPECT_EQ(r.stats().entries_quarantined, 0u);
    }
  }
}

// docs/PROTOCOL.md, "Membership and discovery": four frames from one sender
// list 20,000 made-up members. Each interval learns at most
// max_new_members_per_sender of them, the table never passes max_members,
// further unknown senders are not heard, and a round's work stays a fanout.
TEST(Replica, MadeUpMembersAreBoundedByRateAndTableSize) {
  State s(20, 20);
  ReplicaConfig rc;
  rc.address = "us";
  rc.max_members = 100;
  rc.max_new_members_per_sender = 10;
  Replica r(20, 20, rc);
  (void)r.on_tick(s, kNow, 1);
  std::vector<Member> fake;
  for (NodeId id = 1'000'000; id < 1'020'000; id++)
    fake.push_back({id, id, "fake-" + std::to_string(id)});
  auto frame = [&](size_t part) {
    Message m = from(10, "ten", DigestRequest{part + 1});
    m.members.assign(fake.begin() + static_cast<ptrdiff_t>(part * 5000),
                     fake.begin() + static_cast<ptrdiff_t>((part + 1) * 5000));
    return m;
  };
  for (size_t part = 0; part < 4; part++) (void)deliver(r, s, frame(part));
  EXPECT_EQ(s.peers().size(), 1u + 10u) << "the sender and one interval's worth of gossip";
  for (uint64_t round = 1; round <= 50; round++) {
    Effects fx = r.on_message(s, frame(round % 4), kNow + round * rc.sync_interval_ms);
    for (const auto& op : fx.persist) (void)s.apply(op);
    ASSERT_LE(s.peers().size(), rc.max_members);
  }
  EXPECT_EQ(s.peers().size(), rc.max_members);
  EXPECT_GT(r.stats().members_refused, 20'000u);
  // A new sender is not heard while the table is full.
  Effects stranger = r.on_message(s, from(7, "seven", DigestRequest{9}), kNow + 60'000);
  EXPECT_TRUE(stranger.send.empty() && stranger.persist.empty());
  Effects tick = r.on_tick(s, kNow + 100'000, 3);
  EXPECT_LE(tick.send.size(), rc.fanout + 1u) << "a round starts a fanout of sessions (+ a digest)";
}

// A node that was stopped (SIGSTOP, a paused VM) for longer than the expiry
// must not evict the members it did not hear from while it was not running:
// thawed, it reads one member's frame first and, by silence alone, would
// evict the other. Silence counts only over time it ticked.
TEST(Eviction, SilenceWhileThisNodeWasPausedDoesNotCount) {
  State s{20, 20};
  for (NodeId id : {NodeId{10}, NodeId{30}}) {
    PeerMeta peer;
    peer.address = "n" + std::to_string(id);
    peer.incarnation = id;
    (void)s.apply(OpSetPeer{id, peer});
  }
  ReplicaConfig rc;
  rc.address = "us";
  rc.member_expiry_ms = 60'000;
  rc.sync_interval_ms = 1000;
  rc.digest_every_rounds = 0;
  Replica r(20, 20, rc);
  uint64_t rand = 1;
  auto evicted_30 = [&](uint64_t now) {
    Effects fx = r.on_tick(s, now, rand++);
    bool evicted = false;
    for (const auto& op : fx.persist) {
      if (const auto* rm = std::get_if<OpRemovePeer>(&op)) evicted = evicted || rm->peer == 30;
      (void)s.apply(op);
    }
    return evicted;
  };
  auto hear = [&](NodeId id, uint64_t now) {
    Effects fx = r.on_message(s, from(id, "n" + std::to_string(id), DigestRequest{1}), now);
    for (const auto& op : fx.persist) (void)s.apply(op);
  };
  EXPECT_FALSE(evicted_30(kNow));
  hear(10, kNow);
  hear(30, kNow);
  // Stopped for twice the expiry; the first thing read on waking is from 10.
  const uint64_t thawed = kNow + 2 * rc.member_expiry_ms;
  hear(10, thawed);
  EXPECT_FALSE(evicted_30(thawed)) << "30 was silent only while we did not run";
  // Running again, 30 stays silent: it is evicted once the expiry has passed
  // in running time (ticks every second, 10 heard from throughout).
  uint64_t now = thawed;
  for (; now < thawed + rc.member_expiry_ms - 1000; now += 1000) {
    hear(10, now);
    ASSERT_FALSE(evicted_30(now)) << "at +" << now - thawed << " ms";
  }
  now = thawed + rc.member_expiry_ms;
  hear(10, now);
  EXPECT_TRUE(evicted_30(now));
}

}  // namespace
}  // namespace wavekv
