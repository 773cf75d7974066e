// RespServer over real sockets (port 0) against a real Store in a temp dir.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <asio/executor_work_guard.hpp>
#include <atomic>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>

#include "resp/overlay.h"
#include "resp/server.h"
#include "support/node_harness.h"
#include "support/resp_client.h"
#include "support/store_harness.h"

namespace wavekv::resp {
namespace {

using test::Client;
using test::Reply;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "wavekv-resp-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class RespServerTest : public ::testing::Test {
 protected:
  void SetUp() override { open_store(Durability::kNone); }

  void open_store(Durability d, std::shared_ptr<Clock> clock = nullptr) {
    server_.reset();
    if (store_) (void)store_->close();
    Config c;
    c.data_dir = dir_.path() + "/db";
    c.durability = d;
    c.clock = std::move(clock);
    c.wal_segment_bytes = 1 << 20;
    auto s = Store::open(c);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    store_ = std::move(s).value();
  }

  void start(RespConfig config = {}, RespStatusFn status = nullptr) {
    config.listen_address = "127.0.0.1:0";
    server_.reset();
    auto t = RespServerThread::start(*store_, std::move(config), std::move(status));
    ASSERT_TRUE(t.is_ok()) << t.status().to_string();
    server_ = std::move(t).value();
    ASSERT_NE(server_->port(), 0);
  }

