// TLS contexts for the peer transport and the client-facing ports, built on
// standalone Asio's SSL support over OpenSSL 3. Every builder reads its files
// once; a context is then immutable. ContextSource swaps in a rebuilt one on
// SIGHUP; connections keep the context they started with.
//
// Peer authentication, two modes:
//  - mutual TLS: TLS 1.3 only; each side presents its node certificate and
//    verifies the other's chain against the cluster CA (and only it). A
//    certificate without a node id (certs.h) is refused at the handshake, so
//    a client certificate never passes as a peer. After the handshake,
//    peer_node_id() says which node the other side is.
//  - cluster key: TLS 1.3 with the key as an external PSK (RFC 8446 4.2.11,
//    combined with ECDHE for forward secrecy), identity "wavekv-cluster",
//    cipher TLS_AES_128_GCM_SHA256, no certificates. Any holder of the key is
//    a member: the key binds no node id.
#pragma once

#include <asio/ssl.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "security/cluster_key.h"
#include "wavekv/status.h"

namespace wavekv::security {

using SslContextPtr = std::shared_ptr<asio::ssl::context>;

inline constexpr std::string_view kPskIdentity = "wavekv-cluster";

struct PeerTlsFiles {
  std::string ca_file;    // the cluster CA (ca.crt): the only trust anchor
  std::string cert_file;  // this node's certificate (node.<name>.crt)
  std::string key_file;   // its key (node.<name>.key)
};

// One context for both roles (accepting and connecting): TLS 1.3 only, our
// certificate, the peer's required and verified (verify_peer |
// verify_fail_if_no_peer_cert), no session tickets (every connection
// authenticates in full).
Result<SslContextPtr> make_peer_context(const PeerTlsFiles& files);

// One context for both roles, authenticated by `key` alone. A side that is
// shown a certificate instead of the key fails the handshake, so a client
// never talks to a server that does not hold the key.
Result<SslContextPtr> make_psk_context(const ClusterKey& key);

struct ServerTlsFiles {
  std::string cert_file;
  std::string key_file;
  // Empty: no client certificates asked for. Otherwise the CA they must chain to.
  std::string client_ca_file;
  bool require_client_cert = false;  // only with client_ca_file
};

// A server context for the RESP and HTTP ports: TLS 1.2 or 1.3 (what
// redis-cli and curl speak), our certificate, optional client certificates.
Result<SslContextPtr> make_server_context(const ServerTlsFiles& files);

// After a mutual-TLS handshake: the node id the peer's certificate binds.
Result<uint64_t> peer_node_id(const SSL* ssl);

// The current context of one kind, rebuilt from the same files by reload().
// Thread-safe: current() and reload() may race.
class ContextSource {
 public:
  using Builder = std::function<Result<SslContextPtr>()>;

  // Builds the first context; fails if `build` does.
  static Result<std::unique_ptr<ContextSource>> create(Builder build);
  static Result<std::unique_ptr<ContextSource>> peer(PeerTlsFiles files);
  static Result<std::unique_ptr<ContextSource>> server(ServerTlsFiles files);

  // The context new connections use.
  SslContextPtr current() const;

  // Rebuilds; on success new connections get the new context. On failure
  // (a file missing, unreadable, or a key that does not match) the current
  // context stays and the error says why.
  Status reload();

 private:
  ContextSource(Builder build, SslContextPtr first);
  const Builder build_;
  mutable std::mutex mu_;
  SslContextPtr current_;  // guarded by mu_
};

}  // namespace wavekv::security
