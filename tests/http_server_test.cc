// The HTTP API end to end: real sockets on port 0 against a real Store in a
// temporary directory (docs/HTTP.md is the contract checked here).
#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>

#include <asio.hpp>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "http/client.h"
#include "http/encoding.h"
#include "http/server.h"
#include "monitoring/metrics.h"
#include "net/address.h"
#include "support/test_util.h"
#include "testing/mem_fs.h"

namespace wavekv::http {
namespace {

using json = nlohmann::json;
constexpr uint64_t kTimeoutMs = 10'000;  // a guard against hangs only

// A plain TCP connection for what the client does not do: pipelining,
// streams, misbehaving peers. Reads give up after kTimeoutMs.
class RawConn {
 public:
  explicit RawConn(const std::string& address) : socket_(io_) {
    auto hp = net::parse_host_port(address, net::AddressUse::kDial);
    socket_.connect({asio::ip::make_address(hp->host), hp->port});
  }
  void send(std::string_view bytes) { asio::write(socket_, asio::buffer(bytes)); }
  // Reads until `needle` has arrived (after `from`); returns everything read so far.
  std::string read_until(std::string_view needle, size_t from = 0) {
    while (buf_.find(needle, from) == std::string::npos && read_some()) {
    }
    return buf_;
  }
  // Reads until the server closes.
  std::string read_to_eof() {
    while (read_some()) {
    }
    return buf_;
  }
  const std::string& data() const { return buf_; }
  asio::ip::tcp::socket& socket() { return socket_; }

 private:
  bool read_some() {
    pollfd p{socket_.native_handle(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(kTimeoutMs)) <= 0) {
      ADD_FAILURE() << "timed out reading; have: " << buf_.substr(0, 2000);
      return false;
    }
    char tmp[64 * 1024];
    asio::error_code ec;
    size_t n = socket_.read_some(asio::buffer(tmp), ec);
    buf_.append(tmp, n);
    return !ec && n > 0;
  }
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  std::string buf_;
};

// One server-sent event.
struct Sse {
  std::string id, event, data;
};
// The complete events in `text` (after the response head).
std::vector<Sse> parse_sse(const std::string& text) {
  std::vector<Sse> out;
  size_t pos = text.find("\r\n\r\n");
  if (pos == std::string::npos) return out;
  pos += 4;
  Sse cur;
  for (;;) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) {
      if (!cur.event.empty()) out.push_back(cur);
      cur = {};
    } else if (line.starts_with("id: ")) {
      cur.id = line.substr(4);
    } else if (line.starts_with("event: ")) {
      cur.event = line.substr(7);
    } else if (line.starts_with("data: ")) {
      cur.data = line.substr(6);
    }
  }
  return out;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "wavekv-http-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    server_.reset();
    if (store_) (void)store_->close();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void start(HttpConfig config = {}, HttpHooks hooks = {}, std::shared_ptr<FileSystem> fs = {}) {
    Config c;
    c.data_dir = dir_ + "/db";
    c.durability = Durability::kNone;
    c.fs = std::move(fs);
    auto s = Store::open(c);
    ASSERT_TRUE(s) << s.status().to_string();
    store_ = std::move(*s);
    auto srv = HttpServerThread::start(*store_, config, std::move(hooks));
    ASSERT_TRUE(srv) << srv.status().to_string();
    server_ = std::move(*srv);
  }
  HttpResponse req(std::string_view method, std::string_view target, std::string_view body = {}) {
    auto r = http_request(server_->address(), method, target, body, kTimeoutMs);
    EXPECT_TRUE(r) << r.status().to_string();
    return r ? *r : HttpResponse{};
  }
  json req_json(std::string_view method, std::string_view target, std::string_view body = {}) {
    auto r = req(method, target, body);
    auto j = json::parse(r.body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.body;
    return j;
  }
  std::string dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<HttpServerThread> server_;
};

TEST_F(HttpServerTest, PutGetDeleteRoundTrip) {
  start();
  auto put = req("PUT", "/v1/kv/user%3A1", "alice");
  EXPECT_EQ(put.status, 200) << put.body;
  auto pj = json::parse(put.body);
  EXPECT_EQ(pj["ok"], true);
  EXPECT_EQ(pj["node"], store_->node_id());
  EXPECT_EQ(store_->get("user:1").value(), "alice") << "stored under the decoded key";

  auto get = req("GET", "/v1/kv/user:1");
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body, "alice");
  EXPECT_EQ(get.header("content-type"), "application/octet-stream");

