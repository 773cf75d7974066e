// The RESP request parser, the reply encoders and the glob matcher: pure
// functions, tested byte by byte.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "resp/glob.h"
#include "resp/protocol.h"

namespace wavekv::resp {
namespace {

using Kind = Request::Kind;

// What a parser yields, flattened for comparison: "C:arg|arg", "E:msg", "F:msg".
std::vector<std::string> drain(RequestParser& p) {
  std::vector<std::string> out;
  while (auto r = p.next()) {
    if (r->kind == Kind::kCommand) {
      std::string s = "C:";
      for (size_t i = 0; i < r->args.size(); ++i) s += (i ? "|" : "") + r->args[i];
      out.push_back(s);
    } else {
      out.push_back((r->kind == Kind::kError ? "E:" : "F:") + r->error);
      if (r->kind == Kind::kFatal) break;  // it repeats forever
    }
  }
  return out;
}

std::vector<std::string> parse_all(std::string_view bytes, RequestLimits limits = {}) {
  RequestParser p(limits);
  p.feed(bytes);
  return drain(p);
}

std::string bulk_cmd(const std::vector<std::string>& args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return s;
}

const std::string kBinary = std::string("a\0b\r\nc\n", 7);

// A pipeline mixing arrays, inline commands, binary data, empty arguments,
// ignored empty requests and blank lines.
std::string pipeline() {
  return bulk_cmd({"SET", "k", kBinary}) + "PING\r\n" + bulk_cmd({"GET", ""}) + "*0\r\n" + "\r\n" +
         "ECHO \"two words\" 'x'\n" + "*-1\r\n" + bulk_cmd({"MGET", "a", "b", "c"});
}

const std::vector<std::string> kPipelineCommands = {"C:SET|k|" + kBinary, "C:PING", "C:GET|",
                                                    "C:ECHO|two words|x", "C:MGET|a|b|c"};

TEST(RespParser, ParsesAPipelineInOneFeed) { EXPECT_EQ(parse_all(pipeline()), kPipelineCommands); }

TEST(RespParser, EveryTruncationPointYieldsTheSameCommands) {
  const std::string all = pipeline();
  for (size_t cut = 0; cut <= all.size(); ++cut) {
    RequestParser p;
    p.feed(std::string_view(all).substr(0, cut));
    auto got = drain(p);
    p.feed(std::string_view(all).substr(cut));
    auto rest = drain(p);
    got.insert(got.end(), rest.begin(), rest.end());
    EXPECT_EQ(got, kPipelineCommands) << "split at byte " << cut;
    EXPECT_EQ(p.buffered_bytes(), 0u);
  }
}

TEST(RespParser, ByteAtATimeYieldsTheSameCommands) {
  RequestParser p;
  std::vector<std::string> got;
  for (char c : pipeline()) {
    p.feed(std::string_view(&c, 1));
    auto some = drain(p);
    got.insert(got.end(), some.begin(), some.end());
  }
  EXPECT_EQ(got, kPipelineCommands);
}

TEST(RespParser, InlineQuoting) {
  EXPECT_EQ(parse_all("SET k \"a\\x41\\n\\\"b\" 'it\\'s'\r\n"),
            std::vector<std::string>{"C:SET|k|aA\n\"b|it's"});
  EXPECT_EQ(parse_all("  GET   k  \n"), std::vector<std::string>{"C:GET|k"});
  EXPECT_EQ(parse_all("SET k \"\"\n"), std::vector<std::string>{"C:SET|k|"});
  // Unbalanced quotes: an error for that line, then the next line parses.
  EXPECT_EQ(
      parse_all("SET k \"abc\nPING\n"),
      (std::vector<std::string>{"E:ERR Protocol error: unbalanced quotes in request", "C:PING"}));
  EXPECT_EQ(
      parse_all("SET k \"a\"b\nPING\n"),
      (std::vector<std::string>{"E:ERR Protocol error: unbalanced quotes in request", "C:PING"}));
}

TEST(RespParser, SplitInline) {
  EXPECT_EQ(split_inline(""), std::vector<std::string>{});
  EXPECT_EQ(split_inline("a b"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(split_inline("'a b' \"c\\td\""), (std::vector<std::string>{"a b", "c\td"}));
  EXPECT_FALSE(split_inline("'abc").has_value());
}

TEST(RespParser, BulkAtTheLimitPassesOneOverIsRefusedAndSkipped) {
  RequestLimits limits;
  limits.max_bulk_bytes = 10;
  EXPECT_EQ(parse_all(bulk_cmd({"SET", "k", std::string(10, 'v')}), limits),
            std::vector<std::string>{"C:SET|k|" + std::string(10, 'v')});
  auto got = parse_all(bulk_cmd({"SET", "k", std::string(11, 'v')}) + bulk_cmd({"PING"}), limits);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].substr(0, 2), "E:");
  EXPECT_NE(got[0].find("exceeds the limit of 10"), std::string::npos) << got[0];
  EXPECT_EQ(got[1], "C:PING");
}

TEST(RespParser, OversizedBulkIsSkippedWithoutBeingBuffered) {
  RequestLimits limits;
  limits.max_bulk_bytes = 1024;
  RequestParser p(limits);
  const uint64_t declared = 10'000'000;
  p.feed("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + std::to_string(declared) + "\r\n");
  EXPECT_FALSE(p.next().has_value());
  std::string chunk(64 * 1024, 'x');
  uint64_t sent = 0;
  while (sent + chunk.size() <= declared) {
    p.feed(chunk);
    sent += chunk.size();
    EXPECT_FALSE(p.next().has_value());
    ASSERT_LE(p.buffered_bytes(), 64u * 1024) << "skipped bytes were buffered";
  }
  p.feed(std::string(declared - sent, 'x') + "\r\n" + bulk_cmd({"GET", "k"}));
  auto got = drain(p);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].substr(0, 2), "E:");
  EXPECT_EQ(got[1], "C:GET|k");
}

// A length line is a claim, not memory owed: the buffer grows as the bytes
// arrive, and a maximal value ends up in a buffer of its size, not twice it
// (std::string's doubling took 128 MiB for a 64 MiB value).
TEST(RespParser, BufferGrowsOnlyAsBytesArriveAndNotPastTheValue) {
  constexpr size_t kValue = 64 * 1024 * 1024;
  RequestParser p;
  p.feed("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + std::to_string(kValue) + "\r\n0123456789");
  EXPECT_FALSE(p.next().has_value());
  EXPECT_TRUE(p.in_request());
  EXPECT_LE(p.memory_bytes(), 128u * 1024) << "a header reserved what it announced";
  const std::string chunk(64 * 1024, 'v');
  size_t sent = 10;
  while (sent + chunk.size() <= kValue) {
    ASSERT_LE(p.memory_bound_after_feed(chunk.size()), 3 * (sent + chunk.size()) + 256 * 1024);
    p.feed(chunk);
    sent += chunk.size();
    ASSERT_LE(p.memory_bytes(), 2 * sent + 128 * 1024) << sent;
    ASSERT_FALSE(p.next().has_value());
  }
  p.feed(std::string(kValue - sent, 'v') + "\r\n");
  EXPECT_LE(p.memory_bytes(), kValue + 128 * 1024) << "not twice the value";
  auto r = p.next();
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->args.size(), 3u);
  EXPECT_EQ(r->args[2].size(), kValue);
  EXPECT_EQ(r->args[2].substr(0, 12), "0123456789vv");
  EXPECT_LE(r->args[2].capacity(), kValue + 128 * 1024)
      << "moved out, not copied into a larger one";
  p.shrink();
  EXPECT_LE(p.memory_bytes(), 64u * 1024);
  EXPECT_FALSE(p.in_request());
}

TEST(RespParser, ArrayElementsAtTheLimitPassOneOverIsRefused) {
  RequestLimits limits;
  limits.max_array_elements = 3;
  EXPECT_EQ(parse_all(bulk_cmd({"MGET", "a", "b"}), limits),
            std::vector<std::string>{"C:MGET|a|b"});
  auto got = parse_all(bulk_cmd({"MGET", "a", "b", "c"}) + "PING\r\n", limits);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_NE(got[0].find("E:ERR Protocol error: request of 4 arguments exceeds the limit of 3"),
            std::string::npos)
      << got[0];
  EXPECT_EQ(got[1], "C:PING");
}

TEST(RespParser, RequestBytesLimit) {
  RequestLimits limits;
  limits.max_request_bytes = 10;  // argument bytes in total
  EXPECT_EQ(parse_all(bulk_cmd({"SET", "k", "123456"}), limits),
            std::vector<std::string>{"C:SET|k|123456"});
  auto got = parse_all(bulk_cmd({"SET", "k", "1234567"}) + bulk_cmd({"PING"}), limits);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_NE(got[0].find("request exceeds the limit of 10 bytes"), std::string::npos) << got[0];
  EXPECT_EQ(got[1], "C:PING");
}

TEST(RespParser, InlineAtTheLimitPassesOneOverIsRefused) {
  RequestLimits limits;
  limits.max_inline_bytes = 16;
  std::string at = "ECHO " + std::string(11, 'a');  // 16 bytes
  EXPECT_EQ(parse_all(at + "\r\n", limits),
            std::vector<std::string>{"C:ECHO|" + std::string(11, 'a')});
  EXPECT_EQ(parse_all(at + "\n", limits),
            std::vector<std::string>{"C:ECHO|" + std::string(11, 'a')});
  // At the limit and incomplete: the parser waits, even with the '\r' in.
  {
    RequestParser p(limits);
    p.feed(at + "\r");
    EXPECT_FALSE(p.next().has_value());
    p.feed("\n");
    EXPECT_EQ(drain(p), std::vector<std::string>{"C:ECHO|" + std::string(11, 'a')});
  }
  std::string over = at + "b";  // 17 bytes
  EXPECT_EQ(parse_all(over + "\r\nPING\r\n", limits),
            (std::vector<std::string>{"E:ERR Protocol error: too big inline request", "C:PING"}));
}

TEST(RespParser, LongInlineLineIsSkippedWithoutBeingBuffered) {
  RequestLimits limits;
  limits.max_inline_bytes = 100;
  RequestParser p(limits);
  for (int i = 0; i < 100; ++i) {
    p.feed(std::string(1000, 'z'));
    EXPECT_FALSE(p.next().has_value());
    ASSERT_LE(p.buffered_bytes(), 1000u);
  }
  p.feed("zzz\r\nPING\r\n");
  EXPECT_EQ(drain(p),
            (std::vector<std::string>{"E:ERR Protocol error: too big inline request", "C:PING"}));
}

TEST(RespParser, FatalFramingErrors) {
  struct Case {
    std::string input;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"*abc\r\n", "invalid multibulk length"},
      {"*1\r\n$x\r\n", "invalid bulk length"},
      {"*1\r\n$-3\r\n", "invalid bulk length"},
      {"*1\r\n+OK\r\n", "expected '$', got '+'"},
      {"*1\r\n\x01", "expected '$', got '\\x01'"},
      {"*1\r\n$3\r\nabcXY", "bulk string not terminated by CRLF"},
      {"*1\r\n$3\r\nabc\r", ""},  // incomplete, not an error
      {"*1\rX", "multibulk length not terminated by CRLF"},
      {"*" + std::string(40, '1'), "too big multibulk count string"},
      {"*1\r\n$" + std::string(40, '1'), "too big bulk count string"},
      {"*99999999999999999999999\r\n", "invalid multibulk length"},  // overflows int64
  };
  for (const auto& c : cases) {
    RequestParser p;
    p.feed(c.input);
    auto got = drain(p);
    if (c.error.empty()) {
      EXPECT_TRUE(got.empty()) << c.input;
      continue;
    }
    ASSERT_EQ(got.size(), 1u) << c.input;
    EXPECT_EQ(got[0], "F:ERR Protocol error: " + c.error) << c.input;
    // Fatal is sticky: later bytes are not parsed.
    p.feed("PING\r\n");
    auto again = p.next();
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->kind, Kind::kFatal);
    EXPECT_TRUE(p.failed());
  }
}

