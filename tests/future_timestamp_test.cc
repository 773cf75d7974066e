// A key poisoned by a future timestamp, and the operator repair
// (docs/PROTOCOL.md, "Future timestamps").
//
// The fixture: node 1's clock ran an hour ahead while it wrote. Its versions
// are stamped an hour in the future, and its hybrid clock, restored past the
// newest timestamp it holds, keeps stamping every later write an hour ahead
// even after the wall clock is fixed. Under LWW alone that is an hour of
// damage: peers refuse all of it (and their sync sessions with node 1 never
// adopt acks), and a write from a correct clock never beats the poisoned
// version here. The repair rewrites each such version as a fresh local write
// stamped now, by exact version (OpRepairEntry), and brings the clock back
// (OpResetClock); both are WAL ops, so a reopen replays them.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>
#include <string>

#include "replication/replica.h"
#include "store/store_internal.h"
#include "support/store_harness.h"
#include "support/test_util.h"

namespace wavekv {
namespace {

using test::FakeClock;

constexpr uint64_t kNow = 1'750'000'000'000ull;
constexpr uint64_t kHourMs = 3600 * 1000;
constexpr uint64_t kDriftMs = 5 * 60 * 1000;  // the default max_clock_drift_ms
constexpr NodeId kPeer = 2;
constexpr uint64_t kPeerIncarnation = 22;

std::unique_ptr<ReplicatedStore> open_or_fail(const Config& c) {
  auto s = open_replicated(c);
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return s.is_ok() ? std::move(s).value() : nullptr;
}

State copy_state(ReplicatedStore& store) {
  State out(0, 0);
  store.read_state([&](const State& s) { out = s; });
  return out;
}

std::set<std::string> keys_of(const std::vector<FutureVersion>& found) {
  std::set<std::string> out;
  for (const auto& f : found) out.insert(f.key);
  return out;
}

uint64_t stamp_ms(ReplicatedStore& store, const std::string& key) {
  auto e = store.get_entry(key);
  return e ? timestamp_millis(e->meta.timestamp) : 0;
}

// How a peer with a correct clock takes our versions: pushed to it, how many
// does it refuse?
uint64_t refused_by_peer(const State& ours) {
  ReplicaConfig rc;
  rc.address = "peer";
  Replica peer(kPeer, kPeerIncarnation, rc);
  State theirs(kPeer, kPeerIncarnation);
  Message m;
  m.from = ours.self();
  m.from_incarnation = ours.stream();
  m.from_address = "us";
  Push push;
  for (const auto& [key, e] : ours.kv()) push.entries.push_back({key, e});
  m.body = std::move(push);
  (void)peer.on_message(theirs, m, kNow);
  return peer.stats().entries_rejected;
}

// A whole delta sync session of the peer against us: does it adopt our claim?
bool peer_session_adopts(const State& ours) {
  ReplicaConfig rc;
  rc.address = "peer";
  rc.seeds = {"us"};
  Replica peer(kPeer, kPeerIncarnation, rc);
  State theirs(kPeer, kPeerIncarnation);
  ReplicaConfig mine;
  mine.address = "us";
  Replica us(ours.self(), ours.stream(), mine);
  (void)us.on_tick(ours, kNow, 2);  // a replica serves adoptable pages once it has ticked
  Effects fx = peer.on_tick(theirs, kNow, 1);
  for (int hops = 0; hops < 16 && !fx.send.empty(); hops++) {
    Outgoing out = fx.send.front();
    if (out.address == "us") {
      fx = us.on_message(ours, out.message, kNow);
      continue;
    }
    fx = peer.on_message(theirs, out.message, kNow);
    for (const auto& op : fx.persist)
      if (std::holds_alternative<OpAdoptAcks>(op)) return true;
    for (const auto& op : fx.persist) (void)theirs.apply(op);
  }
  return false;
}

TEST(FutureTimestamps, OperatorRepairRewritesPoisonedKeysAndBringsTheClockBack) {
  auto fs = std::make_shared<testing::MemFileSystem>();
  auto clock = std::make_shared<FakeClock>(kNow + kHourMs);  // an hour ahead
  Config c = test::mem_config(fs, clock);
  c.node_id = 1;
  auto store = open_or_fail(c);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put("k", "from-the-future").is_ok());
  ASSERT_TRUE(store->put("gone", "x").is_ok());
  ASSERT_TRUE(store->del("gone").is_ok());
  clock->set(kNow);  // the clock is fixed
  ASSERT_TRUE(store->put("later", "written-after-the-fix").is_ok());
  ASSERT_TRUE(store->close().is_ok());
  store = open_or_fail(c);  // a restart does not help
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put("after-restart", "y").is_ok());