  auto del = req("DELETE", "/v1/kv/user:1");
  EXPECT_EQ(del.status, 200) << del.body;
  auto gone = req("GET", "/v1/kv/user:1");
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(json::parse(gone.body)["error"], "key not found");
}

TEST_F(HttpServerTest, BinaryKeysAndValuesRoundTripThroughPercentEncoding) {
  start();
  std::string key, value;
  for (int i = 0; i < 256; ++i) key.push_back(static_cast<char>(i));
  for (int i = 255; i >= 0; --i) value.push_back(static_cast<char>(i));
  ASSERT_EQ(req("PUT", "/v1/kv/" + percent_encode(key), value).status, 200);
  EXPECT_EQ(store_->get(key).value(), value);
  EXPECT_EQ(req("GET", "/v1/kv/" + percent_encode(key)).body, value);

  // JSON view: not UTF-8, so base64.
  auto j = req_json("GET", "/v1/kv/" + percent_encode(key) + "?meta=1");
  EXPECT_EQ(base64_decode(j["key_base64"].get<std::string>()), key);
  EXPECT_EQ(base64_decode(j["value_base64"].get<std::string>()), value);
  EXPECT_FALSE(j.contains("key"));
  EXPECT_EQ(j["node"], store_->node_id());
  EXPECT_GT(j["seq"].get<uint64_t>(), 0u);
  EXPECT_GT(j["timestamp"].get<uint64_t>(), 0u);

  // UTF-8 stays text; a slash is part of the key.
  ASSERT_EQ(req("PUT", "/v1/kv/dir/caf%C3%A9", "th\xC3\xA9").status, 200);
  auto t = req_json("GET", "/v1/kv/dir/caf%C3%A9?meta=1");
  EXPECT_EQ(t["key"], "dir/caf\xC3\xA9");
  EXPECT_EQ(t["value"], "th\xC3\xA9");
}

TEST_F(HttpServerTest, AcceptJsonGivesTheMetaView) {
  start();
  ASSERT_TRUE(store_->put("k", "v"));
  RawConn c(server_->address());
  c.send("GET /v1/kv/k HTTP/1.1\r\nAccept: application/json\r\nConnection: close\r\n\r\n");
  std::string out = c.read_to_eof();
  EXPECT_NE(out.find("Content-Type: application/json"), std::string::npos) << out;
  EXPECT_NE(out.find("\"value\":\"v\""), std::string::npos) << out;
}

TEST_F(HttpServerTest, ErrorsHaveCodesAndJsonBodies) {
  HttpConfig config;
  config.limits.max_body_bytes = 1000;
  config.limits.max_discard_bytes = 1000;
  start(config);
  auto unknown = req("GET", "/nope");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_TRUE(json::parse(unknown.body).contains("error"));

  auto post = req("POST", "/v1/kv/k", "x");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.header("allow"), "GET, PUT, DELETE");
  EXPECT_EQ(req("PUT", "/v1/status", "x").status, 405);

  EXPECT_EQ(req("GET", "/v1/kv/bad%zz").status, 400);
  EXPECT_EQ(req("GET", "/v1/kv?prefix=%").status, 400);
  EXPECT_EQ(req("GET", "/v1/kv/").status, 400) << "empty key";

  auto big = req("PUT", "/v1/kv/k", std::string(1001, 'x'));
  EXPECT_EQ(big.status, 413);
  EXPECT_NE(json::parse(big.body)["error"].get<std::string>().find("1000"), std::string::npos);
  EXPECT_EQ(req("PUT", "/v1/kv/k", std::string(1000, 'x')).status, 200) << "at the limit";

  // A key over the store's limit is the store's refusal: 400 with its message.
  auto long_key = req("PUT", "/v1/kv/" + std::string(70 * 1024, 'k'), "v");
  EXPECT_EQ(long_key.status, 413) << "the header limit comes first";
}

TEST_F(HttpServerTest, FailedStoreAnswers503) {
  auto fs = std::make_shared<testing::MemFileSystem>();
  start({}, {}, fs);
  fs->fail_nth_write(1);
  auto first = req("PUT", "/v1/kv/a", "1");
  EXPECT_GE(first.status, 500) << first.body;
  auto second = req("PUT", "/v1/kv/b", "2");
  EXPECT_EQ(second.status, 503) << second.body;
  EXPECT_EQ(req("GET", "/v1/kv/b").status, 404) << "reads still work";
}

