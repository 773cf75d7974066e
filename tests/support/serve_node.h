// One `wavekv serve` process for the tests that run real nodes on loopback
// (serve_test.cc, peer_security_test.cc), and what they ask of it over HTTP.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "http/client.h"
#include "support/test_util.h"

namespace wavekv::test {

// One `wavekv serve` process. Every start listens on port 0 three times and
// takes the ports it got from its ready file (test::start_ready), so a
// restarted node comes back on new ports; its peers learn the new address
// from the node itself, the next time it talks to them.
struct ServeNode {
  std::string dir;
  std::string seeds;
  std::string advertise;  // empty: peers dial `peer`
  std::string id;         // empty: random on first start
  std::string sync_interval_ms = "200";
  std::string listen = "127.0.0.1:0";  // the peer port
  std::vector<std::string> extra;      // more flags
  std::string peer, http, resp;        // HOST:PORT, as bound by the running process
  uint64_t node_id = 0;
  pid_t pid = -1;

  std::string log() const { return dir + ".log"; }
  std::string ready_file() const { return dir + ".ready"; }

  // Starts it and waits until every listener is bound.
  ::testing::AssertionResult start() {
    std::vector<std::string> args = {WAVEKV_BINARY, "serve"};
    auto flag = [&](const char* name, const std::string& value) {
      args.push_back(name);
      args.push_back(value);
    };
    flag("--data-dir", dir);
    flag("--listen", listen);
    flag("--http", "127.0.0.1:0");
    flag("--resp", "127.0.0.1:0");
    flag("--peers", seeds);
    flag("--sync-interval-ms", sync_interval_ms);
    if (!advertise.empty()) flag("--advertise", advertise);
    if (!id.empty()) flag("--id", id);
    for (const auto& e : extra) args.push_back(e);
    test::ReadyChild c = test::start_ready(args, ready_file(), log());
    if (!c.error.empty()) return ::testing::AssertionFailure() << c.error;
    pid = c.pid;
    node_id = c.node_id;
    peer = c.peer;
    http = c.http;
    resp = c.resp;
    return ::testing::AssertionSuccess();
  }
  int stop(int sig) { return test::stop_child(pid, sig); }
};

inline uint16_t port_of(const std::string& address) {
  return static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
}

template <typename F>
bool eventually(F done, int seconds = 60) {
  return test::eventually(done, seconds, 50);
}

inline bool put(const ServeNode& n, const std::string& key, const std::string& value) {
  auto r = http::http_request(n.http, "PUT", "/v1/kv/" + key, value, 5000);
  return r && r->status / 100 == 2;
}
inline bool del(const ServeNode& n, const std::string& key) {
  auto r = http::http_request(n.http, "DELETE", "/v1/kv/" + key, "", 5000);
  return r && r->status / 100 == 2;
}
// The value, "<absent>" on 404, "<error>" when the node does not answer.
inline std::string get(const ServeNode& n, const std::string& key) {
  auto r = http::http_request(n.http, "GET", "/v1/kv/" + key, "", 5000);
  if (!r) return "<error>";
  if (r->status == 404) return "<absent>";
  return r->body;
}

// GET /v1/status, parsed; an empty object when the node does not answer.
inline nlohmann::json status(const ServeNode& n) {
  auto r = http::http_request(n.http, "GET", "/v1/status", "", 5000);
  return r && r->status == 200 ? nlohmann::json::parse(r->body) : nlohmann::json::object();
}

// A scratch directory and the nodes a test runs in it (node<i>/): every node
// still running is killed when the test ends, even through an ASSERT, and the
// directory is removed unless the test failed.
struct ScratchNodes {
  ScratchNodes(const std::string& name, int n)
      : base(std::filesystem::temp_directory_path() /
             ("wavekv-" + name + "-" + std::to_string(::getpid()))),
        nodes(n) {
    std::filesystem::remove_all(base);
    std::filesystem::create_directories(base);
    for (int i = 0; i < n; i++) nodes[i].dir = (base / ("node" + std::to_string(i))).string();
  }
  ~ScratchNodes() {
    for (auto& n : nodes)
      if (n.pid > 0) n.stop(SIGKILL);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(base);
  }
  std::filesystem::path base;
  std::vector<ServeNode> nodes;
};

}  // namespace wavekv::test
