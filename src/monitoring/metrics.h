// A small writer of the Prometheus text exposition format (version 0.0.4).
// What a node writes into it comes from one table (monitoring/node_status.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "wavekv/histogram.h"

namespace wavekv::monitoring {

// A sample value, formatted when made: 64-bit integers keep every digit
// (a double would round seqs and LSNs past 2^53).
struct MetricValue {
  MetricValue(double v);                                              // NOLINT: implicit by design
  MetricValue(uint64_t v);                                            // NOLINT
  MetricValue(int64_t v);                                             // NOLINT
  MetricValue(unsigned v) : MetricValue(static_cast<uint64_t>(v)) {}  // NOLINT
  MetricValue(int v) : MetricValue(static_cast<int64_t>(v)) {}        // NOLINT
  std::string text;
};

class MetricsWriter {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  // Adds one sample. Samples of a family may come in any order; text() groups
  // them under one HELP and TYPE line (the first help and type given win).
  // Names and label names are made valid by turning other characters into '_';
  // label values are escaped.
  void counter(std::string_view name, std::string_view help, MetricValue value,
               const Labels& labels = {});
  void gauge(std::string_view name, std::string_view help, MetricValue value,
             const Labels& labels = {});

  // A histogram family: `name`_bucket{le="..."} (cumulative, then +Inf),
  // `name`_sum and `name`_count.
  void histogram(std::string_view name, std::string_view help, const HistogramSnapshot& h,
                 const Labels& labels = {});

  // The exposition, families in the order first seen.
  std::string text() const;

 private:
  struct Family {
    std::string name, help, type;
    std::vector<std::string> samples;  // complete lines without the newline
  };
  void add(std::string_view type, std::string_view name, std::string_view help, MetricValue value,
           const Labels& labels);
  // One sample line under family `family` (a histogram's _bucket, _sum, _count).
  void add_to(std::string_view type, std::string_view family, std::string_view help,
              std::string_view sample_name, MetricValue value, const Labels& labels);
  std::vector<Family> families_;
};

// The content type of text().
inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace wavekv::monitoring
