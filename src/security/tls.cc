#include "security/tls.h"

#include <openssl/ssl.h>

#include <filesystem>

#include "security/certs.h"
#include "security/openssl_util.h"

namespace wavekv::security {
namespace {

// OpenSSL refuses to resume (a cluster-key handshake counts as one) on a
// verifying server without a session id context, and a session whose id
// context differs from the connection's.
const unsigned char kSessionContext[] = "wavekv";

// A context for both roles whose lowest protocol version is `min_version`.
Result<SslContextPtr> new_context(int min_version) {
  SslContextPtr ctx;
  try {
    ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls);
  } catch (const std::exception& e) {
    return openssl_error(std::string("cannot create a TLS context: ") + e.what());
  }
  if (SSL_CTX_set_min_proto_version(ctx->native_handle(), min_version) != 1)
    return openssl_error("cannot set the minimum TLS version");
  if (SSL_CTX_set_session_id_context(ctx->native_handle(), kSessionContext,
                                     sizeof kSessionContext - 1) != 1)
    return openssl_error("cannot set the session id context");
  return ctx;
}

Status check_file(const std::string& what, const std::string& path) {
  if (path.empty()) return Status::invalid("no " + what + " file given");
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return Status::not_found(what + " file " + path + " does not exist");
  return Status::ok();
}

// Our certificate (with any chain after it in the file) and its key.
Status load_identity(SSL_CTX* ctx, const std::string& cert_file, const std::string& key_file) {
  WAVEKV_RETURN_IF_ERROR(check_file("certificate", cert_file));
  WAVEKV_RETURN_IF_ERROR(check_file("key", key_file));
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1)
    return openssl_error("cannot load the certificate " + cert_file);
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    return openssl_error("cannot load the key " + key_file + " for " + cert_file);
  if (SSL_CTX_check_private_key(ctx) != 1)
    return openssl_error(key_file + " is not the key of " + cert_file);
  return Status::ok();
}

Status load_trust(SSL_CTX* ctx, const std::string& ca_file) {
  WAVEKV_RETURN_IF_ERROR(check_file("CA certificate", ca_file));
  if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1)
    return openssl_error("cannot load the CA certificate " + ca_file);
  return Status::ok();
}

// The chain is already verified when this runs (preverify_ok); a peer's own
// certificate must also bind a node id.
int verify_node_cert(int preverify_ok, X509_STORE_CTX* store) {
  if (preverify_ok != 1) return 0;
  if (X509_STORE_CTX_get_error_depth(store) != 0) return 1;
  if (node_id_of(X509_STORE_CTX_get_current_cert(store))) return 1;
  X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
  return 0;
}

// In cluster-key mode no certificate is ever legitimate: one shown means the
// other side does not hold the key.
int reject_any_cert(int, X509_STORE_CTX* store) {
  X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
  return 0;
}

// The key lives in the SSL_CTX's ex_data, freed with the SSL_CTX itself, so
// it outlives every connection that still uses the context.
void free_key(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  if (ptr == nullptr) return;
  OPENSSL_cleanse(ptr, sizeof(ClusterKey));
  delete static_cast<ClusterKey*>(ptr);
}

int key_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_key);
  return index;
}

// The external PSK as a TLS 1.3 session (what OpenSSL's PSK callbacks take).
SSL_SESSION* psk_session(SSL* ssl) {
  const auto* key =
      static_cast<const ClusterKey*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), key_index()));
  static const unsigned char kAes128GcmSha256[] = {0x13, 0x01};
  const SSL_CIPHER* cipher = SSL_CIPHER_find(ssl, kAes128GcmSha256);
  if (key == nullptr || cipher == nullptr) return nullptr;
  SSL_SESSION* session = SSL_SESSION_new();
  if (session == nullptr || SSL_SESSION_set1_master_key(session, key->data(), key->size()) != 1 ||
      SSL_SESSION_set_cipher(session, cipher) != 1 ||
      SSL_SESSION_set_protocol_version(session, TLS1_3_VERSION) != 1 ||
      SSL_SESSION_set1_id_context(session, kSessionContext, sizeof kSessionContext - 1) != 1) {
    SSL_SESSION_free(session);
    return nullptr;
  }
  return session;
}

// Client side. `md`, when set, is the digest the handshake already chose
// (after a HelloRetryRequest); our PSK fits only SHA-256.
int use_psk(SSL* ssl, const EVP_MD* md, const unsigned char** id, size_t* id_len,
            SSL_SESSION** session) {
  *session = nullptr;
  if (md != nullptr && EVP_MD_get_type(md) != NID_sha256) return 1;
  *session = psk_session(ssl);
  if (*session == nullptr) return 0;
  *id = reinterpret_cast<const unsigned char*>(kPskIdentity.data());
  *id_len = kPskIdentity.size();
  return 1;
}

