// How the filesync code reports: every log line and every progress line goes
// through one function of the mirror (MirrorImpl::log), handed to the parts
// as a Logger: log lines to the node's LogSink (wavekv/log.h), progress lines
// to MirrorConfig::progress.
#pragma once

#include <functional>
#include <string>

namespace wavekv::filesync {

// The public wavekv::LogLevel's values, plus kProgress: a line for a
// terminal, handed on as it is ("\r" and all), not as a log record.
enum class LogLevel { kDebug, kInfo, kWarn, kError, kProgress };

using Logger = std::function<void(LogLevel, const std::string&)>;

}  // namespace wavekv::filesync
