// Debian's redis-cli and redis-benchmark, unchanged, against a RespServer on
// a real Store: the compatibility the RESP port exists for.
#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <string>

#include "resp/server.h"

namespace wavekv::resp {
namespace {

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs a shell command; `timeout` guards against a hang, not a slow machine.
RunResult run(const std::string& command, const std::string& input = "") {
  std::string cmd = "timeout 300 " + command + " 2>&1";
  std::string in_file;
  if (!input.empty()) {
    char tmpl[] = "/tmp/wavekv-resp-in-XXXXXX";
    int fd = ::mkstemp(tmpl);
    in_file = tmpl;
    FILE* f = ::fdopen(fd, "w");
    ::fwrite(input.data(), 1, input.size(), f);
    ::fclose(f);
    cmd += " < " + in_file;
  }
  RunResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = ::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (!in_file.empty()) ::unlink(in_file.c_str());
  return r;
}

bool have(const char* tool) {
  return std::system((std::string("command -v ") + tool + " >/dev/null 2>&1").c_str()) == 0;
}

class RespToolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Required, not skipped: scripts/setup.sh installs redis-tools.
    ASSERT_TRUE(have("redis-cli") && have("redis-benchmark"))
        << "redis-tools is not installed (scripts/setup.sh installs it)";
    char tmpl[] = "/tmp/wavekv-resp-tools-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    Config c;
    c.data_dir = dir_ + "/db";
    c.wal_segment_bytes = 1 << 20;  // durability: the default, always
    auto s = Store::open(c);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    store_ = std::move(s).value();
    RespConfig rc;
    rc.listen_address = "127.0.0.1:0";
    auto t = RespServerThread::start(*store_, rc);
    ASSERT_TRUE(t.is_ok()) << t.status().to_string();
    server_ = std::move(t).value();
  }
  void TearDown() override {
    server_.reset();
    if (store_) (void)store_->close();
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  std::string cli() { return "redis-cli -h 127.0.0.1 -p " + std::to_string(server_->port()); }

  // redis-cli's output for one command (not a TTY: raw replies, one per line;
  // an error line is followed by an empty line, as with Redis itself).
  std::string cli_out(const std::string& args) {
    auto r = run(cli() + " " + args);
    EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.output;
    return r.output;
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<RespServerThread> server_;
};

TEST_F(RespToolsTest, RedisCli) {
  EXPECT_EQ(cli_out("PING"), "PONG\n");
  EXPECT_EQ(cli_out("SET greeting 'hello world'"), "OK\n");
  EXPECT_EQ(cli_out("GET greeting"), "hello world\n");
  EXPECT_EQ(cli_out("MSET user:1 a user:2 b other c"), "OK\n");
  EXPECT_EQ(cli_out("MGET user:1 nosuch user:2"), "a\n\nb\n");
  EXPECT_EQ(cli_out("EXISTS user:1 nosuch"), "1\n");
  EXPECT_EQ(cli_out("DBSIZE"), "4\n");
  EXPECT_EQ(cli_out("KEYS 'user:*'"), "user:1\nuser:2\n");
  EXPECT_EQ(cli_out("--scan --pattern 'user:*'"), "user:1\nuser:2\n");
  EXPECT_EQ(cli_out("CONFIG GET save"), "save\n\n");
  EXPECT_EQ(cli_out("DEL user:1 user:2 nosuch"), "2\n");
  EXPECT_EQ(cli_out("SET k v EX 10"), "OK\n");
  EXPECT_EQ(cli_out("TTL k"), "10\n");
  EXPECT_EQ(cli_out("NOSUCHCMD"), "ERR unknown command 'NOSUCHCMD', with args beginning with:\n\n");
  std::string info = cli_out("INFO keyspace");
  EXPECT_NE(info.find("db0:keys=3,expires=1,avg_ttl=0"), std::string::npos) << info;

  // Several commands on one connection, read from stdin.
  auto r = run(cli(), "SET a 1\nGET a\nSELECT 1\nGET a\n");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "OK\n1\nERR DB index is out of range (WaveKV has only database 0)\n\n1\n");

  // Mass insertion: --pipe sends raw protocol and checks every reply.
  std::string pipe;
  for (int i = 0; i < 1000; ++i)
    pipe += "*3\r\n$3\r\nSET\r\n$" + std::to_string(5 + std::to_string(i).size()) +
            "\r\npipe:" + std::to_string(i) + "\r\n$1\r\nx\r\n";
  r = run(cli() + " --pipe", pipe);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("errors: 0, replies: 1000"), std::string::npos) << r.output;
  EXPECT_EQ(cli_out("DBSIZE"), "1004\n");
}

TEST_F(RespToolsTest, RedisBenchmark) {
  auto r = run("redis-benchmark -h 127.0.0.1 -p " + std::to_string(server_->port()) +
               " -t set,get -n 2000 -c 10 -P 4 -q");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::printf("%s", r.output.c_str());  // the figures, for whoever reads the log
  EXPECT_NE(r.output.find("SET: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("GET: "), std::string::npos) << r.output;
  for (const char* bad : {"ERR", "rror", "WARNING"})
    EXPECT_EQ(r.output.find(bad), std::string::npos) << bad << " in:\n" << r.output;
  // redis-benchmark writes key:__rand_int__ keys; they reached the store.
  auto v = store_->get("key:__rand_int__");
  EXPECT_TRUE(v.is_ok()) << v.status().to_string();
}

}  // namespace
}  // namespace wavekv::resp
