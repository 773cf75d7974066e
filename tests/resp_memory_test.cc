// The RESP port's memory under clients that do not read (docs/RESP.md,
// "Memory"): the server's own gauge, and a real `wavekv serve` process's RSS,
// stay within the client memory budget; paused clients get every reply in
// order once they read; one reply larger than a connection may hold is an
// error; idle connections can be timed out.
//
// The bug these guard against: 16 clients pipelining GET of a 4 MiB value
// without reading drove a node from 37 MB to 2.1 GB in 15 s (each
// connection held twice max_output_bytes: the writer's coalescing buffer
// doubled and kept its capacity, and the bytes it had taken no longer
// counted).
#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "resp/server.h"
#include "support/resp_client.h"
#include "support/test_util.h"

namespace wavekv::resp {
namespace {

using test::Client;

constexpr uint64_t kMiB = 1024 * 1024;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "wavekv-respmem-XXXXXX").string();
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

// A 4 MiB value that says which key it belongs to in every byte.
std::string big_value(int key) { return std::string(4 * kMiB, static_cast<char>('a' + key)); }

class RespMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Config c;
    c.data_dir = dir_.path() + "/db";
    c.durability = Durability::kNone;
    auto s = Store::open(c);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    store_ = std::move(s).value();
  }
  void TearDown() override {
    server_.reset();
    if (store_) (void)store_->close();
  }
  void start(RespConfig config) {
    config.listen_address = "127.0.0.1:0";
    auto t = RespServerThread::start(*store_, std::move(config));
    ASSERT_TRUE(t.is_ok()) << t.status().to_string();
    server_ = std::move(t).value();
  }
  RespMemoryStats stats() { return server_->server().memory_stats(); }

  TempDir dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<RespServerThread> server_;
};

TEST_F(RespMemoryTest, ClientsThatDoNotReadStayWithinTheBudgetAndGetEveryReplyInOrder) {
  constexpr uint64_t kBudget = 64 * kMiB;
  RespConfig config;
  config.max_client_memory_bytes = kBudget;
  start(config);
  for (int k = 0; k < 4; ++k)
    ASSERT_TRUE(store_->put("k" + std::to_string(k), big_value(k)).is_ok());

  // 16 clients each pipeline 8 GETs (32 MiB of replies each, 512 MiB in
  // all) and read nothing until the server has had to pause them.
  constexpr int kClients = 16, kGets = 8;
  std::vector<std::unique_ptr<Client>> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.push_back(std::make_unique<Client>(server_->port()));
    std::string burst;
    for (int i = 0; i < kGets; ++i)
      burst += test::encode_command({"GET", "k" + std::to_string((c + i) % 4)});
    clients.back()->send_raw(burst);
  }
  ASSERT_TRUE(test::eventually([&] { return stats().paused_clients >= kClients / 2; }, 30, 2))
      << "paused: " << stats().paused_clients;
  RespMemoryStats s = stats();
  EXPECT_LE(s.client_memory_bytes, kBudget);
  EXPECT_LE(s.client_memory_peak_bytes, kBudget) << "the budget held at every moment";
  EXPECT_GE(s.client_memory_peak_bytes, kBudget / 2) << "the replies did take the memory";

  // Now they read, each on its own (as independent clients do; one that
  // waits for another to read first could wait forever while the others
  // hold the budget): every reply arrives, whole and in request order.
  std::vector<std::string> failures(kClients);
  std::vector<std::thread> readers;
  for (int c = 0; c < kClients; ++c) {
    readers.emplace_back([&, c] {
      for (int i = 0; i < kGets; ++i) {
        test::Reply r = clients[c]->read();
        if (r.type != '$' || r.str != big_value((c + i) % 4)) {
          failures[c] = "reply " + std::to_string(i) + ": " + r.show().substr(0, 100) + " (" +
                        std::to_string(r.str.size()) + " bytes)";
          return;
        }
      }
    });
  }
  for (auto& t : readers) t.join();
  for (int c = 0; c < kClients; ++c) EXPECT_EQ(failures[c], "") << "client " << c;
  EXPECT_LE(stats().client_memory_peak_bytes, kBudget);
  EXPECT_GT(stats().client_pauses, 0u);
}