TEST_F(HttpServerTest, ListPagesThroughAPrefix) {
  start();
  for (int i = 0; i < 25; ++i) {
    char k[16];
    std::snprintf(k, sizeof k, "p/%02d", i);
    ASSERT_TRUE(store_->put(k, "v" + std::to_string(i)));
  }
  ASSERT_TRUE(store_->put("o", "outside"));
  ASSERT_TRUE(store_->put("q", "outside"));
  ASSERT_TRUE(store_->del("p/05"));

  std::vector<std::string> keys;
  std::string start_key;
  int pages = 0;
  for (; pages < 10; ++pages) {
    std::string target = "/v1/kv?prefix=p%2F&limit=10";
    if (!start_key.empty()) target += "&start=" + percent_encode(start_key);
    auto j = req_json("GET", target);
    for (auto& item : j["items"]) {
      std::string key = item["key"];
      keys.push_back(key);
      EXPECT_EQ(item["value"], "v" + std::to_string(std::stoi(key.substr(2))));
      EXPECT_TRUE(item.contains("seq") && item.contains("node") && item.contains("timestamp"));
    }
    if (j["next"].is_null()) break;
    start_key = j["next"];
  }
  EXPECT_EQ(pages, 2) << "24 keys in pages of 10";
  ASSERT_EQ(keys.size(), 24u);
  EXPECT_EQ(keys.front(), "p/00");
  EXPECT_EQ(keys.back(), "p/24");
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_EQ(std::find(keys.begin(), keys.end(), "p/05"), keys.end())
      << "deleted keys are not listed";

  EXPECT_EQ(req_json("GET", "/v1/kv")["items"].size(), 26u) << "default limit 100, no prefix";
  EXPECT_EQ(req("GET", "/v1/kv?limit=0").status, 400);
  EXPECT_EQ(req("GET", "/v1/kv?limit=10001").status, 400);
  EXPECT_EQ(req("GET", "/v1/kv?limit=ten").status, 400);
  EXPECT_EQ(req("GET", "/v1/kv?limit=10000").status, 200);
}

TEST_F(HttpServerTest, ListWithBinaryPrefixAndNext) {
  start();
  std::string p = "\xff\xff";
  ASSERT_TRUE(store_->put(p + "\x01", "a"));
  ASSERT_TRUE(store_->put(p + "\x02", "b"));
  ASSERT_TRUE(store_->put("\xff\xfe", "not under the prefix"));
  auto j = req_json("GET", "/v1/kv?limit=1&prefix=" + percent_encode(p));
  ASSERT_EQ(j["items"].size(), 1u);
  EXPECT_EQ(base64_decode(j["items"][0]["key_base64"].get<std::string>()), p + "\x01");
  EXPECT_EQ(base64_decode(j["next_base64"].get<std::string>()), p + "\x02");
  auto j2 = req_json(
      "GET", "/v1/kv?limit=1&prefix=" + percent_encode(p) + "&start=" + percent_encode(p + "\x02"));
  ASSERT_EQ(j2["items"].size(), 1u);
  EXPECT_TRUE(j2["next"].is_null());
}

TEST_F(HttpServerTest, StatusMetricsAndHealth) {
  start();
  ASSERT_TRUE(store_->put("a", "1"));
  auto st = req_json("GET", "/v1/status");
  EXPECT_EQ(st["node"], store_->node_id());
  EXPECT_EQ(st["storage"]["live_keys"], 1);
  EXPECT_TRUE(st["storage"].contains("durable_lsn"));

  auto m = req("GET", "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.header("content-type"), monitoring::kMetricsContentType);
  EXPECT_NE(m.body.find("# HELP wavekv_live_keys "), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("# TYPE wavekv_live_keys gauge\nwavekv_live_keys 1\n"), std::string::npos);
  EXPECT_NE(m.body.find("# TYPE wavekv_writes_total counter\n"), std::string::npos);
  EXPECT_NE(m.body.find("wavekv_http_responses_total{code=\"200\"} "), std::string::npos);
  // Every line is a comment or "name{labels} value".
  size_t pos = 0;
  while (pos < m.body.size()) {
    size_t nl = m.body.find('\n', pos);
    ASSERT_NE(nl, std::string::npos) << "ends with a newline";
    std::string line = m.body.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.starts_with("# ")) continue;
    size_t sp = line.rfind(' ');
    ASSERT_NE(sp, std::string::npos) << line;
    EXPECT_NO_THROW((void)std::stod(line.substr(sp + 1))) << line;
  }

  // A histogram's count and buckets move with the writes.
  auto sample = [&](const std::string& name) {
    std::string body = req("GET", "/metrics").body;
    size_t at = body.find("\n" + name + " ");
    return at == std::string::npos ? -1.0 : std::stod(body.substr(at + name.size() + 2));
  };
  const double count = sample("wavekv_group_commit_requests_count");
  const double inf = sample("wavekv_group_commit_requests_bucket{le=\"+Inf\"}");
  ASSERT_GE(count, 1) << "the put above";
  EXPECT_EQ(inf, count);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(store_->put("b" + std::to_string(i), "1"));
  EXPECT_EQ(sample("wavekv_group_commit_requests_count"), count + 3);
  EXPECT_EQ(sample("wavekv_group_commit_requests_bucket{le=\"1\"}"), count + 3)
      << "one request each";
  EXPECT_EQ(sample("wavekv_group_commit_requests_sum"), sample("wavekv_writes_total"));

  auto h = req("GET", "/healthz");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, "ok\n");
}

