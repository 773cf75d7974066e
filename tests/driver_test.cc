// The replica driver (src/node/driver.h) on its own: a real store on
// testing::MemFileSystem, a transport that records what is sent, and time and
// random bits passed in by hand.
#include "node/driver.h"

#include <gtest/gtest.h>

#include <memory>
#include <utility>
#include <vector>

#include "testing/mem_fs.h"
#include "wavekv/node.h"

namespace wavekv {
namespace {

constexpr uint64_t kNow = 1'700'000'000'000;

class RecordingTransport final : public Transport {
 public:
  Status start(const std::string&, Handler) override { return Status::ok(); }
  std::string local_address() const override { return "self"; }
  bool send(const std::string& address, std::string frame) override {
    sent.emplace_back(address, std::move(frame));
    return true;
  }
  void stop() override {}
  TransportStats stats() const override { return {}; }

  std::vector<std::pair<std::string, std::string>> sent;
};

class FixedClock final : public Clock {
 public:
  uint64_t now_ms() override { return kNow; }
};

// A frame from peer 30 (unknown to us, which does not matter for a push).
std::string frame_from_peer(Body body) {
  Message m;
  m.from = 30;
  m.from_incarnation = 30;
  m.from_address = "peer";
  m.body = std::move(body);
  return encode_message(m);
}

std::string push_from_peer(const std::string& key, size_t value_bytes, uint64_t seq) {
  Entry e{std::string(value_bytes, 'v'), false, Meta{30, seq, timestamp_from_millis(kNow), 30}};
  return frame_from_peer(Push{{{key, std::move(e)}}});
}

class DriverTest : public ::testing::Test {
 protected:
  // The store refuses values over `max_value_bytes`; the driver's limits are
  // derived from it as the node derives them.
  void open(uint64_t max_value_bytes, size_t max_inbound_frames = 16) {
    NodeConfig nc;
    nc.store.data_dir = "/data";
    nc.store.fs = std::make_shared<testing::MemFileSystem>();
    nc.store.clock = std::make_shared<FixedClock>();
    nc.store.node_id = 10;
    nc.store.max_value_bytes = max_value_bytes;
    nc.derive_limits();
    ASSERT_TRUE(nc.validate().is_ok()) << nc.validate().to_string();
    auto s = open_replicated(nc.store);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    store_ = std::move(s).value();
    DriverConfig dc;
    dc.replica = nc.replica;
    dc.replica.address = "self";
    dc.max_inbound_frames = max_inbound_frames;
    driver_ = std::make_unique<Driver>(*store_, transport_, std::move(dc));
  }

