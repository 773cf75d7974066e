// The log sink (include/wavekv/log.h): the default logfmt line and its
// quoting, and a sink that throws.
#include "wavekv/log.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

namespace wavekv {
namespace {

std::string logged_line(const std::string& message, std::vector<LogField> fields) {
  testing::internal::CaptureStderr();
  log(nullptr, LogLevel::kWarn, "node", message, std::move(fields));
  return testing::internal::GetCapturedStderr();
}

TEST(Log, DefaultSinkWritesOneLogfmtLineWithTheNodeFirst) {
  std::string line = logged_line("node started", {{"peer", "127.0.0.1:7400"}, {"node", "3"}});
  ASSERT_TRUE(line.starts_with("ts=")) << line;
  EXPECT_NE(line.find(" level=warn component=node node=3 msg=\"node started\" "
                      "peer=127.0.0.1:7400\n"),
            std::string::npos)
      << line;
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line";
}

TEST(Log, ValuesThatWouldBreakTheLineAreQuotedAndEscaped) {
  std::string line = logged_line(
      "say \"hi\"\nthen go",
      {{"path", "a b"}, {"empty", ""}, {"eq", "k=v"}, {"quote", "x\"y\\z"}, {"tab key", "\t\x01"}});
  EXPECT_NE(line.find(" msg=\"say \\\"hi\\\"\\nthen go\""), std::string::npos) << line;
  EXPECT_NE(line.find(" path=\"a b\""), std::string::npos) << line;
  EXPECT_NE(line.find(" empty=\"\""), std::string::npos) << line;
  EXPECT_NE(line.find(" eq=\"k=v\""), std::string::npos) << line;
  EXPECT_NE(line.find(" quote=\"x\\\"y\\\\z\""), std::string::npos) << line;
  EXPECT_NE(line.find(" tab_key=\"\\t\\x01\""), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line: " << line;
}

TEST(Log, AGivenSinkGetsTheRecordAndMayThrow) {
  LogRecord got{};
  LogSink sink = [&](const LogRecord& r) {
    got = r;
    throw std::runtime_error("sink broken");
  };
  EXPECT_NO_THROW(log(sink, LogLevel::kError, "filesync", "m", {{"k", "v"}}));
  EXPECT_EQ(got.level, LogLevel::kError);
  EXPECT_EQ(got.component, "filesync");
  EXPECT_EQ(got.message, "m");
  ASSERT_EQ(got.fields.size(), 1u);
  EXPECT_EQ(got.fields[0].value, "v");
}

TEST(Log, JsonSinkWritesOneObjectPerLineInTheLogfmtOrder) {
  LogSink sink = json_stderr_sink();
  testing::internal::CaptureStderr();
  log(sink, LogLevel::kInfo, "node", "say \"hi\"\nthen go",
      {{"peer", "127.0.0.1:7400"},
       {"node", "3"},
       {"bad", "\xff\x01"},
       {"msg", "a field named msg"}});
  std::string line = testing::internal::GetCapturedStderr();
  ASSERT_EQ(line.find('\n'), line.size() - 1) << "one line: " << line;
  auto j = nlohmann::ordered_json::parse(line);
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  EXPECT_EQ(keys,
            (std::vector<std::string>{"ts", "level", "component", "node", "msg", "peer", "bad"}));
  EXPECT_TRUE(j["ts"].is_number());
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["node"], "3");
  EXPECT_EQ(j["msg"], "say \"hi\"\nthen go") << "the message, not the field of that name";
  EXPECT_EQ(j["bad"], "\xef\xbf\xbd\x01") << "a byte that is not UTF-8 is replaced";
}

TEST(Log, AtLeastPassesTheLevelAndAboveOnly) {
  std::vector<LogLevel> got;
  LogSink sink = at_least(LogLevel::kWarn, [&](const LogRecord& r) { got.push_back(r.level); });
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError})
    log(sink, l, "node", "m");
  EXPECT_EQ(got, (std::vector<LogLevel>{LogLevel::kWarn, LogLevel::kError}));
  EXPECT_EQ(parse_log_level("warn"), LogLevel::kWarn);
  EXPECT_EQ(parse_log_level("debug"), LogLevel::kDebug);
  EXPECT_EQ(parse_log_level("WARN"), std::nullopt);
  EXPECT_EQ(parse_log_level("warning"), std::nullopt);
}

}  // namespace
}  // namespace wavekv
