// The peer security flags `wavekv serve` and `filesync run` share
// (docs/SECURITY.md, "Peers"):
//
//   --cluster-key-file FILE                 a cluster key (wavekv keygen)
//   --ca-file F --cert-file F --key-file F  mutual TLS (wavekv cert)
//   --certs-dir DIR --name NAME             the same, as `wavekv cert` lays
//                                           them out: DIR/ca.crt,
//                                           DIR/node.NAME.crt, DIR/node.NAME.key
//   --insecure                              listen beyond loopback without any
//
// A cluster key and certificates exclude each other.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "wavekv/node.h"
#include "wavekv/status.h"
#include "wavekv/transport.h"

namespace wavekv::cli {

struct PeerSecurityFlags {
  std::string cluster_key_file;
  std::string ca_file, cert_file, key_file;
  std::string certs_dir, name;
  bool insecure = false;
};

inline void add_peer_security_flags(CLI::App& cmd, PeerSecurityFlags& f) {
  cmd.add_option("--cluster-key-file", f.cluster_key_file,
                 "Peers authenticate with this cluster key (from `wavekv keygen`): TLS 1.3, PSK");
  cmd.add_option("--ca-file", f.ca_file, "Peers authenticate with certificates: the cluster CA");
  cmd.add_option("--cert-file", f.cert_file, "This node's certificate (from `wavekv cert node`)");
  cmd.add_option("--key-file", f.key_file, "This node's certificate key");
  cmd.add_option("--certs-dir", f.certs_dir,
                 "Shorthand with --name: DIR/ca.crt, DIR/node.NAME.crt, DIR/node.NAME.key");
  cmd.add_option("--name", f.name, "The node's certificate name in --certs-dir");
  cmd.add_flag("--insecure", f.insecure,
               "Allow the peer port beyond loopback without authentication (trusted networks "
               "only)");
}

// The config the flags say; kInvalidArgument when they contradict each other.
inline Result<PeerSecurity> peer_security(const PeerSecurityFlags& f) {
  PeerSecurity s;
  std::string ca = f.ca_file, cert = f.cert_file, key = f.key_file;
  if (!f.certs_dir.empty() || !f.name.empty()) {
    if (f.certs_dir.empty() || f.name.empty())
      return Status::invalid("--certs-dir and --name go together");
    if (!ca.empty() || !cert.empty() || !key.empty())
      return Status::invalid(
          "give --certs-dir/--name or --ca-file/--cert-file/--key-file, not both");
    ca = f.certs_dir + "/ca.crt";
    cert = f.certs_dir + "/node." + f.name + ".crt";
    key = f.certs_dir + "/node." + f.name + ".key";
  }
  const bool certs = !ca.empty() || !cert.empty() || !key.empty();
  if (certs && !f.cluster_key_file.empty())
    return Status::invalid(
        "--cluster-key-file and certificates (--ca-file/--cert-file/--key-file, --certs-dir) "
        "exclude each other: give one");
  if (!f.cluster_key_file.empty()) {
    s.mode = PeerSecurity::Mode::kClusterKey;
    s.cluster_key_file = f.cluster_key_file;
  } else if (certs) {
    if (ca.empty() || cert.empty() || key.empty())
      return Status::invalid("mutual TLS needs all three of --ca-file, --cert-file and --key-file");
    s.mode = PeerSecurity::Mode::kMutualTls;
    s.ca_file = ca;
    s.cert_file = cert;
    s.key_file = key;
  }
  return s;
}

// Fills the node's security fields from the flags.
inline Status apply_peer_security(const PeerSecurityFlags& f, NodeConfig& config) {
  auto s = peer_security(f);
  if (!s) return s.status();
  config.transport.security = *s;
  config.insecure = f.insecure;
  return Status::ok();
}

}  // namespace wavekv::cli
