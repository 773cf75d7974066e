// Logging: the library never writes to stderr itself; every log line of a
// node goes to a LogSink the embedder supplies (NodeConfig::log). Without
// one, lines go to stderr as logfmt.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wavekv {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

struct LogField {
  std::string key;
  std::string value;
};

struct LogRecord {
  LogLevel level;
  std::string component;  // "node", "filesync", ...
  std::string message;
  std::vector<LogField> fields;
};

// Called on whichever thread logs; it must be thread-safe and quick.
using LogSink = std::function<void(const LogRecord&)>;

// The default: one logfmt line per record on stderr,
//   ts=<ms> level=info component=node node=<id> msg="..." k=v ...
// (a `node` field comes right after the component, the others after msg;
// values with spaces, quotes, '=' or control characters are quoted and escaped).
LogSink logfmt_stderr_sink();

// The same records as one JSON object per line on stderr, keys in the same
// order: {"ts":<ms>,"level":"info","component":"node","node":"<id>",
// "msg":"...","k":"v",...}; every field value is a JSON string.
LogSink json_stderr_sink();

// Passes on to `sink` only records at `min` or above.
LogSink at_least(LogLevel min, LogSink sink);

// "debug", "info", "warn" or "error"; nullopt for anything else.
std::optional<LogLevel> parse_log_level(std::string_view name);
const char* log_level_name(LogLevel level);

// Calls sink(record) if sink is set, else the default sink. Never throws.
void log(const LogSink& sink, LogLevel level, std::string component, std::string message,
         std::vector<LogField> fields = {});

}  // namespace wavekv