TEST(RespParser, CommandsBeforeAFatalErrorAreDelivered) {
  EXPECT_EQ(parse_all("PING\r\n*1\r\n$1\r\nx\r\n*zz\r\nPING\r\n"),
            (std::vector<std::string>{"C:PING", "C:x",
                                      "F:ERR Protocol error: invalid multibulk length"}));
}

TEST(RespEncoder, Values) {
  std::string out;
  write_simple(out, "OK");
  write_error(out, "ERR bad\r\nthing");
  write_integer(out, -42);
  write_bulk(out, kBinary);
  write_null(out, Protocol::kResp2);
  write_null(out, Protocol::kResp3);
  write_array(out, 2);
  write_map(out, 2, Protocol::kResp2);
  write_map(out, 2, Protocol::kResp3);
  EXPECT_EQ(out, "+OK\r\n-ERR bad  thing\r\n:-42\r\n$7\r\n" + kBinary +
                     "\r\n$-1\r\n_\r\n*2\r\n*4\r\n%2\r\n");
}

TEST(RespGlob, Matches) {
  struct Case {
    const char* pattern;
    const char* s;
    bool match;
  };
  const std::vector<Case> cases = {
      {"*", "", true},
      {"*", "abc", true},
      {"a*", "abc", true},
      {"a*", "bac", false},
      {"*c", "abc", true},
      {"a*c", "ac", true},
      {"a*c", "abcbd", false},
      {"a*b*c", "axxbyyc", true},
      {"?", "", false},
      {"?", "x", true},
      {"a?c", "abc", true},
      {"a?c", "ac", false},
      {"[abc]", "b", true},
      {"[abc]", "d", false},
      {"[a-c]x", "bx", true},
      {"[c-a]", "b", true},
      {"[^a-c]", "b", false},
      {"[^a-c]", "z", true},
      {"h[^e]llo", "hallo", true},
      {"h[^e]llo", "hello", false},
      {"\\*", "*", true},
      {"\\*", "a", false},
      {"a\\?", "a?", true},
      {"[\\]]", "]", true},
      {"[a-", "a", true},
      {"key:*:x", "key:1:x", true},
      {"key:*:x", "key:1:y", false},
      {"***a", "ba", true},
      {"*a*a*a*", "aaa", true},
      {"*a*a*a*", "aa", false},
  };
  for (const auto& c : cases)
    EXPECT_EQ(glob_match(c.pattern, c.s), c.match) << c.pattern << " vs " << c.s;
}

TEST(RespGlob, NoExponentialBlowUp) {
  // Would take ages with naive recursive backtracking.
  std::string s(2000, 'a');
  EXPECT_FALSE(glob_match("*a*a*a*a*a*a*a*a*a*a*a*b", s));
}

TEST(RespGlob, LiteralPrefix) {
  EXPECT_EQ(glob_literal_prefix("user:*"), "user:");
  EXPECT_EQ(glob_literal_prefix("a\\*b?c"), "a*b");
  EXPECT_EQ(glob_literal_prefix("[ab]*"), "");
  EXPECT_EQ(glob_literal_prefix("plain"), "plain");
}

}  // namespace
}  // namespace wavekv::resp
