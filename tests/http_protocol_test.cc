// The HTTP/1.1 request parser: pipelining at every split point, chunked
// bodies, the header and body limits exactly at and one past the bound,
// malformed input, keep-alive rules; the response parser and writer.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "http/protocol.h"

namespace wavekv::http {
namespace {

// What the parser produced, in order: a request (as text) or an error.
struct Seen {
  std::string what;  // "GET /a body=..." or "error 413 close" or "continue"
  bool operator==(const Seen&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Seen& s) { return os << s.what; }

std::string describe(const HttpRequest& r) {
  std::string s = r.method + " " + r.target + " body=" + r.body;
  if (auto h = r.header("x-tag")) s += " tag=" + std::string(*h);
  s += r.keep_alive ? " keep" : " close";
  return s;
}

// Feeds `pieces` one after another, handling every event as a server would.
std::vector<Seen> parse(HttpRequestParser& p, const std::vector<std::string>& pieces) {
  std::vector<Seen> out;
  for (const auto& piece : pieces) {
    std::string_view rest = piece;
    while (!rest.empty()) {
      size_t n = p.feed(rest);
      rest.remove_prefix(n);
      switch (p.event()) {
        case HttpRequestParser::Event::kNeedMore: EXPECT_TRUE(rest.empty()); break;
        case HttpRequestParser::Event::kContinue: out.push_back({"continue"}); break;
        case HttpRequestParser::Event::kRequest: out.push_back({describe(p.request())}); break;
        case HttpRequestParser::Event::kError:
          out.push_back({"error " + std::to_string(p.error().status) +
                         (p.error().close ? " close" : " keep")});
          if (p.error().close) return out;
          break;
      }
    }
  }
  return out;
}

std::vector<Seen> parse_all(const std::string& bytes, HttpLimits limits = {}) {
  HttpRequestParser p(limits);
  return parse(p, {bytes});
}

const std::string kPipeline =
    "GET /v1/kv/a HTTP/1.1\r\nHost: x\r\nX-Tag: one\r\n\r\n"
    "PUT /v1/kv/b HTTP/1.1\r\nContent-Length: 5\r\nX-Tag: two\r\n\r\nhello"
    "PUT /v1/kv/c?x=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
    "DELETE /v1/kv/d HTTP/1.1\r\nConnection: close\r\n\r\n";
const std::vector<Seen> kPipelineSeen = {
    {"GET /v1/kv/a body= tag=one keep"},
    {"PUT /v1/kv/b body=hello tag=two keep"},
    {"PUT /v1/kv/c?x=1 body=abcdefg keep"},
    {"DELETE /v1/kv/d body= close"},
};

TEST(HttpRequestParser, PipelinedRequestsAtEverySplitPoint) {
  ASSERT_EQ(parse_all(kPipeline), kPipelineSeen);
  for (size_t i = 0; i <= kPipeline.size(); ++i) {
    HttpRequestParser p;
    EXPECT_EQ(parse(p, {kPipeline.substr(0, i), kPipeline.substr(i)}), kPipelineSeen)
        << "split at " << i;
  }
}

TEST(HttpRequestParser, PipelinedRequestsOneByteAtATime) {
  std::vector<std::string> bytes;
  for (char c : kPipeline) bytes.emplace_back(1, c);
  HttpRequestParser p;
  EXPECT_EQ(parse(p, bytes), kPipelineSeen);
}

TEST(HttpRequestParser, EveryPairOfSplitPointsInAChunkedRequest) {
  const std::string req =
      "PUT /k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1;ext=1\r\nc\r\n0\r\n\r\n";
  for (size_t i = 0; i <= req.size(); ++i) {
    for (size_t j = i; j <= req.size(); ++j) {
      HttpRequestParser p;
      auto seen = parse(p, {req.substr(0, i), req.substr(i, j - i), req.substr(j)});
      ASSERT_EQ(seen, std::vector<Seen>{{"PUT /k body=abc keep"}}) << i << "," << j;
    }
  }
}

// The header block of a GET padded to exactly `bytes` (request line, headers,
// every CRLF and the empty line).
std::string get_with_header_bytes(size_t bytes) {
  std::string head = "GET /x HTTP/1.1\r\nX-Pad: ";
  std::string tail = "\r\n\r\n";
  return head + std::string(bytes - head.size() - tail.size(), 'p') + tail;
}

TEST(HttpRequestParser, HeaderLimitExactlyAtAndOneOver) {
  for (size_t limit : {size_t(256), size_t(64 * 1024)}) {
    HttpLimits l;
    l.max_header_bytes = limit;
    std::string at = get_with_header_bytes(limit);
    ASSERT_EQ(at.size(), limit);
    EXPECT_EQ(parse_all(at, l), std::vector<Seen>{{"GET /x body= keep"}});
    EXPECT_EQ(parse_all(get_with_header_bytes(limit + 1), l),
              std::vector<Seen>{{"error 413 close"}});
    // The count starts again for each pipelined request.
    EXPECT_EQ(parse_all(at + at, l),
              (std::vector<Seen>{{"GET /x body= keep"}, {"GET /x body= keep"}}));
    EXPECT_EQ(parse_all(at + get_with_header_bytes(limit + 1), l),
              (std::vector<Seen>{{"GET /x body= keep"}, {"error 413 close"}}));
  }
}

TEST(HttpRequestParser, HeaderLimitHoldsWhenFedByteByByte) {
  HttpLimits l;
  l.max_header_bytes = 200;
  std::vector<std::string> over;
  for (char c : get_with_header_bytes(201)) over.emplace_back(1, c);
  HttpRequestParser p(l);
  EXPECT_EQ(parse(p, over), std::vector<Seen>{{"error 413 close"}});
}

std::string put_with_body(size_t n) {
  return "PUT /k HTTP/1.1\r\nContent-Length: " + std::to_string(n) + "\r\n\r\n" +
         std::string(n, 'v');
}
std::string chunked_put(size_t n) {
  // Two chunks so the bound is crossed inside the body, not at its start.
  size_t a = n / 2;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%zx\r\n", a);
  std::string out = "PUT /k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  out += buf + std::string(a, 'v') + "\r\n";
  std::snprintf(buf, sizeof buf, "%zx\r\n", n - a);
  out += buf + std::string(n - a, 'v') + "\r\n0\r\n\r\n";
  return out;
}
const std::string kNext = "GET /next HTTP/1.1\r\n\r\n";

TEST(HttpRequestParser, BodyLimitExactlyAtAndOneOver) {
  HttpLimits l;
  l.max_body_bytes = 1000;
  l.max_discard_bytes = 5000;
  std::string body_at = "PUT /k body=" + std::string(1000, 'v') + " keep";
  for (auto make : {&put_with_body, &chunked_put}) {
    EXPECT_EQ(parse_all(make(1000) + kNext, l),
              (std::vector<Seen>{{body_at}, {"GET /next body= keep"}}));
    // One over but small enough to throw away: 413, and the connection goes on.
    EXPECT_EQ(parse_all(make(1001) + kNext, l),
              (std::vector<Seen>{{"error 413 keep"}, {"GET /next body= keep"}}));
    // Too large even to throw away: 413 and close.
    EXPECT_EQ(parse_all(make(5001) + kNext, l), std::vector<Seen>{{"error 413 close"}});
  }
}

TEST(HttpRequestParser, DefaultBodyLimitRefusesAnOversizedContentLengthUpFront) {
  HttpLimits l;
  std::string head =
      "PUT /k HTTP/1.1\r\nContent-Length: " + std::to_string(l.max_body_bytes + 1) + "\r\n\r\n";
  // No body bytes are needed to decide.
  EXPECT_EQ(parse_all(head), std::vector<Seen>{{"error 413 close"}});
  std::string ok =
      "PUT /k HTTP/1.1\r\nContent-Length: " + std::to_string(l.max_body_bytes) + "\r\n\r\n";
  EXPECT_EQ(parse_all(ok), std::vector<Seen>{}) << "at the limit: waits for the body";
}

TEST(HttpRequestParser, MalformedInputIs400AndCloses) {
  const char* bad[] = {
      "GARBAGE\r\n\r\n",
      "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
      "GET / HTTP/9.9.9\r\n\r\n",
      "PUT / HTTP/1.1\r\nContent-Length: 12x\r\n\r\n",
      "PUT / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
      "PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "PUT / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
      "GET / HTTP/1.1\r\nX: a\r\n\r\n\x01\x02\x03 HTTP/1.1\r\n\r\n",
  };
  for (const char* b : bad) {
    auto seen = parse_all(b);
    ASSERT_FALSE(seen.empty()) << b;
    EXPECT_EQ(seen.back(), Seen{"error 400 close"}) << b;
    HttpRequestParser p;
    parse(p, {b});
    EXPECT_FALSE(p.error().message.empty()) << b;
  }
}

TEST(HttpRequestParser, NothingIsParsedAfterAClosingError) {
  HttpRequestParser p;
  p.feed("NOPE\r\n\r\n");
  ASSERT_EQ(p.event(), HttpRequestParser::Event::kError);
  EXPECT_EQ(p.feed("GET / HTTP/1.1\r\n\r\n"), 0u);
  EXPECT_EQ(p.event(), HttpRequestParser::Event::kError);
}

TEST(HttpRequestParser, KeepAliveFollowsHttp11Rules) {
  EXPECT_EQ(parse_all("GET / HTTP/1.1\r\n\r\n"), std::vector<Seen>{{"GET / body= keep"}});
  EXPECT_EQ(parse_all("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"),
            std::vector<Seen>{{"GET / body= close"}});
  EXPECT_EQ(parse_all("GET / HTTP/1.0\r\n\r\n"), std::vector<Seen>{{"GET / body= close"}});
  EXPECT_EQ(parse_all("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
            std::vector<Seen>{{"GET / body= keep"}});
}

TEST(HttpRequestParser, HeadersAreCaseInsensitiveAndJoinedAcrossPieces) {
  HttpRequestParser p;
  auto seen = parse(p, {"GET / HTTP/1.1\r\nX-Ta", "g: ab", "c\r\nACCEPT: a/b\r\n\r\n"});
  ASSERT_EQ(seen, std::vector<Seen>{{"GET / body= tag=abc keep"}});
  EXPECT_EQ(p.request().header("accept"), "a/b");
}

TEST(HttpRequestParser, ExpectContinueAsksForTheBody) {
  HttpRequestParser p;
  auto seen =
      parse(p, {"PUT /k HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", "abc"});
  EXPECT_EQ(seen, (std::vector<Seen>{{"continue"}, {"PUT /k body=abc keep"}}));
  // Too large: refused at once rather than waiting for a body that may never come.
  HttpLimits l;
  l.max_body_bytes = 2;
  EXPECT_EQ(parse_all("PUT /k HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", l),
            std::vector<Seen>{{"error 413 close"}});
}

TEST(HttpRequestParser, FinishMidRequestIsAnError) {
  HttpRequestParser p;
  p.feed("PUT /k HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
  EXPECT_FALSE(p.idle());
  EXPECT_EQ(p.finish(), HttpRequestParser::Event::kError);
  HttpRequestParser q;
  q.feed("GET / HTTP/1.1\r\n\r\n");
  q.feed("");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.finish(), HttpRequestParser::Event::kNeedMore);
}

TEST(HttpResponseParser, ParsesSplitAndChunkedResponses) {
  const std::string resp =
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n";
  for (size_t i = 0; i <= resp.size(); ++i) {
    HttpResponseParser p(100);
    EXPECT_EQ(p.feed(resp.substr(0, i)), "");
    EXPECT_EQ(p.feed(resp.substr(i)), "");
    ASSERT_TRUE(p.done()) << i;
    EXPECT_EQ(p.response().status, 200);
    EXPECT_EQ(p.response().body, "hello");
    EXPECT_EQ(p.response().header("content-type"), "text/plain");
  }
}

TEST(HttpResponseParser, BodyUntilCloseTooLargeAndMalformed) {
  HttpResponseParser until_close(100);
  EXPECT_EQ(until_close.feed("HTTP/1.1 200 OK\r\n\r\nabc"), "");
  EXPECT_FALSE(until_close.done());
  EXPECT_EQ(until_close.finish(), "");
  EXPECT_EQ(until_close.response().body, "abc");

  HttpResponseParser small(3);
  EXPECT_NE(small.feed("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd"), "");

  HttpResponseParser bad(100);
  EXPECT_NE(bad.feed("HTTP/1.1 abc\r\n\r\n"), "");

  HttpResponseParser cut(100);
  EXPECT_EQ(cut.feed("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab"), "");
  EXPECT_NE(cut.finish(), "");
}

TEST(HttpResponseWriter, WritesStatusHeadersLengthAndConnection) {
  EXPECT_EQ(write_response(404, {{"Content-Type", "application/json"}}, "{}", true),
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            "Connection: keep-alive\r\n\r\n{}");
  EXPECT_EQ(write_response(200, {}, "", false),
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  // What we write, our parser reads back.
  HttpResponseParser p(100);
  EXPECT_EQ(p.feed(write_response(413, {{"X-A", "b"}}, "too big", true)), "");
  ASSERT_TRUE(p.done());
  EXPECT_EQ(p.response().status, 413);
  EXPECT_EQ(p.response().body, "too big");
  EXPECT_EQ(p.response().header("x-a"), "b");
}

}  // namespace
}  // namespace wavekv::http
