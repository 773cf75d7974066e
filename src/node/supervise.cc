// The life of a program around one node (include/wavekv/node.h): signals,
// and the re-bootstrap a peer can ask for (stop, wipe, start again).
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <thread>

#include "wavekv/log.h"
#include "wavekv/node.h"

namespace wavekv {
namespace {

std::atomic<uint64_t> g_reload_requests{0};

// Reloads the node's credentials and logs how it went; the node serves on
// either way (with the old credentials if the new ones failed).
void reload(Node& node, const SuperviseHooks& hooks, const std::string& id) {
  Status st = node.reload_credentials();
  if (st.is_ok())
    log(hooks.log, LogLevel::kInfo, hooks.component,
        "reloaded credentials: new connections use them", {{"node", id}});
  else
    log(hooks.log, LogLevel::kError, hooks.component,
        "reloading credentials failed; the old ones stay in use",
        {{"node", id}, {"error", st.to_string()}});
}

// True if a peer asked for a re-bootstrap, false once a stop signal came.
// Reloads credentials when hooks.reload_requests moves past `reloads_seen`
// (also for a SIGHUP that came while the node started). The 100 ms wait
// bounds how late a signal is seen.
bool wait_for_rebootstrap(Node& node, const SuperviseHooks& hooks, const std::string& id,
                          const std::atomic<int>& stop_signal, uint64_t& reloads_seen) {
  while (stop_signal == 0) {
    if (node.wait_rebootstrap(100)) return true;
    if (hooks.reload_requests && hooks.reload_requests->load() != reloads_seen) {
      reloads_seen = hooks.reload_requests->load();
      reload(node, hooks, id);
    }
  }
  return false;
}

SuperviseEnd failed(SuperviseEnd::Failed what, Status error) {
  SuperviseEnd end;
  end.failed = what;
  end.error = std::move(error);
  return end;
}

constexpr std::string_view kRetiredPrefix = "rebootstrap-";

// The n of "rebootstrap-<timestamp>-<n>", 0 if `name` is not a retired copy.
uint64_t retired_number(const std::string& name) {
  if (!name.starts_with(kRetiredPrefix)) return 0;
  size_t dash = name.rfind('-');
  if (dash == std::string::npos || dash + 1 >= name.size() || dash < kRetiredPrefix.size())
    return 0;
  uint64_t n = 0;
  for (size_t i = dash + 1; i < name.size(); i++) {
    if (name[i] < '0' || name[i] > '9' || n > UINT64_MAX / 10 - 9) return 0;
    n = n * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  return n;
}

// (n, path) of every retired copy under `dir`, oldest (lowest n) first.
std::vector<std::pair<uint64_t, std::string>> list_retired(const std::string& dir) {
  std::vector<std::pair<uint64_t, std::string>> out;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator(std::filesystem::path(dir) / kRetiredDir, ec)) {
    uint64_t n = retired_number(e.path().filename().string());
    if (n != 0 && e.is_directory(ec)) out.emplace_back(n, e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

std::string utc_stamp(uint64_t wall_ms) {
  std::time_t t = static_cast<std::time_t>(wall_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

}  // namespace

SuperviseEnd supervise(const SuperviseHooks& hooks, const std::atomic<int>& stop_signal) {
  using Failed = SuperviseEnd::Failed;
  uint64_t reloads_seen = hooks.reload_requests ? hooks.reload_requests->load() : 0;
  while (true) {
    auto node = hooks.start();
    if (!node) return failed(Failed::kStart, node.status());
    const std::string id = std::to_string((*node)->store().node_id());
    Status announced = hooks.announce(**node);
    if (!announced.is_ok()) {
      (void)hooks.stop();
      return failed(Failed::kStart, announced);
    }
    const bool rebootstrap = wait_for_rebootstrap(**node, hooks, id, stop_signal, reloads_seen);
    Status st = hooks.stop();
    if (!st.is_ok()) return failed(Failed::kClose, st);
    if (!rebootstrap) {
      log(hooks.log, LogLevel::kInfo, hooks.component, "stopped by signal; store closed",
          {{"node", id}, {"signal", std::to_string(stop_signal.load())}});
      SuperviseEnd end;
      end.signal = stop_signal.load();
      return end;
    }
    // Evicted: this node's store must start over, as a new incarnation. The
    // old contents are moved aside, not deleted: the request may be wrong.
    const uint64_t wall_ms =
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
    auto retired = retire_data_dir(hooks.data_dir, hooks.keep_retired, wall_ms);
    if (!retired) return failed(Failed::kWipe, retired.status());
    log(hooks.log, LogLevel::kWarn, hooks.component,
        "moved the data directory's contents aside to bootstrap again",
        {{"node", id}, {"data_dir", hooks.data_dir}, {"retired_to", *retired}});
  }
}

const std::atomic<int>& catch_stop_signals() {
  static std::atomic<int> got_signal{0};
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread([signals] {
    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) continue;
      if (sig == SIGHUP) {
        ++g_reload_requests;  // reload, do not stop
        continue;
      }
      got_signal = sig;
      return;
    }
  }).detach();
  return got_signal;
}

const std::atomic<uint64_t>& reload_requests() { return g_reload_requests; }

Status wipe_data_dir(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::filesystem::remove_all(entry.path(), ec);
    if (ec) return Status::io_error("wipe " + entry.path().string() + ": " + ec.message());
  }
  if (ec) return Status::io_error("wipe " + dir + ": " + ec.message());
  return Status::ok();
}

}  // namespace wavekv

namespace wavekv {

Result<std::string> retire_data_dir(const std::string& dir, size_t keep, uint64_t wall_ms) {
  namespace fs = std::filesystem;
  if (keep == 0) {
    Status st = wipe_data_dir(dir);
    if (!st.is_ok()) return st;
    return std::string();
  }
  std::error_code ec;
  const fs::path root = fs::path(dir) / kRetiredDir;
  fs::create_directories(root, ec);
  if (ec) return Status::io_error("retire: create " + root.string() + ": " + ec.message());
  auto existing = list_retired(dir);
  const uint64_t n = existing.empty() ? 1 : existing.back().first + 1;
  const fs::path copy =
      root / (std::string(kRetiredPrefix) + utc_stamp(wall_ms) + "-" + std::to_string(n));
  fs::create_directory(copy, ec);
  if (ec) return Status::io_error("retire: create " + copy.string() + ": " + ec.message());
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().filename() == kRetiredDir) continue;
    fs::rename(entry.path(), copy / entry.path().filename(), ec);
    if (ec) return Status::io_error("retire " + entry.path().string() + ": " + ec.message());
  }
  if (ec) return Status::io_error("retire " + dir + ": " + ec.message());
  fsync_dir(copy.string());
  fsync_dir(root.string());
  fsync_dir(dir);
  // The oldest beyond `keep` go: a bounded cost in disk.
  existing = list_retired(dir);
  for (size_t i = 0; i + keep < existing.size(); i++) {
    fs::remove_all(existing[i].second, ec);
    if (ec) return Status::io_error("retire: remove " + existing[i].second + ": " + ec.message());
  }
  return copy.string();
}

std::vector<std::string> retired_data_dirs(const std::string& dir) {
  std::vector<std::string> out;
  for (auto& [n, path] : list_retired(dir)) out.push_back(std::move(path));
  return out;
}

}  // namespace wavekv
