// The `wavekv` program as a user runs it: outputs, exit codes, clear errors.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "support/store_harness.h"
#include "support/test_util.h"
#include "wavekv/store.h"

namespace wavekv {
namespace {

using test::Outcome;

uint64_t wall_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

Outcome run(const std::string& args) {
  return test::run_command(std::string(WAVEKV_BINARY) + " " + args);
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "wavekv-cli-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string db() const { return "--data-dir " + dir_ + "/db"; }
  std::string dir_;
};

TEST_F(Cli, PutGetDelScanRoundTrip) {
  EXPECT_EQ(run("put " + db() + " user:1 alice").exit_code, 0);
  EXPECT_EQ(run("put " + db() + " user:2 bob").exit_code, 0);
  EXPECT_EQ(run("put " + db() + " other x").exit_code, 0);
  Outcome g = run("get " + db() + " user:1");
  EXPECT_EQ(g.exit_code, 0);
  EXPECT_EQ(g.out, "alice\n");
  EXPECT_EQ(run("del " + db() + " user:2").exit_code, 0);
  Outcome s = run("scan " + db() + " user:");
  EXPECT_EQ(s.exit_code, 0);
  EXPECT_EQ(s.out, "user:1\talice\n") << "scan must list only live keys under the prefix";
}

TEST_F(Cli, PutWithTtlMsOnADataDirectoryWritesTheExpiry) {
  const uint64_t before = wall_ms();
  EXPECT_EQ(run("put --ttl-ms 60000 " + db() + " session token").exit_code, 0);
  const uint64_t after = wall_ms();
  Outcome big = run("put --ttl-ms 18446744073709551615 " + db() + " k v");
  EXPECT_EQ(big.exit_code, 2);
  EXPECT_NE(big.out.find("--ttl-ms is too large"), std::string::npos) << big.out;
  Config c;
  c.data_dir = dir_ + "/db";
  auto s = Store::open(c);
  ASSERT_TRUE(s) << s.status().to_string();
  auto e = (*s)->get_entry("session");
  ASSERT_TRUE(e.has_value());
  EXPECT_GE(e->expires_ms, before + 60000);
  EXPECT_LE(e->expires_ms, after + 60000);
  EXPECT_EQ(test::value_of(**s, "session"), "token");
  EXPECT_FALSE((*s)->get_entry("k").has_value()) << "the refused put wrote nothing";
}

TEST_F(Cli, GetOfAbsentKeyExitsOneWithMessage) {
  ASSERT_EQ(run("put " + db() + " a 1").exit_code, 0);
  Outcome g = run("get " + db() + " missing");
  EXPECT_EQ(g.exit_code, 1);
  EXPECT_NE(g.out.find("not found"), std::string::npos) << g.out;
}

TEST_F(Cli, ScanEscapesNonPrintableBytes) {
  // popen runs /bin/sh (dash): printf with octal escapes makes the bytes.
  ASSERT_EQ(run("put " + db() + " \"$(printf 'k\\tx')\" \"$(printf 'v\\001z')\"").exit_code, 0);
  Outcome s = run("scan " + db());
  EXPECT_EQ(s.out, "k\\tx\tv\\x01z\n");
}

TEST_F(Cli, MissingDirectoryIsAClearError) {
  Outcome g = run("get --data-dir " + dir_ + "/nope key");
  EXPECT_EQ(g.exit_code, 2);
  EXPECT_NE(g.out.find("does not exist"), std::string::npos) << g.out;
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/nope")) << "a read must not create the directory";
}

TEST_F(Cli, UnknownFlagIsRefused) {
  Outcome r = run("get " + db() + " --frobnicate key");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("frobnicate"), std::string::npos) << r.out;
}

TEST_F(Cli, LockedDataDirectoryIsRefused) {
  Config c;
  c.data_dir = dir_ + "/db";
  auto held = Store::open(c);
  ASSERT_TRUE(held) << held.status().to_string();
  Outcome g = run("put " + db() + " k v");
  EXPECT_EQ(g.exit_code, 2);
  EXPECT_NE(g.out.find("locked"), std::string::npos) << g.out;
  Outcome ch = run("check " + db());
  EXPECT_NE(ch.exit_code, 0);
  EXPECT_NE(ch.out.find("locked"), std::string::npos) << ch.out;
}

TEST_F(Cli, CheckReportsAndRepairsATornTail) {
  ASSERT_EQ(run("put " + db() + " a 1").exit_code, 0);
  ASSERT_EQ(run("put " + db() + " b 2").exit_code, 0);
  // Garbage right after the last record, inside the preallocated zeros.
  std::string wal;
  for (auto& e : std::filesystem::directory_iterator(dir_ + "/db"))
    if (e.path().extension() == ".log") wal = e.path();
  ASSERT_FALSE(wal.empty());
  Outcome before = run("check " + db());
  ASSERT_NE(before.out.find("status: ok"), std::string::npos) << before.out;
  FILE* f = std::fopen(wal.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  // Walk the record lengths (docs/FORMAT.md) to the end of the records.
  std::string data(4096, '\0');
  ASSERT_EQ(std::fread(data.data(), 1, data.size(), f), data.size());
  size_t end = 40;
  for (uint32_t len; std::memcpy(&len, data.data() + end, 4), len != 0;) end += 8 + len;
  ASSERT_GT(end, 40u);
  std::fseek(f, static_cast<long>(end), SEEK_SET);
  std::fputs("\x05garbage", f);
  std::fclose(f);

  Outcome c = run("check " + db());
  EXPECT_EQ(c.exit_code, 0) << c.out;
  EXPECT_NE(c.out.find("wal damage"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("repairable"), std::string::npos) << c.out;
  Outcome r = run("check --repair " + db());
  EXPECT_NE(r.out.find("status: repaired"), std::string::npos) << r.out;
  Outcome after = run("check " + db());
  EXPECT_NE(after.out.find("status: ok"), std::string::npos) << after.out;
  EXPECT_EQ(run("get " + db() + " b").out, "2\n");
}

TEST_F(Cli, CorruptionBeforeIntactRecordsRefusesEveryOpenUntilCheckRepairCutsIt) {
  for (const char* k : {"a", "b", "c"}) ASSERT_EQ(run("put " + db() + " " + k + " 1").exit_code, 0);
  std::string wal;
  for (auto& e : std::filesystem::directory_iterator(dir_ + "/db"))
    if (e.path().extension() == ".log") wal = e.path();
  ASSERT_FALSE(wal.empty());
  // The first record's last byte (its value): a bit flip with two intact
  // records after it.
  std::string data;
  {
    std::ifstream in(wal, std::ios::binary);
    data.assign(std::istreambuf_iterator<char>(in), {});
  }
  uint32_t len = 0;
  std::memcpy(&len, data.data() + 40, 4);
  data[40 + 8 + len - 1] ^= 0x01;
  {
    std::ofstream out(wal, std::ios::binary | std::ios::trunc);
    out << data;
  }

  Outcome c = run("check " + db());
  EXPECT_EQ(c.exit_code, 1) << c.out;
  EXPECT_NE(c.out.find("not a torn tail"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("intact records a repair cuts: 2"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("status: corrupt"), std::string::npos) << c.out;
  Outcome get = run("get " + db() + " c");
  EXPECT_NE(get.exit_code, 0) << "the store opened past the corruption";
  EXPECT_NE(get.out.find("wavekv check --repair"), std::string::npos) << get.out;

  Outcome r = run("check --repair " + db());
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("status: repaired"), std::string::npos) << r.out;
  EXPECT_TRUE(std::filesystem::exists(wal + ".damaged")) << "the cut segment is kept";
  EXPECT_NE(run("check " + db()).out.find("status: ok"), std::string::npos);
  EXPECT_NE(run("get " + db() + " c").exit_code, 0) << "c was cut with the records before it";
  EXPECT_EQ(run("put " + db() + " d 4").exit_code, 0);
  EXPECT_EQ(run("get " + db() + " d").out, "4\n");
}

}  // namespace
}  // namespace wavekv
