// `wavekv serve --config FILE`, `--print-config`, `--log-format` and
// `--log-level`, run as a user runs them.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "support/test_util.h"

namespace wavekv {
namespace {

class ConfigFile : public ::testing::Test {
 protected:
  std::string write(const std::string& text) {
    std::string path = dir_ + "/wavekv.toml";
    std::ofstream(path) << text;
    return path;
  }
  test::Outcome serve(const std::string& args) {
    return test::run_command(std::string(WAVEKV_BINARY) + " serve " + args);
  }
  // A config that binds every port to 0 (start_ready adds --ready-file).
  std::string node_config(const std::string& more) {
    return "data-dir = \"" + dir_ + "/data\"\nlisten = \"127.0.0.1:0\"\n" +
           "resp = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\n" + more;
  }
  test::ScratchDir scratch_{"wavekv-config"};
  const std::string dir_ = scratch_.path();
};

TEST_F(ConfigFile, ANodeStartsFromTheFileAndAFlagOverridesIt) {
  const std::string file = write(node_config("id = 7\nfanout = 2\n"));
  test::ReadyChild a =
      test::start_ready({WAVEKV_BINARY, "serve", "--config", file}, dir_ + "/ready", dir_ + "/log");
  ASSERT_TRUE(a.error.empty()) << a.error;
  EXPECT_EQ(a.node_id, 7u) << "the id came from the file";
  test::stop_child(a.pid, SIGTERM);

  std::filesystem::remove_all(dir_ + "/data");
  std::filesystem::remove(dir_ + "/ready");
  test::ReadyChild b = test::start_ready({WAVEKV_BINARY, "serve", "--config", file, "--id", "9"},
                                         dir_ + "/ready", dir_ + "/log");
  ASSERT_TRUE(b.error.empty()) << b.error;
  EXPECT_EQ(b.node_id, 9u) << "the flag overrides the file";
  test::stop_child(b.pid, SIGTERM);
}

TEST_F(ConfigFile, PrintConfigShowsFileFlagsAndDefaultsAndReadsBackTheSame) {
  const std::string file = write(
      "fanout = 2\npeers = [\"10.0.0.1:7400\", \"10.0.0.2:7400\"]\ninsecure = true\n"
      "durability = \"interval\"\n");
  test::Outcome out = serve("--config " + file + " --print-config --sync-interval-ms 250");
  ASSERT_EQ(out.exit_code, 0) << out.out;
  EXPECT_NE(out.out.find("\nfanout = 2\n"), std::string::npos) << out.out;
  EXPECT_NE(out.out.find("\npeers = ['10.0.0.1:7400', '10.0.0.2:7400']\n"), std::string::npos);
  EXPECT_NE(out.out.find("\ninsecure = true\n"), std::string::npos);
  EXPECT_NE(out.out.find("\ndurability = 'interval'\n"), std::string::npos);
  EXPECT_NE(out.out.find("\nsync-interval-ms = 250\n"), std::string::npos) << "the flag";
  EXPECT_NE(out.out.find("\nmax-clock-offset-ms = 500\n"), std::string::npos) << "a default";
  EXPECT_NE(out.out.find("\n# id = (not set)\n"), std::string::npos);
  EXPECT_EQ(out.out.find("help"), std::string::npos) << "not a setting";
  EXPECT_EQ(out.out.find("print-config"), std::string::npos);

  // What it prints is a config file that gives the same settings.
  const std::string printed = write(out.out);
  test::Outcome again = serve("--config " + printed + " --print-config");
  ASSERT_EQ(again.exit_code, 0) << again.out;
  EXPECT_EQ(again.out, out.out);

  // So does the print of the defaults alone (`peers = []` among them).
  test::Outcome defaults = serve("--print-config");
  ASSERT_EQ(defaults.exit_code, 0) << defaults.out;
  EXPECT_NE(defaults.out.find("\npeers = []\n"), std::string::npos) << defaults.out;
  test::Outcome reread = serve("--config " + write(defaults.out) + " --print-config");
  ASSERT_EQ(reread.exit_code, 0) << reread.out;
  EXPECT_EQ(reread.out, defaults.out);
}

TEST_F(ConfigFile, AnUnknownKeyABadValueOrBadSyntaxIsRefusedWithTheFileAndLine) {
  std::string file = write("fanout = 2\n\nfan-out = 3\n");
  test::Outcome out = serve("--config " + file + " --print-config");
  EXPECT_NE(out.exit_code, 0);
  EXPECT_NE(out.out.find(file + ":3: unknown key 'fan-out' (serve has no --fan-out)"),
            std::string::npos)
      << out.out;

  file = write("fanout = 2\nprint-config = true\n");
  out = serve("--config " + file + " --print-config");
  EXPECT_NE(out.exit_code, 0);
  EXPECT_NE(out.out.find(file + ":2: unknown key 'print-config'"), std::string::npos) << out.out;

  file = write("fanout = 65\n");  // the limit is 64
  out = serve("--config " + file + " --print-config");
  EXPECT_NE(out.exit_code, 0);
  EXPECT_NE(out.out.find(file + ":1: --fanout: Value 65 not in range 1 to 64"), std::string::npos)
      << out.out;
  file = write("fanout = 64\n");
  EXPECT_EQ(serve("--config " + file + " --print-config").exit_code, 0) << "exactly at the limit";

  file = write("durability = \"sometimes\"\n");
  out = serve("--config " + file + " --print-config");
  EXPECT_NE(out.exit_code, 0);
  EXPECT_NE(out.out.find(file + ":1: --durability: sometimes not in"), std::string::npos)
      << out.out;

  file = write("fanout = 2\ndata-dir = \"unterminated\n");
  out = serve("--config " + file + " --print-config");
  EXPECT_NE(out.exit_code, 0);
  EXPECT_NE(out.out.find(file + ":2: "), std::string::npos) << out.out;

  file = write("[serve]\nfanout = 2\n");
  out = serve("--config " + file + " --print-config");
  EXPECT_NE(out.exit_code, 0);
  EXPECT_NE(out.out.find(file + ":1: unknown key 'serve'"), std::string::npos) << out.out;

  out = serve("--config " + dir_ + "/missing.toml --print-config");
  EXPECT_NE(out.exit_code, 0);
  EXPECT_NE(out.out.find(dir_ + "/missing.toml"), std::string::npos) << out.out;
}

// What a node logs, in the format and from the level the flags (or the
// file) ask for. Only "listening ..." (stdout) is not a log record.
TEST_F(ConfigFile, ServeLogsJsonOrLogfmtFromTheLevelAsked) {
  auto run_node = [&](const std::string& flags) {
    std::filesystem::remove_all(dir_ + "/data");
    std::filesystem::remove(dir_ + "/log");
    const std::string file = write(node_config(flags));
    test::ReadyChild c = test::start_ready({WAVEKV_BINARY, "serve", "--config", file},
                                           dir_ + "/ready", dir_ + "/log");
    EXPECT_TRUE(c.error.empty()) << c.error;
    test::stop_child(c.pid, SIGTERM);
    std::ifstream in(dir_ + "/log");
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);)
      if (!line.starts_with("listening ")) lines.push_back(line);
    return lines;
  };
  std::vector<std::string> json = run_node("log-format = \"json\"\n");
  ASSERT_GE(json.size(), 2u) << "started and stopped";
  bool started = false;
  for (const auto& line : json) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON: " << line;
    EXPECT_TRUE(j.contains("node")) << line;
    if (j.value("msg", "") == "node started") started = j.value("level", "") == "info";
  }
  EXPECT_TRUE(started);

  std::vector<std::string> logfmt = run_node("");
  ASSERT_FALSE(logfmt.empty());
  EXPECT_TRUE(logfmt.front().starts_with("ts=")) << logfmt.front();
  EXPECT_NE(logfmt.front().find(" level=info "), std::string::npos) << logfmt.front();

  std::vector<std::string> warn = run_node("log-level = \"warn\"\n");
  for (const auto& line : warn) EXPECT_EQ(line.find("level=info"), std::string::npos) << line;
  EXPECT_LT(warn.size(), logfmt.size()) << "the info records are gone";
}

}  // namespace
}  // namespace wavekv
