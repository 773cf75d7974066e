// Distributions for /metrics (Prometheus histograms): fixed bucket bounds,
// recorded without a lock from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace wavekv {

// What a Histogram holds at one moment. counts[i] is the number of values
// in bucket i: at most bounds[i] and above bounds[i - 1]; the last count,
// counts[bounds.size()], is of values above every bound. Not cumulative
// (Prometheus's `le` buckets are; the writer sums them).
struct HistogramSnapshot {
  std::vector<double> bounds;
  std::vector<uint64_t> counts;
  double sum = 0;
  uint64_t count = 0;
};

class Histogram {
 public:
  // `bounds` ascending.
  explicit Histogram(std::vector<double> bounds);
  void record(double value);
  // Bucket counts, sum and count are read one after another: under
  // concurrent records they may disagree by the records in flight.
  HistogramSnapshot snapshot() const;

  // 50 µs to 1 s: fsync and write latencies, in seconds.
  static std::vector<double> latency_seconds_bounds();
  // 1, 2, 4, ... 1024: how many requests one group commit carried.
  static std::vector<double> size_bounds();

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

}  // namespace wavekv
