// Certificate tooling (`wavekv cert ...`), so nobody needs the openssl
// command line. One directory holds a cluster's certificates:
//
//   ca.crt, ca.key               the cluster CA (EC P-256, self-signed; ca.key mode 0600)
//   node.<name>.crt / .key       a node: serverAuth + clientAuth, SANs for its hosts and
//                                a URI SAN wavekv://node/<decimal id> binding its node id
//   client.<name>.crt / .key     a client of the RESP/HTTP ports: clientAuth, CN=<name>
//
// docs/FORMAT.md ("Certificate directory") describes the files.
#pragma once

#include <openssl/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "wavekv/status.h"

namespace wavekv::security {

// The URI SAN that binds a node id to a certificate: this prefix, then the id
// in decimal. A peer's frames must carry the id its certificate names.
inline constexpr std::string_view kNodeIdUriPrefix = "wavekv://node/";

inline constexpr int kCaValidDays = 3650;
inline constexpr int kCertValidDays = 1825;

struct IssuedFiles {
  std::string cert_path;
  std::string key_path;
};

std::string ca_cert_path(const std::string& dir);
std::string ca_key_path(const std::string& dir);

// Creates `dir` (mode 0700) if needed, then a new CA key and self-signed CA
// certificate in it. Refuses (kInvalidArgument) if either file exists,
// unless `overwrite`: a new CA invalidates every certificate of the old one.
Result<IssuedFiles> init_ca(const std::string& dir, bool overwrite = false);

// node.<name>.crt/.key signed by the CA in `dir`. `hosts` are the names and
// addresses peers dial this node by (at least one): an IP address (v4, v6,
// optionally in brackets) becomes an IP SAN, anything else a DNS SAN.
// `node_id` must not be 0. `name`: letters, digits, '.', '_' and '-'.
Result<IssuedFiles> issue_node_cert(const std::string& dir, const std::string& name,
                                    uint64_t node_id, const std::vector<std::string>& hosts,
                                    bool overwrite = false);

// client.<name>.crt/.key signed by the CA in `dir`, for clientAuth only (it
// can never pass as a peer: it binds no node id and lacks serverAuth).
Result<IssuedFiles> issue_client_cert(const std::string& dir, const std::string& name,
                                      bool overwrite = false);

// The node id `cert` binds: exactly one wavekv://node/<id> URI SAN with a
// decimal id in 1..2^64-1; anything else is an error.
Result<uint64_t> node_id_of(X509* cert);

// The node id the certificate in the PEM file at `path` binds (a node's
// --cert-file): kNotFound / kInvalidArgument with the path.
Result<uint64_t> node_id_of_file(const std::string& path);

// The subject's common name (a client certificate's user name).
Result<std::string> common_name_of(X509* cert);

}  // namespace wavekv::security