  // The old rule. Every write since is stamped an hour ahead too...
  EXPECT_GT(stamp_ms(*store, "later"), kNow + kDriftMs);
  EXPECT_GT(stamp_ms(*store, "after-restart"), kNow + kDriftMs);
  // ...a peer refuses all of it, and its sync sessions with us never adopt...
  EXPECT_EQ(refused_by_peer(copy_state(*store)), 4u);
  EXPECT_FALSE(peer_session_adopts(copy_state(*store)));
  // ...and a later write from a correct clock loses to the poisoned version.
  OpSetEntry from_peer{"k",
                       Entry{"from-peer", false,
                             Meta{kPeer, 1, timestamp_from_millis(kNow + 1000), kPeerIncarnation}}};
  ASSERT_TRUE(store->apply_ops({from_peer}).is_ok());
  EXPECT_EQ(test::value_of(*store, "k"), "from-the-future");

  // Listing changes nothing.
  auto listed = store->future_versions(kDriftMs, std::nullopt, false);
  ASSERT_TRUE(listed.is_ok());
  EXPECT_EQ(keys_of(*listed), (std::set<std::string>{"after-restart", "gone", "k", "later"}));
  EXPECT_GT(stamp_ms(*store, "k"), kNow + kDriftMs);

  // One key at a time: "k" is rewritten with a sane stamp, but the clock stays
  // ahead while other poisoned keys remain.
  const uint64_t next_seq = store->status().next_seq;
  auto one = store->future_versions(kDriftMs, std::string("k"), true);
  ASSERT_TRUE(one.is_ok());
  ASSERT_EQ(keys_of(*one), std::set<std::string>{"k"});
  EXPECT_EQ((*one)[0].repaired.node, 1u);
  EXPECT_EQ((*one)[0].repaired.seq, next_seq);
  EXPECT_EQ((*one)[0].repaired.incarnation, store->incarnation());
  EXPECT_EQ(test::value_of(*store, "k"), "from-the-future") << "the value is kept";
  EXPECT_LE(stamp_ms(*store, "k"), kNow + kDriftMs);
  ASSERT_TRUE(store->put("still-ahead", "z").is_ok());
  EXPECT_GT(stamp_ms(*store, "still-ahead"), kNow + kDriftMs);

  // All of them.
  auto all = store->future_versions(kDriftMs, std::nullopt, true);
  ASSERT_TRUE(all.is_ok());
  EXPECT_EQ(keys_of(*all),
            (std::set<std::string>{"after-restart", "gone", "later", "still-ahead"}));
  for (const auto& key : {"k", "gone", "later", "after-restart", "still-ahead"}) {
    EXPECT_GE(stamp_ms(*store, key), kNow) << key;
    EXPECT_LE(stamp_ms(*store, key), kNow + 1000) << key;
  }
  EXPECT_EQ(test::value_of(*store, "later"), "written-after-the-fix");
  auto gone = store->get_entry("gone");
  ASSERT_TRUE(gone.has_value());
  EXPECT_TRUE(gone->tombstone) << "a poisoned delete stays a delete";
  EXPECT_TRUE(store->future_versions(kDriftMs, std::nullopt, false)->empty());

  // The new rule's outcome: the clock is back, peers take everything and
  // adopt, and a correct clock's later write wins.
  ASSERT_TRUE(store->put("new", "n").is_ok());
  EXPECT_LE(stamp_ms(*store, "new"), kNow + 1000);
  EXPECT_EQ(refused_by_peer(copy_state(*store)), 0u);
  EXPECT_TRUE(peer_session_adopts(copy_state(*store)));
  from_peer.entry.meta.seq = 2;
  from_peer.entry.meta.timestamp = timestamp_from_millis(kNow + 2000);
  ASSERT_TRUE(store->apply_ops({from_peer}).is_ok());
  EXPECT_EQ(test::value_of(*store, "k"), "from-peer");

