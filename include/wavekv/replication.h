// The replication protocol's settings and counters (docs/PROTOCOL.md). The
// protocol itself is private (src/replication); a node takes a ReplicaConfig
// in its NodeConfig and reports ReplicaStats in its NodeStatus.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace wavekv {

struct ReplicaConfig {
  std::string address;             // how peers reach this node
  std::vector<std::string> seeds;  // addresses to bootstrap from (ids unknown)
  uint32_t fanout = 3;             // peers synced with per round
  uint64_t sync_interval_ms = 1000;
  uint64_t push_delay_ms = 5;  // coalescing window after a local write
  uint32_t max_page_entries = 512;
  uint64_t max_page_bytes = 1 << 20;
  uint64_t max_clock_drift_ms = 5 * 60 * 1000;  // entries further ahead are rejected
  // The clock offset check (docs/PROTOCOL.md, "Clock offset"): a node further
  // than this from a majority of the peers it hears from refuses client
  // writes until its clock is back. 0 turns the check off.
  uint64_t max_clock_offset_ms = 500;
  uint64_t max_key_bytes = 64 * 1024;
  uint64_t max_value_bytes = 64ull * 1024 * 1024;
  uint64_t max_total_keys = 0;       // keys incl. tombstones; 0: no limit
  uint64_t max_total_bytes = 0;      // live keys + values; 0: no limit
  uint32_t digest_every_rounds = 5;  // a divergence check every N sync rounds
  uint32_t max_repair_buckets = 16;  // buckets repaired per check
  // A member not heard from for this long is evicted (durably), so it cannot
  // pin tombstones forever; if it comes back it is told to re-bootstrap.
  uint64_t member_expiry_ms = 24ull * 3600 * 1000;
  // Tombstone GC (docs/PROTOCOL.md, "Tombstone GC"): a tombstone is dropped
  // once every current member covers it and it is older than the grace
  // period. The grace is not what makes GC safe; it keeps a node that joins
  // late with old data from having to start over.
  bool collect_tombstones = true;
  uint64_t tombstone_grace_ms = 3600ull * 1000;
  uint32_t max_tombstones_dropped_per_round = 4096;
  // Bounded membership (docs/PROTOCOL.md, "Membership and discovery"): at most
  // this many members are known; a message from an unknown sender beyond it
  // is ignored, and gossip beyond it is not learned (members_refused).
  uint32_t max_members = 1024;
  // New members learned from one sender's gossip per sync interval; the rest
  // waits for the next interval (members_refused).
  uint32_t max_new_members_per_sender = 64;
};

struct ReplicaStats {
  uint64_t rounds = 0;
  uint64_t sessions_completed = 0;
  uint64_t sessions_aborted = 0;  // a rejection blocked ack adoption, or no progress
  uint64_t requests_retried = 0;  // a page did not come within a round: asked again
  uint64_t pages_served = 0;
  uint64_t entries_received = 0;
  uint64_t entries_merged = 0;  // received and newer than what we had
  uint64_t entries_rejected = 0;
  // Entries whose key or value is larger than this node's limits: never
  // storable here, so not a rejection (which would block ack adoption with
  // every peer that holds one, for good) but quarantined: skipped, counted,
  // and covered (docs/PROTOCOL.md, "Admission").
  uint64_t entries_quarantined = 0;
  uint64_t pushes_sent = 0;
  uint64_t digest_mismatches = 0;
  uint64_t repairs = 0;  // entries merged by bucket repair
  uint64_t tombstones_dropped = 0;
  uint64_t members_evicted = 0;
  uint64_t members_refused = 0;      // not learned: max_members or the per-sender rate
  uint64_t rebootstraps_sent = 0;    // replies to an evicted member
  uint64_t rebootstraps_needed = 0;  // a peer had collected tombstones we missed
  // Checked claims (docs/PROTOCOL.md, "Checked claims"): a Rebootstrap this
  // node could refute (an unknown sender, or one that heard from this
  // incarnation within the member expiry), and first pages whose horizon the
  // sender could not have (beyond its own covers, or beyond our own stream).
  // Refused: no wipe, no adoption.
  uint64_t rebootstraps_refused = 0;
  uint64_t claims_refused = 0;
};

}  // namespace wavekv
