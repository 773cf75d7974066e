// kv_load: one load generator for WaveKV, Redis and etcd, so that every
// system in bench/compare.sh sees the same workload from the same client code.
//
// Protocols: `resp` (WaveKV's Redis-compatible port, redis-server) and `etcd`
// (etcd's HTTP/JSON gateway, POST /v3/kv/put and /v3/kv/range, base64 keys and
// values, HTTP/1.1 keep-alive). One blocking connection per client thread.
//
// Modes:
//   set      C clients write random keys of a key space (SET / put)
//   get      C clients read random keys of a key space (GET / range)
//   load     C clients write keys 0..K-1 once each (fills a key space)
//   visible  one client writes on the first address, then polls every other
//            address until the value is there; per write: ack time and time
//            until visible on all nodes
//   await    retry connect + GET of one key until it has a value (restart time)
//
// Keys are "key-%012llu" (16 bytes); values are --value-bytes long. Latency of
// a request is from sending its batch (--pipeline requests) to reading its
// reply. Prints a table line, or one JSON line with --json.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using Steady = std::chrono::steady_clock;

namespace {

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "kv_load: %s\n", msg.c_str());
  std::exit(1);
}

std::string make_key(uint64_t i) {
  char key[32];
  std::snprintf(key, sizeof key, "key-%012llu", static_cast<unsigned long long>(i));
  return key;
}

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t n = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8) |
                       uint32_t(uint8_t(in[i + 2]));
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t n = uint32_t(uint8_t(in[i])) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t n = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

