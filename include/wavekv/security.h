// The secrets a cluster's operator makes (docs/SECURITY.md), as library
// calls: the cluster key file, the cluster CA with node and client
// certificates, and the password hashes and tokens of a users file. `wavekv
// keygen`, `wavekv cert ...` and `wavekv user ...` are these calls plus
// printing. The files' layouts are in docs/FORMAT.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wavekv/status.h"
#include "wavekv/types.h"

namespace wavekv {

// The whole text of a new cluster key file ("wavekv-cluster-key v1", then 32
// random bytes in hex), for every node to share. Errors if the system's
// random source is not seeded.
Result<std::string> generate_cluster_key_file();

// What a certificate command wrote: the certificate and its private key
// (mode 0600).
struct CertFiles {
  std::string cert_path;
  std::string key_path;
};

// The cluster CA: ca.crt and ca.key in `dir` (created mode 0700 if needed).
// Refuses (kInvalidArgument) if either exists, unless `overwrite`: a new CA
// invalidates every certificate of the old one.
struct CaOptions {
  std::string dir;
  bool overwrite = false;
};
Result<CertFiles> init_ca(const CaOptions& options);

// node.<name>.crt/.key, signed by the CA in `dir`, binding `node_id` (not 0).
// `hosts` (at least one): the names and addresses peers dial the node by.
// `name`: letters, digits, '.', '_' and '-'.
struct NodeCertOptions {
  std::string dir;
  std::string name;
  NodeId node_id = 0;
  std::vector<std::string> hosts;
  bool overwrite = false;
};
Result<CertFiles> issue_node_cert(const NodeCertOptions& options);

// client.<name>.crt/.key, signed by the CA in `dir`, for a client of the
// RESP and HTTP ports (it can never pass as a peer).
struct ClientCertOptions {
  std::string dir;
  std::string name;
  bool overwrite = false;
};
Result<CertFiles> issue_client_cert(const ClientCertOptions& options);

// The scrypt cost of a password hash.
struct PasswordHashOptions {
  uint64_t scrypt_n = uint64_t{1} << 15;  // CPU/memory cost: a power of two
  uint32_t scrypt_r = 8;                  // block size
  uint32_t scrypt_p = 1;                  // parallelism
};
// The "scrypt$v1$..." line a users file stores for `password`, with a fresh
// salt. kInvalidArgument if the parameters are out of bounds.
Result<std::string> hash_password(std::string_view password,
                                  const PasswordHashOptions& options = {});

// A new bearer token, and the "sha256$..." line a users file stores for it
// (only the hash is stored, so the token is shown once).
struct NewToken {
  std::string token;
  std::string stored;
};
Result<NewToken> generate_token();

// One user of a users file, as a node would load it (no secret inside).
struct UserSummary {
  std::string name;
  std::string role;  // "read", "readwrite", "admin"
  // The key prefixes the user may touch; none: every key.
  std::optional<std::vector<std::string>> prefixes;
};
// Loads the users file at `path` as a node would. The error names the first
// thing wrong, with its line.
Result<std::vector<UserSummary>> check_users_file(const std::string& path);

}  // namespace wavekv
