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

// True if a peer asked for a re-bootstrap, false once a stop signal came.
// The 100 ms wait bounds how late a signal is seen.
bool wait_for_rebootstrap(Node& node, const std::atomic<int>& stop_signal) {
  while (stop_signal == 0)
    if (node.wait_rebootstrap(100)) return true;
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
  while (true) {
    auto node = hooks.start();
    if (!node) return failed(Failed::kStart, node.status());
    const std::string id = std::to_string((*node)->store().node_id());
    Status announced = hooks.announce(**node);
    if (!announced.is_ok()) {
      (void)hooks.stop();
      return failed(Failed::kStart, announced);
    }
    const bool rebootstrap = wait_for_rebootstrap(**node, stop_signal);
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
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread([signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    got_signal = sig;
  }).detach();
  return got_signal;
}

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
