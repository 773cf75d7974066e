// The cluster key: 32 random bytes every node of a small cluster (or a
// filesync pair) shares, used as a TLS 1.3 external pre-shared key (tls.h).
// Its file is text (docs/FORMAT.md, "Cluster key file"):
//
//   wavekv-cluster-key v1
//   <64 hex digits>
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "wavekv/status.h"

namespace wavekv::security {

inline constexpr size_t kClusterKeyBytes = 32;
using ClusterKey = std::array<uint8_t, kClusterKeyBytes>;

// The first line of a cluster key file; a new layout gets a new version.
inline constexpr std::string_view kClusterKeyHeader = "wavekv-cluster-key v1";

// 32 bytes from OpenSSL's CSPRNG (RAND_bytes); an error if it is not seeded.
Result<ClusterKey> generate_cluster_key();

// The whole file for `key`: the header line, then the key in lowercase hex.
std::string format_cluster_key(const ClusterKey& key);

// Parses a file's text. The header must be exact; the key line must be 64
// hex digits (either case); only trailing whitespace may follow.
Result<ClusterKey> parse_cluster_key(std::string_view text);

struct LoadedClusterKey {
  ClusterKey key{};
  // Not empty when the file is accessible by group or others: the caller
  // logs it as a warning (the key still loads, as ssh does not refuse).
  std::string warning;
};

// Reads and parses the key file at `path`. Errors: kNotFound (no such file),
// kIOError (unreadable), kInvalidArgument (not a key file, with what is wrong).
Result<LoadedClusterKey> load_cluster_key(const std::string& path);

}  // namespace wavekv::security
