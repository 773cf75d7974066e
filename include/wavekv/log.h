// Logging: the library never writes to stderr itself; every log line of a
// node goes to a LogSink the embedder supplies (NodeConfig::log). Without
// one, lines go to stderr as logfmt.
#pragma once

#include <functional>
#include <string>
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

// Calls sink(record) if sink is set, else the default sink. Never throws.
void log(const LogSink& sink, LogLevel level, std::string component, std::string message,
         std::vector<LogField> fields = {});

}  // namespace wavekv
