// How a mirrored tree is laid out in the key-value store (docs/FORMAT.md,
// "filesync"):
//   f:<path>   the file's manifest: mode, size, the hashes of its chunks
//   c:<hash>   one chunk's bytes, named by the hex of its 128-bit hash
// <path> is relative to the mirrored directory, '/'-separated. A file is
// deleted by deleting its manifest (a tombstone that replicates). Chunks are
// immutable and shared by every file and version that contains them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "filesync/chunker.h"
#include "wavekv/status.h"

namespace wavekv::filesync {

inline constexpr std::string_view kManifestPrefix = "f:";
inline constexpr std::string_view kChunkPrefix = "c:";
inline std::string manifest_key(std::string_view path) {
  return std::string(kManifestPrefix) + std::string(path);
}
inline std::string chunk_key(const ChunkHash& h) { return std::string(kChunkPrefix) + hash_hex(h); }

struct ChunkRef {
  ChunkHash hash{};
  uint32_t size = 0;
  bool operator==(const ChunkRef&) const = default;
};

struct Manifest {
  uint32_t mode = 0644;  // permission bits (07777 of st_mode)
  uint64_t size = 0;
  std::vector<ChunkRef> chunks;
  bool operator==(const Manifest&) const = default;
};

std::string encode_manifest(const Manifest& m);
// Refuses anything malformed: unknown version, lengths that disagree.
Result<Manifest> decode_manifest(std::string_view bytes);

// A short fingerprint of an encoded manifest: two versions of a file with the
// same bytes and mode have the same one.
ChunkHash manifest_digest(std::string_view encoded);

// Whether `path` is one filesync mirrors: relative, '/'-separated, no empty,
// "." or ".." component, and no component that is one of its own temp files.
bool valid_path(std::string_view path);
// The file system path of `rel` in the mirrored directory `root` ("" is root).
inline std::string full_path(const std::string& root, const std::string& rel) {
  return rel.empty() ? root : root + "/" + rel;
}
// Temp files of an atomic write-then-rename start with this.
inline constexpr std::string_view kTempPrefix = ".filesync.";
inline bool is_temp_name(std::string_view name) { return name.starts_with(kTempPrefix); }

}  // namespace wavekv::filesync