TEST_F(HttpServerTest, AStatusHookFeedsStatusAndMetrics) {
  HttpHooks hooks;
  hooks.status = [] {
    NodeStatus s;
    s.store.node_id = 7;
    s.address = "10.0.0.1:7400";
    s.replication.rounds = 3;
    return s;
  };
  start({}, hooks);
  auto st = req_json("GET", "/v1/status");
  EXPECT_EQ(st["node"], 7);
  EXPECT_EQ(st["replication"]["rounds"], 3);
  EXPECT_EQ(st["members"], json::array());
  EXPECT_NE(req("GET", "/metrics").body.find("\nwavekv_sync_rounds_total 3\n"), std::string::npos);
}

TEST_F(HttpServerTest, KeepAliveAndPipelinedRequestsAnswerInOrder) {
  start();
  RawConn c(server_->address());
  // Three requests in one write; the last closes.
  c.send(
      "PUT /v1/kv/a HTTP/1.1\r\nContent-Length: 2\r\n\r\nv1"
      "GET /v1/kv/a HTTP/1.1\r\n\r\n"
      "GET /v1/kv/missing HTTP/1.1\r\nConnection: close\r\n\r\n");
  std::string out = c.read_to_eof();
  size_t r1 = out.find("HTTP/1.1 200 OK");
  size_t r2 = out.find("HTTP/1.1 200 OK", r1 + 1);
  size_t r3 = out.find("HTTP/1.1 404 Not Found");
  ASSERT_NE(r1, std::string::npos) << out;
  ASSERT_NE(r2, std::string::npos) << out;
  ASSERT_NE(r3, std::string::npos) << out;
  EXPECT_LT(r1, r2);
  EXPECT_LT(r2, r3);
  EXPECT_NE(out.find("\r\n\r\nv1HTTP/1.1 404"), std::string::npos) << "GET's body before the 404";

  // The same connection carries on after a keep-alive request, and after a 400
  // the server answers and closes.
  RawConn k(server_->address());
  k.send("GET /healthz HTTP/1.1\r\n\r\n");
  k.read_until("ok\n");
  k.send("GET /healthz HTTP/1.1\r\n\r\n");
  std::string two = k.read_until("ok\n", k.data().find("ok\n") + 3);
  EXPECT_EQ(two.find("Connection: close"), std::string::npos) << two;
  k.send("BROKEN\r\n\r\n");
  std::string end = k.read_to_eof();
  EXPECT_NE(end.find("HTTP/1.1 400 Bad Request"), std::string::npos) << end;
  EXPECT_NE(end.find("Connection: close"), std::string::npos) << end;
}

