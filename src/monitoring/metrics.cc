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
  std::string clean = sanitize_name(name, true);
  Family* family = nullptr;
  for (auto& f : families_)
    if (f.name == clean) family = &f;
  if (!family) {
    families_.push_back({clean, escape(help, false), std::string(type), {}});
    family = &families_.back();
  }
  std::string line = clean;
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

std::string MetricsWriter::text() const {
  std::string out;
  for (const auto& f : families_) {
    out += "# HELP " + f.name + " " + f.help + "\n";
    out += "# TYPE " + f.name + " " + f.type + "\n";
    for (const auto& s : f.samples) out += s + "\n";
  }
  return out;
}

void write_store_metrics(const StoreStatus& s, MetricsWriter& out) {
  auto d = [](uint64_t v) { return v; };
  out.gauge("wavekv_node_info", "This node's id and incarnation (value always 1).", 1,
            {{"node", std::to_string(s.node_id)}, {"incarnation", std::to_string(s.incarnation)}});
  out.gauge("wavekv_live_keys", "Keys with a live value.", d(s.live_keys));
  out.gauge("wavekv_tombstones", "Deleted keys whose tombstone is still kept.", d(s.tombstones));
  out.gauge("wavekv_data_bytes", "Bytes of keys and values of live entries.", d(s.data_bytes));
  out.gauge("wavekv_next_seq", "The seq this node's next write gets.", d(s.next_seq));
  out.gauge("wavekv_wal_last_lsn", "The newest WAL record written.", d(s.last_lsn));
  out.gauge("wavekv_wal_durable_lsn", "The newest WAL record known to be fsynced.",
            d(s.durable_lsn));
  out.gauge("wavekv_wal_segments", "Live WAL segment files.", d(s.wal_segments));
  out.gauge("wavekv_wal_bytes", "Bytes of records in the live WAL segments.", d(s.wal_bytes));
  out.counter("wavekv_writes_total", "Write calls committed since open.", d(s.writes));
  out.counter("wavekv_group_commits_total", "Group commits (WAL appends) since open.",
              d(s.group_commits));
  out.counter("wavekv_fsyncs_total", "WAL fsyncs since open.", d(s.fsyncs));
  out.counter("wavekv_checkpoints_total", "Checkpoints taken since open.", d(s.checkpoints));
  out.gauge("wavekv_checkpoint_lsn", "The WAL position the newest checkpoint covers.",
            d(s.checkpoint_lsn));
  out.gauge("wavekv_snapshot_bytes", "Bytes of the newest snapshot.", d(s.snapshot_bytes));
  out.gauge("wavekv_wal_bytes_since_checkpoint", "WAL bytes written since the last checkpoint.",
            d(s.wal_bytes_since_checkpoint));
  out.gauge("wavekv_ops_since_checkpoint", "Ops written since the last checkpoint.",
            d(s.ops_since_checkpoint));
}

}  // namespace wavekv::monitoring
