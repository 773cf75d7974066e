#include "filesync/manifest.h"

#include "util/coding.h"

namespace wavekv::filesync {
namespace {
constexpr uint8_t kManifestVersion = 1;
constexpr size_t kChunkRefBytes = 16 + 4;
}  // namespace

std::string encode_manifest(const Manifest& m) {
  std::string out;
  out.reserve(1 + 4 + 8 + 4 + m.chunks.size() * kChunkRefBytes);
  put_u8(out, kManifestVersion);
  put_u32(out, m.mode);
  put_u64(out, m.size);
  put_u32(out, static_cast<uint32_t>(m.chunks.size()));
  for (const auto& c : m.chunks) {
    out.append(reinterpret_cast<const char*>(c.hash.data()), c.hash.size());
    put_u32(out, c.size);
  }
  return out;
}

Result<Manifest> decode_manifest(std::string_view bytes) {
  Decoder d(bytes);
  uint8_t version = d.u8();
  if (d.failed()) return Status::corruption("manifest: empty");
  if (version != kManifestVersion)
    return Status::corruption("manifest: version " + std::to_string(version) +
                              " is not one this filesync reads (1)");
  Manifest m;
  m.mode = d.u32();
  m.size = d.u64();
  uint32_t count = d.u32();
  if (d.failed()) return Status::corruption("manifest: truncated header");
  if (m.mode > 07777) return Status::corruption("manifest: mode has bits beyond 07777");
  if (d.remaining() != static_cast<uint64_t>(count) * kChunkRefBytes)
    return Status::corruption("manifest: " + std::to_string(count) + " chunks need " +
                              std::to_string(static_cast<uint64_t>(count) * kChunkRefBytes) +
                              " bytes, " + std::to_string(d.remaining()) + " remain");
  uint64_t total = 0;
  m.chunks.resize(count);
  for (auto& c : m.chunks) {
    std::string_view h = d.raw(16);
    if (h.size() != 16) return Status::corruption("manifest: truncated chunk hash");
    for (size_t i = 0; i < 16; i++) c.hash[i] = static_cast<uint8_t>(h[i]);
    c.size = d.u32();
    if (c.size == 0) return Status::corruption("manifest: an empty chunk");
    total += c.size;
  }
  if (d.failed()) return Status::corruption("manifest: truncated chunk list");
  if (total != m.size)
    return Status::corruption("manifest: chunks add up to " + std::to_string(total) +
                              " bytes, the size says " + std::to_string(m.size));
  return m;
}

ChunkHash manifest_digest(std::string_view encoded) { return hash_chunk(encoded); }

bool valid_path(std::string_view path) {
  if (path.empty() || path.front() == '/' || path.back() == '/') return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == ".." || is_temp_name(part)) return false;
    if (part.find('\0') != std::string_view::npos) return false;
    start = end + 1;
  }
  return true;
}

}  // namespace wavekv::filesync