TEST_F(HttpServerTest, OversizedBodyThatCanBeSkippedKeepsTheConnection) {
  HttpConfig config;
  config.limits.max_body_bytes = 10;
  config.limits.max_discard_bytes = 100;
  start(config);
  RawConn c(server_->address());
  c.send("PUT /v1/kv/a HTTP/1.1\r\nContent-Length: 11\r\n\r\n" + std::string(11, 'x') +
         "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
  std::string out = c.read_to_eof();
  size_t r413 = out.find("HTTP/1.1 413");
  size_t r200 = out.find("HTTP/1.1 200");
  ASSERT_NE(r413, std::string::npos) << out;
  ASSERT_NE(r200, std::string::npos) << out;
  EXPECT_LT(r413, r200);
}

TEST_F(HttpServerTest, ConnectionsBeyondTheLimitGet503) {
  HttpConfig config;
  config.max_connections = 1;
  start(config);
  RawConn first(server_->address());
  first.send("GET /healthz HTTP/1.1\r\n\r\n");
  first.read_until("ok\n");  // admitted
  RawConn second(server_->address());
  std::string out = second.read_to_eof();
  EXPECT_NE(out.find("HTTP/1.1 503"), std::string::npos) << out;
}

// --- watch

// Opens a watch stream and waits for the response head.
std::unique_ptr<RawConn> open_watch(const std::string& address, const std::string& query,
                                    const std::string& extra_headers = "") {
  auto c = std::make_unique<RawConn>(address);
  c->send("GET /v1/watch" + query + " HTTP/1.1\r\n" + extra_headers + "\r\n");
  c->read_until("\r\n\r\n");
  return c;
}
// Reads until `n` events have arrived.
std::vector<Sse> read_events(RawConn& c, size_t n) {
  for (int i = 0; i < 10000; ++i) {
    auto events = parse_sse(c.data());
    if (events.size() >= n) return events;
    size_t before = c.data().size();
    c.read_until(std::string(1, '\n'), before);
    if (c.data().size() == before) break;  // timed out or closed
  }
  return parse_sse(c.data());
}

TEST_F(HttpServerTest, WatchStreamsPutsAndDeletesUnderThePrefix) {
  start();
  auto w = open_watch(server_->address(), "?prefix=w%2F");
  EXPECT_NE(w->data().find("Content-Type: text/event-stream"), std::string::npos) << w->data();
  auto ready = read_events(*w, 1);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].event, "ready");

  ASSERT_TRUE(store_->put("w/a", "1"));
  ASSERT_TRUE(store_->put("x/ignored", "1"));
  ASSERT_TRUE(store_->del("w/a"));
  ASSERT_EQ(req("PUT", "/v1/kv/w%2Fb", "\xff\x02").status, 200);

  auto ev = read_events(*w, 4);
  ASSERT_EQ(ev.size(), 4u) << w->data();
  EXPECT_EQ(ev[1].event, "put");
  auto d1 = json::parse(ev[1].data);
  EXPECT_EQ(d1["key"], "w/a");
  EXPECT_EQ(d1["value"], "1");
  EXPECT_EQ(d1["node"], store_->node_id());
  EXPECT_EQ(ev[2].event, "delete");
  auto d2 = json::parse(ev[2].data);
  EXPECT_EQ(d2["key"], "w/a");
  EXPECT_FALSE(d2.contains("value"));
  EXPECT_GT(d2["seq"].get<uint64_t>(), d1["seq"].get<uint64_t>());
  EXPECT_EQ(ev[3].event, "put");
  EXPECT_EQ(base64_decode(json::parse(ev[3].data)["value_base64"].get<std::string>()),
            std::string("\xff\x02"));
  // Ids are cursors of one epoch with increasing numbers.
  EXPECT_EQ(ev[1].id.substr(0, 17), ev[3].id.substr(0, 17));
  EXPECT_LT(std::stoull(ev[1].id.substr(17)), std::stoull(ev[2].id.substr(17)));
  EXPECT_LT(std::stoull(ev[2].id.substr(17)), std::stoull(ev[3].id.substr(17)));
}

TEST_F(HttpServerTest, ResumingFromACursorReplaysExactlyTheMissedEvents) {
  start();
  auto w = open_watch(server_->address(), "");
  ASSERT_TRUE(store_->put("a", "1"));
  auto first = read_events(*w, 2);
  ASSERT_EQ(first.size(), 2u);
  std::string cursor = first[1].id;
  w.reset();  // the client goes away

  // Missed while disconnected:
  ASSERT_TRUE(store_->put("b", "2"));
  ASSERT_TRUE(store_->del("a"));
  ASSERT_TRUE(store_->put("c", "3"));

  auto r = open_watch(server_->address(), "?cursor=" + cursor);
  auto ev = read_events(*r, 3);
  ASSERT_EQ(ev.size(), 3u) << r->data();
  EXPECT_EQ(ev[0].event, "put");
  EXPECT_EQ(json::parse(ev[0].data)["key"], "b");
  EXPECT_EQ(ev[1].event, "delete");
  EXPECT_EQ(json::parse(ev[1].data)["key"], "a");
  EXPECT_EQ(json::parse(ev[2].data)["key"], "c");
  // Nothing else was replayed: the next event is the next change.
  ASSERT_TRUE(store_->put("live-1", "x"));
  auto more = read_events(*r, 4);
  ASSERT_EQ(more.size(), 4u);
  EXPECT_EQ(json::parse(more[3].data)["key"], "live-1");

  // Last-Event-ID (what a browser's EventSource sends), from the middle.
  auto h = open_watch(server_->address(), "", "Last-Event-ID: " + ev[1].id + "\r\n");
  auto from_mid = read_events(*h, 2);
  ASSERT_EQ(from_mid.size(), 2u) << h->data();
  EXPECT_EQ(json::parse(from_mid[0].data)["key"], "c");
  EXPECT_EQ(json::parse(from_mid[1].data)["key"], "live-1");
  ASSERT_TRUE(store_->put("live-2", "x"));
  from_mid = read_events(*h, 3);
  ASSERT_EQ(from_mid.size(), 3u);
  EXPECT_EQ(json::parse(from_mid[2].data)["key"], "live-2");
  cursor = from_mid[2].id;

  // Resuming at the newest event gives nothing old.
  auto at_head = open_watch(server_->address(), "?cursor=" + cursor);
  ASSERT_TRUE(store_->put("after-head", "x"));
  auto last = read_events(*at_head, 1);
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(json::parse(last[0].data)["key"], "after-head");
}

