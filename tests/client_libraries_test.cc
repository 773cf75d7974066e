// Redis client libraries nobody here wrote, against a real `wavekv serve`:
// redis-py (Debian's python3-redis) and ioredis and node-redis (npm, put in
// tests/clients/node_modules by scripts/setup.sh). Each script checks
// transactional and plain pipelines, WATCH, scan iterators, binary values,
// string commands, expiry and pub/sub (tests/clients/*), and reconnects after
// the node is killed and restarted: a script prints "restart-node" and goes
// on; the test kills the node with -9 and starts it again, and the library
// must reconnect by itself and find the data. The clients dial a TCP proxy
// in front of the RESP port, so their address stays the same while the
// restarted node binds a new port 0 (no test reuses a port it let go). A
// library that is not installed is skipped, and the test says so.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "support/serve_node.h"
#include "support/tcp_proxy.h"

namespace wavekv {
namespace {

using test::ScratchNodes;

// Runs `command`, its output into `log`; true if it exited 0.
bool run(const std::string& command, const std::string& log) {
  return std::system((command + " > " + log + " 2>&1").c_str()) == 0;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class ClientLibraries : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(proxy_.ok());
    proxy_.forward_anyone();
    ASSERT_TRUE(scratch_.nodes[0].start());
    proxy_.forward_to(test::port_of(node().resp));
  }

  // Runs a client script, its output into `log`, and restarts the node each
  // time the script asks. True if the script exited 0 and every restart it
  // asked for happened.
  bool run_script(const std::string& command, const std::string& log, int& restarts) {
    FILE* out = ::popen((command + " 2>&1").c_str(), "r");
    if (!out) return false;
    std::ofstream saved(log);
    char line[4096];
    bool restarted_ok = true;
    while (std::fgets(line, sizeof line, out)) {
      saved << line << std::flush;
      if (std::string(line) != "restart-node\n") continue;
      test::ServeNode& n = scratch_.nodes[0];
      proxy_.forward_to(0);  // while it is down, as if nothing listened
      n.stop(SIGKILL);
      auto started = n.start();
      if (started) proxy_.forward_to(test::port_of(n.resp));
      saved << "(test: node killed with -9 and restarted on " << n.resp << ": "
            << (started ? "ok" : started.message()) << ")\n";
      restarted_ok = restarted_ok && started;
      restarts++;
    }
    return ::pclose(out) == 0 && restarted_ok;
  }
  // Where the clients dial: the proxy.
  std::string host() const { return "127.0.0.1"; }
  std::string port() const { return std::to_string(test::port_of(proxy_.address())); }
  const test::ServeNode& node() const { return scratch_.nodes[0]; }
  std::string log(const char* name) const { return (scratch_.base / name).string(); }

  test::TcpProxy proxy_;
  ScratchNodes scratch_{"client-libraries-test", 1};
  const std::string clients_ = std::string(WAVEKV_SOURCE_DIR) + "/tests/clients";
};

TEST_F(ClientLibraries, RedisPy) {
  // Debian's module is for Debian's interpreter, whatever else is on PATH.
  if (!run("/usr/bin/python3 -c 'import redis'", log("probe.log")))
    GTEST_SKIP() << "python3-redis is not installed (scripts/setup.sh installs it)";
  const std::string out = log("redis_py.log");
  int restarts = 0;
  EXPECT_TRUE(
      run_script("/usr/bin/python3 " + clients_ + "/redis_py_check.py " + host() + " " + port(),
                 out, restarts))
      << slurp(out);
  EXPECT_EQ(restarts, 1) << "the script asks for one restart";
}

TEST_F(ClientLibraries, IoredisAndNodeRedis) {
  if (!std::filesystem::exists(clients_ + "/node_modules/ioredis") ||
      !std::filesystem::exists(clients_ + "/node_modules/redis"))
    GTEST_SKIP() << "ioredis and redis are not in tests/clients/node_modules (scripts/setup.sh "
                    "runs npm install there when npm is present)";
  const std::string out = log("node.log");
  int restarts = 0;
  EXPECT_TRUE(
      run_script("node " + clients_ + "/node_check.js " + host() + " " + port(), out, restarts))
      << slurp(out);
  EXPECT_EQ(restarts, 2) << "the script asks for one restart per library";
}

}  // namespace
}  // namespace wavekv