// A blocking TCP connection with a read buffer.
class Conn {
 public:
  explicit Conn(const std::string& host_port) : addr_(host_port) {}
  ~Conn() { close(); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  bool connect() {
    close();
    const auto colon = addr_.rfind(':');
    if (colon == std::string::npos) die("address needs HOST:PORT: " + addr_);
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(addr_.substr(0, colon).c_str(), addr_.substr(colon + 1).c_str(), &hints,
                    &res) != 0)
      die("cannot resolve " + addr_);
    fd_ = ::socket(res->ai_family, res->ai_socktype, 0);
    const bool ok = fd_ >= 0 && ::connect(fd_, res->ai_addr, res->ai_addrlen) == 0;
    freeaddrinfo(res);
    if (!ok) {
      close();
      return false;
    }
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    buf_.clear();
    pos_ = 0;
    return true;
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // A line without its CRLF.
  std::optional<std::string> line() {
    while (true) {
      const auto crlf = buf_.find("\r\n", pos_);
      if (crlf != std::string::npos) {
        std::string l = buf_.substr(pos_, crlf - pos_);
        pos_ = crlf + 2;
        return l;
      }
      if (!fill()) return std::nullopt;
    }
  }
  std::optional<std::string> bytes(size_t n) {
    while (buf_.size() - pos_ < n)
      if (!fill()) return std::nullopt;
    std::string b = buf_.substr(pos_, n);
    pos_ += n;
    return b;
  }

 private:
  bool fill() {
    if (pos_ > 0) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    char tmp[64 * 1024];
    const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  std::string addr_;
  int fd_ = -1;
  std::string buf_;
  size_t pos_ = 0;
};

// One request/reply protocol. A reply is "ok" (written / found) or not;
// `value` receives a GET's value (empty when absent).
class Client {
 public:
  virtual ~Client() = default;
  virtual void add_set(std::string& out, const std::string& key, const std::string& value) = 0;
  virtual void add_get(std::string& out, const std::string& key) = 0;
  // Reads one reply; false on a broken connection or an error reply.
  virtual bool read_reply(Conn& c, std::string* value) = 0;
};

class RespClient : public Client {
 public:
  void add_set(std::string& out, const std::string& key, const std::string& value) override {
    out += "*3\r\n$3\r\nSET\r\n$" + std::to_string(key.size()) + "\r\n" + key + "\r\n$" +
           std::to_string(value.size()) + "\r\n" + value + "\r\n";
  }
  void add_get(std::string& out, const std::string& key) override {
    out += "*2\r\n$3\r\nGET\r\n$" + std::to_string(key.size()) + "\r\n" + key + "\r\n";
  }
  bool read_reply(Conn& c, std::string* value) override {
    auto l = c.line();
    if (!l || l->empty()) return false;
    if (value) value->clear();
    switch ((*l)[0]) {
      case '+':
      case ':': return true;
      case '$': {
        const long n = std::stol(l->substr(1));
        if (n < 0) return true;
        auto b = c.bytes(static_cast<size_t>(n) + 2);
        if (!b) return false;
        if (value) *value = b->substr(0, static_cast<size_t>(n));
        return true;
      }
      default: std::fprintf(stderr, "kv_load: server replied %s\n", l->c_str()); return false;
    }
  }
};

class EtcdClient : public Client {
 public:
  explicit EtcdClient(std::string host) : host_(std::move(host)) {}
  void add_set(std::string& out, const std::string& key, const std::string& value) override {
    post(out, "/v3/kv/put",
         "{\"key\":\"" + base64(key) + "\",\"value\":\"" + base64(value) + "\"}");
  }
  void add_get(std::string& out, const std::string& key) override {
    post(out, "/v3/kv/range", "{\"key\":\"" + base64(key) + "\"}");
  }
  // Body of one HTTP/1.1 response, Content-Length or chunked. `value` gets
  // the base64 of the first kv's value (compared as base64 by callers).
  bool read_reply(Conn& c, std::string* value) override {
    auto status = c.line();
    if (!status) return false;
    size_t length = 0;
    bool chunked = false;
    while (true) {
      auto h = c.line();
      if (!h) return false;
      if (h->empty()) break;
      std::string lower = *h;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
      if (lower.rfind("content-length:", 0) == 0) length = std::stoul(lower.substr(15));
      if (lower.rfind("transfer-encoding:", 0) == 0 && lower.find("chunked") != std::string::npos)
        chunked = true;
    }
    std::string body;
    if (chunked) {
      while (true) {
        auto size_line = c.line();
        if (!size_line) return false;
        const size_t n = std::stoul(*size_line, nullptr, 16);
        auto chunk = c.bytes(n + 2);
        if (!chunk) return false;
        if (n == 0) break;
        body += chunk->substr(0, n);
      }
    } else {
      auto b = c.bytes(length);
      if (!b) return false;
      body = std::move(*b);
    }
    if (status->find(" 200 ") == std::string::npos) {
      std::fprintf(stderr, "kv_load: etcd replied %s %s\n", status->c_str(), body.c_str());
      return false;
    }
    if (value) {
      value->clear();
      const auto at = body.find("\"value\":\"");
      if (at != std::string::npos) {
        const auto start = at + 9;
        *value = body.substr(start, body.find('"', start) - start);
      }
    }
    return true;
  }

 private:
  void post(std::string& out, const char* path, const std::string& body) {
    out += std::string("POST ") + path + " HTTP/1.1\r\nHost: " + host_ +
           "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body;
  }
  std::string host_;
};

struct Options {
  std::string proto = "resp";
  std::vector<std::string> addrs;
  std::string mode = "set";
  int clients = 50;
  int pipeline = 1;
  uint64_t requests = 100'000;
  double seconds = 0;
  uint64_t keys = 100'000;
  int value_bytes = 100;
  std::string key;  // await
  double timeout_s = 600;
  std::string label;
  bool json = false;
};

std::unique_ptr<Client> make_client(const Options& o, const std::string& addr) {
  if (o.proto == "resp") return std::make_unique<RespClient>();
  if (o.proto == "etcd") return std::make_unique<EtcdClient>(addr);
  die("--proto is resp or etcd");
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return v[i];
}

double micros_since(Steady::time_point t0) {
  return std::chrono::duration<double, std::micro>(Steady::now() - t0).count();
}

// set / get / load: C threads, each with its own connection and samples.
int run_load(const Options& o) {
  const bool write = o.mode != "get";
  const bool sequential = o.mode == "load";
  std::atomic<uint64_t> next{0};  // load: next key to write; else requests issued
  std::atomic<uint64_t> errors{0}, misses{0};
  std::vector<std::vector<double>> samples(static_cast<size_t>(o.clients));
  const uint64_t total = sequential ? o.keys : o.requests;
  const std::string value(static_cast<size_t>(o.value_bytes), 'v');
  const auto t0 = Steady::now();
  const auto deadline =
      t0 + std::chrono::duration_cast<Steady::duration>(std::chrono::duration<double>(o.seconds));
  std::vector<std::thread> threads;
  for (int t = 0; t < o.clients; t++) {
    threads.emplace_back([&, t] {
      const std::string& addr = o.addrs[static_cast<size_t>(t) % o.addrs.size()];
      Conn conn(addr);
      if (!conn.connect()) die("cannot connect to " + addr);
      auto client = make_client(o, addr);
      std::mt19937_64 rng(static_cast<uint64_t>(t) * 7919 + 1);
      auto& mine = samples[static_cast<size_t>(t)];
      std::string out, got;
      while (true) {
        if (o.seconds > 0 && Steady::now() >= deadline) break;
        const uint64_t first = next.fetch_add(static_cast<uint64_t>(o.pipeline));
        if (o.seconds <= 0 && first >= total) break;
        const uint64_t n =
            o.seconds > 0 ? static_cast<uint64_t>(o.pipeline)
                          : std::min<uint64_t>(static_cast<uint64_t>(o.pipeline), total - first);
        out.clear();
        for (uint64_t i = 0; i < n; i++) {
          const std::string key = make_key(sequential ? first + i : rng() % o.keys);
          if (write)
            client->add_set(out, key, value);
          else
            client->add_get(out, key);
        }
        const auto sent = Steady::now();
        if (!conn.send(out)) die("connection to " + addr + " broke");
        for (uint64_t i = 0; i < n; i++) {
          if (!client->read_reply(conn, write ? nullptr : &got)) {
            errors++;
            if (!conn.connect()) die("connection to " + addr + " broke");
            break;
          }
          if (!write && got.empty()) misses++;
          mine.push_back(micros_since(sent));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  const double elapsed = std::chrono::duration<double>(Steady::now() - t0).count();
  std::vector<double> all;
  for (auto& s : samples) all.insert(all.end(), s.begin(), s.end());
  const double ops = static_cast<double>(all.size());
  const double p50 = percentile(all, 0.50), p99 = percentile(all, 0.99);
  if (o.json)
    std::printf(
        "{\"label\":\"%s\",\"proto\":\"%s\",\"mode\":\"%s\",\"nodes\":%zu,\"clients\":%d,"
        "\"pipeline\":%d,\"value_bytes\":%d,\"ops\":%.0f,\"seconds\":%.3f,\"ops_per_s\":%.0f,"
        "\"p50_us\":%.0f,\"p99_us\":%.0f,\"errors\":%llu,\"misses\":%llu}\n",
        o.label.c_str(), o.proto.c_str(), o.mode.c_str(), o.addrs.size(), o.clients, o.pipeline,
        o.value_bytes, ops, elapsed, ops / elapsed, p50, p99,
        static_cast<unsigned long long>(errors.load()),
        static_cast<unsigned long long>(misses.load()));
  else
    std::printf("%-20s %-8s %10.0f ops/s  p50 %8.0f us  p99 %8.0f us  errors %llu misses %llu\n",
                o.label.c_str(), o.mode.c_str(), ops / elapsed, p50, p99,
                static_cast<unsigned long long>(errors.load()),
                static_cast<unsigned long long>(misses.load()));
  return errors.load() == 0 ? 0 : 1;
}

// One writer on addrs[0]; after each acknowledged write, poll the others
// (round robin, back to back) until each returns the new value.
int run_visible(const Options& o) {
  if (o.addrs.size() < 2) die("--mode visible needs at least two --addr");
  std::vector<std::unique_ptr<Conn>> conns;
  std::vector<std::unique_ptr<Client>> clients;
  for (const auto& a : o.addrs) {
    conns.push_back(std::make_unique<Conn>(a));
    if (!conns.back()->connect()) die("cannot connect to " + a);
    clients.push_back(make_client(o, a));
  }
  const bool etcd = o.proto == "etcd";
  std::vector<double> ack_us, visible_us;
  std::string out, got;
  const auto stop_at = Steady::now() + std::chrono::duration_cast<Steady::duration>(
                                           std::chrono::duration<double>(o.timeout_s));
  // Keys unique to this run: a key (and value) an earlier run already wrote
  // everywhere would read as visible at once.
  const std::string run_id = std::to_string(std::random_device{}()) + "-" +
                             std::to_string(Steady::now().time_since_epoch().count());
  for (uint64_t w = 0; w < o.requests; w++) {
    const std::string key = "vis-" + run_id + "-" + std::to_string(w);
    std::string value = std::to_string(w) + "-";
    value.resize(static_cast<size_t>(o.value_bytes), 'v');
    const std::string expect = etcd ? base64(value) : value;
    out.clear();
    clients[0]->add_set(out, key, value);
    const auto t0 = Steady::now();
    if (!conns[0]->send(out) || !clients[0]->read_reply(*conns[0], nullptr))
      die("write failed on " + o.addrs[0]);
    ack_us.push_back(micros_since(t0));
    std::vector<bool> seen(o.addrs.size(), false);
    seen[0] = true;
    size_t left = o.addrs.size() - 1;
    while (left > 0) {
      if (Steady::now() > stop_at) die("a write never became visible on every node");
      for (size_t i = 1; i < o.addrs.size(); i++) {
        if (seen[i]) continue;
        out.clear();
        clients[i]->add_get(out, key);
        if (!conns[i]->send(out) || !clients[i]->read_reply(*conns[i], &got))
          die("read failed on " + o.addrs[i]);
        if (got == expect) {
          seen[i] = true;
          left--;
        }
      }
    }
    visible_us.push_back(micros_since(t0));
  }
  const double a50 = percentile(ack_us, 0.5), a99 = percentile(ack_us, 0.99);
  const double v50 = percentile(visible_us, 0.5), v99 = percentile(visible_us, 0.99);
  if (o.json)
    std::printf(
        "{\"label\":\"%s\",\"proto\":\"%s\",\"mode\":\"visible\",\"nodes\":%zu,\"writes\":%llu,"
        "\"ack_p50_us\":%.0f,\"ack_p99_us\":%.0f,\"visible_p50_us\":%.0f,"
        "\"visible_p99_us\":%.0f}\n",
        o.label.c_str(), o.proto.c_str(), o.addrs.size(),
        static_cast<unsigned long long>(o.requests), a50, a99, v50, v99);
  else
    std::printf(
        "%-20s visible  ack p50 %8.0f us p99 %8.0f us  all nodes p50 %8.0f us p99 %8.0f us\n",
        o.label.c_str(), a50, a99, v50, v99);
  return 0;
}

// Until GET key has a value: reconnect every 2 ms while the server starts.
int run_await(const Options& o) {
  const auto t0 = Steady::now();
  Conn conn(o.addrs[0]);
  auto client = make_client(o, o.addrs[0]);
  std::string out, got;
  bool connected = false;
  while (std::chrono::duration<double>(Steady::now() - t0).count() < o.timeout_s) {
    if (!connected) connected = conn.connect();
    if (connected) {
      out.clear();
      client->add_get(out, o.key);
      if (conn.send(out) && client->read_reply(conn, &got)) {
        if (!got.empty()) {
          std::printf("%.3f\n", micros_since(t0) / 1e6);
          return 0;
        }
      } else {
        connected = false;  // loading (Redis: -LOADING) or not listening yet
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  die("key " + o.key + " never appeared on " + o.addrs[0]);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Load generator for WaveKV, Redis (RESP) and etcd (HTTP/JSON gateway)"};
  Options o;
  app.add_option("--proto", o.proto, "resp | etcd")->capture_default_str();
  app.add_option("--addr", o.addrs, "HOST:PORT; repeat or comma-separate (clients round-robin)")
      ->delimiter(',')
      ->required();
  app.add_option("--mode", o.mode, "set | get | load | visible | await")->capture_default_str();
  app.add_option("--clients", o.clients, "Connections, one thread each")->capture_default_str();
  app.add_option("--pipeline", o.pipeline, "Requests per batch")->capture_default_str();
  app.add_option("--requests", o.requests, "Requests in all (set/get), writes (visible)")
      ->capture_default_str();
  app.add_option("--seconds", o.seconds, "Run set/get this long instead of --requests");
  app.add_option("--keys", o.keys, "Key space (set/get), keys to write (load)")
      ->capture_default_str();
  app.add_option("--value-bytes", o.value_bytes, "Value size")->capture_default_str();
  app.add_option("--key", o.key, "Key to wait for (await)");
  app.add_option("--timeout", o.timeout_s, "Give up after this many seconds (visible, await)");
  app.add_option("--label", o.label, "Name printed with the result");
  app.add_flag("--json", o.json, "One JSON line");
  CLI11_PARSE(app, argc, argv);
  if (o.clients < 1 || o.pipeline < 1 || o.keys < 1) die("--clients, --pipeline, --keys >= 1");
  if (o.label.empty()) o.label = o.proto;
  if (o.mode == "visible") return run_visible(o);
  if (o.mode == "await") return run_await(o);
  if (o.mode == "set" || o.mode == "get" || o.mode == "load") return run_load(o);
  die("unknown --mode " + o.mode);
}
