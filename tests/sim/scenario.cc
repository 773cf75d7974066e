#include "sim/scenario.h"

#include <random>

#include "sim/cluster.h"

namespace wavekv::sim {

ScenarioResult run_fault_scenario(uint64_t seed, int nodes, uint64_t fault_ms, bool digest_repair,
                                  bool wipes, bool gc, bool clock_check) {
  SimOptions o;
  o.seed = seed;
  o.nodes = nodes;
  o.drop = 0.1;
  o.duplicate = 0.05;
  o.max_delay_ms = 80;
  o.replica.sync_interval_ms = 200;
  o.replica.max_page_entries = 16;  // many pages per delta
  o.replica.digest_every_rounds = digest_repair ? 5 : 0;
  o.replica.collect_tombstones = gc;
  o.replica.tombstone_grace_ms = 1000;
  if (!clock_check) o.replica.max_clock_offset_ms = 0;
  Cluster c(o);
  std::mt19937_64 rng(seed * 7919 + 1);
  ScenarioResult r;
  auto pick = [&] { return static_cast<int>(rng() % static_cast<uint64_t>(nodes)); };
  for (uint64_t t = 0; t < fault_ms; t += 50) {
    for (int w = 0; w < 3; w++) {
      int n = pick();
      std::string key = "k" + std::to_string(rng() % 40);
      // A third of the puts expire within 3 s (some before they replicate).
      const uint64_t dice = rng();
      const uint64_t ttl = dice % 3 == 0 ? 1 + (dice >> 8) % 3000 : 0;
      bool ok = rng() % 5 == 0 ? c.del(n, key) : c.put(n, key, "v" + std::to_string(rng()), ttl);
      r.writes += ok;
    }
    switch (rng() % 40) {
      case 0:
        c.crash(pick());
        r.faults++;
        break;
      case 1:
      case 2:
        for (int i = 0; i < nodes; i++) c.restart(i);
        break;
      case 3:
        c.cut(pick(), pick());
        r.faults++;
        break;
      case 4:
        c.partition({pick()});
        r.faults++;
        break;
      case 5: c.heal(); break;
      case 6:
        c.set_clock_skew(pick(), static_cast<int64_t>(rng() % 20000) - 10000);
        r.faults++;
        break;
      case 7:
        if (rng() % 4 == 0 && wipes) {
          c.wipe(pick());
          r.faults++;
        }
        break;
      default: break;
    }
    c.run_for(50);
    if (std::string bad = c.check_versions_only_advance(); !bad.empty()) {
      r.failure = bad;
      return r;
    }
    if (std::string bad = c.check_claims(); !bad.empty()) {
      r.failure = "inexact claim: " + bad;
      r.tombstones_dropped = c.tombstones_dropped();
      r.rebootstraps = c.rebootstraps();
      return r;
    }
  }
  c.heal();
  for (int i = 0; i < nodes; i++) c.restart(i);
  r.converge_ms = c.run_until_converged(60'000);
  r.tombstones_dropped = c.tombstones_dropped();
  r.rebootstraps = c.rebootstraps();
  if (r.converge_ms < 0) {
    r.failure =
        "did not converge within 60 s of simulated time after healing:\n" + c.describe_divergence();
    return r;
  }
  r.failure = c.check_claims();
  if (r.failure.empty()) r.failure = c.check_model();
  return r;
}

}  // namespace wavekv::sim
