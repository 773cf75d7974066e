// Redis client libraries nobody here wrote, against a real `wavekv serve`:
// redis-py (Debian's python3-redis) and ioredis and node-redis (npm, put in
// tests/clients/node_modules by scripts/setup.sh). Each script checks
// transactional and plain pipelines, WATCH, scan iterators, binary values and
// string commands (tests/clients/*). A library that is not installed is
// skipped, and the test says so.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "support/serve_node.h"

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
  void SetUp() override { ASSERT_TRUE(scratch_.nodes[0].start()); }
  std::string host() const { return node().resp.substr(0, node().resp.rfind(':')); }
  std::string port() const { return std::to_string(test::port_of(node().resp)); }
  const test::ServeNode& node() const { return scratch_.nodes[0]; }
  std::string log(const char* name) const { return (scratch_.base / name).string(); }

  ScratchNodes scratch_{"client-libraries-test", 1};
  const std::string clients_ = std::string(WAVEKV_SOURCE_DIR) + "/tests/clients";
};

TEST_F(ClientLibraries, RedisPy) {
  // Debian's module is for Debian's interpreter, whatever else is on PATH.
  if (!run("/usr/bin/python3 -c 'import redis'", log("probe.log")))
    GTEST_SKIP() << "python3-redis is not installed (scripts/setup.sh installs it)";
  const std::string out = log("redis_py.log");
  EXPECT_TRUE(
      run("/usr/bin/python3 " + clients_ + "/redis_py_check.py " + host() + " " + port(), out))
      << slurp(out);
}

TEST_F(ClientLibraries, IoredisAndNodeRedis) {
  if (!std::filesystem::exists(clients_ + "/node_modules/ioredis") ||
      !std::filesystem::exists(clients_ + "/node_modules/redis"))
    GTEST_SKIP() << "ioredis and redis are not in tests/clients/node_modules (scripts/setup.sh "
                    "runs npm install there when npm is present)";
  const std::string out = log("node.log");
  EXPECT_TRUE(run("node " + clients_ + "/node_check.js " + host() + " " + port(), out))
      << slurp(out);
}

}  // namespace
}  // namespace wavekv