  RecordingTransport transport_;
  std::unique_ptr<ReplicatedStore> store_;
  std::unique_ptr<Driver> driver_;
};

// Issue 11: the store, the replica and the decoder each had their own key and
// value limits, and nothing tied them together, so a node whose store took
// at most N bytes stored larger values a peer replicated to it.
TEST_F(DriverTest, AValueOneByteOverTheStoresLimitFromAPeerIsNeverStored) {
  open(100);
  ASSERT_TRUE(driver_->enqueue(push_from_peer("over", 101, 1)));
  ASSERT_TRUE(driver_->enqueue(push_from_peer("at", 100, 2)));
  (void)driver_->step(kNow, 1);
  EXPECT_FALSE(store_->get_entry("over").has_value()) << "101 bytes over a limit of 100: refused";
  ASSERT_TRUE(store_->get_entry("at").has_value()) << "exactly at the limit: taken";
  EXPECT_EQ(store_->get_entry("at")->value.size(), 100u);
  // Quarantined, not rejected: a rejected entry would stall acks with every
  // peer that holds it (docs/PROTOCOL.md, "Admission").
  const DriverReport stats = driver_->report();
  EXPECT_EQ(stats.decode_errors, 0u);
  EXPECT_EQ(stats.replica.entries_quarantined, 1u);
  ASSERT_EQ(stats.quarantined_keys.size(), 1u);
  EXPECT_EQ(stats.quarantined_keys[0], "over");
}

TEST(NodeConfigLimits, ReplicaLimitsThatDifferFromTheStoresAreRefusedUntilDerived) {
  NodeConfig nc;
  nc.store.data_dir = "/data";
  nc.store.max_value_bytes = 100;
  const Status st = nc.validate();
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("max_value_bytes"), std::string::npos) << st.message();
  nc.derive_limits();
  EXPECT_TRUE(nc.validate().is_ok()) << nc.validate().to_string();
  EXPECT_EQ(nc.replica.max_value_bytes, 100u);
  EXPECT_EQ(nc.replica.max_key_bytes, nc.store.max_key_bytes);
}

TEST_F(DriverTest, AFullInboundQueueRefusesAndCountsTheFrame) {
  open(100, 2);
  EXPECT_TRUE(driver_->enqueue(push_from_peer("a", 1, 1)));
  EXPECT_TRUE(driver_->enqueue(push_from_peer("b", 1, 2)));
  EXPECT_FALSE(driver_->enqueue(push_from_peer("c", 1, 3)));
  EXPECT_EQ(driver_->report().inbound_dropped, 1u);
  (void)driver_->step(kNow, 1);
  EXPECT_TRUE(store_->get_entry("b").has_value());
  EXPECT_FALSE(store_->get_entry("c").has_value());
  EXPECT_TRUE(driver_->enqueue(push_from_peer("c", 1, 3))) << "room again once step() drained it";
}

// Issue 12, the identity rule: with mutual TLS the transport knows which node
// id the sender's certificate binds, and a member may speak only as itself.
// Frames whose `from` (30) is not the certificate's id change nothing, a
// Rebootstrap in another's name included; the same frame from its own
// certificate, or over a transport that binds no id, is handled.
TEST_F(DriverTest, AMessageWhoseSenderIsNotItsCertificatesNodeIsRefused) {
  open(100);
  PeerIdentity node31{31, true};
  ASSERT_TRUE(driver_->enqueue(push_from_peer("forged", 1, 1), node31));
  ASSERT_TRUE(driver_->enqueue(frame_from_peer(Rebootstrap{"forged"}), node31));
  (void)driver_->step(kNow, 1);
  EXPECT_FALSE(store_->get_entry("forged").has_value());
  EXPECT_EQ(driver_->report().impersonations_refused, 2u);
  ASSERT_TRUE(driver_->enqueue(push_from_peer("own", 1, 2), PeerIdentity{30, true}));
  ASSERT_TRUE(driver_->enqueue(push_from_peer("key-only", 1, 3), PeerIdentity{std::nullopt, true}));
  const StepResult r = driver_->step(kNow, 1);
  EXPECT_FALSE(r.rebootstrap) << "a forged Rebootstrap wipes nothing";
  EXPECT_TRUE(store_->get_entry("own").has_value());
  EXPECT_TRUE(store_->get_entry("key-only").has_value());
  EXPECT_EQ(driver_->report().impersonations_refused, 2u);
}

TEST_F(DriverTest, AnUndecodableFrameIsCountedAndTheRestHandled) {
  open(100);
  ASSERT_TRUE(driver_->enqueue("not a frame"));
  ASSERT_TRUE(driver_->enqueue(push_from_peer("k", 1, 1)));
  (void)driver_->step(kNow, 1);
  EXPECT_EQ(driver_->report().decode_errors, 1u);
  EXPECT_TRUE(store_->get_entry("k").has_value());
}

TEST_F(DriverTest, ALocalWriteWakesOnceAndTicksBeforeTheTickIsDue) {
  open(100);
  const StepResult first = driver_->step(kNow, 1);
  EXPECT_EQ(first.next_step_ms, kNow + 10) << "tick_ms after the first tick";
  EXPECT_FALSE(driver_->has_work());
  ASSERT_TRUE(store_->put("k", "v").is_ok());
  EXPECT_TRUE(driver_->local_write_committed());
  EXPECT_FALSE(driver_->local_write_committed()) << "one wakeup until step() takes it";
  EXPECT_TRUE(driver_->has_work());
  const StepResult woken = driver_->step(kNow + 1, 2);
  EXPECT_FALSE(driver_->has_work());
  // No peer to push to: the push is "held back", and the driver asks for
  // one more tick when the spacing allows, not a whole tick_ms later.
  EXPECT_LE(woken.next_step_ms, kNow + 1 + 5);
}

// A node told to rebootstrap holds data that may have been deleted elsewhere:
// until it is wiped it must neither merge nor send anything more.
TEST_F(DriverTest, AfterARebootstrapTheDriverStaysQuiet) {
  open(100);
  // Peer 30 was a member before this process started and has not answered
  // this incarnation since: its Rebootstrap is one to honour (an unknown
  // sender's is refused, tests/replica_test.cc "CheckedClaims").
  PeerMeta peer;
  peer.address = "peer";
  peer.incarnation = 30;
  ASSERT_TRUE(store_->apply_ops({OpSetPeer{30, peer}}).is_ok());
  ASSERT_TRUE(driver_->enqueue(frame_from_peer(Rebootstrap{"evicted"})));
  ASSERT_TRUE(driver_->enqueue(push_from_peer("same-step", 1, 1)));
  EXPECT_TRUE(driver_->step(kNow, 1).rebootstrap);
  transport_.sent.clear();
  ASSERT_TRUE(driver_->enqueue(push_from_peer("later", 1, 2)));
  EXPECT_TRUE(driver_->step(kNow + 1000, 2).rebootstrap);
  EXPECT_FALSE(store_->get_entry("same-step").has_value());
  EXPECT_FALSE(store_->get_entry("later").has_value());
  EXPECT_TRUE(transport_.sent.empty());
}

}  // namespace
}  // namespace wavekv
