// Replication figures of real nodes on loopback TCP, in one process:
//  latency     a write on node A until it is visible on node C (C knows only
//              B, B knows A), p50/p99 over N writes, one at a time;
//  throughput  K keys written on A in batches until C holds them all;
//  bootstrap   time for a new, empty node to hold all of A's keys.
// With --security all, each figure is taken for every peer security mode
// (plain TCP, cluster key, mutual TLS), one after another in one run, with
// the ratio to plain TCP. Prints a table, or JSON lines with --json. See
// BENCHMARKS.md.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "wavekv/node.h"
#include "wavekv/security.h"

using namespace wavekv;
using Steady = std::chrono::steady_clock;

namespace {

const std::filesystem::path kRoot = std::filesystem::temp_directory_path() / "wavekv-node-bench";

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "node_bench: %s\n", what.c_str());
  std::exit(1);
}

std::string fresh_dir(const std::string& name) {
  auto d = kRoot / name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

// How the nodes of one run authenticate each other.
struct Security {
  std::string name;  // "tcp", "cluster-key", "mutual-tls"
  PeerSecurity::Mode mode = PeerSecurity::Mode::kNone;
  std::string key_file;   // cluster-key
  std::string certs_dir;  // mutual-tls: ca.crt, node.<id>.crt/.key
};

Security make_security(const std::string& name) {
  Security s;
  s.name = name;
  if (name == "tcp") return s;
  const std::string dir = fresh_dir("secrets-" + name);
  if (name == "cluster-key") {
    auto text = generate_cluster_key_file();
    if (!text) die(text.status().to_string());
    s.mode = PeerSecurity::Mode::kClusterKey;
    s.key_file = dir + "/cluster.key";
    std::ofstream(s.key_file) << *text;
    std::filesystem::permissions(s.key_file, std::filesystem::perms::owner_read);
    return s;
  }
  if (name != "mutual-tls") die("unknown --security " + name);
  s.mode = PeerSecurity::Mode::kMutualTls;
  s.certs_dir = dir;
  if (auto ca = init_ca({dir, false}); !ca) die(ca.status().to_string());
  for (NodeId id = 1; id <= 4; id++) {
    auto cert = issue_node_cert({dir, std::to_string(id), id, {"127.0.0.1"}, false});
    if (!cert) die(cert.status().to_string());
  }
  return s;
}

// Node `id` (1..4) of a run.
std::unique_ptr<Node> start(const Security& sec, NodeId id, std::vector<std::string> peers) {
  NodeConfig c;
  c.store.data_dir = fresh_dir(sec.name + "-" + std::to_string(id));
  c.store.node_id = id;
  c.store.durability = Durability::kAlways;
  c.listen = "127.0.0.1:0";
  c.peers = std::move(peers);
  c.transport.security.mode = sec.mode;
  c.transport.security.cluster_key_file = sec.key_file;
  if (sec.mode == PeerSecurity::Mode::kMutualTls) {
    c.transport.security.ca_file = sec.certs_dir + "/ca.crt";
    c.transport.security.cert_file = sec.certs_dir + "/node." + std::to_string(id) + ".crt";
    c.transport.security.key_file = sec.certs_dir + "/node." + std::to_string(id) + ".key";
  }
  auto n = Node::start(c);
  if (!n) die(n.status().to_string());
  return std::move(n).value();
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

struct Figures {
  double p50_ms = 0, p99_ms = 0;
  double throughput_keys_per_s = 0;
  double bootstrap_s = 0;
};

void wait_keys(Node& n, uint64_t keys) {
  auto until = Steady::now() + std::chrono::minutes(5);
  while (n.store().status().live_keys < keys) {
    if (Steady::now() > until) die("keys never arrived");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Figures run(const Security& sec, int writes, int gap_ms, uint64_t keys) {
  Figures f;
  // Latency A -> C through a chain of seeds (discovery makes it a mesh).
  auto a = start(sec, 1, {});
  auto b = start(sec, 2, {a->peer_address()});
  auto c = start(sec, 3, {b->peer_address()});
  while (c->status().members.size() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::mutex mu;
  std::condition_variable cv;
  std::string seen;
  c->store().watch("lat-", [&](const WatchEvent& e) {
    std::lock_guard lock(mu);
    seen = e.key;
    cv.notify_all();
  });
  std::vector<double> ms;
  for (int i = 0; i < writes; i++) {
    std::string key = "lat-" + std::to_string(i);
    if (gap_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms));
    auto t0 = Steady::now();
    if (!a->store().put(key, "v").is_ok()) die("put failed");
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(30), [&] { return seen == key; }))
      die("write " + std::to_string(i) + " never reached node C");
    ms.push_back(std::chrono::duration<double, std::milli>(Steady::now() - t0).count());
  }
  f.p50_ms = percentile(ms, 0.5);
  f.p99_ms = percentile(ms, 0.99);

  // Throughput: `keys` keys (16-byte keys, 100-byte values) written on A in
  // batches of 1000, until C holds them all.
  const std::string value(100, 'x');
  auto t0 = Steady::now();
  for (uint64_t i = 0; i < keys;) {
    WriteBatch batch;
    for (int j = 0; j < 1000 && i < keys; j++, i++) {
      char key[32];
      std::snprintf(key, sizeof key, "key-%012llu", static_cast<unsigned long long>(i));
      batch.put(std::string_view(key, 16), value);
    }
    if (!a->store().write(batch).is_ok()) die("batch failed");
  }
  const uint64_t total = keys + static_cast<uint64_t>(writes);
  wait_keys(*c, total);
  f.throughput_keys_per_s =
      static_cast<double>(keys) / std::chrono::duration<double>(Steady::now() - t0).count();
  (void)b->stop();
  (void)c->stop();

  // Bootstrap: a new node pointed at A pulls everything.
  t0 = Steady::now();
  auto d = start(sec, 4, {a->peer_address()});
  wait_keys(*d, total);
  f.bootstrap_s = std::chrono::duration<double>(Steady::now() - t0).count();
  (void)d->stop();
  (void)a->stop();
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"WaveKV replication latency, throughput and bootstrap time"};
  int writes = 500;
  uint64_t keys = 1'000'000;
  bool json = false;
  int gap_ms = 20;
  std::string security = "tcp";
  app.add_option("--writes", writes, "Writes for the latency figure");
  app.add_option("--gap-ms", gap_ms,
                 "Pause between latency writes (0: back to back, which measures the push "
                 "spacing push_delay_ms instead of the path)")
      ->capture_default_str();
  app.add_option("--keys", keys, "Keys for the throughput and bootstrap figures");
  app.add_option("--security", security, "tcp | cluster-key | mutual-tls | all")
      ->capture_default_str();
  app.add_flag("--json", json, "JSON lines instead of a table");
  CLI11_PARSE(app, argc, argv);

  std::vector<std::string> modes = {security};
  if (security == "all") modes = {"tcp", "cluster-key", "mutual-tls"};
  std::vector<Figures> figures;
  for (const auto& m : modes) figures.push_back(run(make_security(m), writes, gap_ms, keys));
  std::filesystem::remove_all(kRoot);

  if (json) {
    for (size_t i = 0; i < modes.size(); i++) {
      const Figures& f = figures[i];
      std::printf(
          "{\"security\":\"%s\",\"writes\":%d,\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"keys\":%llu,"
          "\"throughput_keys_per_s\":%.0f,\"bootstrap_s\":%.2f}\n",
          modes[i].c_str(), writes, f.p50_ms, f.p99_ms, static_cast<unsigned long long>(keys),
          f.throughput_keys_per_s, f.bootstrap_s);
    }
    return 0;
  }
  std::printf("%-12s %12s %12s %16s %14s\n", "security", "A->C p50 ms", "A->C p99 ms",
              "A->C keys/s", "bootstrap s");
  for (size_t i = 0; i < modes.size(); i++) {
    const Figures& f = figures[i];
    std::printf("%-12s %12.2f %12.2f %16.0f %14.2f\n", modes[i].c_str(), f.p50_ms, f.p99_ms,
                f.throughput_keys_per_s, f.bootstrap_s);
  }
  if (modes.size() > 1) {
    std::printf("\nratio to tcp (time: >1 is slower; keys/s: <1 is slower)\n");
    for (size_t i = 1; i < modes.size(); i++) {
      const Figures &f = figures[i], &t = figures[0];
      std::printf("%-12s %12.2f %12.2f %16.2f %14.2f\n", modes[i].c_str(), f.p50_ms / t.p50_ms,
                  f.p99_ms / t.p99_ms, f.throughput_keys_per_s / t.throughput_keys_per_s,
                  f.bootstrap_s / t.bootstrap_s);
    }
  }
  return 0;
}
