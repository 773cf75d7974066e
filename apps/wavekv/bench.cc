// wavekv bench: concurrent writers against one store, with latency percentiles.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
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

  const std::string value(o.value_size, 'v');
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex err_mu;
  std::string first_error;
  auto record_error = [&](const Status& st) {
    std::lock_guard lock(err_mu);
    if (first_error.empty()) first_error = st.to_string();
    failed = true;
  };
  // One write(2) per line with O_APPEND: the line reaches the kernel before
  // anything else happens, so it survives kill -9 of this process.
  auto log_acked = [&](const std::string& key) {
    if (acked_fd < 0) return;
    std::string line = key + "\n";
    if (::write(acked_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
      record_error(Status::io_error("cannot append to --acked-log"));
  };
  std::vector<std::vector<uint64_t>> latencies(o.async ? 1 : o.concurrency);
  auto start = std::chrono::steady_clock::now();
  if (o.async) {
    // Closed loop: each completion issues that client's next write.
    std::mutex done_mu;
    std::condition_variable done_cv;
    uint64_t completed = 0;
    std::atomic<uint64_t> issued{0};
    auto& lat = latencies[0];
    lat.reserve(o.ops);
    std::function<void()> issue = [&] {
      uint64_t i = next.fetch_add(1);
      if (i >= o.ops) return;
      issued++;
      std::string key = "bench:" + std::to_string(i);
      WriteBatch b;
      b.put(key, value);
      auto t0 = std::chrono::steady_clock::now();
      store.write_async(std::move(b), [&, key, t0](Status st) {
        auto t1 = std::chrono::steady_clock::now();
        if (st.is_ok()) {
          lat.push_back(static_cast<uint64_t>(
              std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
          log_acked(key);
        } else {
          record_error(st);
        }
        if (!failed) issue();
        // Last: once `completed` reaches `issued` the main thread may return.
        std::lock_guard lock(done_mu);
        completed++;
        done_cv.notify_one();
      });
    };
    for (uint32_t c = 0; c < o.concurrency; c++) issue();
    std::unique_lock lock(done_mu);
    done_cv.wait(lock, [&] { return completed == issued && (next >= o.ops || failed); });
  } else {
    std::vector<std::thread> threads;
    for (uint32_t t = 0; t < o.concurrency; t++) {
      threads.emplace_back([&, t] {
        auto& lat = latencies[t];
        lat.reserve(o.ops / o.concurrency + 1);
        for (;;) {
          uint64_t i = next.fetch_add(1);
          if (i >= o.ops || failed) break;
          std::string key = "bench:" + std::to_string(i);
          auto t0 = std::chrono::steady_clock::now();
          Status st = store.put(key, value);
          auto t1 = std::chrono::steady_clock::now();
          if (!st.is_ok()) {
            record_error(st);
            break;
          }
          lat.push_back(static_cast<uint64_t>(
              std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
          log_acked(key);
        }
      });
    }
    for (auto& th : threads) th.join();
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (acked_fd >= 0) ::close(acked_fd);
  if (failed) {
    std::cerr << "wavekv: bench write failed: " << first_error << "\n";
    return 1;
  }
  std::vector<uint64_t> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  StoreStatus st = store.status();
  Status closed = store.close();
  if (!closed.is_ok()) {
    std::cerr << "wavekv: " << closed.to_string() << "\n";
    return 1;
  }

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
  return 0;
}

}  // namespace wavekv::cli
