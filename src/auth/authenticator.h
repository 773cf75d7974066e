// The users file of a client port (RESP or HTTP) at run time: the loaded
// Users (swapped whole by reload()), and a small pool of threads that run
// password checks, so scrypt (about 0.1 s of CPU each) never runs on an io
// thread. The pool's queue is bounded: a flood of log-ins gets "busy"
// refusals, not an unbounded backlog.
//
//   auto a = Authenticator::open("users.toml");           // "" = auth off
//   a->verify(user, pass, [](Result<Identity> r) { ... }); // on a worker thread
//
// Thread-safe. shutdown() (and the destructor) answer queued checks with
// kClosed, without running them, and wait for the one running.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "auth/users.h"
#include "wavekv/status.h"

namespace wavekv::auth {

struct AuthenticatorOptions {
  size_t workers = 1;      // threads running scrypt
  size_t max_queued = 32;  // checks waiting for a worker; beyond: refused
};

class Authenticator {
 public:
  // `users_file` empty: authentication is off (enabled() false; verify and
  // verify_token fail). Otherwise the file must load.
  static Result<std::shared_ptr<Authenticator>> open(const std::string& users_file,
                                                     AuthenticatorOptions options = {});
  ~Authenticator();
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  bool enabled() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  // The users now (null when off). Connections that logged in keep the
  // identity they got, whatever a reload changes.
  std::shared_ptr<const Users> users() const;
  // Loads the file again; on error the current users stay.
  Status reload();

  using Done = std::function<void(Result<Identity>)>;
  // Queues a password check; `done` runs on a worker thread. False (and
  // `done` is dropped uncalled) if the queue is full or after shutdown().
  bool verify(std::string user, std::string password, Done done);
  // A bearer token: one SHA-256, cheap enough to check inline.
  Result<Identity> verify_token(std::string_view token) const;

  // Answers queued checks kClosed (on this thread) and joins the workers;
  // verify() refuses after it.
  void shutdown();

  uint64_t busy_refusals() const;  // verify() calls refused for a full queue

 private:
  struct Job {
    std::shared_ptr<const Users> users;
    std::string user, password;
    Done done;
  };
  struct Pool {  // shared with the worker threads
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Job> queue;
    bool stopping = false;
    uint64_t busy_refusals = 0;
  };
  Authenticator(std::string path, std::shared_ptr<const Users> users, AuthenticatorOptions options);
  static void work(std::shared_ptr<Pool> pool);

  const std::string path_;
  const AuthenticatorOptions options_;
  mutable std::mutex mu_;
  std::shared_ptr<const Users> users_;  // guarded by mu_
  std::shared_ptr<Pool> pool_ = std::make_shared<Pool>();
  std::vector<std::thread> workers_;
};

}  // namespace wavekv::auth
