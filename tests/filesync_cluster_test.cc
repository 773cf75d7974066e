// Three real `filesync run` processes on loopback, peers in a chain (node 1
// knows node 0, node 2 knows node 1), under file churn in all three
// directories; once the churn stops, `filesync check` must pass within a
// bounded time. Then the same with a node killed (SIGKILL) in the middle of
// the churn and restarted.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "support/test_util.h"
#include "wavekv/security.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// One `filesync run` process. Every start listens on port 0 and takes the
// port it got from its ready file (test::start_ready), so a restarted node
// comes back on a new port; its peers learn it from the node itself.
struct SyncNode {
  std::string watch, data, peers;
  std::string listen;              // HOST:PORT, as bound by the running process
  std::vector<std::string> extra;  // more flags
  pid_t pid = -1;

  // Starts it and waits until it mirrors (listening, bootstrapped, scanned).
  ::testing::AssertionResult start() {
    std::vector<std::string> args = {FILESYNC_BINARY, "run", "--watch-dir",        watch,
                                     "--data-dir",    data,  "--listen",           "127.0.0.1:0",
                                     "--peers",       peers, "--sync-interval-ms", "200",
                                     "--no-progress"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto c = wavekv::test::start_ready(args, data + ".ready", data + ".log");
    if (!c.error.empty()) return ::testing::AssertionFailure() << c.error;
    pid = c.pid;
    listen = c.peer;
    return ::testing::AssertionSuccess();
  }
  int stop(int sig) { return wavekv::test::stop_child(pid, sig); }
};

// `filesync check --dirs ...`: its exit code, and what it printed in `out`.
int run_check(const std::vector<std::string>& dirs, std::string* out) {
  std::string list;
  for (const auto& d : dirs) list += (list.empty() ? "" : ",") + d;
  auto o = wavekv::test::run_command(std::string(FILESYNC_BINARY) + " check --dirs " + list);
  *out = std::move(o.out);
  return o.exit_code;
}

// The churn of scripts/test-ops.sh: create, append, overwrite, delete,
// rename, nested directories, across every directory.
class Churn {
 public:
  Churn(std::vector<std::string> dirs, uint64_t seed) : dirs_(std::move(dirs)), rng_(seed) {}
  void step() {
    const std::string& dir = dirs_[rng_() % dirs_.size()];
    std::string name = "f" + std::to_string(rng_() % 40);
    if (rng_() % 3 == 0) name = "d" + std::to_string(rng_() % 4) + "/" + name;
    if (rng_() % 5 == 0) name = "d" + std::to_string(rng_() % 2) + "/sub/" + name;
    fs::path p = fs::path(dir) / name;
    std::error_code ec;
    switch (rng_() % 6) {
      case 0:
      case 1: {  // create or overwrite
        fs::create_directories(p.parent_path(), ec);
        std::ofstream(p, std::ios::binary | std::ios::trunc) << blob(rng_() % 5000);
        break;
      }
      case 2: {  // append
        if (fs::exists(p, ec)) std::ofstream(p, std::ios::binary | std::ios::app) << blob(100);
        break;
      }
      case 3:  // delete
        fs::remove(p, ec);
        break;
      case 4: {  // rename
        fs::path to = fs::path(dir) / ("r" + std::to_string(rng_() % 40));
        if (fs::is_regular_file(p, ec)) fs::rename(p, to, ec);
        break;
      }
      case 5:  // mode
        if (fs::is_regular_file(p, ec)) ::chmod(p.c_str(), rng_() % 2 ? 0600 : 0644);
        break;
    }
  }

 private:
  std::string blob(size_t n) {
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng_());
    return s;
  }
  std::vector<std::string> dirs_;
  std::mt19937_64 rng_;
};

class FilesyncCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() / ("filesync-cluster-" + std::to_string(::getpid()));
    fs::remove_all(base_);
    for (int i = 0; i < 3; i++) {
      SyncNode n;
      n.watch = (base_ / ("dir" + std::to_string(i))).string();
      n.data = (base_ / ("data" + std::to_string(i))).string();
      if (i > 0) n.peers = nodes_[i - 1].listen;
      fs::create_directories(n.watch);
      ASSERT_TRUE(n.start());
      nodes_.push_back(n);
      dirs_.push_back(n.watch);
    }
  }
  void TearDown() override {
    for (auto& n : nodes_)
      if (n.pid > 0) n.stop(SIGKILL);
    if (!HasFailure()) fs::remove_all(base_);
  }
  // Seconds until `filesync check` passes, or -1 after `limit_s`.
  double converge(int limit_s, std::string* last) {
    auto start = Clock::now();
    while (Clock::now() - start < std::chrono::seconds(limit_s)) {
      if (run_check(dirs_, last) == 0)
        return std::chrono::duration<double>(Clock::now() - start).count();
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    return -1;
  }
  fs::path base_;
  std::vector<SyncNode> nodes_;
  std::vector<std::string> dirs_;
};

