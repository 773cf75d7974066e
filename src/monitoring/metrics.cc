#include "monitoring/metrics.h"

#include <charconv>
#include <cmath>

namespace wavekv::monitoring {
namespace {

// [a-zA-Z_:][a-zA-Z0-9_:]* for metric names; no ':' in label names.
std::string sanitize_name(std::string_view name, bool allow_colon) {
  std::string out(name.empty() ? "_" : name);
  for (size_t i = 0; i < out.size(); ++i) {
    char c = out[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (allow_colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) out[i] = '_';
  }
  return out;
}

// Label values escape backslash, double quote and newline; HELP text only
// backslash and newline.
std::string escape(std::string_view s, bool quote) {
  std::string out;
  for (char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (c == '"' && quote)
      out += "\\\"";
    else
      out.push_back(c);
  }
  return out;
}

}  // namespace

MetricValue::MetricValue(double v) {
  if (std::isnan(v)) {
    text = "NaN";
  } else if (std::isinf(v)) {
    text = v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest exact form
    text.assign(buf, end);
  }
}
MetricValue::MetricValue(uint64_t v) : text(std::to_string(v)) {}
MetricValue::MetricValue(int64_t v) : text(std::to_string(v)) {}

void MetricsWriter::counter(std::string_view name, std::string_view help, MetricValue value,
                            const Labels& labels) {
  add("counter", name, help, value, labels);
}

void MetricsWriter::gauge(std::string_view name, std::string_view help, MetricValue value,
                          const Labels& labels) {
  add("gauge", name, help, value, labels);
}

void MetricsWriter::add(std::string_view type, std::string_view name, std::string_view help,
                        MetricValue value, const Labels& labels) {
  add_to(type, name, help, name, std::move(value), labels);
}

void MetricsWriter::add_to(std::string_view type, std::string_view family_name,
                           std::string_view help, std::string_view sample_name, MetricValue value,
                           const Labels& labels) {
  std::string clean = sanitize_name(family_name, true);
  Family* family = nullptr;
  for (auto& f : families_)
    if (f.name == clean) family = &f;
  if (!family) {
    families_.push_back({clean, escape(help, false), std::string(type), {}});
    family = &families_.back();
  }
  std::string line = sanitize_name(sample_name, true);
  if (!labels.empty()) {
    line += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i) line += ',';
      line += sanitize_name(labels[i].first, false);
      line += "=\"";
      line += escape(labels[i].second, true);
      line += '"';
    }
    line += '}';
  }
  line += ' ';
  line += value.text;
  family->samples.push_back(std::move(line));
}

void MetricsWriter::histogram(std::string_view name, std::string_view help,
                              const HistogramSnapshot& h, const Labels& labels) {
  const std::string bucket = std::string(name) + "_bucket";
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= h.bounds.size(); ++i) {
    cumulative += i < h.counts.size() ? h.counts[i] : 0;
    Labels with_le = labels;
    with_le.emplace_back("le", i < h.bounds.size() ? MetricValue(h.bounds[i]).text : "+Inf");
    add_to("histogram", name, help, bucket, cumulative, with_le);
  }
  add_to("histogram", name, help, std::string(name) + "_sum", h.sum, labels);
  add_to("histogram", name, help, std::string(name) + "_count", h.count, labels);
}

std::string MetricsWriter::text() const {
  std::string out;
  for (const auto& f : families_) {
    out += "# HELP " + f.name + " " + f.help + "\n";
    out += "# TYPE " + f.name + " " + f.type + "\n";
    for (const auto& s : f.samples) out += s + "\n";
  }
  return out;
}

}  // namespace wavekv::monitoring
