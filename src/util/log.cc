#include "wavekv/log.h"

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace wavekv {
namespace {

bool needs_quotes(const std::string& v) {
  if (v.empty()) return true;
  for (unsigned char c : v)
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return true;
  return false;
}

// A logfmt value: bare when it can be, else in double quotes with backslash,
// quote and control characters escaped, so one record is always one line.
void append_value(std::string& out, const std::string& v, bool always_quote) {
  if (!always_quote && !needs_quotes(v)) {
    out += v;
    return;
  }
  out += '"';
  for (unsigned char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < ' ' || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

// Keys come from code, but a stray space or '=' would break the line's shape.
void append_key(std::string& out, const std::string& k) {
  if (k.empty()) {
    out += '_';
    return;
  }
  for (unsigned char c : k) out += (c <= ' ' || c == '"' || c == '=' || c == 0x7f) ? '_' : c;
}

void append_field(std::string& out, const LogField& f) {
  out += ' ';
  append_key(out, f.key);
  out += '=';
  append_value(out, f.value, false);
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string logfmt_line(const LogRecord& r) {
  std::string out = "ts=" + std::to_string(now_ms()) + " level=" + log_level_name(r.level);
  append_field(out, {"component", r.component});
  // The node id first, so the lines of one node in a shared log line up.
  for (const auto& f : r.fields)
    if (f.key == "node") append_field(out, f);
  out += " msg=";
  append_value(out, r.message, true);
  for (const auto& f : r.fields)
    if (f.key != "node") append_field(out, f);
  out += '\n';
  return out;
}

// One JSON object; ordered_json keeps the logfmt line's key order. Bytes
// that are not UTF-8 are replaced, so a line always parses.
std::string json_line(const LogRecord& r) {
  nlohmann::ordered_json j;
  j["ts"] = now_ms();
  j["level"] = log_level_name(r.level);
  j["component"] = r.component;
  for (const auto& f : r.fields)
    if (f.key == "node") j["node"] = f.value;
  j["msg"] = r.message;
  for (const auto& f : r.fields)
    if (f.key != "node" && !j.contains(f.key)) j[f.key] = f.value;
  std::string out = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  out += '\n';
  return out;
}

void write_stderr(const std::string& line) {
  // One fwrite per line: stdio locks the stream, so lines never interleave.
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace

const char* log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "info";
}

std::optional<LogLevel> parse_log_level(std::string_view name) {
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError})
    if (name == log_level_name(l)) return l;
  return std::nullopt;
}

LogSink json_stderr_sink() {
  return [](const LogRecord& r) { write_stderr(json_line(r)); };
}

LogSink at_least(LogLevel min, LogSink sink) {
  return [min, sink = std::move(sink)](const LogRecord& r) {
    if (r.level >= min) sink(r);
  };
}

LogSink logfmt_stderr_sink() {
  return [](const LogRecord& r) { write_stderr(logfmt_line(r)); };
}

void log(const LogSink& sink, LogLevel level, std::string component, std::string message,
         std::vector<LogField> fields) {
  try {
    LogRecord record{level, std::move(component), std::move(message), std::move(fields)};
    if (sink) {
      sink(record);
    } else {
      static const LogSink fallback = logfmt_stderr_sink();
      fallback(record);
    }
  } catch (...) {
    // A log line is never worth failing the caller for.
  }
}

}  // namespace wavekv
