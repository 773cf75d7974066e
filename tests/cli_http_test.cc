// `wavekv get|put|del|scan --addr` and `wavekv status` against a node's HTTP
// API served in this process: outputs, exit codes, clear errors.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <asio.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "http/server.h"
#include "support/test_util.h"
#include "wavekv/client.h"

namespace wavekv::http {
namespace {

using test::Outcome;

// A fake node: answers every request with `body` as JSON. It stands in for a
// node of another version (fields this program does not know, fields
// missing), which a real HttpServer, rendering a typed status, never sends.
class CannedHttp {
 public:
  explicit CannedHttp(std::string body) : body_(std::move(body)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd_, 8) == 0 &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~CannedHttp() {
    ::shutdown(fd_, SHUT_RDWR);  // wakes the accept
    thread_.join();
    ::close(fd_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  void serve() {
    while (true) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      std::string reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(body_.size()) + "\r\nConnection: close\r\n\r\n" + body_;
      for (size_t off = 0; off < reply.size();) {
        ssize_t n = ::write(c, reply.data() + off, reply.size() - off);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      ::close(c);
    }
  }
  std::string body_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

Outcome run(const std::string& args) {
  return test::run_command(std::string(WAVEKV_BINARY) + " " + args);
}

class CliHttp : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "wavekv-clihttp-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    server_.reset();
    if (store_) (void)store_->close();
    std::filesystem::remove_all(dir_);
  }
  void start() {
    Config c;
    c.data_dir = dir_ + "/db";
    auto s = Store::open(c);
    ASSERT_TRUE(s) << s.status().to_string();
    store_ = std::move(*s);
    auto srv = HttpServerThread::start(*store_, {});
    ASSERT_TRUE(srv) << srv.status().to_string();
    server_ = std::move(*srv);
  }
  std::string addr() const { return "--addr " + server_->address(); }
  std::string dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<HttpServerThread> server_;
};

TEST_F(CliHttp, PutGetDelScanOverHttp) {
  start();
  EXPECT_EQ(run("put " + addr() + " user:1 alice").exit_code, 0);
  EXPECT_EQ(run("put " + addr() + " user:2 bob").exit_code, 0);
  EXPECT_EQ(run("put " + addr() + " other x").exit_code, 0);
  EXPECT_EQ(store_->get("user:1").value(), "alice") << "it went to the served store";
  Outcome g = run("get " + addr() + " user:1");
  EXPECT_EQ(g.exit_code, 0);
  EXPECT_EQ(g.out, "alice\n");
  EXPECT_EQ(run("del " + addr() + " user:2").exit_code, 0);
  Outcome s = run("scan " + addr() + " user:");
  EXPECT_EQ(s.exit_code, 0);
  EXPECT_EQ(s.out, "user:1\talice\n");
}

TEST_F(CliHttp, PutWithTtlMsWritesAnExpiryThatFarFromNow) {
  start();
  const uint64_t before = store_->now_ms();
  EXPECT_EQ(run("put --ttl-ms 60000 " + addr() + " session token").exit_code, 0);
  const uint64_t after = store_->now_ms();
  auto e = store_->get_entry("session");
  ASSERT_TRUE(e.has_value());
  EXPECT_GE(e->expires_ms, before + 60000);
  EXPECT_LE(e->expires_ms, after + 60000);
  EXPECT_EQ(run("put " + addr() + " plain v").exit_code, 0);
  EXPECT_EQ(store_->get_entry("plain")->expires_ms, 0u) << "no --ttl-ms: never expires";
}

TEST_F(CliHttp, ScanPagesThroughManyKeysAndEscapesBytes) {
  start();
  std::string expected;
  for (int i = 0; i < 2500; ++i) {
    char k[16];
    std::snprintf(k, sizeof k, "k%04d", i);
    ASSERT_TRUE(store_->put(k, "v"));
    expected += std::string(k) + "\tv\n";
  }
  Outcome s = run("scan " + addr() + " k");
  EXPECT_EQ(s.exit_code, 0);
  EXPECT_EQ(s.out, expected) << "three pages of 1000, in order, nothing twice";

  ASSERT_TRUE(store_->put(std::string("b\t\xff", 3), std::string("\x01z", 2)));
  EXPECT_EQ(run("scan " + addr() + " b").out, "b\\t\\xff\t\\x01z\n");
  // Keys with bytes that need percent-encoding reach the node intact.
  ASSERT_EQ(run("put " + addr() + " 'a b/c?d%e' 'x y'").exit_code, 0);
  EXPECT_EQ(store_->get("a b/c?d%e").value(), "x y");
  EXPECT_EQ(run("get " + addr() + " 'a b/c?d%e'").out, "x y\n");
}

TEST_F(CliHttp, GetOfAbsentKeyExitsOne) {
  start();
  Outcome g = run("get " + addr() + " missing");
  EXPECT_EQ(g.exit_code, 1);
  EXPECT_NE(g.out.find("not found"), std::string::npos) << g.out;
}

TEST_F(CliHttp, UnreachableNodeIsExitTwoNamingTheAddress) {
  // A port bound but not listening: connecting is refused, and while the
  // socket stays open no one else can take the port.
  asio::io_context io;
  asio::ip::tcp::acceptor a(io);
  a.open(asio::ip::tcp::v4());
  a.bind({asio::ip::make_address("127.0.0.1"), 0});
  std::string address = "127.0.0.1:" + std::to_string(a.local_endpoint().port());
  for (std::string cmd : {"get --addr " + address + " k", "status --addr " + address}) {
    Outcome r = run(cmd);
    EXPECT_EQ(r.exit_code, 2) << cmd;
    EXPECT_NE(r.out.find(address), std::string::npos) << r.out;
  }
  Outcome bad = run("get --addr nonsense k");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.out.find("nonsense"), std::string::npos) << bad.out;
}

TEST_F(CliHttp, ExactlyOneOfDataDirAndAddr) {
  start();
  Outcome both = run("get --data-dir " + dir_ + "/db " + addr() + " k");
  EXPECT_NE(both.exit_code, 0);
  EXPECT_NE(both.out.find("excludes"), std::string::npos) << both.out;
  Outcome neither = run("get k");
  EXPECT_EQ(neither.exit_code, 2);
  EXPECT_NE(neither.out.find("--data-dir DIR or --addr HOST:PORT"), std::string::npos)
      << neither.out;
}

TEST_F(CliHttp, StatusPrintsTheStoreFiguresOfAPlainServer) {
  start();
  ASSERT_TRUE(store_->put("a", "1"));
  Outcome s = run("status " + addr());
  EXPECT_EQ(s.exit_code, 0) << s.out;
  EXPECT_NE(s.out.find("node:        " + std::to_string(store_->node_id())), std::string::npos)
      << s.out;
  EXPECT_NE(s.out.find("  live_keys           1\n"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("address:     -\n"), std::string::npos) << "missing fields show as -";
  EXPECT_EQ(s.out.find("members:"), std::string::npos) << "no members section without members";
}

TEST_F(CliHttp, StatusPrintsANodesMembersAndJson) {
  nlohmann::json node = nlohmann::json::parse(R"({
    "node": 1, "incarnation": 42, "address": "127.0.0.1:7000", "digest": "abc123",
    "storage": {"live_keys": 10, "wal_bytes": 2048, "future_figure": 5},
    "replication": {"rounds": 7, "repairs": 1},
    "members": [
      {"id": 2, "incarnation": 43, "address": "127.0.0.1:7001", "last_seen_ms_ago": 120, "ack_lag": 0},
      {"id": 3, "incarnation": 44, "address": "127.0.0.1:7002", "last_seen_ms_ago": null, "ack_lag": 17}
    ]})");
  CannedHttp fake(node.dump());
  Outcome s = run("status --addr " + fake.address());
  EXPECT_EQ(s.exit_code, 0) << s.out;
  for (const char* want :
       {"incarnation: 42\n", "address:     127.0.0.1:7000\n", "digest:      abc123\n",
        "  wal_bytes           2048\n", "  tombstones          -\n", "  future_figure       5\n",
        "  rounds              7\n", "  repairs             1\n",
        "  ID  INCARNATION  ADDRESS         LAST SEEN   ACK LAG\n",
        "  2   43           127.0.0.1:7001  120 ms ago  0\n",
        "  3   44           127.0.0.1:7002  never       17\n"}) {
    EXPECT_NE(s.out.find(want), std::string::npos) << "missing '" << want << "' in\n" << s.out;
  }
  Outcome j = run("status --json --addr " + fake.address());
  EXPECT_EQ(j.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(j.out), node);
}

// The library call under the client commands (wavekv/client.h), as an
// embedder would use it: bytes in and out, pages, and the kinds of error.
class HttpClientApi : public CliHttp {};

TEST_F(HttpClientApi, BytesRoundTripAndAnAbsentKeyIsNone) {
  start();
  const HttpClient client(server_->address(), 5000);
  const std::string key("a b/%\xff\0", 7), value("\0\x01v", 3);
  ASSERT_TRUE(client.put(key, value));
  EXPECT_EQ(store_->get(key).value(), value) << "the key was percent-encoded intact";
  auto got = client.get(key);
  ASSERT_TRUE(got) << got.status().to_string();
  EXPECT_EQ(got->value_or("<none>"), value);
  ASSERT_TRUE(client.del(key));
  got = client.get(key);
  ASSERT_TRUE(got) << got.status().to_string();
  EXPECT_FALSE(got->has_value());
}

TEST_F(HttpClientApi, ScanPagesEndWithNoNext) {
  start();
  for (const char* k : {"p/1", "p/2", "p/3", "q/1"}) ASSERT_TRUE(store_->put(k, "v"));
  const HttpClient client(server_->address(), 5000);
  auto first = client.scan("p/", "", 2);
  ASSERT_TRUE(first) << first.status().to_string();
  ASSERT_EQ(first->items.size(), 2u);
  EXPECT_EQ(first->items[0].key, "p/1");
  EXPECT_EQ(first->items[0].meta.node, store_->node_id());
  EXPECT_NE(first->items[0].meta.seq, 0u);
  ASSERT_EQ(first->next, std::optional<std::string>("p/3"));
  auto second = client.scan("p/", *first->next, 2);
  ASSERT_TRUE(second) << second.status().to_string();
  ASSERT_EQ(second->items.size(), 1u);
  EXPECT_EQ(second->items[0].key, "p/3");
  EXPECT_EQ(second->items[0].value, "v");
  EXPECT_FALSE(second->next.has_value());
}

TEST_F(HttpClientApi, RefusalsAndSilenceAreErrorsOfTheirKind) {
  start();
  const HttpClient client(server_->address(), 5000);
  auto bad = client.scan("", "", 0);  // the node takes limits of 1 to 10,000
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(bad.status().message().rfind("node answered 400: ", 0), 0u) << bad.status().message();
  auto status = client.status_json();
  ASSERT_TRUE(status) << status.status().to_string();
  EXPECT_EQ(nlohmann::json::parse(*status)["node"], store_->node_id());

  asio::io_context io;
  asio::ip::tcp::acceptor a(io);  // bound, not listening: refused
  a.open(asio::ip::tcp::v4());
  a.bind({asio::ip::make_address("127.0.0.1"), 0});
  const HttpClient nobody("127.0.0.1:" + std::to_string(a.local_endpoint().port()), 5000);
  Status st = nobody.put("k", "v");
  EXPECT_EQ(st.code(), Code::kIOError);
  EXPECT_NE(st.message().find(nobody.address()), std::string::npos) << st.message();
}

}  // namespace
}  // namespace wavekv::http