TEST_F(HttpServerTest, ForeignOldOrFutureCursorGetsReset) {
  HttpConfig config;
  config.watch.max_ring_events = 3;
  start(config);
  auto w = open_watch(server_->address(), "");
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(store_->put("k" + std::to_string(i), "v"));
  auto ev = read_events(*w, 7);
  ASSERT_EQ(ev.size(), 7u);
  std::string epoch = ev[1].id.substr(0, 16);
  std::string foreign = (epoch == "0000000000000001" ? "0000000000000002" : "0000000000000001");

  // The oldest still resumable: the ring holds the last three events.
  auto ok = open_watch(server_->address(), "?cursor=" + ev[3].id);
  auto got = read_events(*ok, 3);
  ASSERT_GE(got.size(), 3u);
  EXPECT_EQ(got[0].event, "put");
  EXPECT_EQ(got[0].id, ev[4].id);

  auto expect_reset = [&](const std::string& cursor) {
    auto r = open_watch(server_->address(), "?cursor=" + cursor);
    auto events = read_events(*r, 1);
    ASSERT_EQ(events.size(), 1u) << cursor;
    EXPECT_EQ(events[0].event, "reset") << cursor;
    EXPECT_EQ(events[0].id.substr(0, 16), epoch) << "the reset carries the current cursor";
    // The stream carries on from now after the reset.
    ASSERT_TRUE(store_->put("after-reset-" + cursor, "v"));
    auto next = read_events(*r, 2);
    ASSERT_EQ(next.size(), 2u);
    EXPECT_EQ(next[1].event, "put");
  };
  expect_reset(foreign + "-3");      // another run
  expect_reset(ev[1].id);            // evicted from the ring of 3
  expect_reset(epoch + "-1000000");  // never given out

  auto bad = RawConn(server_->address());
  bad.send("GET /v1/watch?cursor=nonsense HTTP/1.1\r\n\r\n");
  EXPECT_NE(bad.read_to_eof().find("HTTP/1.1 400"), std::string::npos);
}

TEST_F(HttpServerTest, SlowSubscriberIsResetAndClosedWithoutBlockingWrites) {
  HttpConfig config;
  config.max_subscriber_events = 4;
  start(config);
  auto w = open_watch(server_->address(), "");
  read_events(*w, 1);  // ready
  // The client reads nothing more. Far more than the socket buffers hold:
  // every put must still complete (the commit thread never waits for it).
  std::string value(256 * 1024, 'v');
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(store_->put("k" + std::to_string(i), value));
  std::string all = w->read_to_eof();
  auto ev = parse_sse(all);
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.back().event, "reset") << "ends with a reset, then the server closes";
  EXPECT_LT(ev.size(), 200u);
  auto m = req("GET", "/metrics");
  EXPECT_NE(m.body.find("wavekv_http_watch_resets_total 1\n"), std::string::npos) << m.body;
}

TEST_F(HttpServerTest, HeartbeatsOnAnIdleStream) {
  HttpConfig config;
  config.heartbeat_ms = 20;
  start(config);
  auto w = open_watch(server_->address(), "");
  std::string out = w->read_until(": heartbeat\n\n");
  EXPECT_NE(out.find(": heartbeat\n\n"), std::string::npos);
}