TEST_F(RespMemoryTest, SmallSetsWithoutReadingArePausedNotDisconnected) {
  RespConfig config;
  config.max_output_bytes = 64 * 1024;  // pauses soon after the socket's buffers fill
  start(config);
  // The client's receive buffer is fixed small; the server's send buffer may
  // grow to net.ipv4.tcp_wmem's maximum (4 MiB on Debian). The replies of the
  // burst (5 bytes each) are more than both and the output limit hold, so the
  // server must pause the connection while the sender blocks.
  Client c(server_->port(), 30, 64 * 1024);
  uint64_t wmem_max = 4 * kMiB;
  {
    std::ifstream in("/proc/sys/net/ipv4/tcp_wmem");
    uint64_t lo = 0, def = 0, max = 0;
    if (in >> lo >> def >> max) wmem_max = std::max(wmem_max, max);
  }
  const int kSets = static_cast<int>((wmem_max + 1 * kMiB) / 5);
  std::atomic<bool> sent{false};
  std::thread sender([&] {
    std::string burst;
    for (int i = 0; i < kSets; ++i) burst += test::encode_command({"SET", "k", std::to_string(i)});
    c.send_raw(burst);
    sent = true;
  });
  ASSERT_TRUE(test::eventually([&] { return stats().paused_clients == 1; }, 30, 2))
      << "the connection is paused";
  EXPECT_EQ(store_->status().live_keys, 1u);
  // Paused, not closed: every reply is there to read, in order.
  for (int i = 0; i < kSets; ++i) ASSERT_EQ(c.read().show(), "OK") << i;
  sender.join();
  EXPECT_TRUE(sent);
  EXPECT_EQ(c.call({"GET", "k"}), std::to_string(kSets - 1));
}

TEST_F(RespMemoryTest, AReplyLargerThanTheOutputLimitIsAnErrorAndTheConnectionLives) {
  RespConfig config;
  config.max_output_bytes = 1 * kMiB;
  start(config);
  ASSERT_TRUE(store_->put("big", std::string(2 * kMiB, 'b')).is_ok());
  ASSERT_TRUE(store_->put("mid", std::string(600 * 1024, 'm')).is_ok());
  Client c(server_->port());
  EXPECT_EQ(c.call({"GET", "big"}),
            "(error) ERR reply of 2097164 bytes exceeds the client output limit of 1048576 bytes "
            "(max_output_bytes); ask for less at a time");
  EXPECT_EQ(c.cmd({"GET", "mid"}).str.size(), 600u * 1024);
  // Two values that fit alone but not together: refused whole, nothing half-sent.
  EXPECT_EQ(c.call({"MGET", "mid", "mid"}).substr(0, 28), "(error) ERR reply of 1228822");
  EXPECT_EQ(c.call({"ECHO", std::string(2 * kMiB, 'e')}).substr(0, 22), "(error) ERR reply of 2");
  EXPECT_EQ(c.call({"PING"}), "PONG");
  EXPECT_EQ(stats().replies_too_large, 3u);
}

TEST_F(RespMemoryTest, MemoryIsGivenBackWhenConnectionsClose) {
  RespConfig config;
  config.max_client_memory_bytes = 64 * kMiB;
  start(config);
  ASSERT_TRUE(store_->put("k0", big_value(0)).is_ok());
  {
    Client c(server_->port());
    std::string burst;
    for (int i = 0; i < 20; ++i) burst += test::encode_command({"GET", "k0"});
    c.send_raw(burst);
    // Half a request too: a bulk string announced and partly sent.
    c.send_raw("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1000000\r\nabc");
    ASSERT_TRUE(test::eventually([&] { return stats().paused_clients == 1; }, 30, 2));
    EXPECT_GT(stats().client_memory_bytes, 32 * kMiB);
  }
  ASSERT_TRUE(test::eventually([&] { return stats().client_memory_bytes == 0; }, 30, 2))
      << stats().client_memory_bytes << " bytes still held";
}