// Server side: an unknown identity gets no session, and the handshake then
// fails for want of a certificate.
int find_psk(SSL* ssl, const unsigned char* id, size_t id_len, SSL_SESSION** session) {
  *session = nullptr;
  if (std::string_view(reinterpret_cast<const char*>(id), id_len) != kPskIdentity) return 1;
  *session = psk_session(ssl);
  return *session != nullptr ? 1 : 0;
}

}  // namespace

Result<SslContextPtr> make_peer_context(const PeerTlsFiles& files) {
  auto ctx = new_context(TLS1_3_VERSION);
  if (!ctx) return ctx;
  SSL_CTX* h = (*ctx)->native_handle();
  WAVEKV_RETURN_IF_ERROR(load_identity(h, files.cert_file, files.key_file));
  WAVEKV_RETURN_IF_ERROR(load_trust(h, files.ca_file));
  SSL_CTX_set_verify(h, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_node_cert);
  SSL_CTX_set_num_tickets(h, 0);
  SSL_CTX_set_options(h, SSL_OP_NO_TICKET);
  return ctx;
}

Result<SslContextPtr> make_psk_context(const ClusterKey& key) {
  auto ctx = new_context(TLS1_3_VERSION);
  if (!ctx) return ctx;
  SSL_CTX* h = (*ctx)->native_handle();
  auto copy = std::make_unique<ClusterKey>(key);
  if (key_index() < 0 || SSL_CTX_set_ex_data(h, key_index(), copy.get()) != 1)
    return openssl_error("cannot attach the cluster key to the TLS context");
  copy.release();  // the SSL_CTX owns it now (free_key)
  if (SSL_CTX_set_ciphersuites(h, "TLS_AES_128_GCM_SHA256") != 1)
    return openssl_error("cannot select TLS_AES_128_GCM_SHA256");
  SSL_CTX_set_psk_use_session_callback(h, use_psk);
  SSL_CTX_set_psk_find_session_callback(h, find_psk);
  SSL_CTX_set_verify(h, SSL_VERIFY_PEER, reject_any_cert);
  SSL_CTX_set_num_tickets(h, 0);
  SSL_CTX_set_options(h, SSL_OP_NO_TICKET);
  return ctx;
}

Result<SslContextPtr> make_server_context(const ServerTlsFiles& files) {
  if (files.require_client_cert && files.client_ca_file.empty())
    return Status::invalid("requiring client certificates needs the CA they chain to");
  auto ctx = new_context(TLS1_2_VERSION);
  if (!ctx) return ctx;
  SSL_CTX* h = (*ctx)->native_handle();
  WAVEKV_RETURN_IF_ERROR(load_identity(h, files.cert_file, files.key_file));
  if (files.client_ca_file.empty()) return ctx;
  WAVEKV_RETURN_IF_ERROR(load_trust(h, files.client_ca_file));
  // The CA names the server sends in its CertificateRequest.
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.client_ca_file.c_str());
  if (names == nullptr) return openssl_error("cannot read " + files.client_ca_file);
  SSL_CTX_set_client_CA_list(h, names);
  int mode = SSL_VERIFY_PEER | (files.require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
  SSL_CTX_set_verify(h, mode, nullptr);
  return ctx;
}

Result<uint64_t> peer_node_id(const SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return Status::invalid("the peer presented no certificate");
  if (SSL_get_verify_result(ssl) != X509_V_OK)
    return Status::invalid("the peer's certificate did not verify");
  return node_id_of(cert);
}

ContextSource::ContextSource(Builder build, SslContextPtr first)
    : build_(std::move(build)), current_(std::move(first)) {}

Result<std::unique_ptr<ContextSource>> ContextSource::create(Builder build) {
  auto first = build();
  if (!first) return first.status();
  return std::unique_ptr<ContextSource>(new ContextSource(std::move(build), *first));
}

Result<std::unique_ptr<ContextSource>> ContextSource::peer(PeerTlsFiles files) {
  return create([files] { return make_peer_context(files); });
}

Result<std::unique_ptr<ContextSource>> ContextSource::server(ServerTlsFiles files) {
  return create([files] { return make_server_context(files); });
}

SslContextPtr ContextSource::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

Status ContextSource::reload() {
  // Built outside the lock: reading files must not stall new connections.
  auto fresh = build_();
  if (!fresh) return fresh.status();
  std::lock_guard lock(mu_);
  current_ = std::move(*fresh);
  return Status::ok();
}

}  // namespace wavekv::security
