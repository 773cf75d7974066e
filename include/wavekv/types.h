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
struct Entry {
  std::string value;
  bool tombstone = false;
  Meta meta;

  bool operator==(const Entry&) const = default;
};

// A key with its current version, as returned by scans.
struct KeyValue {
  std::string key;
  std::string value;
  Meta meta;
};

}  // namespace wavekv
