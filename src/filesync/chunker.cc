#include "filesync/chunker.h"

#include <xxhash.h>

#include <cassert>

namespace wavekv::filesync {
namespace {

// 256 fixed pseudo-random words for the gear hash, from splitmix64 with a
// fixed seed: every build cuts the same file at the same places.
struct GearTable {
  uint64_t words[256];
  GearTable() {
    uint64_t x = 0x5741564b56ull;  // "WAVKV"
    for (auto& w : words) {
      x += 0x9e3779b97f4a7c15ull;
      uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      w = z ^ (z >> 31);
    }
  }
};
const GearTable kGear;

}  // namespace

ChunkHash hash_chunk(std::string_view bytes) {
  XXH128_hash_t h = XXH3_128bits(bytes.data(), bytes.size());
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, h);
  ChunkHash out;
  static_assert(sizeof(c.digest) == 16);
  for (size_t i = 0; i < 16; i++) out[i] = c.digest[i];
  return out;
}

std::string hash_hex(const ChunkHash& h) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  s.reserve(32);
  for (uint8_t b : h) {
    s.push_back(kDigits[b >> 4]);
    s.push_back(kDigits[b & 15]);
  }
  return s;
}

Chunker::Chunker(ChunkerLimits limits) : limits_(limits), mask_(limits.avg_bytes - 1) {
  assert(limits.avg_bytes > 0 && (limits.avg_bytes & (limits.avg_bytes - 1)) == 0);
  // An average above the maximum is allowed: then every cut is at the maximum.
  assert(limits.min_bytes > 0 && limits.min_bytes <= limits.max_bytes);
}

size_t Chunker::next_cut(std::string_view data) {
  at_cut_ = false;
  for (size_t i = 0; i < data.size(); i++) {
    hash_ = (hash_ << 1) + kGear.words[static_cast<uint8_t>(data[i])];
    len_++;
    // The gear hash is only looked at past the minimum, so tiny chunks never
    // happen; the maximum bounds the size of any one value in the store.
    if ((len_ >= limits_.min_bytes && (hash_ & mask_) == 0) || len_ >= limits_.max_bytes) {
      hash_ = 0;
      len_ = 0;
      at_cut_ = true;
      return i + 1;
    }
  }
  return data.size();
}

}  // namespace wavekv::filesync