TEST_F(HttpServerTest, ServerOnACallerOwnedIoContextWithTwoThreads) {
  Config c;
  c.data_dir = dir_ + "/db";
  c.durability = Durability::kNone;
  auto s = Store::open(c);
  ASSERT_TRUE(s);
  asio::io_context io;
  HttpConfig config;
  config.listen = "127.0.0.1:0";
  auto srv = HttpServer::start(io, **s, config);
  ASSERT_TRUE(srv) << srv.status().to_string();
  EXPECT_NE((*srv)->port(), 0);
  std::thread t1([&] { io.run(); }), t2([&] { io.run(); });
  std::string addr = (*srv)->address();
  for (int i = 0; i < 20; ++i) {
    auto r = http_request(addr, "PUT", "/v1/kv/k" + std::to_string(i), "v", kTimeoutMs);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  (*srv)->stop();
  t1.join();  // run() returns once the server has wound down
  t2.join();
  srv->reset();
  EXPECT_EQ((*s)->get("k19").value(), "v");
  EXPECT_FALSE(http_request(addr, "GET", "/healthz", "", 2000)) << "stopped: nobody listens";
}

TEST_F(HttpServerTest, BadListenAddressIsAnError) {
  Config c;
  c.data_dir = dir_ + "/db";
  auto s = Store::open(c);
  ASSERT_TRUE(s);
  asio::io_context io;
  HttpConfig config;
  config.listen = "nonsense";
  EXPECT_FALSE(HttpServer::start(io, **s, config));
  config.listen = "127.0.0.1:99999";
  EXPECT_FALSE(HttpServer::start(io, **s, config));
}

TEST(HttpClient, UnreachableNodeIsAnErrorNamingTheAddress) {
  // A port bound but not listening: connecting is refused, and while the
  // socket stays open no one else can take the port.
  asio::io_context io;
  asio::ip::tcp::acceptor a(io);
  a.open(asio::ip::tcp::v4());
  a.bind({asio::ip::make_address("127.0.0.1"), 0});
  std::string addr = "127.0.0.1:" + std::to_string(a.local_endpoint().port());
  auto r = http_request(addr, "GET", "/healthz", "", 5000);
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find(addr), std::string::npos) << r.status().to_string();
}

// ---------------------------------------------------------------------------
// The clients' memory budget (docs/HTTP.md, "Memory")

// A budget of 16 MiB (bodies up to 8 MiB): room for two replies of a 6 MiB
// value at once, not for three. (6 MiB is more than the kernel buffers on
// both ends take of a reply nobody reads: it stays with the server.)
HttpConfig small_budget() {
  HttpConfig c;
  c.limits.max_body_bytes = 8ull << 20;
  c.max_subscriber_bytes = 1ull << 20;
  c.max_client_memory_bytes = 16ull << 20;
  return c;
}

// Issue 12: clients that ask for a large value and never read the reply
// each made the server hold the whole reply. With the budget, replies are
// reserved before they are built: what is held never passes the limit, the
// rest wait, and everything goes back once the clients are gone.
TEST_F(HttpServerTest, NonReadingClientsNeverTakeTheServerPastItsMemoryBudget) {
  start(small_budget());
  const std::string value(6ull << 20, 'v');
  ASSERT_TRUE(store_->put("big", value).is_ok());
  std::vector<std::unique_ptr<RawConn>> clients;
  for (int i = 0; i < 16; ++i) {
    clients.push_back(std::make_unique<RawConn>(server_->address()));
    // A small receive buffer, so the unread reply stays with the server.
    clients.back()->socket().set_option(asio::socket_base::receive_buffer_size(4096));
    clients.back()->send("GET /v1/kv/big HTTP/1.1\r\nHost: x\r\n\r\n");
  }
  auto stats = [&] { return server_->server().stats(); };
  ASSERT_TRUE(test::eventually([&] { return stats().client_memory_waits > 0; }, 10, 10))
      << "some clients must wait for room";
  const HttpStats held = stats();
  EXPECT_LE(held.client_memory_peak_bytes, held.client_memory_limit_bytes);
  EXPECT_GE(held.client_memory_bytes, 2 * value.size()) << "two replies fit and are held";
  EXPECT_EQ(held.client_memory_limit_bytes, 16ull << 20);
  clients.clear();  // the clients go away without reading
  EXPECT_TRUE(test::eventually([&] { return stats().client_memory_bytes == 0; }, 10, 10))
      << "held: " << stats().client_memory_bytes;
  auto r = req("GET", "/v1/kv/big");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), value.size());
  EXPECT_LE(stats().client_memory_peak_bytes, 16ull << 20);
}

