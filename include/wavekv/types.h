// The values WaveKV stores and the order in which versions of a key win.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <tuple>

namespace wavekv {

using NodeId = uint64_t;

// A hybrid-logical-clock timestamp: the upper 48 bits are milliseconds since the
// Unix epoch, the lower 16 bits a logical counter (see HybridClock).
using Timestamp = uint64_t;

constexpr int kLogicalBits = 16;
inline constexpr uint64_t timestamp_millis(Timestamp ts) { return ts >> kLogicalBits; }
inline constexpr Timestamp timestamp_from_millis(uint64_t ms) { return ms << kLogicalBits; }

// Who wrote a version, when, and as which of its writes.
//
// The origin of a version is a stream of writes: one incarnation of a node (a
// random id, new whenever the node starts over from an empty or damaged data
// directory). Seqs count 1, 2, ... within that stream, so a version vector
// keyed by incarnation can say "I have everything of this stream up to seq N"
// and mean it, even for a node id that was wiped and came back.
struct Meta {
  NodeId node = 0;   // the origin node
  uint64_t seq = 0;  // the origin stream's write counter (1, 2, ...)
  Timestamp timestamp = 0;
  uint64_t incarnation = 0;  // the origin stream: which incarnation of `node`

  bool operator==(const Meta&) const = default;
};

// Last-writer-wins order: (timestamp, node, seq) and nothing else. Whether a
// version is a tombstone plays no part. The incarnation breaks the one tie
// left (two incarnations of one node with equal timestamp and seq), so the
// order is total.
inline bool lww_less(const Meta& a, const Meta& b) {
  return std::tie(a.timestamp, a.node, a.seq, a.incarnation) <
         std::tie(b.timestamp, b.node, b.seq, b.incarnation);
}

// One version of a key: a value or a tombstone (a delete that must replicate).
//
// A value may carry an expiry: an absolute wall-clock time, part of the
// version, so every node agrees when it dies without coordinating. Past it
// the key is absent, exactly as if this version were a tombstone (LWW is
// unchanged: the version still beats every older one). A node later turns an
// expired value into a tombstone of the same version (keeping expires_ms),
// which tombstone GC then collects (docs/PROTOCOL.md, "Expiry").
struct Entry {
  std::string value;
  bool tombstone = false;
  Meta meta;
  uint64_t expires_ms = 0;  // ms since the epoch; 0: never

  // Redis's rule: a key is still there at its expiry millisecond, gone after.
  bool expired_at(uint64_t now_ms) const { return expires_ms != 0 && now_ms > expires_ms; }
  // A value a reader sees at `now_ms`.
  bool live_at(uint64_t now_ms) const { return !tombstone && !expired_at(now_ms); }

  bool operator==(const Entry&) const = default;
};

// A key with its current version, as returned by scans.
struct KeyValue {
  std::string key;
  std::string value;
  Meta meta;
  uint64_t expires_ms = 0;  // 0: never
};

}  // namespace wavekv
