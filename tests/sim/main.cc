// sim: runs the deterministic cluster simulation on demand.
//   sim --seed N [--nodes K] [--fault-ms T]     one seed, verbose
//   sim --seeds N [--nodes K] [--fault-ms T]    seeds 1..N, a summary
#include <CLI/CLI.hpp>
#include <cstdio>

#include "sim/scenario.h"

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
  CLI11_PARSE(app, argc, argv);
  uint64_t first = seed != 0 ? seed : 1;
  uint64_t last = seed != 0 ? seed : (seeds != 0 ? seeds : 100);
  int failed = 0;
  for (uint64_t s = first; s <= last; s++) {
    auto r = wavekv::sim::run_fault_scenario(s, nodes, fault_ms, repair, wipes);
    if (!r.failure.empty()) failed++;
    if (!r.failure.empty() || seed != 0)
      std::printf("seed %llu: %s (writes %llu, faults %llu, converged in %lld ms)\n",
                  static_cast<unsigned long long>(s), r.failure.empty() ? "ok" : r.failure.c_str(),
                  static_cast<unsigned long long>(r.writes),
                  static_cast<unsigned long long>(r.faults), static_cast<long long>(r.converge_ms));
  }
  std::printf("%llu passed, %d failed\n",
              static_cast<unsigned long long>(last - first + 1 - failed), failed);
  return failed == 0 ? 0 : 1;
}