// A request's body is reserved as soon as its headers are in, before its
// bytes are read: a client that announces 6 MiB and sends none holds 6 MiB.
TEST_F(HttpServerTest, ABodyIsReservedWhenItsHeadersArrive) {
  start(small_budget());
  RawConn c(server_->address());
  c.send("PUT /v1/kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 6291456\r\n\r\n");
  auto stats = [&] { return server_->server().stats(); };
  ASSERT_TRUE(test::eventually([&] { return stats().client_memory_bytes == 6291456; }, 10, 10))
      << stats().client_memory_bytes;
  // Two more such uploads do not fit beside it (3 x 6 MiB > 16 MiB): the
  // third waits, holding nothing, instead of growing past the budget.
  RawConn d(server_->address()), e(server_->address());
  d.send("PUT /v1/kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 6291456\r\n\r\n");
  e.send("PUT /v1/kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 6291456\r\n\r\n");
  ASSERT_TRUE(test::eventually([&] { return stats().client_memory_waits == 1; }, 10, 10));
  EXPECT_EQ(stats().client_memory_bytes, 2 * 6291456u);
  // The first upload completes: its reply is written, the waiting one gets room.
  c.send(std::string(6291456, 'a'));
  EXPECT_NE(c.read_until("\r\n\r\n").find("200 OK"), std::string::npos);
  EXPECT_TRUE(
      test::eventually([&] { return stats().client_memory_bytes == 2 * 6291456u; }, 10, 10));
  EXPECT_EQ(store_->get("k").value().size(), 6291456u);
}

// A watch stream holds its queue's bound (max_subscriber_bytes) for its
// life: with room for exactly two, the third is refused with 503 and
// Retry-After, and a stream that ends gives its share back.
TEST_F(HttpServerTest, AWatchStreamHoldsItsQueueBoundAndAThirdIsRefused) {
  HttpConfig c = small_budget();
  c.max_subscriber_bytes = 8ull << 20;  // 2 x 8 MiB = the 16 MiB budget
  start(c);
  auto stats = [&] { return server_->server().stats(); };
  auto w1 = open_watch(server_->address(), "");
  auto w2 = open_watch(server_->address(), "");
  EXPECT_NE(w2->data().find("200 OK"), std::string::npos) << w2->data();
  EXPECT_EQ(stats().client_memory_bytes, 16ull << 20);
  auto w3 = open_watch(server_->address(), "");
  EXPECT_NE(w3->data().find("503"), std::string::npos) << w3->data();
  EXPECT_NE(w3->data().find("Retry-After: 1"), std::string::npos) << w3->data();
  w1.reset();
  ASSERT_TRUE(test::eventually([&] { return stats().client_memory_bytes == 8ull << 20; }, 10, 10))
      << stats().client_memory_bytes;
  auto w4 = open_watch(server_->address(), "");
  EXPECT_NE(w4->data().find("200 OK"), std::string::npos) << w4->data();
}

// GET /v1/kv stops a page at max_page_bytes of keys and values: a page
// exactly at the bound holds both items, one byte more ends it after the
// first (and next names the second).
TEST_F(HttpServerTest, AListingPageStopsAtItsByteBound) {
  HttpConfig c;
  c.max_page_bytes = 2 * (2 + 1000);  // keys "a1", "a2", values of 1000 bytes
  start(c);
  for (const char* k : {"a1", "a2", "a3"}) ASSERT_TRUE(store_->put(k, std::string(1000, 'x')));
  json at = req_json("GET", "/v1/kv?prefix=a&limit=10");
  ASSERT_EQ(at["items"].size(), 2u) << "exactly at the bound: both";
  EXPECT_EQ(at["next"], "a3");
  ASSERT_TRUE(store_->put("a2", std::string(1001, 'x')));
  json over = req_json("GET", "/v1/kv?prefix=a&limit=10");
  ASSERT_EQ(over["items"].size(), 1u) << "one byte over: the page ends after a1";
  EXPECT_EQ(over["next"], "a2");
  // One item larger than the bound still comes back, alone.
  ASSERT_TRUE(store_->put("a1", std::string(5000, 'x')));
  json big = req_json("GET", "/v1/kv?prefix=a&limit=10");
  ASSERT_EQ(big["items"].size(), 1u);
  EXPECT_EQ(big["next"], "a2");
}

}  // namespace
}  // namespace wavekv::http
