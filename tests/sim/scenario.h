// The randomized fault scenario shared by the sim tests and the `sim` program.
#pragma once

#include <cstdint>
#include <string>

namespace wavekv::sim {

struct ScenarioResult {
  std::string failure;       // empty if every check held
  int64_t converge_ms = -1;  // after healing
  uint64_t writes = 0;
  uint64_t faults = 0;
  uint64_t tombstones_dropped = 0;  // by tombstone GC, summed over nodes
  uint64_t rebootstraps = 0;        // nodes that wiped themselves and started over
};

// Writes and deletes on random nodes while the network drops, duplicates,
// delays and partitions (one-way too), nodes crash, restart, get wiped and
// have their clocks skewed; then heals and requires convergence within a
// bounded time and the reference model to hold.
// With `digest_repair` off, delta sync alone must converge (repair would mask
// its bugs); with it on, the whole protocol must. `wipes`: also wipe data
// directories. `gc`: tombstone GC on (with a 1 s grace period).
// `clock_check`: the clock offset check on (max_clock_offset_ms 500). Off by
// default: the scenarios skew clocks by up to 10 s on purpose, to test LWW and
// claims under skew, and the check would refuse most writes on a skewed node
// and so test something else (tests/clock_offset_test.cc tests the check).
ScenarioResult run_fault_scenario(uint64_t seed, int nodes, uint64_t fault_ms,
                                  bool digest_repair = false, bool wipes = false, bool gc = true,
                                  bool clock_check = false);

}  // namespace wavekv::sim
