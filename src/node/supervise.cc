// The life of a program around one node (include/wavekv/node.h): signals,
// and the re-bootstrap a peer can ask for (stop, wipe, start again).
#include <pthread.h>
#include <signal.h>

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
    // Evicted: this node's store must start over, as a new incarnation.
    log(hooks.log, LogLevel::kWarn, hooks.component, "wiping the data directory to bootstrap again",
        {{"node", id}, {"data_dir", hooks.data_dir}});
    Status wiped = wipe_data_dir(hooks.data_dir);
    if (!wiped.is_ok()) return failed(Failed::kWipe, wiped);
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
