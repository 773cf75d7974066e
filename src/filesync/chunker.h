// Content-defined chunking: a file is cut where a rolling hash of its bytes
// hits a pattern, so an insert or a change near the start moves only the cuts
// around it; the chunks elsewhere keep their bytes and their hashes, and a
// peer that has them already is not sent them again.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace wavekv::filesync {

// A chunk is named by the 128-bit XXH3 hash of its bytes (not a cryptographic
// hash: it guards against accidents, and chunk bytes are checked against it on
// arrival).
using ChunkHash = std::array<uint8_t, 16>;
ChunkHash hash_chunk(std::string_view bytes);
std::string hash_hex(const ChunkHash& h);

struct ChunkerLimits {
  uint32_t min_bytes = 16 * 1024;
  uint32_t avg_bytes = 64 * 1024;  // a power of two: a cut where the low bits of the hash are 0
  uint32_t max_bytes = 256 * 1024;
};

// Streaming: feed() bytes in any slices; each call returns how many bytes of
// the slice belong to the current chunk before a cut (the slice's size if no
// cut falls in it). After a cut the caller starts a new chunk.
class Chunker {
 public:
  explicit Chunker(ChunkerLimits limits = {});
  // Bytes of `data` up to and including the next cut; data.size() if none.
  size_t next_cut(std::string_view data);
  // True if the last next_cut() ended a chunk (rather than running out of data).
  bool at_cut() const { return at_cut_; }

 private:
  ChunkerLimits limits_;
  uint64_t mask_;
  uint64_t hash_ = 0;
  uint64_t len_ = 0;  // bytes in the current chunk so far
  bool at_cut_ = false;
};

}  // namespace wavekv::filesync