  // Recovery replays the repair: from the WAL, and from a checkpoint.
  for (bool checkpoint : {false, true}) {
    if (checkpoint) {
      ASSERT_TRUE(store->checkpoint().is_ok());
    }
    ASSERT_TRUE(store->close().is_ok());
    store = open_or_fail(c);
    ASSERT_TRUE(store);
    EXPECT_TRUE(store->future_versions(kDriftMs, std::nullopt, false)->empty());
    EXPECT_EQ(test::value_of(*store, "later"), "written-after-the-fix");
    ASSERT_TRUE(store->put("after-reopen", "r").is_ok());
    EXPECT_LE(stamp_ms(*store, "after-reopen"), kNow + 5000)
        << "the clock does not jump ahead again on reopen (checkpoint " << checkpoint << ")";
  }
  ASSERT_TRUE(store->close().is_ok());
}

// Applied by exact version only, idempotent, and it survives the op encoding.
TEST(FutureTimestamps, RepairOpReplacesOnlyTheVersionItNames) {
  State s(1, 11);
  const Meta future{3, 5, timestamp_from_millis(kNow + kHourMs), 33};
  (void)s.apply(OpSetEntry{"k", Entry{"v", false, future}});
  const Meta fresh{1, 1, timestamp_from_millis(kNow), 11};
  OpRepairEntry op{"k", future, Entry{"v", false, fresh}};
  OpRepairEntry stale{"k", Meta{3, 4, future.timestamp, 33}, Entry{"old", false, fresh}};
  EXPECT_FALSE(s.apply(stale).changed) << "not the current version: no-op";
  EXPECT_TRUE(s.apply(op).changed) << "replaces although it loses by LWW";
  EXPECT_EQ(s.kv().at("k").meta, fresh);
  EXPECT_FALSE(s.apply(op).changed) << "idempotent";
  EXPECT_EQ(s.next_seq(), 2u);
  EXPECT_EQ(timestamp_millis(s.max_timestamp()), kNow + kHourMs);
  (void)s.apply(OpResetClock{timestamp_from_millis(kNow - 5)});
  EXPECT_EQ(s.max_timestamp(), fresh.timestamp) << "back to the newest current version";
  EXPECT_EQ(s.index().at(11).at(1), &s.kv().find("k")->first);
  EXPECT_EQ(s.index().count(33), 0u) << "the poisoned version left the index";

  std::string bytes;
  std::vector<StateOp> ops = {op, OpResetClock{fresh.timestamp}};
  encode_ops(ops, bytes);
  auto decoded = decode_ops(bytes);
  ASSERT_TRUE(decoded.is_ok());
  EXPECT_TRUE(*decoded == ops);
}

// `wavekv repair-timestamps` on a directory written under a runaway clock.
TEST(FutureTimestamps, CliListsThenRepairs) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "wavekv-future-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::string dir = tmpl + "/db";
  const uint64_t now = system_clock()->now_ms();
  {
    Config c;
    c.data_dir = dir;
    c.clock = std::make_shared<FakeClock>(now + kHourMs);
    auto store = open_or_fail(c);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->put("poisoned", "p").is_ok());
    ASSERT_TRUE(store->close().is_ok());
  }
  auto run = [&](const std::string& args) {
    auto o = test::run_command(std::string(WAVEKV_BINARY) + " repair-timestamps --data-dir " + dir +
                               " " + args);
    return std::make_pair(o.exit_code, o.out);
  };
  auto [code, out] = run("--dry-run");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("poisoned\tvalue"), std::string::npos) << out;
  EXPECT_NE(out.find("1 key stamped too far ahead (dry run"), std::string::npos) << out;
  std::tie(code, out) = run("");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("1 key repaired"), std::string::npos) << out;
  std::tie(code, out) = run("--dry-run");
  EXPECT_NE(out.find("0 keys stamped too far ahead"), std::string::npos) << out;
  {
    Config c;
    c.data_dir = dir;
    auto store = open_or_fail(c);
    ASSERT_TRUE(store);
    EXPECT_EQ(test::value_of(*store, "poisoned"), "p");
    EXPECT_LE(stamp_ms(*store, "poisoned"), system_clock()->now_ms() + 1000);
    ASSERT_TRUE(store->put("fresh", "f").is_ok());
    EXPECT_LE(stamp_ms(*store, "fresh"), system_clock()->now_ms() + 1000);
    ASSERT_TRUE(store->close().is_ok());
  }
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace wavekv
