// The log flags `wavekv serve` and `filesync run` share: one line per record
// on stderr (include/wavekv/log.h), in the format and from the level asked.
//
//   --log-level debug|info|warn|error   records at this level and above (info)
//   --log-format logfmt|json            k=v pairs, or one JSON object (logfmt)
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "wavekv/log.h"

namespace wavekv::cli {

struct LogFlags {
  std::string level = "info";
  std::string format = "logfmt";
};

inline void add_log_flags(CLI::App& cmd, LogFlags& f) {
  cmd.add_option("--log-level", f.level, "Log records at this level and above")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();
  cmd.add_option("--log-format", f.format,
                 "One line per record on stderr: logfmt (k=v) or json (an object)")
      ->check(CLI::IsMember({"logfmt", "json"}))
      ->capture_default_str();
}

inline LogSink log_sink(const LogFlags& f) {
  return at_least(parse_log_level(f.level).value_or(LogLevel::kInfo),
                  f.format == "json" ? json_stderr_sink() : logfmt_stderr_sink());
}

}  // namespace wavekv::cli