TEST_F(RespMemoryTest, IdleConnectionsAreClosedAfterTheIdleTimeout) {
  RespConfig config;
  config.idle_timeout_ms = 100;
  start(config);
  Client idle(server_->port());
  Client silent(server_->port());
  EXPECT_EQ(idle.call({"PING"}), "PONG");
  // The idle one is closed: its next read sees the end of the stream.
  EXPECT_EQ(idle.read().show(), "(closed)");
  // `busy` idled too, having sent nothing.
  EXPECT_TRUE(test::eventually([&] { return stats().idle_timeouts == 2; }, 30, 2));
  Client late(server_->port());
  EXPECT_EQ(late.call({"PING"}), "PONG");
}

// The bound in a real process: its resident memory, not only the server's
// own count, stays within the budget plus a fixed margin.
TEST(RespMemoryServe, NodeRssStaysWithinTheBudgetUnderClientsThatDoNotRead) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "ASan's quarantine and shadow memory make RSS meaningless here";
#endif
  TempDir dir;
  constexpr uint64_t kBudget = 64 * kMiB;
  constexpr uint64_t kMarginBytes = 96 * kMiB;  // code, store, one value copy, malloc slack
  test::ReadyChild node =
      test::start_ready({WAVEKV_BINARY, "serve", "--data-dir", dir.path() + "/data", "--listen",
                         "127.0.0.1:0", "--resp", "127.0.0.1:0", "--http", "", "--durability",
                         "none", "--resp-max-client-memory-bytes", std::to_string(kBudget)},
                        dir.path() + "/ready.json", dir.path() + "/log");
  ASSERT_TRUE(node.error.empty()) << node.error;
  auto rss = [&]() -> uint64_t {
    std::ifstream in("/proc/" + std::to_string(node.pid) + "/status");
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("VmRSS:", 0) == 0)
        return static_cast<uint64_t>(std::stoull(line.substr(6))) * 1024;
    return uint64_t{0};
  };
  const uint16_t port =
      static_cast<uint16_t>(std::stoi(node.resp.substr(node.resp.rfind(':') + 1)));
  Client admin(port);
  for (int k = 0; k < 4; ++k)
    ASSERT_EQ(admin.call({"SET", "k" + std::to_string(k), big_value(k)}), "OK");
  const uint64_t baseline = rss();

  constexpr int kClients = 16, kGets = 16;
  std::vector<std::unique_ptr<Client>> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.push_back(std::make_unique<Client>(port));
    std::string burst;
    for (int i = 0; i < kGets; ++i)
      burst += test::encode_command({"GET", "k" + std::to_string(i % 4)});
    clients.back()->send_raw(burst);
  }
  uint64_t peak = 0;
  auto paused = [&] {
    peak = std::max(peak, rss());
    std::string info = admin.cmd({"INFO", "clients"}).str;
    auto at = info.find("paused_clients:");
    return at != std::string::npos && std::stoi(info.substr(at + 15)) >= kClients / 2;
  };
  ASSERT_TRUE(test::eventually(paused, 30, 5));
  peak = std::max(peak, rss());
  EXPECT_LE(peak, baseline + kBudget + kMarginBytes)
      << "baseline " << baseline / kMiB << " MiB, peak " << peak / kMiB << " MiB";
  std::string info = admin.cmd({"INFO", "clients"}).str;
  auto at = info.find("mem_clients_peak:");
  ASSERT_NE(at, std::string::npos);
  EXPECT_LE(std::stoull(info.substr(at + 17)), kBudget);
  std::vector<std::string> failures(kClients);
  std::vector<std::thread> readers;
  for (int c = 0; c < kClients; ++c) {
    readers.emplace_back([&, c] {
      for (int i = 0; i < kGets; ++i) {
        test::Reply r = clients[c]->read();
        if (r.str != big_value(i % 4)) {
          failures[c] = "reply " + std::to_string(i) + ": " + r.show().substr(0, 100);
          return;
        }
      }
    });
  }
  for (auto& t : readers) t.join();
  for (int c = 0; c < kClients; ++c) EXPECT_EQ(failures[c], "") << "client " << c;
  test::stop_child(node.pid, SIGTERM);
}

}  // namespace
}  // namespace wavekv::resp
