// wavekv bench: concurrent writers against one store, with latency percentiles.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "cli.h"

namespace wavekv::cli {
namespace {

double percentile_us(const std::vector<uint64_t>& sorted_ns, double q) {
  if (sorted_ns.empty()) return 0;
  size_t i = std::min(sorted_ns.size() - 1, static_cast<size_t>(q * sorted_ns.size()));
  return static_cast<double>(sorted_ns[i]) / 1000.0;
}

// The writers' shared state while the benchmark runs: the next key to
// write, the first error, the acknowledged-keys log and each writer's
// latencies.
class BenchRun {
 public:
  BenchRun(Store& store, const BenchOptions& o, int acked_fd)
      : store_(store),
        o_(o),
        acked_fd_(acked_fd),
        value_(o.value_size, 'v'),
        latencies_(o.async ? 1 : o.concurrency) {}

  // Closed loop: one thread keeps `concurrency` writes in flight; each
  // completion issues that client's next write.
  void run_async() {
    latencies_[0].reserve(o_.ops);
    for (uint32_t c = 0; c < o_.concurrency; c++) issue();
    std::unique_lock lock(done_mu_);
    done_cv_.wait(lock, [&] { return completed_ == issued_ && (next_ >= o_.ops || failed_); });
  }

  // `concurrency` threads, each making blocking writes.
  void run_threads() {
    std::vector<std::thread> threads;
    for (uint32_t t = 0; t < o_.concurrency; t++)
      threads.emplace_back([this, t] { write_blocking(latencies_[t]); });
    for (auto& th : threads) th.join();
  }

  bool failed() const { return failed_; }
  const std::string& first_error() const { return first_error_; }

  // Every acknowledged write's latency in nanoseconds, ascending.
  std::vector<uint64_t> sorted_latencies() const {
    std::vector<uint64_t> all;
    for (const auto& l : latencies_) all.insert(all.end(), l.begin(), l.end());
    std::sort(all.begin(), all.end());
    return all;
  }

 private:
  using Clock = std::chrono::steady_clock;

  static uint64_t ns_since(Clock::time_point t0, Clock::time_point t1) {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
  }

  void record_error(const Status& st) {
    std::lock_guard lock(err_mu_);
    if (first_error_.empty()) first_error_ = st.to_string();
    failed_ = true;
  }

  // One write(2) per line with O_APPEND: the line reaches the kernel before
  // anything else happens, so it survives kill -9 of this process.
  void log_acked(const std::string& key) {
    if (acked_fd_ < 0) return;
    std::string line = key + "\n";
    if (::write(acked_fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
      record_error(Status::io_error("cannot append to --acked-log"));
  }

  void issue() {
    uint64_t i = next_.fetch_add(1);
    if (i >= o_.ops) return;
    issued_++;
    std::string key = "bench:" + std::to_string(i);
    WriteBatch b;
    b.put(key, value_);
    auto t0 = Clock::now();
    store_.write_async(std::move(b), [this, key, t0](Status st) {
      auto t1 = Clock::now();
      if (st.is_ok()) {
        latencies_[0].push_back(ns_since(t0, t1));
        log_acked(key);
      } else {
        record_error(st);
      }
      if (!failed_) issue();
      // Last: once `completed_` reaches `issued_` the main thread may return.
      std::lock_guard lock(done_mu_);
      completed_++;
      done_cv_.notify_one();
    });
  }

  void write_blocking(std::vector<uint64_t>& lat) {
    lat.reserve(o_.ops / o_.concurrency + 1);
    for (;;) {
      uint64_t i = next_.fetch_add(1);
      if (i >= o_.ops || failed_) break;
      std::string key = "bench:" + std::to_string(i);
      auto t0 = Clock::now();
      Status st = store_.put(key, value_);
      auto t1 = Clock::now();
      if (!st.is_ok()) {
        record_error(st);
        break;
      }
      lat.push_back(ns_since(t0, t1));
      log_acked(key);
    }
  }

  Store& store_;
  const BenchOptions& o_;
  const int acked_fd_;
  const std::string value_;
  std::atomic<uint64_t> next_{0};
  std::atomic<bool> failed_{false};
  std::mutex err_mu_;
  std::string first_error_;
  std::vector<std::vector<uint64_t>> latencies_;
  // run_async only: completions counted against writes issued.
  std::mutex done_mu_;
  std::condition_variable done_cv_;
  uint64_t completed_ = 0;
  std::atomic<uint64_t> issued_{0};
};

void print_results(const BenchOptions& o, const std::vector<uint64_t>& all, double secs,
                   const StoreStatus& st) {
  double ops_per_sec = static_cast<double>(all.size()) / secs;
  if (o.json) {
    nlohmann::json j = {
        {"ops", all.size()},
        {"concurrency", o.concurrency},
        {"value_size", o.value_size},
        {"durability", durability_name(o.durability)},
        {"mode", o.async ? "async" : "threads"},
        {"seconds", secs},
        {"ops_per_sec", ops_per_sec},
        {"p50_us", percentile_us(all, 0.50)},
        {"p99_us", percentile_us(all, 0.99)},
        {"p999_us", percentile_us(all, 0.999)},
        {"fsyncs", st.fsyncs},
        {"group_commits", st.group_commits},
    };
    std::cout << j.dump() << "\n";
  } else {
    std::printf("%-10s %-8s %5s %10s %12s %10s %10s %10s %10s\n", "durability", "mode", "conc",
                "ops", "ops/s", "p50_us", "p99_us", "p999_us", "fsyncs");
    std::printf("%-10s %-8s %5u %10zu %12.0f %10.1f %10.1f %10.1f %10llu\n",
                durability_name(o.durability), o.async ? "async" : "threads", o.concurrency,
                all.size(), ops_per_sec, percentile_us(all, 0.50), percentile_us(all, 0.99),
                percentile_us(all, 0.999), static_cast<unsigned long long>(st.fsyncs));
  }
}

}  // namespace

int run_bench(const BenchOptions& o) {
  Config c;
  c.data_dir = o.data_dir;
  c.durability = o.durability;
  auto opened = Store::open(c);
  if (!opened) {
    std::cerr << "wavekv: " << opened.status().to_string() << "\n";
    return 2;
  }
  Store& store = **opened;

  int acked_fd = -1;
  if (!o.acked_log.empty()) {
    acked_fd = ::open(o.acked_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (acked_fd < 0) {
      std::cerr << "wavekv: cannot open --acked-log " << o.acked_log << "\n";
      return 2;
    }
  }

  BenchRun run(store, o, acked_fd);
  auto start = std::chrono::steady_clock::now();
  if (o.async)
    run.run_async();
  else
    run.run_threads();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (acked_fd >= 0) ::close(acked_fd);
  if (run.failed()) {
    std::cerr << "wavekv: bench write failed: " << run.first_error() << "\n";
    return 1;
  }
  std::vector<uint64_t> all = run.sorted_latencies();
  StoreStatus st = store.status();
  Status closed = store.close();
  if (!closed.is_ok()) {
    std::cerr << "wavekv: " << closed.to_string() << "\n";
    return 1;
  }
  print_results(o, all, secs, st);
  return 0;
}

}  // namespace wavekv::cli