// A first node started with `--peers ''` (no peer yet) waited for a bootstrap
// sync from no one, up to --bootstrap-timeout-ms, before it mirrored: the
// empty name counted as a peer. It must be ready at once.
TEST(FilesyncRun, EmptyPeersListDoesNotWaitForABootstrap) {
  fs::path base = fs::temp_directory_path() / ("filesync-alone-" + std::to_string(::getpid()));
  fs::remove_all(base);
  fs::create_directories(base / "dir");
  auto c =
      wavekv::test::start_ready({FILESYNC_BINARY, "run", "--watch-dir", (base / "dir").string(),
                                 "--data-dir", (base / "data").string(), "--listen", "127.0.0.1:0",
                                 "--peers", "", "--bootstrap-timeout-ms", "60000", "--no-progress"},
                                (base / "ready").string(), (base / "log").string(), 20);
  ASSERT_TRUE(c.error.empty()) << c.error;
  EXPECT_EQ(wavekv::test::stop_child(c.pid, SIGTERM), 0);
  fs::remove_all(base);
}

// Issue 12: `filesync run --cluster-key-file`: a pair holding the key
// mirrors a file; a node with another key (seeded with the same peer)
// never gets it.
TEST(FilesyncRun, APairWithAClusterKeyMirrorsAndAnotherKeyGetsNothing) {
  fs::path base = fs::temp_directory_path() / ("filesync-key-" + std::to_string(::getpid()));
  fs::remove_all(base);
  fs::create_directories(base);
  for (const char* name : {"key", "other.key"}) {
    auto text = wavekv::generate_cluster_key_file();
    ASSERT_TRUE(text.is_ok());
    std::ofstream(base / name) << *text;
    fs::permissions(base / name, fs::perms::owner_read | fs::perms::owner_write);
  }
  std::vector<SyncNode> nodes(3);
  struct Reaper {  // also through an ASSERT
    std::vector<SyncNode>& nodes;
    ~Reaper() {
      for (auto& n : nodes)
        if (n.pid > 0) n.stop(SIGKILL);
    }
  } reaper{nodes};
  for (int i = 0; i < 3; i++) {
    nodes[i].watch = (base / ("dir" + std::to_string(i))).string();
    nodes[i].data = (base / ("data" + std::to_string(i))).string();
    nodes[i].extra = {"--cluster-key-file", (base / (i < 2 ? "key" : "other.key")).string()};
    fs::create_directories(nodes[i].watch);
  }
  std::ofstream(nodes[0].watch + "/hello.txt") << "mirrored";
  ASSERT_TRUE(nodes[0].start());
  for (int i = 1; i < 3; i++) {
    nodes[i].peers = nodes[0].listen;
    nodes[i].extra.insert(nodes[i].extra.end(), {"--bootstrap-timeout-ms", "300"});
    ASSERT_TRUE(nodes[i].start());
  }
  EXPECT_TRUE(
      wavekv::test::eventually([&] { return fs::exists(nodes[1].watch + "/hello.txt"); }, 20, 50));
  // Node 2 has tried (and failed) at least as many sync rounds meanwhile.
  EXPECT_FALSE(fs::exists(nodes[2].watch + "/hello.txt"));
  for (auto& n : nodes) n.stop(SIGKILL);
  if (!::testing::Test::HasFailure()) fs::remove_all(base);
}

TEST_F(FilesyncCluster, ChurnOnAllThreeNodesConverges) {
  Churn churn(dirs_, 42);
  auto end = Clock::now() + std::chrono::seconds(4);
  int steps = 0;
  while (Clock::now() < end) {
    churn.step();
    steps++;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::string out;
  double s = converge(30, &out);
  ASSERT_GE(s, 0) << "no agreement 30 s after " << steps << " churn steps:\n" << out;
  std::printf("converged %.1f s after %d churn steps\n", s, steps);
}

TEST_F(FilesyncCluster, ANodeKilledDuringChurnCatchesUpAfterRestart) {
  Churn churn(dirs_, 7);
  auto start = Clock::now();
  bool killed = false, restarted = false;
  while (Clock::now() - start < std::chrono::seconds(5)) {
    auto t = Clock::now() - start;
    if (!killed && t > std::chrono::milliseconds(1500)) {
      nodes_[1].stop(SIGKILL);  // the middle of the chain
      killed = true;
    }
    if (killed && !restarted && t > std::chrono::milliseconds(3000)) {
      ASSERT_TRUE(nodes_[1].start());
      restarted = true;
    }
    churn.step();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::string out;
  double s = converge(40, &out);
  ASSERT_GE(s, 0) << "no agreement 40 s after the restart:\n" << out;
  std::printf("converged %.1f s after the churn stopped\n", s);
}

}  // namespace
