// A server's memory budget for its clients (RespConfig and HttpConfig
// max_client_memory_bytes), like Redis's maxmemory-clients but enforced by
// waiting rather than evicting: request and reply bytes of every connection
// are taken from it before they are held, and a connection that finds no
// room pauses (stops reading, does not run its next request) until some
// connection gives bytes back.
//
// Thread-safe: connections run on strands of any number of threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <mutex>
#include <vector>

namespace wavekv::net {

class ClientMemory {
 public:
  explicit ClientMemory(uint64_t limit = std::numeric_limits<uint64_t>::max()) : limit_(limit) {}
  ClientMemory(const ClientMemory&) = delete;
  ClientMemory& operator=(const ClientMemory&) = delete;

  void set_limit(uint64_t limit) { limit_ = limit; }
  uint64_t limit() const { return limit_; }
  uint64_t used() const { return used_.load(); }
  uint64_t peak() const { return peak_.load(); }

  // Takes `n` bytes if they fit under the limit.
  bool try_take(uint64_t n) {
    uint64_t cur = used_.load();
    do {
      if (n > limit_ || cur > limit_ - n) return false;
    } while (!used_.compare_exchange_weak(cur, cur + n));
    note_peak(cur + n);
    return true;
  }
  // Takes `n` bytes whether or not they fit (bytes already held, such as a
  // reply a little larger than was reserved for it).
  void take(uint64_t n) { note_peak(used_ += n); }
  // Gives `n` bytes back and wakes the connections waiting for room.
  void give(uint64_t n) {
    if (n == 0) return;
    used_ -= n;
    if (waiting_.load() > 0) wake_all();
  }

  // `wake` is called once (from any thread) after the next give(), unless
  // `n` bytes fit now: then it returns false and keeps nothing.
  bool wait_for_room(uint64_t n, std::function<void()> wake) {
    std::lock_guard lock(mu_);
    ++waiting_;  // before the check: a give() after it sees us (seq_cst)
    uint64_t cur = used_.load();
    if (n <= limit_ && cur <= limit_ - n) {
      --waiting_;
      return false;
    }
    waiters_.push_back(std::move(wake));
    return true;
  }

 private:
  void note_peak(uint64_t v) {
    uint64_t p = peak_.load();
    while (v > p && !peak_.compare_exchange_weak(p, v)) {
    }
  }
  void wake_all() {
    std::vector<std::function<void()>> woken;
    {
      std::lock_guard lock(mu_);
      woken.swap(waiters_);
      waiting_ -= woken.size();
    }
    for (auto& w : woken) w();
  }

  uint64_t limit_;
  std::atomic<uint64_t> used_{0};
  std::atomic<uint64_t> peak_{0};
  std::mutex mu_;
  std::atomic<size_t> waiting_{0};
  std::vector<std::function<void()>> waiters_;  // guarded by mu_; at most one per connection
};

}  // namespace wavekv::net
