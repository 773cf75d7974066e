// sim: runs the deterministic cluster simulation on demand.
//   sim --seed N [--nodes K] [--fault-ms T]     one seed, verbose
//   sim --seeds N [--nodes K] [--fault-ms T]    seeds 1..N, a summary
//   sim --scale --nodes-list 10,100,1000 --fanouts 1,2,3 [--writers K] [--writes W]
//       [--seed S | --seeds N] [--discover] [--json]
//                                               rounds and bytes to converge, per (N, fanout)
#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "sim/scale.h"
#include "sim/scenario.h"

namespace {

struct ScaleArgs {
  std::vector<int> nodes{10, 100, 1000};
  std::vector<uint32_t> fanouts{1, 2, 3};
  int writers = 10;
  int writes = 10;
  size_t value_bytes = 100;
  uint32_t max_rounds = 300;
  bool discover = false;
  bool json = false;
};

// Runs seeds first..last for every (nodes, fanout) and prints the means (and
// the range of rounds) as a table, then one JSON line per cell with --json.
int run_scale_mode(const ScaleArgs& a, uint64_t first, uint64_t last) {
  const wavekv::ReplicaConfig defaults;
  std::printf(
      "# scale: seeds %llu..%llu, %s writers x %d keys of %zu B, %s membership; sync_interval "
      "%llu ms, push_delay %llu ms, digest every %u rounds, delay 1-20 ms, no faults\n",
      static_cast<unsigned long long>(first), static_cast<unsigned long long>(last),
      a.writers <= 0 ? "all" : std::to_string(a.writers).c_str(), a.writes, a.value_bytes,
      a.discover ? "discovered (seed: node 0)" : "complete",
      static_cast<unsigned long long>(defaults.sync_interval_ms),
      static_cast<unsigned long long>(defaults.push_delay_ms), defaults.digest_every_rounds);
  std::printf("%6s %6s %6s %11s %7s %9s %9s %11s %9s %11s %11s %7s\n", "nodes", "fanout", "rounds",
              "(min-max)", "keys", "MB total", "KB/node", "max KB/node", "msgs/node", "idle B/n/rd",
              a.discover ? "members rd" : "idle msg/rd", "wall s");
  std::string json;
  int failed = 0;
  const double runs = static_cast<double>(last - first + 1);
  for (int n : a.nodes) {
    for (uint32_t f : a.fanouts) {
      double rounds = 0, rmin = 1e18, rmax = 0, bytes = 0, per_node = 0, msgs = 0, idle = 0,
             idle_msgs = 0, members = 0, wall = 0;
      uint64_t max_node = 0, keys = 0;
      std::array<double, std::variant_size_v<wavekv::Body>> by_body{}, idle_by_body{};
      std::string failures;
      for (uint64_t s = first; s <= last; s++) {
        wavekv::sim::ScaleOptions o;
        o.seed = s;
        o.nodes = n;
        o.writers = a.writers;
        o.writes_per_writer = a.writes;
        o.value_bytes = a.value_bytes;
        o.discover = a.discover;
        o.max_rounds = a.max_rounds;
        o.replica.fanout = f;
        const auto start = std::chrono::steady_clock::now();
        wavekv::sim::ScaleResult r = wavekv::sim::run_scale(o);
        wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (!r.failure.empty()) {
          failures += " seed " + std::to_string(s) + ": " + r.failure + ";";
          continue;
        }
        rounds += r.rounds / runs;
        rmin = std::min(rmin, r.rounds);
        rmax = std::max(rmax, r.rounds);
        bytes += static_cast<double>(r.bytes) / runs;
        per_node += r.bytes_per_node(n) / runs;
        msgs += r.messages_per_node(n) / runs;
        idle += r.idle_bytes_per_node_round / runs;
        idle_msgs += r.idle_messages_per_node_round / runs;
        members += static_cast<double>(r.members_ms) / defaults.sync_interval_ms / runs;
        max_node = std::max(max_node, r.max_node_bytes);
        keys = r.keys;
        for (size_t b = 0; b < by_body.size(); b++) {
          by_body[b] += static_cast<double>(r.bytes_by_body[b]) / runs;
          idle_by_body[b] += static_cast<double>(r.idle_bytes_by_body[b]) / runs;
        }
      }
      if (!failures.empty()) {
        failed++;
        std::printf("%6d %6u FAILED:%s\n", n, f, failures.c_str());
        std::fflush(stdout);
        continue;
      }
      std::printf("%6d %6u %6.2f %5.2f-%5.2f %7llu %9.2f %9.1f %11.1f %9.1f %11.0f %11.1f %7.1f\n",
                  n, f, rounds, rmin, rmax, static_cast<unsigned long long>(keys), bytes / 1e6,
                  per_node / 1e3, static_cast<double>(max_node) / 1e3, msgs, idle,
                  a.discover ? members : idle_msgs, wall);
      std::fflush(stdout);
      char line[1024];
      std::snprintf(line, sizeof line,
                    "{\"nodes\":%d,\"fanout\":%u,\"seeds\":[%llu,%llu],\"writers\":%d,"
                    "\"writes_per_writer\":%d,\"value_bytes\":%zu,\"discover\":%s,\"keys\":%llu,"
                    "\"rounds_mean\":%.3f,\"rounds_min\":%.3f,\"rounds_max\":%.3f,"
                    "\"members_rounds_mean\":%.3f,\"bytes_mean\":%.0f,\"bytes_per_node\":%.1f,"
                    "\"max_node_bytes\":%llu,\"messages_per_node\":%.2f,"
                    "\"idle_bytes_per_node_round\":%.1f,\"idle_messages_per_node_round\":%.2f,"
                    "\"wall_s\":%.2f",
                    n, f, static_cast<unsigned long long>(first),
                    static_cast<unsigned long long>(last), a.writers, a.writes, a.value_bytes,
                    a.discover ? "true" : "false", static_cast<unsigned long long>(keys), rounds,
                    rmin, rmax, members, bytes, per_node, static_cast<unsigned long long>(max_node),
                    msgs, idle, idle_msgs, wall);
      json += line;
      auto by_body_json = [](const char* name, const auto& bytes) {
        std::string out = std::string(",\"") + name + "\":{";
        for (size_t b = 0; b < bytes.size(); b++) {
          out += (b == 0 ? "\"" : ",\"") + std::string(wavekv::sim::body_name(b)) +
                 "\":" + std::to_string(static_cast<uint64_t>(bytes[b]));
        }
        return out + "}";
      };
      json += by_body_json("bytes_by_body", by_body);
      json += by_body_json("idle_bytes_by_body", idle_by_body);
      json += "}\n";
    }
  }
  if (a.json) std::fputs(json.c_str(), stdout);
  return failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"WaveKV deterministic cluster simulation"};
  uint64_t seed = 0, seeds = 0, fault_ms = 6000;
  int nodes = 4;
  app.add_option("--seed", seed, "Run this one seed");
  app.add_option("--seeds", seeds, "Run seeds 1..N");
  app.add_option("--nodes", nodes, "Nodes per cluster")->check(CLI::Range(1, 64));
  app.add_option("--fault-ms", fault_ms, "Simulated milliseconds of faults and writes");
  bool repair = false;
  app.add_flag("--repair", repair, "Enable digest repair (off: delta sync alone must converge)");
  bool wipes = false;
  app.add_flag("--wipes", wipes, "Also wipe data directories");
  bool clock_check = false;
  app.add_flag("--clock-check", clock_check,
               "The clock offset check on (it refuses writes on skewed nodes)");
  bool no_gc = false;
  app.add_flag("--no-gc", no_gc, "Tombstone GC off");
  bool scale = false;
  ScaleArgs sa;
  app.add_flag("--scale", scale,
               "Scaling experiment: no faults, rounds and bytes to converge per (nodes, fanout)");
  app.add_option("--nodes-list", sa.nodes, "--scale: cluster sizes")
      ->delimiter(',')
      ->check(CLI::Range(1, 100000));
  app.add_option("--fanouts", sa.fanouts, "--scale: fanouts")
      ->delimiter(',')
      ->check(CLI::Range(1, 1000));
  app.add_option("--writers", sa.writers, "--scale: nodes that write (0: every node)");
  app.add_option("--writes", sa.writes, "--scale: distinct keys each writer puts")
      ->check(CLI::Range(0, 1000000));
  app.add_option("--value-bytes", sa.value_bytes, "--scale: value size");
  app.add_option("--max-rounds", sa.max_rounds, "--scale: give up after this many rounds");
  app.add_flag("--discover", sa.discover,
               "--scale: each node knows only node 0 at start (default: every member)");
  app.add_flag("--json", sa.json, "--scale: also print one JSON line per (nodes, fanout)");
  CLI11_PARSE(app, argc, argv);
  uint64_t first = seed != 0 ? seed : 1;
  uint64_t last = seed != 0 ? seed : (seeds != 0 ? seeds : (scale ? 1 : 100));
  if (scale) return run_scale_mode(sa, first, last);
  int failed = 0;
  uint64_t dropped = 0;
  uint64_t rebootstraps = 0;
  for (uint64_t s = first; s <= last; s++) {
    auto r =
        wavekv::sim::run_fault_scenario(s, nodes, fault_ms, repair, wipes, !no_gc, clock_check);
    dropped += r.tombstones_dropped;
    rebootstraps += r.rebootstraps;
    if (!r.failure.empty()) failed++;
    if (!r.failure.empty() || seed != 0)
      std::printf("seed %llu: %s (writes %llu, faults %llu, converged in %lld ms)\n",
                  static_cast<unsigned long long>(s), r.failure.empty() ? "ok" : r.failure.c_str(),
                  static_cast<unsigned long long>(r.writes),
                  static_cast<unsigned long long>(r.faults), static_cast<long long>(r.converge_ms));
  }
  std::printf("%llu passed, %d failed (tombstones collected %llu, rebootstraps %llu)\n",
              static_cast<unsigned long long>(last - first + 1 - failed), failed,
              static_cast<unsigned long long>(dropped),
              static_cast<unsigned long long>(rebootstraps));
  return failed == 0 ? 0 : 1;
}
