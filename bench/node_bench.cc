// Replication figures of real nodes on loopback TCP, in one process:
//  latency  a write on node A until it is visible on node C (C knows only B,
//           B knows A), p50/p99 over N writes, one at a time;
//  bootstrap  time for a new, empty node to hold all of a node's K keys.
// Prints a table, or JSON lines with --json. See BENCHMARKS.md.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>

#include "wavekv/node.h"

using namespace wavekv;
using Steady = std::chrono::steady_clock;

namespace {

std::string fresh_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("wavekv-node-bench-" + name);
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

std::unique_ptr<Node> start(const std::string& name, std::vector<std::string> peers,
                            Durability durability) {
  NodeConfig c;
  c.store.data_dir = fresh_dir(name);
  c.store.durability = durability;
  c.listen = "127.0.0.1:0";
  c.peers = std::move(peers);
  auto n = Node::start(c);
  if (!n) {
    std::fprintf(stderr, "node_bench: %s\n", n.status().to_string().c_str());
    std::exit(1);
  }
  return std::move(n).value();
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"WaveKV replication latency and bootstrap time"};
  int writes = 500;
  uint64_t keys = 1'000'000;
  bool json = false;
  int gap_ms = 20;
  app.add_option("--writes", writes, "Writes for the latency figure");
  app.add_option("--gap-ms", gap_ms,
                 "Pause between latency writes (0: back to back, which measures the push "
                 "spacing push_delay_ms instead of the path)")
      ->capture_default_str();
  app.add_option("--keys", keys, "Keys for the bootstrap figure");
  app.add_flag("--json", json, "JSON lines instead of a table");
  CLI11_PARSE(app, argc, argv);

  // Latency A -> C through a chain of seeds (discovery makes it a mesh).
  auto a = start("a", {}, Durability::kAlways);
  auto b = start("b", {a->peer_address()}, Durability::kAlways);
  auto c = start("c", {b->peer_address()}, Durability::kAlways);
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
    if (!a->store().put(key, "v").is_ok()) return 1;
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(30), [&] { return seen == key; })) {
      std::fprintf(stderr, "node_bench: write %d never reached node C\n", i);
      return 1;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(Steady::now() - t0).count());
  }
  const double p50 = percentile(ms, 0.5), p99 = percentile(ms, 0.99);
  (void)b->stop();
  (void)c->stop();

  // Bootstrap: node A gets `keys` keys (16-byte keys, 100-byte values), then
  // a new node pointed at A pulls them all.
  const std::string value(100, 'x');
  for (uint64_t i = 0; i < keys;) {
    WriteBatch batch;
    for (int j = 0; j < 1000 && i < keys; j++, i++) {
      char key[32];
      std::snprintf(key, sizeof key, "key-%012llu", static_cast<unsigned long long>(i));
      batch.put(std::string_view(key, 16), value);
    }
    if (!a->store().write(batch).is_ok()) return 1;
  }
  auto t0 = Steady::now();
  auto d = start("d", {a->peer_address()}, Durability::kAlways);
  while (d->store().status().live_keys < keys + static_cast<uint64_t>(writes))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double boot_s = std::chrono::duration<double>(Steady::now() - t0).count();
  (void)d->stop();
  (void)a->stop();

  if (json) {
    std::printf(
        "{\"figure\":\"replication_latency\",\"writes\":%d,\"p50_ms\":%.2f,\"p99_ms\":%.2f}\n",
        writes, p50, p99);
    std::printf("{\"figure\":\"bootstrap\",\"keys\":%llu,\"seconds\":%.2f}\n",
                static_cast<unsigned long long>(keys), boot_s);
  } else {
    std::printf("%-44s %10s\n", "figure", "value");
    std::printf("%-44s %8.2f ms\n", "write on A visible on C, p50", p50);
    std::printf("%-44s %8.2f ms\n", "write on A visible on C, p99", p99);
    std::printf("%-44s %8.2f s\n",
                ("new node bootstraps " + std::to_string(keys) + " keys").c_str(), boot_s);
  }
  return 0;
}
