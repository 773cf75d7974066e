// Helpers shared by the tests that run nodes and processes on loopback.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace wavekv::test {

// A new, empty directory under the temp dir (mkdtemp: its name is unique),
// removed with everything in it when this goes.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& prefix) {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp " + tmpl + " failed");
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Polls `done` every `poll_ms` until it holds or `seconds` pass: a guard
// against hangs, not a performance claim.
template <typename F>
bool eventually(F done, int seconds, int poll_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
  return done();
}

struct Outcome {
  int exit_code;    // -1 if the command did not exit normally
  std::string out;  // stdout and stderr together
};
// Runs `command` through the shell, with stderr joined to stdout.
inline Outcome run_command(const std::string& command) {
  std::string cmd = command + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return {-1, "popen failed"};
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// Sends `sig` to the child `pid`, reaps it, and returns its wait status;
// `pid` becomes -1.
inline int stop_child(pid_t& pid, int sig) {
  ::kill(pid, sig);
  int status = 0;
  ::waitpid(pid, &status, 0);
  pid = -1;
  return status;
}

// The last `max_bytes` of a file ("" if it cannot be read).
inline std::string file_tail(const std::string& path, size_t max_bytes = 4000) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string all = ss.str();
  return all.size() > max_bytes ? all.substr(all.size() - max_bytes) : all;
}

// A `wavekv serve` or `filesync run` started by start_ready(), with the
// addresses it bound as its --ready-file reports them.
struct ReadyChild {
  pid_t pid = -1;  // -1 if it is not running
  uint64_t node_id = 0;
  std::string peer, resp, http;  // HOST:PORT; resp and http empty if off
  std::string error;             // why it is not ready, with its output; empty once ready
};

// Starts `args` (args[0] is the program's path) with `--ready-file
// <ready_file>` added, stdout and stderr appended to `log`, and waits until
// the ready file names this child: it is written once every listener is
// bound, so the ports it gives are taken (every address may say port 0, and
// no test guesses a free port). Fails fast if the child exits first, and
// after `seconds` (the child killed); `error` then holds the end of `log`.
inline ReadyChild start_ready(std::vector<std::string> args, const std::string& ready_file,
                              const std::string& log, int seconds = 60) {
  auto failed = [](std::string why) {
    ReadyChild c;
    c.error = std::move(why);
    return c;
  };
  std::remove(ready_file.c_str());  // a stale file must not pass for this child's
  args.push_back("--ready-file");
  args.push_back(ready_file);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return failed("cannot open " + log);
  pid_t pid = ::fork();
  if (pid == 0) {  // only async-signal-safe calls until exec
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fd);
  if (pid < 0) return failed("fork failed");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (true) {
    std::ifstream in(ready_file);
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (!j.is_discarded() && j.value("pid", -1) == pid) {
      ReadyChild c;
      c.pid = pid;
      c.node_id = j["node_id"].get<uint64_t>();
      c.peer = j["peer"].get<std::string>();
      c.resp = j["resp"].get<std::string>();
      c.http = j["http"].get<std::string>();
      return c;
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      return failed(args[0] + " exited (wait status " + std::to_string(status) +
                    ") before it was ready; " + log + " ends:\n" + file_tail(log));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return failed(args[0] + " not ready after " + std::to_string(seconds) + " s; " + log +
                    " ends:\n" + file_tail(log));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace wavekv::test
