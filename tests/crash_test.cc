// Crash tests with real processes: `wavekv bench --durability always
// --acked-log` is killed with SIGKILL at a random moment; every key it had
// reported as acknowledged must be in the store when it is reopened.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>

#include "wavekv/store.h"

namespace wavekv {
namespace {

namespace fs = std::filesystem;

std::string make_temp_dir() {
  std::string tmpl = (fs::temp_directory_path() / "wavekv-crash-XXXXXX").string();
  char* p = ::mkdtemp(tmpl.data());
  EXPECT_NE(p, nullptr);
  return tmpl;
}

pid_t spawn_bench(const std::string& dir, const std::string& acked, const std::string& conc) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::execl(WAVEKV_BINARY, WAVEKV_BINARY, "bench", "--data-dir", dir.c_str(), "--ops", "100000000",
            "--concurrency", conc.c_str(), "--value-size", "64", "--durability", "always",
            "--acked-log", acked.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

int rounds_from_env() {
  const char* env = std::getenv("WAVEKV_CRASH_ROUNDS");
  return env != nullptr ? std::max(1, std::atoi(env)) : 8;
}

TEST(Crash, EveryAcknowledgedKeySurvivesKill9) {
  const uint64_t seed = 20261125;
  std::mt19937_64 rng(seed);
  const std::string dir = make_temp_dir();
  const std::string acked = dir + ".acked";
  const int rounds = rounds_from_env();
  uint64_t checked_total = 0;
  for (int round = 0; round < rounds; round++) {
    SCOPED_TRACE("round " + std::to_string(round) + " of seed " + std::to_string(seed));
    std::string conc = std::to_string(1 + rng() % 16);
    fs::remove(acked);  // each round checks only what its own bench acknowledged
    pid_t pid = spawn_bench(dir, acked, conc);
    ASSERT_GT(pid, 0);
    // Kill at a random moment after the first acknowledgement (startup time
    // varies a lot, e.g. under sanitizers).
    for (int i = 0; i < 2000 && (!fs::exists(acked) || fs::file_size(acked) == 0); i++)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 400));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int wstatus = 0;
    ASSERT_EQ(::waitpid(pid, &wstatus, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(wstatus))
        << "bench exited on its own (status " << wstatus << "): it failed before it was killed";

    Config c;
    c.data_dir = dir;
    auto store = Store::open(c);
    ASSERT_TRUE(store) << store.status().to_string();
    std::ifstream in(acked);
    std::string key;
    uint64_t checked = 0, missing = 0;
    while (std::getline(in, key)) {
      checked++;
      auto v = (*store)->get(key);
      if (!v || v->size() != 64) {
        if (missing++ < 5) ADD_FAILURE() << "acknowledged key lost after kill -9: " << key;
      }
    }
    EXPECT_EQ(missing, 0u) << "of " << checked << " acknowledged keys";
    EXPECT_GT(checked, 0u) << "the bench acknowledged nothing before the kill";
    checked_total += checked;
    ASSERT_TRUE((*store)->close());
  }
  std::cout << "checked " << checked_total << " acknowledged keys over " << rounds << " kills\n";
  fs::remove_all(dir);
  fs::remove(acked);
}

}  // namespace
}  // namespace wavekv
