// `wavekv serve` as real processes on loopback: discovery from a chain of
// --peers, convergence of writes made on every node, kill -9 and restart with
// nothing acknowledged lost, a wiped node re-bootstrapping, deletes that stay
// deleted, and Debian's redis-cli talking to the RESP port.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "server/http_client.h"

namespace wavekv {
namespace {

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

struct ServeNode {
  std::string dir;
  std::string peer, http, resp;
  std::string seeds;
  pid_t pid = -1;

  void start() {
    pid = ::fork();
    if (pid == 0) {
      std::string log = dir + ".log";
      FILE* f = std::freopen(log.c_str(), "a", stderr);
      (void)f;
      ::execl(WAVEKV_BINARY, WAVEKV_BINARY, "serve", "--data-dir", dir.c_str(), "--listen",
              peer.c_str(), "--http", http.c_str(), "--resp", resp.c_str(), "--peers",
              seeds.c_str(), "--sync-interval-ms", "200", static_cast<char*>(nullptr));
      std::_Exit(127);
    }
  }
  int stop(int sig) {
    ::kill(pid, sig);
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
    return status;
  }
};

template <typename F>
bool eventually(F done, int seconds = 60) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

bool put(const ServeNode& n, const std::string& key, const std::string& value) {
  auto r = server::http_request(n.http, "PUT", "/v1/kv/" + key, value, 5000);
  return r && r->status / 100 == 2;
}
bool del(const ServeNode& n, const std::string& key) {
  auto r = server::http_request(n.http, "DELETE", "/v1/kv/" + key, "", 5000);
  return r && r->status / 100 == 2;
}
// The value, "<absent>" on 404, "<error>" when the node does not answer.
std::string get(const ServeNode& n, const std::string& key) {
  auto r = server::http_request(n.http, "GET", "/v1/kv/" + key, "", 5000);
  if (!r) return "<error>";
  if (r->status == 404) return "<absent>";
  return r->body;
}

class ServeCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = std::filesystem::temp_directory_path() /
            ("wavekv-serve-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(base_);
    std::filesystem::create_directories(base_);
    for (int i = 0; i < 3; i++) {
      ServeNode n;
      n.dir = (base_ / ("node" + std::to_string(i))).string();
      n.peer = "127.0.0.1:" + std::to_string(free_port());
      n.http = "127.0.0.1:" + std::to_string(free_port());
      n.resp = "127.0.0.1:" + std::to_string(free_port());
      if (i > 0) n.seeds = nodes_[i - 1].peer;  // a chain: 2 knows 1, 1 knows 0
      nodes_.push_back(n);
    }
    for (auto& n : nodes_) n.start();
    for (auto& n : nodes_) ASSERT_TRUE(eventually([&] { return get(n, "x") != "<error>"; }));
  }
  void TearDown() override {
    for (auto& n : nodes_)
      if (n.pid > 0) n.stop(SIGKILL);
    if (!HasFailure()) std::filesystem::remove_all(base_);
  }
  // Every node returns `want` for every key.
  bool all_agree(const std::map<std::string, std::string>& want) {
    for (auto& n : nodes_)
      for (const auto& [k, v] : want)
        if (get(n, k) != v) return false;
    return true;
  }
  std::filesystem::path base_;
  std::vector<ServeNode> nodes_;
};

TEST_F(ServeCluster, ChainDiscoversKill9RestartAndWipeLoseNothingAcknowledged) {
  std::map<std::string, std::string> want;
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < 30; k++) {
      std::string key = "n" + std::to_string(i) + "-" + std::to_string(k);
      ASSERT_TRUE(put(nodes_[i], key, "v" + key));
      want[key] = "v" + key;
    }
  ASSERT_TRUE(del(nodes_[0], "n1-0"));
  want["n1-0"] = "<absent>";
  ASSERT_TRUE(eventually([&] { return all_agree(want); })) << "writes on all nodes converge";
  auto status = server::http_request(nodes_[2].http, "GET", "/v1/status", "", 5000);
  ASSERT_TRUE(status);
  EXPECT_EQ(nlohmann::json::parse(status->body)["members"].size(), 2u)
      << "node 2 started knowing only node 1";

  // kill -9 node 2 under write load: every write it acknowledged survives.
  std::thread writer([&] {
    for (int k = 0; k < 200; k++) {
      std::string key = "load-" + std::to_string(k);
      if (put(nodes_[2], key, "w")) want[key] = "w";
      if (k == 100) nodes_[2].stop(SIGKILL);
      if (nodes_[2].pid < 0) break;
    }
  });
  writer.join();
  if (nodes_[2].pid > 0) nodes_[2].stop(SIGKILL);
  ASSERT_TRUE(put(nodes_[0], "while-2-down", "d"));
  want["while-2-down"] = "d";
  nodes_[2].start();
  EXPECT_TRUE(eventually([&] { return all_agree(want); }))
      << "after kill -9 and restart nothing acknowledged is lost and node 2 catches up";

  // A wiped node bootstraps back from the others; the delete stays.
  EXPECT_EQ(nodes_[1].stop(SIGTERM), 0) << "graceful shutdown exits 0";
  std::filesystem::remove_all(nodes_[1].dir);
  nodes_[1].start();
  EXPECT_TRUE(eventually([&] { return all_agree(want); })) << "wiped node 1 re-bootstraps";
}

TEST_F(ServeCluster, RedisCliWritesReplicate) {
  std::string port = nodes_[0].resp.substr(nodes_[0].resp.rfind(':') + 1);
  std::string cmd = "redis-cli -p " + port + " SET from-redis hello > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "redis-cli must be installed (scripts/setup.sh)";
  EXPECT_TRUE(eventually([&] { return all_agree({{"from-redis", "hello"}}); }));
}

}  // namespace
}  // namespace wavekv