  void TearDown() override {
    server_.reset();
    if (store_) (void)store_->close();
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<RespServerThread> server_;
};

TEST_F(RespServerTest, PingEchoGetSetDel) {
  start();
  Client c(server_->port());
  EXPECT_EQ(c.call({"PING"}), "PONG");
  EXPECT_EQ(c.call({"ping", "hi"}), "hi");
  EXPECT_EQ(c.call({"ECHO", "x y"}), "x y");
  EXPECT_EQ(c.call({"GET", "k"}), "(nil)");
  EXPECT_EQ(c.call({"SET", "k", "v"}), "OK");
  EXPECT_EQ(c.call({"GET", "k"}), "v");
  EXPECT_EQ(*store_->get("k"), "v");  // it reached the store
  const std::string binary("\0\r\n$3\r\n*\xff", 9);
  EXPECT_EQ(c.call({"SET", binary, binary}), "OK");
  EXPECT_EQ(c.call({"GET", binary}), binary);
  EXPECT_EQ(c.call({"SET", "", "empty key"}), "OK");
  EXPECT_EQ(c.call({"GET", ""}), "empty key");
  EXPECT_EQ(c.call({"EXISTS", "k", "k", "nope", ""}), "3");
  EXPECT_EQ(c.call({"DBSIZE"}), "3");
  EXPECT_EQ(c.call({"DEL", "k", "k", "nope", binary}), "2");
  EXPECT_EQ(c.call({"DEL", "nope"}), "0");
  EXPECT_EQ(c.call({"GET", "k"}), "(nil)");
  EXPECT_EQ(c.call({"DBSIZE"}), "1");
  // A key this node never held still gets its tombstone (it may be live on
  // another node, and this delete is the later write).
  auto never_held = store_->get_entry("nope");
  ASSERT_TRUE(never_held.has_value()) << "DEL of an absent key writes a tombstone";
  EXPECT_TRUE(never_held->tombstone);
}

TEST_F(RespServerTest, MsetMget) {
  start();
  Client c(server_->port());
  EXPECT_EQ(c.call({"MSET", "a", "1", "b", "2", "c", "3"}), "OK");
  EXPECT_EQ(c.call({"MGET", "a", "x", "c", "b"}), "[1, (nil), 3, 2]");
  EXPECT_EQ(c.call({"MSET", "a", "1", "b"}),
            "(error) ERR wrong number of arguments for 'mset' command");
  EXPECT_EQ(c.call({"MGET", "a"}), "[1]");
}

TEST_F(RespServerTest, SetOptions) {
  start();
  Client c(server_->port());
  EXPECT_EQ(c.call({"SET", "k", "1", "XX"}), "(nil)");
  EXPECT_EQ(c.call({"GET", "k"}), "(nil)");
  EXPECT_EQ(c.call({"SET", "k", "1", "NX"}), "OK");
  EXPECT_EQ(c.call({"SET", "k", "2", "nx"}), "(nil)");
  EXPECT_EQ(c.call({"GET", "k"}), "1");
  EXPECT_EQ(c.call({"SET", "k", "3", "XX"}), "OK");
  EXPECT_EQ(c.call({"SET", "k", "4", "GET"}), "3");
  EXPECT_EQ(c.call({"SET", "new", "1", "GET"}), "(nil)");
  EXPECT_EQ(c.call({"SET", "k", "5", "NX", "GET"}), "4");  // not set; old value
  EXPECT_EQ(c.call({"GET", "k"}), "4");
  EXPECT_EQ(c.call({"SET", "k", "6", "KEEPTTL"}), "OK");
  EXPECT_EQ(c.call({"SET", "k", "1", "NX", "XX"}), "(error) ERR syntax error");
  EXPECT_EQ(c.call({"SET", "k", "1", "BOGUS"}), "(error) ERR syntax error");
  EXPECT_EQ(c.call({"SET", "k", "1", "EX", "10", "KEEPTTL"}), "(error) ERR syntax error");
  EXPECT_EQ(c.call({"SET", "k", "1", "EX", "10", "PX", "10"}), "(error) ERR syntax error");
  EXPECT_EQ(c.call({"SET", "k", "1", "EX"}), "(error) ERR syntax error");
  EXPECT_EQ(c.call({"GET", "k"}), "6");
}

// FLUSHDB scans in pages of 1,024 keys: 1,025 keys make the last one the
// first of a second page.
TEST_F(RespServerTest, FlushdbWritesATombstoneForEveryKeyHeldOnEveryPage) {
  start();
  Client c(server_->port());
  std::vector<std::string> mset = {"MSET"};
  for (int i = 0; i < 1025; ++i) {
    char key[16];
    std::snprintf(key, sizeof key, "k%04d", i);
    mset.push_back(key);
    mset.push_back("v");
  }
  EXPECT_EQ(c.call(mset), "OK");
  const Meta before = store_->get_entry("k1024")->meta;
  EXPECT_EQ(c.call({"FLUSHDB", "NOW"}), "(error) ERR syntax error");
  EXPECT_EQ(c.call({"DBSIZE"}), "1025");
  EXPECT_EQ(c.call({"FLUSHDB"}), "OK");
  EXPECT_EQ(c.call({"DBSIZE"}), "0");
  EXPECT_EQ(c.call({"GET", "k0000"}), "(nil)");
  auto last = store_->get_entry("k1024");
  ASSERT_TRUE(last.has_value());
  EXPECT_TRUE(last->tombstone) << "the key on the second page is deleted too";
  EXPECT_TRUE(lww_less(before, last->meta)) << "a new version, which beats the value everywhere";
  EXPECT_EQ(c.call({"FLUSHALL", "async"}), "OK") << "nothing to delete is no error";
  // Inside MULTI it deletes what the transaction wrote before it, not after.
  EXPECT_EQ(c.call({"SET", "old", "1"}), "OK");
  EXPECT_EQ(c.call({"MULTI"}), "OK");
  EXPECT_EQ(c.call({"SET", "before", "1"}), "QUEUED");
  EXPECT_EQ(c.call({"FLUSHDB"}), "QUEUED");
  EXPECT_EQ(c.call({"SET", "after", "1"}), "QUEUED");
  EXPECT_EQ(c.call({"EXEC"}), "[OK, OK, OK]");
  EXPECT_EQ(c.call({"KEYS", "*"}), "[after]");
}

// Expiry against a clock the test moves (docs/RESP.md, "Expiry").
class RespExpiryTest : public RespServerTest {
 protected:
  static constexpr uint64_t kNow = 1'750'000'000'000ull;
  void SetUp() override {
    open_store(Durability::kNone, clock_);
    start();
  }
  std::shared_ptr<wavekv::test::FakeClock> clock_ = std::make_shared<wavekv::test::FakeClock>(kNow);
};

TEST_F(RespExpiryTest, SetWithAnExpiryLivesThroughItsMillisecondAndNotAfter) {
  Client c(server_->port());
  EXPECT_EQ(c.call({"SET", "ex", "v", "EX", "10"}), "OK");
  EXPECT_EQ(c.call({"SET", "px", "v", "PX", "1500"}), "OK");
  EXPECT_EQ(c.call({"SET", "exat", "v", "EXAT", std::to_string(kNow / 1000 + 20)}), "OK");
  EXPECT_EQ(c.call({"SET", "pxat", "v", "PXAT", std::to_string(kNow + 2500)}), "OK");
  EXPECT_EQ(c.call({"PTTL", "ex"}), "10000");
  EXPECT_EQ(c.call({"TTL", "px"}), "2") << "1.5 s rounds to 2, as in Redis";
  EXPECT_EQ(c.call({"TTL", "exat"}), "20");
  EXPECT_EQ(c.call({"PEXPIRETIME", "pxat"}), std::to_string(kNow + 2500));
  EXPECT_EQ(c.call({"EXPIRETIME", "ex"}), std::to_string(kNow / 1000 + 10));
  clock_->set(kNow + 1500);
  EXPECT_EQ(c.call({"GET", "px"}), "v") << "still there at its expiry millisecond";
  EXPECT_EQ(c.call({"PTTL", "px"}), "0");
  clock_->set(kNow + 1501);
  EXPECT_EQ(c.call({"GET", "px"}), "(nil)");
  EXPECT_EQ(c.call({"EXISTS", "px", "ex"}), "1");
  EXPECT_EQ(c.call({"TTL", "px"}), "-2");
  EXPECT_EQ(c.call({"KEYS", "*"}), "[ex, exat, pxat]");
  EXPECT_EQ(c.call({"TYPE", "px"}), "none");
  EXPECT_EQ(c.call({"SET", "plain", "v"}), "OK");
  EXPECT_EQ(c.call({"TTL", "plain"}), "-1");
  EXPECT_EQ(c.call({"EXPIRETIME", "plain"}), "-1");
  for (const char* t : {"0", "-1"})
    EXPECT_EQ(c.call({"SET", "k", "v", "EX", t}),
              "(error) ERR invalid expire time in 'set' command");
  EXPECT_EQ(c.call({"SET", "k", "v", "EX", "9223372036854775"}),
            "(error) ERR invalid expire time in 'set' command")
      << "seconds that overflow once in ms";
  EXPECT_EQ(c.call({"SET", "k", "v", "PX", "x"}),
            "(error) ERR value is not an integer or out of range");
  EXPECT_EQ(c.call({"SET", "ex", "v2", "PXAT", "1"}), "OK") << "a time in the past deletes";
  EXPECT_EQ(c.call({"EXISTS", "ex"}), "0");
  EXPECT_TRUE(store_->get_entry("ex")->tombstone) << "a tombstone, so it wins elsewhere too";
}

TEST_F(RespExpiryTest, WritesKeepReplaceMoveOrCopyTheExpiryAsRedisDoes) {
  Client c(server_->port());
  EXPECT_EQ(c.call({"SET", "n", "1", "EX", "100"}), "OK");
  EXPECT_EQ(c.call({"INCR", "n"}), "2");
  EXPECT_EQ(c.call({"INCRBYFLOAT", "n", "0.5"}), "2.5");
  EXPECT_EQ(c.call({"APPEND", "n", "0"}), "4");
  EXPECT_EQ(c.call({"SETRANGE", "n", "0", "3"}), "4");
  EXPECT_EQ(c.call({"TTL", "n"}), "100") << "in-place changes keep the expiry";
  EXPECT_EQ(c.call({"SET", "n", "x", "KEEPTTL"}), "OK");
  EXPECT_EQ(c.call({"TTL", "n"}), "100");
  EXPECT_EQ(c.call({"RENAME", "n", "m"}), "OK");
  EXPECT_EQ(c.call({"TTL", "m"}), "100") << "RENAME moves it";
  EXPECT_EQ(c.call({"COPY", "m", "o"}), "1");
  EXPECT_EQ(c.call({"TTL", "o"}), "100") << "COPY copies it";
  EXPECT_EQ(c.call({"SET", "m", "y"}), "OK");
  EXPECT_EQ(c.call({"TTL", "m"}), "-1") << "a plain SET drops it";
  EXPECT_EQ(c.call({"GETSET", "o", "z"}), "x");
  EXPECT_EQ(c.call({"TTL", "o"}), "-1") << "GETSET too";
  EXPECT_EQ(c.call({"SETEX", "s", "5", "v"}), "OK");
  EXPECT_EQ(c.call({"PSETEX", "p", "5", "v"}), "OK");
  EXPECT_EQ(c.call({"PTTL", "s"}), "5000");
  EXPECT_EQ(c.call({"PTTL", "p"}), "5");
  EXPECT_EQ(c.call({"SETEX", "s", "0", "v"}), "(error) ERR invalid expire time in 'setex' command");
  EXPECT_EQ(c.call({"MSET", "s", "1"}), "OK");
  EXPECT_EQ(c.call({"TTL", "s"}), "-1");
  // An expired value is gone for the commands that read it.
  EXPECT_EQ(c.call({"SET", "gone", "7", "PX", "10"}), "OK");
  clock_->advance(11);
  EXPECT_EQ(c.call({"INCR", "gone"}), "1") << "counted from nothing";
  EXPECT_EQ(c.call({"TTL", "gone"}), "-1");
  EXPECT_EQ(c.call({"SETNX", "p", "new"}), "1");
  EXPECT_EQ(c.call({"RENAME", "nope", "x"}), "(error) ERR no such key");
}

TEST_F(RespExpiryTest, ExpireConditionsPersistAndGetex) {
  Client c(server_->port());
  EXPECT_EQ(c.call({"EXPIRE", "nope", "10"}), "0");
  EXPECT_EQ(c.call({"SET", "k", "v"}), "OK");
  EXPECT_EQ(c.call({"EXPIRE", "k", "10", "XX"}), "0") << "no expiry yet";
  EXPECT_EQ(c.call({"EXPIRE", "k", "10", "GT"}), "0") << "none counts as infinite";
  EXPECT_EQ(c.call({"EXPIRE", "k", "10", "LT"}), "1");
  EXPECT_EQ(c.call({"EXPIRE", "k", "20", "NX"}), "0");
  EXPECT_EQ(c.call({"EXPIRE", "k", "10", "GT"}), "0") << "equal is not greater";
  EXPECT_EQ(c.call({"EXPIRE", "k", "11", "GT"}), "1");
  EXPECT_EQ(c.call({"EXPIRE", "k", "11", "LT"}), "0");
  EXPECT_EQ(c.call({"PEXPIRE", "k", "10999", "LT"}), "1");
  EXPECT_EQ(c.call({"PTTL", "k"}), "10999");
  EXPECT_EQ(c.call({"EXPIREAT", "k", std::to_string(kNow / 1000 + 30)}), "1");
  EXPECT_EQ(c.call({"TTL", "k"}), "30");
  EXPECT_EQ(c.call({"PEXPIREAT", "k", std::to_string(kNow + 40'000), "XX"}), "1");
  EXPECT_EQ(c.call({"TTL", "k"}), "40");
  EXPECT_EQ(c.call({"EXPIRE", "k", "1", "NX", "XX"}),
            "(error) ERR NX and XX, GT or LT options at the same time are not compatible");
  EXPECT_EQ(c.call({"EXPIRE", "k", "1", "GT", "LT"}),
            "(error) ERR GT and LT options at the same time are not compatible");
  EXPECT_EQ(c.call({"EXPIRE", "k", "1", "SOON"}), "(error) ERR Unsupported option SOON");
  EXPECT_EQ(c.call({"EXPIRE", "k", "9223372036854775807"}),
            "(error) ERR invalid expire time in 'expire' command");
  EXPECT_EQ(c.call({"TTL", "k"}), "40") << "refused options change nothing";

  EXPECT_EQ(c.call({"PERSIST", "k"}), "1");
  EXPECT_EQ(c.call({"TTL", "k"}), "-1");
  EXPECT_EQ(c.call({"PERSIST", "k"}), "0");
  EXPECT_EQ(c.call({"PERSIST", "nope"}), "0");

  EXPECT_EQ(c.call({"GETEX", "k", "PX", "500"}), "v");
  EXPECT_EQ(c.call({"PTTL", "k"}), "500");
  EXPECT_EQ(c.call({"GETEX", "k"}), "v");
  EXPECT_EQ(c.call({"PTTL", "k"}), "500") << "GETEX alone changes nothing";
  EXPECT_EQ(c.call({"GETEX", "k", "PERSIST"}), "v");
  EXPECT_EQ(c.call({"TTL", "k"}), "-1");
  const uint64_t writes = store_->status().writes;
  EXPECT_EQ(c.call({"GETEX", "k", "PERSIST"}), "v");
  EXPECT_EQ(store_->status().writes, writes) << "nothing to persist: nothing written";
  EXPECT_EQ(c.call({"GETEX", "nope", "EX", "5"}), "(nil)");
  EXPECT_EQ(c.call({"GETEX", "k", "EX", "0"}),
            "(error) ERR invalid expire time in 'getex' command");
  EXPECT_EQ(c.call({"GETEX", "k", "PERSIST", "5"}), "(error) ERR syntax error");

  // A time already past deletes the key, with a tombstone.
  EXPECT_EQ(c.call({"EXPIRE", "k", "0"}), "1");
  EXPECT_EQ(c.call({"GET", "k"}), "(nil)");
  EXPECT_TRUE(store_->get_entry("k")->tombstone);
  EXPECT_EQ(c.call({"SET", "j", "v"}), "OK");
  EXPECT_EQ(c.call({"PEXPIREAT", "j", "1"}), "1");
  EXPECT_EQ(c.call({"EXISTS", "j"}), "0");
}

TEST_F(RespExpiryTest, ATransactionReadsTheExpiryItsEarlierCommandsSet) {
  Client c(server_->port());
  EXPECT_EQ(c.call({"MULTI"}), "OK");
  EXPECT_EQ(c.call({"SET", "k", "1", "EX", "50"}), "QUEUED");
  EXPECT_EQ(c.call({"INCR", "k"}), "QUEUED");
  EXPECT_EQ(c.call({"TTL", "k"}), "QUEUED");
  EXPECT_EQ(c.call({"EXEC"}), "[OK, 2, 50]");
  EXPECT_EQ(c.call({"TTL", "k"}), "50") << "the batch kept the expiry";
}

TEST_F(RespServerTest, ConditionalSetsAreSerializedWithinTheServer) {
  open_store(Durability::kAlways);  // slow writes widen any window between check and write
  start();
  constexpr int kClients = 6, kKeys = 30;
  std::atomic<int> winners[kKeys] = {};
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      Client c(server_->port());
      // Pipelined: every request goes out before any reply is read.
      for (int k = 0; k < kKeys; ++k)
        c.send({"SET", "lock" + std::to_string(k), "owner" + std::to_string(t), "NX"});
      for (int k = 0; k < kKeys; ++k)
        if (c.read().show() == "OK") ++winners[k];
    });
  }
  for (auto& th : threads) th.join();
  for (int k = 0; k < kKeys; ++k) EXPECT_EQ(winners[k].load(), 1) << "lock" << k;
}

TEST_F(RespServerTest, ErrorsKeepTheConnection) {
  start();
  Client c(server_->port());
  EXPECT_EQ(c.call({"NOSUCH", "a", "b"}),
            "(error) ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b'");
  EXPECT_EQ(c.call({"GET"}), "(error) ERR wrong number of arguments for 'get' command");
  EXPECT_EQ(c.call({"GET", "a", "b"}), "(error) ERR wrong number of arguments for 'get' command");
  EXPECT_EQ(c.call({"PING", "a", "b"}), "(error) ERR wrong number of arguments for 'ping' command");
  EXPECT_EQ(c.call({"SCAN", "abc"}), "(error) ERR invalid cursor");
  EXPECT_EQ(c.call({"SCAN", "0", "COUNT", "x"}),
            "(error) ERR value is not an integer or out of range");
  EXPECT_EQ(c.call({"SCAN", "0", "MATCH"}), "(error) ERR syntax error");
  EXPECT_EQ(c.call({"SELECT", "1"}),
            "(error) ERR DB index is out of range (WaveKV has only database 0)");
  EXPECT_EQ(c.call({"SELECT", "0"}), "OK");
  EXPECT_EQ(
      c.call({"CONFIG", "SET", "save", ""}),
      "(error) ERR CONFIG SET of 'save' is not supported by WaveKV (only notify-keyspace-events)");
  EXPECT_EQ(c.call({"AUTH", "pw"}).substr(0, 18), "(error) ERR AUTH <");
  EXPECT_EQ(c.call({"PING"}), "PONG");
}

TEST_F(RespServerTest, InlineCommands) {
  start();
  Client c(server_->port());
  c.send_raw("PING\r\nSET greeting \"hello world\"\nGET greeting\r\n");
  EXPECT_EQ(c.read().show(), "PONG");
  EXPECT_EQ(c.read().show(), "OK");
  EXPECT_EQ(c.read().show(), "hello world");
  c.send_raw("SET x \"unbalanced\r\nPING\r\n");
  EXPECT_EQ(c.read().show(), "(error) ERR Protocol error: unbalanced quotes in request");
  EXPECT_EQ(c.read().show(), "PONG");
}

TEST_F(RespServerTest, PipelinedRepliesComeInRequestOrderAndReadTheirWrites) {
  open_store(Durability::kAlways);  // writes complete late: reads must wait for them
  start();
  Client c(server_->port());
  std::string burst;
  std::vector<std::string> expected;
  for (int i = 0; i < 300; ++i) {
    std::string v = std::to_string(i);
    burst += test::encode_command({"SET", "k", v});
    expected.push_back("OK");
    burst += test::encode_command({"GET", "k"});
    expected.push_back(v);
    burst += test::encode_command({"SET", "k" + v, v});
    expected.push_back("OK");
    burst += test::encode_command({"MGET", "k" + v, "k"});
    expected.push_back("[" + v + ", " + v + "]");
    burst += test::encode_command({"BAD"});
    expected.push_back("(error) ERR unknown command 'BAD', with args beginning with:");
    burst += test::encode_command({"DEL", "k" + v});
    expected.push_back("1");
    burst += test::encode_command({"EXISTS", "k" + v});
    expected.push_back("0");
    // Blind writes back to back, some refused by the store at once (key too
    // large), the others acknowledged after their fsync: still in order.
    burst += test::encode_command({"SET", "w" + v, v});
    expected.push_back("OK");
    burst += test::encode_command({"SET", std::string(64 * 1024 + 1, 'x'), v});
    expected.push_back(
        "(error) ERR write failed: InvalidArgument: key of 65537 bytes exceeds max_key_bytes "
        "65536");
    burst += test::encode_command({"MSET", "w" + v, v, "y", v});
    expected.push_back("OK");
  }
  c.send_raw(burst);  // all at once, before reading anything
  for (size_t i = 0; i < expected.size(); ++i) {
    auto r = c.read();
    ASSERT_EQ(r.show(), expected[i]) << "reply " << i;
  }
}

TEST_F(RespServerTest, SmallBoundsStillAnswerEveryRequestInOrder) {
  RespConfig config;
  config.max_pending_commands = 3;
  config.max_output_bytes = 64;
  start(config);
  Client c(server_->port());
  std::string burst;
  for (int i = 0; i < 500; ++i) {
    burst += test::encode_command({"SET", "k" + std::to_string(i), std::string(50, 'v')});
    burst += test::encode_command({"GET", "k" + std::to_string(i)});
  }
  c.send_raw(burst);
  for (int i = 0; i < 500; ++i) {
    ASSERT_EQ(c.read().show(), "OK") << i;
    ASSERT_EQ(c.read().show(), std::string(50, 'v')) << i;
  }
}

TEST_F(RespServerTest, OversizedBulkIsRefusedAndTheConnectionSurvives) {
  RespConfig config;
  config.limits.max_bulk_bytes = 1000;
  start(config);
  Client c(server_->port());
  EXPECT_EQ(c.call({"SET", "k", std::string(1000, 'a')}), "OK");
  auto r = c.cmd({"SET", "k", std::string(100'000, 'b')});
  EXPECT_EQ(r.show(),
            "(error) ERR Protocol error: bulk string of 100000 bytes exceeds the limit of 1000 "
            "bytes");
  EXPECT_EQ(c.call({"GET", "k"}), std::string(1000, 'a'));
}

TEST_F(RespServerTest, BrokenFramingGetsAnErrorAndTheConnectionCloses) {
  start();
  Client c(server_->port());
  c.send_raw("PING\r\n*1\r\n$x\r\nPING\r\n");
  EXPECT_EQ(c.read().show(), "PONG");
  EXPECT_EQ(c.read().show(), "(error) ERR Protocol error: invalid bulk length");
  EXPECT_TRUE(c.closed_by_peer());
  Client d(server_->port());  // the server lives on
  EXPECT_EQ(d.call({"PING"}), "PONG");
}

TEST_F(RespServerTest, QuitClosesAfterTheReply) {
  start();
  Client c(server_->port());
  c.send_raw(test::encode_command({"SET", "a", "1"}) + test::encode_command({"QUIT"}) +
             test::encode_command({"PING"}));
  EXPECT_EQ(c.read().show(), "OK");
  EXPECT_EQ(c.read().show(), "OK");
  EXPECT_TRUE(c.closed_by_peer());
}

TEST_F(RespServerTest, StoreFailuresAreErrorReplies) {
  start();
  Client c(server_->port());
  EXPECT_EQ(c.call({"SET", "a", "1"}), "OK");
  ASSERT_TRUE(store_->close().is_ok());
  EXPECT_EQ(c.call({"SET", "a", "2"}).substr(0, 27), "(error) ERR write failed: C");
  EXPECT_EQ(c.call({"MSET", "a", "2"}).substr(0, 26), "(error) ERR write failed: ");
  EXPECT_EQ(c.call({"PING"}), "PONG");
}

TEST_F(RespServerTest, KeyTooLargeForTheStoreIsAnError) {
  start();
  Client c(server_->port());
  std::string big_key(64 * 1024 + 1, 'k');
  EXPECT_NE(c.call({"SET", big_key, "v"}).find("exceeds max_key_bytes"), std::string::npos);
  EXPECT_EQ(c.call({"PING"}), "PONG");
}

TEST_F(RespServerTest, KeysAndScanMatch) {
  start();
  Client c(server_->port());
  for (const char* k : {"user:1", "user:2", "user:10", "usr", "hello", "hallo", "hxllo", "a*b"})
    ASSERT_EQ(c.call({"SET", k, "v"}), "OK");
  EXPECT_EQ(c.call({"KEYS", "user:*"}), "[user:1, user:10, user:2]");
  EXPECT_EQ(c.call({"KEYS", "h[ae]llo"}), "[hallo, hello]");
  EXPECT_EQ(c.call({"KEYS", "h[^e]llo"}), "[hallo, hxllo]");
  EXPECT_EQ(c.call({"KEYS", "h?llo"}), "[hallo, hello, hxllo]");
  EXPECT_EQ(c.call({"KEYS", "a\\*b"}), "[a*b]");
  EXPECT_EQ(c.call({"KEYS", "nothing*"}), "[]");
  EXPECT_EQ(c.cmd({"KEYS", "*"}).elems.size(), 8u);

  // SCAN MATCH with a small COUNT, to the end.
  std::vector<std::string> got;
  std::string cursor = "0";
  for (int i = 0; i < 100; ++i) {
    Reply r = c.cmd({"SCAN", cursor, "MATCH", "user:*", "COUNT", "1"});
    ASSERT_EQ(r.type, '*') << r.show();
    ASSERT_EQ(r.elems.size(), 2u);
    for (const auto& k : r.elems[1].elems) got.push_back(k.str);
    cursor = r.elems[0].str;
    if (cursor == "0") break;
  }
  EXPECT_EQ(cursor, "0");
  EXPECT_EQ(got, (std::vector<std::string>{"user:1", "user:10", "user:2"}));
  EXPECT_EQ(c.call({"SCAN", "0", "TYPE", "hash"}), "[0, []]");
  EXPECT_EQ(c.call({"SCAN", "123456789"}),
            "(error) ERR invalid cursor (unknown or expired; restart the scan from 0)");
}

TEST_F(RespServerTest, KeysReplyIsBounded) {
  RespConfig config;
  config.max_keys_reply = 3;
  start(config);
  Client c(server_->port());
  EXPECT_EQ(c.call({"MSET", "a", "1", "b", "2", "c", "3", "d", "4"}), "OK");
  EXPECT_EQ(c.call({"KEYS", "[abc]"}), "[a, b, c]");
  EXPECT_EQ(c.call({"KEYS", "*"}), "(error) ERR KEYS would return more than 3 keys; use SCAN");
}

// Every key present for the whole scan is returned at least once (here: exactly
// once), while other keys come and go between the SCAN calls.
TEST_F(RespServerTest, ScanReturnsEveryKeyPresentThroughout) {
  start();
  Client c(server_->port());
  Client writer(server_->port());
  std::set<std::string> stable;
  for (int i = 0; i < 300; ++i) {
    std::string k = "s" + std::to_string(i * 7 % 1000);
    stable.insert(k);
    ASSERT_EQ(c.call({"SET", k, "v"}), "OK");
    ASSERT_EQ(c.call({"SET", "v" + std::to_string(i), "v"}), "OK");  // volatile ones
  }
  std::multiset<std::string> seen;
  std::string cursor = "0";
  int step = 0;
  do {
    Reply r = c.cmd({"SCAN", cursor, "COUNT", "7"});
    ASSERT_EQ(r.type, '*') << r.show();
    for (const auto& k : r.elems[1].elems) seen.insert(k.str);
    cursor = r.elems[0].str;
    // Churn: delete some volatile keys, add keys before and after the cursor.
    std::string n = std::to_string(step++);
    ASSERT_EQ(writer.call({"DEL", "v" + n}), "1");
    ASSERT_EQ(writer.call({"MSET", "a" + n, "x", "z" + n, "x", "s" + n + "x", "x"}), "OK");
    ASSERT_LT(step, 10'000);
  } while (cursor != "0");
  for (const auto& k : stable) EXPECT_EQ(seen.count(k), 1u) << k;
}

TEST_F(RespServerTest, Info) {
  auto status = [this] {
    NodeStatus s;
    s.store = store_->status();
    s.address = "10.0.0.1:7000";
    s.replication.pushes_sent = 5;
    s.members = {{2, 3, "10.0.0.2:7000", 12, 0, std::nullopt}};
    return s;
  };
  start({}, status);
  Client c(server_->port());
  ASSERT_TRUE(store_->put("a", "1"));
  const std::string id = std::to_string(store_->node_id());
  std::string info = c.call({"INFO"});
  for (const std::string& want : std::vector<std::string>{
           "# Server\r\n", "redis_version:", "node_id:" + id + "\r\n", "incarnation:",
           "node_address:10.0.0.1:7000\r\n", "# Clients\r\n", "connected_clients:1\r\n",
           "# Replication\r\n", "role:master\r\n", "wavekv_members:1\r\n",
           "member0:id=2,address=10.0.0.2:7000,incarnation=3,last_seen_ms_ago=12,ack_lag=0,"
           "clock_offset_ms=null\r\n",
           "repl_pushes_sent:5\r\n", "# Persistence\r\n", "live_keys:1\r\n",
           "# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n"})
    EXPECT_NE(info.find(want), std::string::npos) << want << "\n" << info;
  std::string ks = c.call({"INFO", "keyspace"});
  EXPECT_EQ(ks, "# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n");
}

// Without a node (no status provider) INFO shows what the store knows.
TEST_F(RespServerTest, InfoWithoutANodeShowsTheStore) {
  start();
  Client c(server_->port());
  ASSERT_EQ(c.call({"SET", "a", "1"}), "OK");
  std::string info = c.call({"INFO"});
  for (const std::string& want :
       std::vector<std::string>{"role:master\r\n", "node_id:" + std::to_string(store_->node_id()),
                                "live_keys:1\r\n", "node_address:\r\n"})
    EXPECT_NE(info.find(want), std::string::npos) << want << "\n" << info;
  EXPECT_EQ(info.find("wavekv_members"), std::string::npos) << info;
  EXPECT_EQ(info.find("repl_"), std::string::npos) << info;
  EXPECT_EQ(c.call({"PING"}), "PONG");
}

TEST_F(RespServerTest, ConfigCommandClientSelectHello) {
  start();
  Client c(server_->port());
  EXPECT_EQ(c.call({"CONFIG", "GET", "save"}), "[save, ]");
  EXPECT_EQ(c.call({"CONFIG", "GET", "appendonly"}), "[appendonly, yes]");
  EXPECT_EQ(c.call({"CONFIG", "GET", "SAVE", "databases"}), "[save, , databases, 1]");
  EXPECT_EQ(c.call({"CONFIG", "GET", "no-such-thing"}), "[]");
  EXPECT_GT(c.cmd({"CONFIG", "GET", "*"}).elems.size(), 10u);

  Reply count = c.cmd({"COMMAND", "COUNT"});
  ASSERT_EQ(count.type, ':');
  Reply all = c.cmd({"COMMAND"});
  EXPECT_EQ(static_cast<int64_t>(all.elems.size()), count.integer);
  EXPECT_EQ(c.call({"COMMAND", "INFO", "get", "nosuch"}),
            "[[get, 2, [readonly, fast], 1, 1, 1, [], [], [], []], (nil)]");
  EXPECT_EQ(c.call({"COMMAND", "DOCS", "get"}),
            "[get, [summary, Gets the value of a key, since, 1.0.0, group, string]]");

  Reply id = c.cmd({"CLIENT", "ID"});
  EXPECT_EQ(id.type, ':');
  EXPECT_EQ(c.call({"CLIENT", "GETNAME"}), "(nil)");
  EXPECT_EQ(c.call({"CLIENT", "SETNAME", "worker-1"}), "OK");
  EXPECT_EQ(c.call({"CLIENT", "GETNAME"}), "worker-1");
  EXPECT_EQ(c.call({"CLIENT", "SETNAME", "has space"}).substr(0, 30),
            "(error) ERR Client names canno");
  EXPECT_EQ(c.call({"CLIENT", "SETINFO", "lib-name", "test"}), "OK");
  // A bare KILL has no filter: Redis calls it an arity error, and it must not kill everyone.
  EXPECT_EQ(c.call({"CLIENT", "KILL"}),
            "(error) ERR wrong number of arguments for 'client|kill' command");
  EXPECT_EQ(c.call({"CLIENT", "NOSUCH"}).substr(0, 31), "(error) ERR unknown subcommand ");

  std::string hello2 = c.call({"HELLO"});
  EXPECT_NE(hello2.find("proto, 2, id, " + std::to_string(id.integer)), std::string::npos)
      << hello2;
  EXPECT_EQ(c.call({"HELLO", "4"}), "(error) NOPROTO unsupported protocol version");
  std::string hello3 = c.call({"HELLO", "3", "SETNAME", "r3"});
  EXPECT_EQ(hello3.substr(0, 1), "{") << hello3;
  EXPECT_NE(hello3.find("proto: 3"), std::string::npos) << hello3;
  // RESP3 from now on: null is "_", maps are maps.
  c.send({"GET", "missing"});
  EXPECT_EQ(c.read().type, '_');
  EXPECT_EQ(c.call({"CONFIG", "GET", "save"}), "{save: }");
  EXPECT_EQ(c.call({"CLIENT", "GETNAME"}), "r3");
  EXPECT_EQ(c.call({"HELLO", "2"}).substr(0, 1), "[");
}

TEST_F(RespServerTest, MaxConnections) {
  RespConfig config;
  config.max_connections = 2;
  start(config);
  Client a(server_->port()), b(server_->port());
  EXPECT_EQ(a.call({"PING"}), "PONG");
  EXPECT_EQ(b.call({"PING"}), "PONG");
  Client c(server_->port());
  EXPECT_EQ(c.read().show(), "(error) ERR max number of clients reached");
  EXPECT_TRUE(c.closed_by_peer());
}

// The embedding node's way: its own io_context, run by several threads.
TEST_F(RespServerTest, CallerOwnedIoContextWithSeveralThreads) {
  asio::io_context io;
  RespConfig config;
  config.listen_address = "127.0.0.1:0";
  auto server = std::make_unique<RespServer>(io, *store_, config);
  ASSERT_TRUE(server->start().is_ok());
  auto guard = asio::make_work_guard(io);
  std::vector<std::thread> io_threads;
  for (int i = 0; i < 3; ++i) io_threads.emplace_back([&] { io.run(); });

  std::vector<std::thread> clients;
  std::atomic<int> good{0};
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      Client c(server->port());
      std::string burst;
      for (int i = 0; i < 200; ++i) {
        std::string k = "t" + std::to_string(t) + ":" + std::to_string(i);
        burst += test::encode_command({"SET", k, k});
        burst += test::encode_command({"GET", k});
      }
      c.send_raw(burst);
      for (int i = 0; i < 200; ++i) {
        std::string k = "t" + std::to_string(t) + ":" + std::to_string(i);
        if (c.read().show() == "OK" && c.read().show() == k) ++good;
      }
    });
  }
  for (auto& th : clients) th.join();
  EXPECT_EQ(good.load(), 800);
  server->stop();
  guard.reset();
  io.stop();
  for (auto& th : io_threads) th.join();
  server.reset();
}

TEST_F(RespServerTest, BadConfigAndBusyPortAreErrors) {
  RespConfig bad;
  bad.listen_address = "no-port";
  EXPECT_FALSE(bad.validate().is_ok());
  bad.listen_address = "127.0.0.1:99999";
  EXPECT_FALSE(bad.validate().is_ok());
  start();
  asio::io_context io;
  RespConfig taken;
  taken.listen_address = "127.0.0.1:" + std::to_string(server_->port());
  RespServer second(io, *store_, taken);
  Status st = second.start();
  EXPECT_EQ(st.code(), Code::kIOError) << st.to_string();
}

// ---- MULTI / EXEC ----

TEST_F(RespServerTest, ExecIsOneBatchAndItsCommandsReadEarlierOnes) {
  start();
  Client c(server_->port());
  ASSERT_EQ(c.call({"SET", "gone", "x"}), "OK");
  const uint64_t writes = store_->status().writes;
  EXPECT_EQ(c.call({"MULTI"}), "OK");
  for (const auto& cmd : std::vector<std::vector<std::string>>{{"SET", "a", "1"},
                                                               {"INCR", "a"},
                                                               {"GET", "a"},
                                                               {"DEL", "gone"},
                                                               {"EXISTS", "gone"},
                                                               {"SET", "b", "x", "NX"},
                                                               {"KEYS", "*"}})
    EXPECT_EQ(c.call(cmd), "QUEUED") << cmd[0];
  EXPECT_EQ(store_->get("a").status().code(), Code::kNotFound) << "nothing runs before EXEC";
  EXPECT_EQ(c.call({"EXEC"}), "[OK, 2, 2, 1, 0, OK, [a, b]]");
  EXPECT_EQ(store_->status().writes, writes + 1) << "the transaction is one WriteBatch";
  EXPECT_EQ(*store_->get("a"), "2");
  EXPECT_EQ(*store_->get("b"), "x");
  EXPECT_EQ(store_->get("gone").status().code(), Code::kNotFound);
  EXPECT_EQ(c.call({"GET", "a"}), "2") << "the connection carries on outside the transaction";
}

TEST_F(RespServerTest, AQueuingErrorAbortsExecAndOtherErrorsAreItsReplies) {
  start();
  Client c(server_->port());
  EXPECT_EQ(c.call({"EXEC"}), "(error) ERR EXEC without MULTI");
  EXPECT_EQ(c.call({"DISCARD"}), "(error) ERR DISCARD without MULTI");
  EXPECT_EQ(c.call({"MULTI"}), "OK");
  EXPECT_EQ(c.call({"MULTI"}), "(error) ERR MULTI calls can not be nested");
  EXPECT_EQ(c.call({"SET", "k", "v"}), "QUEUED");
  EXPECT_EQ(c.call({"GET"}), "(error) ERR wrong number of arguments for 'get' command");
  EXPECT_EQ(c.call({"EXEC"}),
            "(error) EXECABORT Transaction discarded because of previous errors.");
  EXPECT_EQ(store_->get("k").status().code(), Code::kNotFound) << "nothing of it was written";

  EXPECT_EQ(c.call({"MULTI"}), "OK");
  EXPECT_EQ(c.call({"NOSUCH"}).substr(0, 27), "(error) ERR unknown command");
  EXPECT_EQ(c.call({"EXEC"}).substr(0, 17), "(error) EXECABORT");
  EXPECT_EQ(c.call({"MULTI"}), "OK");
  EXPECT_EQ(c.call({"AUTH", "pw"}), "(error) ERR Command not allowed inside a transaction");
  EXPECT_EQ(c.call({"DISCARD"}), "OK");

  // A command that fails when it runs is one reply among the others.
  EXPECT_EQ(c.call({"SET", "s", "text"}), "OK");
  EXPECT_EQ(c.call({"MULTI"}), "OK");
  EXPECT_EQ(c.call({"INCR", "s"}), "QUEUED");
  EXPECT_EQ(c.call({"SET", "k", "v"}), "QUEUED");
  EXPECT_EQ(c.call({"EXEC"}), "[(error) ERR value is not an integer or out of range, OK]");
  EXPECT_EQ(*store_->get("k"), "v");
  EXPECT_EQ(c.call({"MULTI"}), "OK");
  EXPECT_EQ(c.call({"SET", "k", "w"}), "QUEUED");
  EXPECT_EQ(c.call({"DISCARD"}), "OK");
  EXPECT_EQ(c.call({"EXEC"}), "(error) ERR EXEC without MULTI");
  EXPECT_EQ(*store_->get("k"), "v") << "a discarded transaction writes nothing";
}

TEST_F(RespServerTest, WatchAbortsExecWhenTheKeyChangedOnThisNode) {
  start();
  Client c(server_->port()), other(server_->port());
  ASSERT_EQ(c.call({"SET", "k", "1"}), "OK");
  EXPECT_EQ(c.call({"WATCH", "k", "absent"}), "OK");
  EXPECT_EQ(other.call({"SET", "k", "2"}), "OK");
  EXPECT_EQ(c.call({"MULTI"}), "OK");
  EXPECT_EQ(c.call({"WATCH", "k"}), "(error) ERR WATCH inside MULTI is not allowed");
  EXPECT_EQ(c.call({"SET", "k", "mine"}), "QUEUED");
  EXPECT_EQ(c.call({"EXEC"}), "(nil)") << "k changed since WATCH";
  EXPECT_EQ(*store_->get("k"), "2");

  // Watching a key that then appears (a write that arrived) aborts too; a
  // watch is over after EXEC, and an untouched key lets EXEC through.
  EXPECT_EQ(c.call({"WATCH", "absent"}), "OK");
  ASSERT_TRUE(store_->put("absent", "now").is_ok());
  EXPECT_EQ(c.call({"MULTI"}), "OK");
  EXPECT_EQ(c.call({"SET", "k", "mine"}), "QUEUED");
  EXPECT_EQ(c.call({"EXEC"}), "(nil)");
  EXPECT_EQ(c.call({"WATCH", "k"}), "OK");
  EXPECT_EQ(c.call({"MULTI"}), "OK");
  EXPECT_EQ(c.call({"SET", "k", "mine"}), "QUEUED");
  EXPECT_EQ(c.call({"EXEC"}), "[OK]");
  EXPECT_EQ(*store_->get("k"), "mine");
  EXPECT_EQ(c.call({"WATCH", "k"}), "OK");
  EXPECT_EQ(c.call({"UNWATCH"}), "OK");
  EXPECT_EQ(other.call({"SET", "k", "3"}), "OK");
  EXPECT_EQ(c.call({"MULTI"}), "OK");
  EXPECT_EQ(c.call({"GET", "k"}), "QUEUED");
  EXPECT_EQ(c.call({"EXEC"}), "[3]") << "UNWATCH forgot the key";
}

// What a transaction's commands read: its writes over the store, in key
// order, and a limit counts keys after both (a deleted key does not use up
// the page, a written one takes its place).
TEST_F(RespServerTest, TheTransactionOverlayMergesItsWritesIntoScans) {
  for (const char* k : {"a", "b", "c", "d", "e"}) ASSERT_TRUE(store_->put(k, "base").is_ok());
  TxOverlay overlay(*store_);
  WriteBatch w;
  w.del("a");
  w.del("b");
  w.put("bb", "tx");
  w.put("c", "tx");
  w.put("f", "tx");
  overlay.apply(w);
  auto keys = [](const std::vector<KeyValue>& page) {
    std::string s;
    for (const auto& kv : page) s += kv.key + "=" + kv.value + " ";
    return s;
  };
  EXPECT_EQ(keys(overlay.scan_range("", "", 0)), "bb=tx c=tx d=base e=base f=tx ");
  EXPECT_EQ(keys(overlay.scan_range("", "", 3)), "bb=tx c=tx d=base ");
  EXPECT_EQ(keys(overlay.scan_range("", "", 1)), "bb=tx ");
  EXPECT_EQ(keys(overlay.scan_range("c", "f", 0)), "c=tx d=base e=base ");
  EXPECT_EQ(keys(overlay.scan_range("e", "", 5)), "e=base f=tx ");
  EXPECT_EQ(keys(overlay.scan_prefix("b", 0)), "bb=tx ");
  EXPECT_EQ(overlay.get("a").status().code(), Code::kNotFound);
  EXPECT_EQ(*overlay.get("d"), "base");
  EXPECT_EQ(overlay.batch().size(), 5u);
  EXPECT_EQ(*store_->get("a"), "base") << "the overlay writes nothing itself";
}

// A transaction's replies together may take max_output_bytes: at the limit
// it runs, one byte over it is refused whole and writes nothing.
TEST_F(RespServerTest, ExecRepliesAreBoundedByTheOutputLimit) {
  const std::string value(600, 'v');
  const uint64_t get_reply = 1 + 3 + 2 + value.size() + 2;  // "$600\r\n" value "\r\n"
  const uint64_t replies = 5 + 2 * get_reply;               // "+OK\r\n" and two GETs
  for (uint64_t cap : {replies, replies - 1}) {
    SCOPED_TRACE(cap);
    RespConfig config;
    config.max_output_bytes = cap;
    start(config);
    Client c(server_->port());
    ASSERT_EQ(c.call({"SET", "big", value}), "OK");
    c.call({"DEL", "w"});  // written by the run at the limit
    EXPECT_EQ(c.call({"MULTI"}), "OK");
    EXPECT_EQ(c.call({"SET", "w", "x"}), "QUEUED");
    EXPECT_EQ(c.call({"GET", "big"}), "QUEUED");
    EXPECT_EQ(c.call({"GET", "big"}), "QUEUED");
    Reply r = c.cmd({"EXEC"});
    if (cap == replies) {
      ASSERT_EQ(r.type, '*') << r.show();
      EXPECT_EQ(r.elems.size(), 3u);
      EXPECT_EQ(*store_->get("w"), "x");
    } else {
      EXPECT_EQ(r.show().substr(0, 17), "(error) EXECABORT") << r.show();
      EXPECT_EQ(store_->get("w").status().code(), Code::kNotFound);
    }
  }
}

// Queued commands are bounded like one request: up to max_request_bytes.
TEST_F(RespServerTest, QueuedCommandsAreBoundedByTheRequestLimit) {
  auto queued = [](const std::vector<std::string>& args) {
    uint64_t n = sizeof(std::vector<std::string>);
    for (const auto& a : args) n += sizeof(std::string) + a.size();
    return n;
  };
  const std::vector<std::string> set = {"SET", "k", std::string(100, 'v')};
  RespConfig config;
  config.limits.max_request_bytes = 3 * queued(set);
  start(config);
  Client c(server_->port());
  EXPECT_EQ(c.call({"MULTI"}), "OK");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.call(set), "QUEUED") << i;
  EXPECT_EQ(c.call(set).substr(0, 50), "(error) ERR the transaction is larger than max_req");
  EXPECT_EQ(c.call({"EXEC"}).substr(0, 17), "(error) EXECABORT");
}

// ---- strings and keyspace ----

TEST_F(RespServerTest, Counters) {
  start();
  Client c(server_->port());
  EXPECT_EQ(c.call({"INCR", "n"}), "1") << "an absent key counts from 0";
  EXPECT_EQ(c.call({"INCRBY", "n", "41"}), "42");
  EXPECT_EQ(c.call({"DECRBY", "n", "50"}), "-8");
  EXPECT_EQ(c.call({"DECR", "n"}), "-9");
  EXPECT_EQ(c.call({"GET", "n"}), "-9");
  const std::string not_int = "(error) ERR value is not an integer or out of range";
  for (const char* bad : {"", " 1", "1 ", "+1", "01", "-0", "1.5", "9223372036854775808"}) {
    ASSERT_EQ(c.call({"SET", "bad", bad}), "OK");
    EXPECT_EQ(c.call({"INCR", "bad"}), not_int) << "'" << bad << "'";
  }
  EXPECT_EQ(c.call({"INCRBY", "n", "x"}), not_int);
  EXPECT_EQ(c.call({"SET", "max", "9223372036854775806"}), "OK");
  EXPECT_EQ(c.call({"INCR", "max"}), "9223372036854775807") << "up to the limit";
  EXPECT_EQ(c.call({"INCR", "max"}), "(error) ERR increment or decrement would overflow");
  EXPECT_EQ(c.call({"SET", "min", "-9223372036854775808"}), "OK");
  EXPECT_EQ(c.call({"DECR", "min"}), "(error) ERR increment or decrement would overflow");
  EXPECT_EQ(c.call({"DECRBY", "n", "-9223372036854775808"}), not_int);
  EXPECT_EQ(c.call({"GET", "max"}), "9223372036854775807") << "a refused increment writes nothing";

  // Redis's own figures (INCRBYFLOAT's documentation), long double and all.
  EXPECT_EQ(c.call({"SET", "f", "10.50"}), "OK");
  EXPECT_EQ(c.call({"INCRBYFLOAT", "f", "0.1"}), "10.6");
  EXPECT_EQ(c.call({"INCRBYFLOAT", "f", "-5"}), "5.6");
  EXPECT_EQ(c.call({"SET", "g", "5.0e3"}), "OK");
  EXPECT_EQ(c.call({"INCRBYFLOAT", "g", "2.0e2"}), "5200");
  EXPECT_EQ(c.call({"INCRBYFLOAT", "g", "x"}), "(error) ERR value is not a valid float");
  EXPECT_EQ(c.call({"INCRBYFLOAT", "g", "inf"}), "(error) ERR value is not a valid float");
}

// Concurrent INCRs through one node lose nothing: read and write are one
// step among the server's check-then-write commands.
TEST_F(RespServerTest, IncrementsFromManyClientsOfOneNodeAllCount) {
  open_store(Durability::kAlways);  // slow writes widen any window between read and write
  start();
  constexpr int kClients = 4, kEach = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&] {
      Client c(server_->port());
      for (int i = 0; i < kEach; ++i) c.send({"INCR", "n"});
      for (int i = 0; i < kEach; ++i) c.read();
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(*store_->get("n"), std::to_string(kClients * kEach));
}

TEST_F(RespServerTest, BitCommandsReadAndWriteBitsFromTheHighBitOfTheFirstByte) {
  RespConfig config;
  config.limits.max_bulk_bytes = 16;
  start(config);
  Client c(server_->port());
  EXPECT_EQ(c.call({"SETBIT", "b", "7", "1"}), "0");
  EXPECT_EQ(c.call({"GET", "b"}), std::string("\x01", 1)) << "bit 7 is the low bit of byte 0";
  EXPECT_EQ(c.call({"SETBIT", "b", "0", "1"}), "0");
  EXPECT_EQ(c.call({"GET", "b"}), std::string("\x81", 1));
  EXPECT_EQ(c.call({"SETBIT", "b", "7", "0"}), "1") << "the bit as it was";
  EXPECT_EQ(c.call({"GET", "b"}), std::string("\x80", 1));
  EXPECT_EQ(c.call({"GETBIT", "b", "0"}), "1");
  EXPECT_EQ(c.call({"GETBIT", "b", "1"}), "0");
  EXPECT_EQ(c.call({"GETBIT", "b", "100"}), "0") << "past the end";
  EXPECT_EQ(c.call({"GETBIT", "nope", "0"}), "0");
  EXPECT_EQ(c.call({"SETBIT", "b", "1", "2"}), "(error) ERR bit is not an integer or out of range");
  EXPECT_EQ(c.call({"SETBIT", "b", "-1", "1"}),
            "(error) ERR bit offset is not an integer or out of range");
  EXPECT_EQ(c.call({"GETBIT", "b", "4294967296"}),
            "(error) ERR bit offset is not an integer or out of range");
  EXPECT_EQ(c.call({"GETBIT", "b", "4294967295"}), "0") << "the last offset Redis allows";
  // The value grows with zero bytes, up to the largest bulk (16 bytes here).
  EXPECT_EQ(c.call({"SETBIT", "g", "127", "1"}), "0");
  EXPECT_EQ(c.call({"STRLEN", "g"}), "16");
  EXPECT_EQ(c.call({"SETBIT", "g", "128", "1"}),
            "(error) ERR string exceeds maximum allowed size (proto-max-bulk-len)");
  // A value's expiry stays, as with SETRANGE.
  ASSERT_EQ(c.call({"SET", "t", "x", "EX", "100"}), "OK");
  EXPECT_EQ(c.call({"SETBIT", "t", "0", "1"}), "0");
  EXPECT_EQ(c.call({"TTL", "t"}), "100");

  // "foobar": 26 bits set; Redis's documented examples.
  ASSERT_EQ(c.call({"SET", "f", "foobar"}), "OK");
  EXPECT_EQ(c.call({"BITCOUNT", "f"}), "26");
  EXPECT_EQ(c.call({"BITCOUNT", "f", "0", "0"}), "4");
  EXPECT_EQ(c.call({"BITCOUNT", "f", "1", "1"}), "6");
  EXPECT_EQ(c.call({"BITCOUNT", "f", "1", "1", "BYTE"}), "6");
  EXPECT_EQ(c.call({"BITCOUNT", "f", "5", "30", "BIT"}), "17");
  EXPECT_EQ(c.call({"BITCOUNT", "f", "-1", "-1"}), "4") << "'r' is 0x72";
  EXPECT_EQ(c.call({"BITCOUNT", "f", "4", "100"}), "7") << "clamped to the end";
  EXPECT_EQ(c.call({"BITCOUNT", "f", "3", "2"}), "0");
  EXPECT_EQ(c.call({"BITCOUNT", "nope"}), "0");
  EXPECT_EQ(c.call({"BITCOUNT", "f", "1"}), "(error) ERR syntax error");
  EXPECT_EQ(c.call({"BITCOUNT", "f", "0", "1", "WORD"}), "(error) ERR syntax error");
}

TEST_F(RespServerTest, LcsGivesTheCommonSubsequenceItsLengthAndItsMatchesLastFirst) {
  RespConfig config;
  config.limits.max_bulk_bytes = 400;  // the table may take 400 bytes: 100 cells
  start(config);
  Client c(server_->port());
  ASSERT_EQ(c.call({"SET", "a", "ohmytext"}), "OK");
  ASSERT_EQ(c.call({"SET", "b", "mynewtext"}), "OK");
  EXPECT_EQ(c.call({"LCS", "a", "b"}), "mytext");
  EXPECT_EQ(c.call({"LCS", "a", "b", "LEN"}), "6");
  EXPECT_EQ(c.call({"LCS", "a", "b", "IDX"}),
            "[matches, [[[4, 7], [5, 8]], [[2, 3], [0, 1]]], len, 6]");
  EXPECT_EQ(c.call({"LCS", "a", "b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"}),
            "[matches, [[[4, 7], [5, 8], 4]], len, 6]");
  EXPECT_EQ(c.call({"LCS", "a", "nope"}), "") << "an absent key is the empty string";
  EXPECT_EQ(c.call({"LCS", "a", "b", "LEN", "IDX"}),
            "(error) ERR If you want both the length and indexes, please just use IDX.");
  // Ties go as Redis's walk takes them: up (shorter first value) only when
  // that keeps a longer subsequence, else left.
  ASSERT_EQ(c.call({"SET", "x", "ab"}), "OK");
  ASSERT_EQ(c.call({"SET", "y", "ba"}), "OK");
  EXPECT_EQ(c.call({"LCS", "x", "y"}), "b");
  // The table has (9 + 1) x (9 + 1) cells of 4 bytes: exactly 400.
  ASSERT_EQ(c.call({"SET", "n", "123456789"}), "OK");
  EXPECT_EQ(c.call({"LCS", "n", "n", "LEN"}), "9");
  ASSERT_EQ(c.call({"SET", "m", "1234567890"}), "OK");
  EXPECT_EQ(c.call({"LCS", "m", "n", "LEN"}),
            "(error) ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
}

TEST_F(RespServerTest, StringCommands) {
  RespConfig config;
  config.limits.max_bulk_bytes = 16;
  start(config);
  Client c(server_->port());
  EXPECT_EQ(c.call({"APPEND", "s", "Hello"}), "5");
  EXPECT_EQ(c.call({"APPEND", "s", " World"}), "11");
  EXPECT_EQ(c.call({"STRLEN", "s"}), "11");
  EXPECT_EQ(c.call({"STRLEN", "nope"}), "0");
  EXPECT_EQ(c.call({"GETRANGE", "s", "0", "4"}), "Hello");
  EXPECT_EQ(c.call({"GETRANGE", "s", "-5", "-1"}), "World");
  EXPECT_EQ(c.call({"GETRANGE", "s", "-1", "-5"}), "");
  EXPECT_EQ(c.call({"GETRANGE", "s", "5", "100"}), " World");
  EXPECT_EQ(c.call({"GETRANGE", "s", "-100", "1"}), "He");
  EXPECT_EQ(c.call({"GETRANGE", "nope", "0", "-1"}), "");
  EXPECT_EQ(c.call({"SETRANGE", "s", "6", "Redis"}), "11");
  EXPECT_EQ(c.call({"GET", "s"}), "Hello Redis");
  EXPECT_EQ(c.call({"SETRANGE", "pad", "2", "x"}), "3");
  EXPECT_EQ(c.call({"GET", "pad"}), std::string("\0\0x", 3));
  EXPECT_EQ(c.call({"SETRANGE", "empty", "5", ""}), "0");
  EXPECT_EQ(c.call({"EXISTS", "empty"}), "0") << "an empty SETRANGE creates nothing";
  EXPECT_EQ(c.call({"SETRANGE", "s", "-1", "x"}), "(error) ERR offset is out of range");
  // Built strings end at the largest bulk a client may send (16 here).
  EXPECT_EQ(c.call({"APPEND", "s", "12345"}), "16");
  EXPECT_EQ(c.call({"APPEND", "s", "6"}),
            "(error) ERR string exceeds maximum allowed size (proto-max-bulk-len)");
  EXPECT_EQ(c.call({"SETRANGE", "r", "15", "x"}), "16");
  EXPECT_EQ(c.call({"SETRANGE", "r", "16", "x"}),
            "(error) ERR string exceeds maximum allowed size (proto-max-bulk-len)");

  EXPECT_EQ(c.call({"GETSET", "g", "1"}), "(nil)");
  EXPECT_EQ(c.call({"GETSET", "g", "2"}), "1");
  EXPECT_EQ(c.call({"GETDEL", "g"}), "2");
  EXPECT_EQ(c.call({"GETDEL", "g"}), "(nil)");
  EXPECT_EQ(c.call({"SETNX", "n", "1"}), "1");
  EXPECT_EQ(c.call({"SETNX", "n", "2"}), "0");
  EXPECT_EQ(c.call({"MSETNX", "n", "3", "m", "3"}), "0");
  EXPECT_EQ(c.call({"EXISTS", "m"}), "0") << "MSETNX sets all or none";
  EXPECT_EQ(c.call({"MSETNX", "m", "3", "o", "3"}), "1");
  EXPECT_EQ(c.call({"GET", "n"}), "1");
  EXPECT_EQ(c.call({"TYPE", "n"}), "string");
  EXPECT_EQ(c.call({"TYPE", "nope"}), "none");
  EXPECT_EQ(c.call({"TOUCH", "n", "nope", "n"}), "2");
  EXPECT_EQ(c.call({"OBJECT", "ENCODING", "n"}), "int");
  EXPECT_EQ(c.call({"OBJECT", "ENCODING", "s"}), "embstr");
  EXPECT_EQ(c.call({"OBJECT", "ENCODING", "nope"}), "(nil)");
}

TEST_F(RespServerTest, RenameAndCopy) {
  start();
  Client c(server_->port());
  EXPECT_EQ(c.call({"RENAME", "nope", "x"}), "(error) ERR no such key");
  ASSERT_EQ(c.call({"SET", "a", "1"}), "OK");
  const uint64_t writes = store_->status().writes;
  EXPECT_EQ(c.call({"RENAME", "a", "b"}), "OK");
  EXPECT_EQ(store_->status().writes, writes + 1) << "one batch: the new key and the tombstone";
  EXPECT_EQ(c.call({"MGET", "a", "b"}), "[(nil), 1]");
  EXPECT_EQ(c.call({"RENAME", "b", "b"}), "OK");
  EXPECT_EQ(c.call({"SET", "c", "2"}), "OK");
  EXPECT_EQ(c.call({"RENAMENX", "b", "c"}), "0");
  EXPECT_EQ(c.call({"RENAMENX", "b", "d"}), "1");
  EXPECT_EQ(c.call({"MGET", "b", "c", "d"}), "[(nil), 2, 1]");
  EXPECT_EQ(c.call({"COPY", "d", "c"}), "0") << "c exists";
  EXPECT_EQ(c.call({"COPY", "d", "c", "REPLACE"}), "1");
  EXPECT_EQ(c.call({"COPY", "nope", "e"}), "0");
  EXPECT_EQ(c.call({"COPY", "d", "e", "DB", "1"}), "(error) ERR DB index is out of range");
  EXPECT_EQ(c.call({"COPY", "d", "e", "DB", "notanumber"}),
            "(error) ERR value is not an integer or out of range");
  EXPECT_EQ(c.call({"MGET", "c", "d", "e"}), "[1, 1, (nil)]");
}

TEST_F(RespServerTest, LastsaveIsTheNewestCheckpointOrTheOpen) {
  class Fixed final : public Clock {
   public:
    uint64_t now_ms() override { return ms.load(); }
    std::atomic<uint64_t> ms{1'750'000'000'999};
  };
  auto clock = std::make_shared<Fixed>();
  open_store(Durability::kNone, clock);
  start();
  Client c(server_->port());
  EXPECT_EQ(c.call({"LASTSAVE"}), "1750000000") << "the open, in whole seconds";
  clock->ms = 1'750'000'005'000;
  ASSERT_EQ(c.call({"SET", "k", "v"}), "OK");
  EXPECT_EQ(c.call({"LASTSAVE"}), "1750000000") << "a write is not a save";
  ASSERT_TRUE(store_->checkpoint().is_ok());
  EXPECT_EQ(c.call({"LASTSAVE"}), "1750000005");
}

TEST_F(RespServerTest, ClientListInfoAndKill) {
  start();
  Client a(server_->port()), b(server_->port());
  ASSERT_EQ(a.call({"CLIENT", "SETNAME", "alpha"}), "OK");
  ASSERT_EQ(b.call({"CLIENT", "SETNAME", "beta"}), "OK");
  const std::string a_id = a.call({"CLIENT", "ID"}), b_id = b.call({"CLIENT", "ID"});
  ASSERT_EQ(b.call({"MULTI"}), "OK");
  ASSERT_EQ(b.call({"PING"}), "QUEUED");
  const std::string list = a.call({"CLIENT", "LIST"});
  EXPECT_NE(list.find("id=" + a_id + " "), std::string::npos) << list;
  EXPECT_NE(list.find(" name=alpha "), std::string::npos) << list;
  EXPECT_NE(list.find("id=" + b_id + " "), std::string::npos) << list;
  EXPECT_NE(list.find(" name=beta "), std::string::npos) << list;
  EXPECT_NE(list.find(" flags=x db=0 sub=0 psub=0 ssub=0 multi=1 "), std::string::npos)
      << "b is inside MULTI with one command queued: " << list;
  EXPECT_EQ(std::count(list.begin(), list.end(), '\n'), 2) << list;
  EXPECT_EQ(a.call({"CLIENT", "LIST", "ID", b_id}).find("name=alpha"), std::string::npos);
  const std::string info = a.call({"CLIENT", "INFO"});
  EXPECT_EQ(info.substr(0, 4 + a_id.size()), "id=" + a_id + " ");
  EXPECT_NE(info.find(" cmd=client|info "), std::string::npos) << info;

  EXPECT_EQ(a.call({"CLIENT", "KILL", "ID", a_id}), "0") << "SKIPME yes is the default";
  EXPECT_EQ(a.call({"CLIENT", "KILL", "ID", b_id}), "1");
  EXPECT_EQ(b.cmd({"EXEC"}).type, '!') << "b's connection was closed";
  EXPECT_EQ(a.call({"CLIENT", "KILL", "127.0.0.1:1"}), "(error) ERR No such client");
  EXPECT_EQ(a.call({"PING"}), "PONG") << "the killer carries on";
}

// ---- pub/sub (docs/RESP.md, "Pub/sub") ----

TEST_F(RespServerTest, PublishReachesChannelAndPatternSubscribersWithRedisCounts) {
  start();
  Client a(server_->port()), pub(server_->port());
  auto b = std::make_unique<Client>(server_->port());
  a.send({"SUBSCRIBE", "news", "sport"});
  EXPECT_EQ(a.read().show(), "[subscribe, news, 1]");
  EXPECT_EQ(a.read().show(), "[subscribe, sport, 2]");
  EXPECT_EQ(a.call({"PSUBSCRIBE", "n*"}), "[psubscribe, n*, 3]");
  EXPECT_EQ(b->call({"PSUBSCRIBE", "s?ort"}), "[psubscribe, s?ort, 1]");
  // a is on "news" by channel and by pattern: it receives it twice, and
  // PUBLISH counts both.
  EXPECT_EQ(pub.call({"PUBLISH", "news", "hello"}), "2");
  EXPECT_EQ(a.read().show(), "[message, news, hello]");
  EXPECT_EQ(a.read().show(), "[pmessage, n*, news, hello]");
  EXPECT_EQ(pub.call({"PUBLISH", "sport", std::string("bi\0nary\r\n", 9)}), "2");
  EXPECT_EQ(a.read().show(), "[message, sport, " + std::string("bi\0nary\r\n", 9) + "]");
  EXPECT_EQ(b->read().show(), "[pmessage, s?ort, sport, " + std::string("bi\0nary\r\n", 9) + "]");
  EXPECT_EQ(pub.call({"PUBLISH", "quiet", "x"}), "0");
  EXPECT_EQ(pub.call({"PUBSUB", "NUMSUB", "news", "nope"}), "[news, 1, nope, 0]");
  EXPECT_EQ(pub.call({"PUBSUB", "NUMPAT"}), "2");
  EXPECT_EQ(pub.call({"PUBSUB", "CHANNELS"}), "[news, sport]");
  EXPECT_EQ(pub.call({"PUBSUB", "CHANNELS", "s*"}), "[sport]");
  const std::string list = pub.call({"CLIENT", "LIST"});
  EXPECT_NE(list.find(" flags=P db=0 sub=2 psub=1 "), std::string::npos) << list;

  EXPECT_EQ(a.call({"UNSUBSCRIBE", "news"}), "[unsubscribe, news, 2]");
  EXPECT_EQ(a.call({"UNSUBSCRIBE", "never"}), "[unsubscribe, never, 2]");
  EXPECT_EQ(a.call({"UNSUBSCRIBE"}), "[unsubscribe, sport, 1]");
  EXPECT_EQ(a.call({"UNSUBSCRIBE"}), "[unsubscribe, (nil), 1]");
  EXPECT_EQ(a.call({"PUNSUBSCRIBE"}), "[punsubscribe, n*, 0]");
  EXPECT_EQ(pub.call({"PUBLISH", "news", "gone"}), "0");
  EXPECT_EQ(a.call({"GET", "k"}), "(nil)") << "no subscriptions left: every command again";
  b.reset();  // b's connection is gone: so are its subscriptions
  EXPECT_TRUE(test::eventually([&] { return pub.call({"PUBSUB", "NUMPAT"}) == "0"; }));
}

TEST_F(RespServerTest, ASubscribedResp2ConnectionRunsOnlyPubSubCommandsAndResp3RunsAll) {
  start();
  Client a(server_->port()), pub(server_->port());
  ASSERT_EQ(a.call({"SUBSCRIBE", "c"}), "[subscribe, c, 1]");
  EXPECT_EQ(a.call({"GET", "k"}),
            "(error) ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
            "QUIT / RESET are allowed in this context");
  EXPECT_EQ(a.call({"PING"}), "[pong, ]");
  EXPECT_EQ(a.call({"PING", "hi"}), "[pong, hi]");
  EXPECT_EQ(a.call({"MULTI"}).substr(0, 28), "(error) ERR Can't execute 'm");

  Client r3(server_->port());
  ASSERT_EQ(r3.cmd({"HELLO", "3"}).type, '%');
  EXPECT_EQ(r3.call({"SUBSCRIBE", "c"}), ">[subscribe, c, 1]");
  EXPECT_EQ(r3.call({"SET", "k", "v"}), "OK");
  EXPECT_EQ(r3.call({"PING"}), "PONG") << "RESP3 keeps its ordinary replies";
  EXPECT_EQ(pub.call({"PUBLISH", "c", "m"}), "2");
  EXPECT_EQ(r3.read().show(), ">[message, c, m]");
  EXPECT_EQ(a.read().show(), "[message, c, m]");
  EXPECT_EQ(r3.call({"GET", "k"}), "v");

  // Nor may a transaction subscribe or publish (a PUBLISH would go out
  // before the batch commits).
  Client t(server_->port());
  ASSERT_EQ(t.call({"MULTI"}), "OK");
  EXPECT_EQ(t.call({"SUBSCRIBE", "c"}), "(error) ERR Command not allowed inside a transaction");
  EXPECT_EQ(t.call({"PUBLISH", "c", "m"}), "(error) ERR Command not allowed inside a transaction");
  EXPECT_EQ(t.call({"EXEC"}).substr(0, 17), "(error) EXECABORT");
}

TEST_F(RespExpiryTest, KeyspaceNotificationsFollowNotifyKeyspaceEvents) {
  Client sub(server_->port()), c(server_->port());
  EXPECT_EQ(c.call({"CONFIG", "GET", "notify-keyspace-events"}), "[notify-keyspace-events, ]");
  ASSERT_EQ(sub.call({"PSUBSCRIBE", "__key*@0__:*"}), "[psubscribe, __key*@0__:*, 1]");
  ASSERT_EQ(c.call({"SET", "k", "1"}), "OK");
  // A store change is announced before the write is acknowledged: had one
  // been sent, it would come before the PING's reply.
  EXPECT_EQ(sub.call({"PING"}), "[pong, ]") << "off by default, as in Redis";

  EXPECT_EQ(c.call({"CONFIG", "SET", "notify-keyspace-events", "Kq"}),
            "(error) ERR CONFIG SET failed (possibly related to argument "
            "'notify-keyspace-events') - Invalid event class character. Use "
            "'Ag$lshzxeKEtmdn'.");
  ASSERT_EQ(c.call({"CONFIG", "SET", "notify-keyspace-events", "KEA"}), "OK");
  EXPECT_EQ(c.call({"CONFIG", "GET", "notify-keyspace-events"}), "[notify-keyspace-events, AKE]");
  ASSERT_EQ(c.call({"INCR", "k"}), "2");  // announced by the change it made: "set"
  EXPECT_EQ(sub.read().show(), "[pmessage, __key*@0__:*, __keyspace@0__:k, set]");
  EXPECT_EQ(sub.read().show(), "[pmessage, __key*@0__:*, __keyevent@0__:set, k]");
  ASSERT_EQ(c.call({"DEL", "k", "absent"}), "1");
  EXPECT_EQ(sub.read().show(), "[pmessage, __key*@0__:*, __keyspace@0__:k, del]");
  EXPECT_EQ(sub.read().show(), "[pmessage, __key*@0__:*, __keyevent@0__:del, k]");
  // The absent key's tombstone is a change too (it may delete the key on
  // another node).
  EXPECT_EQ(sub.read().show(), "[pmessage, __key*@0__:*, __keyspace@0__:absent, del]");
  EXPECT_EQ(sub.read().show(), "[pmessage, __key*@0__:*, __keyevent@0__:del, absent]");
  ASSERT_EQ(c.call({"SET", "e", "v", "PX", "10"}), "OK");
  EXPECT_EQ(sub.read().show(), "[pmessage, __key*@0__:*, __keyspace@0__:e, set]");
  EXPECT_EQ(sub.read().show(), "[pmessage, __key*@0__:*, __keyevent@0__:set, e]");
  EXPECT_EQ(sub.read().show(), "[pmessage, __key*@0__:*, __keyspace@0__:e, expire]");
  EXPECT_EQ(sub.read().show(), "[pmessage, __key*@0__:*, __keyevent@0__:expire, e]");
  clock_->advance(11);
  ASSERT_TRUE(store_->expire_now());
  EXPECT_EQ(sub.read().show(), "[pmessage, __key*@0__:*, __keyspace@0__:e, expired]");
  EXPECT_EQ(sub.read().show(), "[pmessage, __key*@0__:*, __keyevent@0__:expired, e]");

  // Classes choose the events: "Kg" announces deletes only, on keyspace
  // channels only.
  ASSERT_EQ(c.call({"CONFIG", "SET", "notify-keyspace-events", "Kg"}), "OK");
  ASSERT_EQ(c.call({"SET", "k", "3"}), "OK");
  ASSERT_EQ(c.call({"DEL", "k"}), "1");
  EXPECT_EQ(sub.read().show(), "[pmessage, __key*@0__:*, __keyspace@0__:k, del]");
  EXPECT_EQ(sub.call({"PING"}), "[pong, ]");
  // Only the server speaks on these channels.
  EXPECT_EQ(c.call({"PUBLISH", "__keyspace@0__:k", "del"}).substr(0, 52),
            "(error) ERR channels starting with __keyspace@ or __");
  EXPECT_EQ(c.call({"PUBLISH", "__keyevent@3__:del", "k"}).substr(0, 11), "(error) ERR");
}

// The events are read from what the data did, as Redis names them: "new"
// when the key held no live value (absent, deleted or expired), "set" when
// the value was written, "expire" when the expiry was set or changed, and
// "persist" when only the expiry was removed.
TEST_F(RespExpiryTest, KeyspaceEventsNameNewSetExpireAndPersistFromTheChange) {
  Client sub(server_->port()), c(server_->port());
  ASSERT_EQ(sub.call({"PSUBSCRIBE", "__keyevent@0__:*"}), "[psubscribe, __keyevent@0__:*, 1]");
  auto next = [&] {
    Reply r = sub.read();
    return r.elems.size() == 4 ? r.elems[2].str.substr(15) + " " + r.elems[3].str : r.show();
  };
  // "new" alone is enough to watch the store.
  ASSERT_EQ(c.call({"CONFIG", "SET", "notify-keyspace-events", "En"}), "OK");
  ASSERT_EQ(c.call({"SET", "n1", "a"}), "OK");
  ASSERT_EQ(c.call({"SET", "n1", "b"}), "OK");
  ASSERT_EQ(c.call({"SET", "n2", "a"}), "OK");
  EXPECT_EQ(next(), "new n1");
  EXPECT_EQ(next(), "new n2") << "the second SET of n1 added no key";
  ASSERT_EQ(c.call({"CONFIG", "SET", "notify-keyspace-events", "E$gxn"}), "OK");
  ASSERT_EQ(c.call({"SET", "k", "a"}), "OK");
  EXPECT_EQ(next(), "new k");
  EXPECT_EQ(next(), "set k");
  ASSERT_EQ(c.call({"SET", "k", "a"}), "OK");  // the same bytes: still a write
  EXPECT_EQ(next(), "set k");
  ASSERT_EQ(c.call({"EXPIRE", "k", "100"}), "1");
  EXPECT_EQ(next(), "expire k") << "the expiry alone changed: no set";
  ASSERT_EQ(c.call({"SET", "k", "a", "KEEPTTL"}), "OK");
  EXPECT_EQ(next(), "set k");
  ASSERT_EQ(c.call({"PERSIST", "k"}), "1");
  EXPECT_EQ(next(), "persist k");
  ASSERT_EQ(c.call({"SET", "k", "b", "EX", "10"}), "OK");
  EXPECT_EQ(next(), "set k");
  EXPECT_EQ(next(), "expire k");
  ASSERT_EQ(c.call({"SET", "k", "c"}), "OK");
  EXPECT_EQ(next(), "set k") << "a new value without the expiry is a set, not a persist";
  ASSERT_EQ(c.call({"DEL", "k"}), "1");
  EXPECT_EQ(next(), "del k");
  ASSERT_EQ(c.call({"SET", "k", "d"}), "OK");
  EXPECT_EQ(next(), "new k") << "over a tombstone";
  EXPECT_EQ(next(), "set k");
  // Expired but not yet swept: readers no longer see it, so the key is new.
  ASSERT_EQ(c.call({"SET", "e", "v", "PX", "10"}), "OK");
  EXPECT_EQ(next(), "new e");
  EXPECT_EQ(next(), "set e");
  EXPECT_EQ(next(), "expire e");
  clock_->advance(11);
  ASSERT_EQ(c.call({"SET", "e", "v"}), "OK");
  EXPECT_EQ(next(), "new e");
  EXPECT_EQ(next(), "set e");
  EXPECT_EQ(sub.call({"PING"}), "[pong, ]");
}

// CLIENT REPLY OFF silences every reply until ON, SKIP its own and the next
// command's; (un)subscribe confirmations and messages still go, as in Redis.
TEST_F(RespServerTest, ClientReplyOffAndSkipSilenceRepliesButNotSubscriptions) {
  start();
  Client c(server_->port()), pub(server_->port());
  c.send({"CLIENT", "REPLY", "OFF"});
  c.send({"SET", "k", "1"});
  c.send({"GET"});  // an error is silenced too
  c.send({"INCR", "k"});
  c.send({"SUBSCRIBE", "ch"});
  EXPECT_EQ(c.read().show(), "[subscribe, ch, 1]") << "the first thing sent back";
  EXPECT_EQ(pub.call({"PUBLISH", "ch", "m"}), "1");
  EXPECT_EQ(c.read().show(), "[message, ch, m]");
  EXPECT_EQ(c.call({"UNSUBSCRIBE", "ch"}), "[unsubscribe, ch, 0]");
  EXPECT_EQ(c.call({"CLIENT", "REPLY", "ON"}), "OK");
  EXPECT_EQ(c.call({"GET", "k"}), "2") << "the silenced writes took effect";

  c.send({"CLIENT", "REPLY", "SKIP"});
  c.send({"INCR", "k"});
  EXPECT_EQ(c.call({"GET", "k"}), "3") << "SKIP and the INCR after it got no reply";
  EXPECT_EQ(c.call({"CLIENT", "REPLY", "MAYBE"}), "(error) ERR syntax error");
}

TEST_F(RespServerTest, ASubscriberIsClosedWhenItsUnreadMessagesPassTheLimit) {
  RespConfig config;
  config.max_pubsub_output_bytes = 1000;
  start(config);
  Client sub(server_->port()), pub(server_->port());
  ASSERT_EQ(sub.call({"SUBSCRIBE", "c"}), "[subscribe, c, 1]");
  // "*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$968\r\n" + 968 bytes + "\r\n": 1000 bytes.
  const std::string fits(968, 'x'), over(969, 'y');
  ASSERT_EQ(pub.call({"PUBLISH", "c", fits}), "1");
  EXPECT_EQ(sub.read().show(), "[message, c, " + fits + "]") << "exactly the limit is delivered";
  // The PING's reply is written after the message was: the message's bytes
  // are no longer unread when the next PUBLISH comes.
  ASSERT_EQ(sub.call({"PING"}), "[pong, ]");
  ASSERT_EQ(pub.call({"PUBLISH", "c", fits}), "1");
  EXPECT_EQ(sub.read().show(), "[message, c, " + fits + "]") << "read messages do not count";
  ASSERT_EQ(sub.call({"PING"}), "[pong, ]");
  EXPECT_EQ(pub.call({"PUBLISH", "c", over}), "1");
  EXPECT_TRUE(sub.closed_by_peer()) << "one byte over: the subscriber is closed";
  const std::string info = pub.call({"INFO", "stats"});
  EXPECT_NE(info.find("client_output_buffer_limit_disconnections:1\r\n"), std::string::npos)
      << info;
}

TEST_F(RespServerTest, ASubscriberThatDoesNotReadIsClosedAndOthersCarryOn) {
  RespConfig config;
  config.max_pubsub_output_bytes = 256 * 1024;
  start(config);
  Client slow(server_->port(), 30, 4096), reader(server_->port()), pub(server_->port());
  ASSERT_EQ(slow.call({"SUBSCRIBE", "c"}), "[subscribe, c, 1]");
  ASSERT_EQ(reader.call({"SUBSCRIBE", "c"}), "[subscribe, c, 1]");
  const std::string message(64 * 1024, 'm');
  // The socket buffers take some; the limit the rest. Far more than both.
  for (int i = 0; i < 200; ++i) {
    ASSERT_NE(pub.cmd({"PUBLISH", "c", message}).type, '!');
    ASSERT_EQ(reader.read().show().size(), message.size() + 14) << "message " << i;
  }
  EXPECT_TRUE(test::eventually([&] {
    return pub.call({"PUBSUB", "NUMSUB", "c"}) == "[c, 1]";
  })) << "only the reader is left";
  EXPECT_TRUE(slow.closed_by_peer());
  EXPECT_EQ(reader.call({"PING"}), "[pong, ]");
}

}  // namespace
}  // namespace wavekv::resp
