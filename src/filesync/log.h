// How the filesync code reports: every log line and every progress line goes
// through one function of the mirror (MirrorImpl::log), handed to the parts
// as a Logger, so that moving to the node's log sink is a one-place change.
#pragma once

#include <functional>
#include <string>

namespace wavekv::filesync {

// The public wavekv::LogLevel's values, plus kProgress: a line for a
// terminal, written as it is ("\r" and all), not as a logfmt record.
enum class LogLevel { kDebug, kInfo, kWarn, kError, kProgress };

using Logger = std::function<void(LogLevel, const std::string&)>;

}  // namespace wavekv::filesync
