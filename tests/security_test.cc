// src/security: the cluster key file, the certificate tooling, and real TLS
// handshakes over loopback with the contexts the peer transport and the
// client ports will use (issue 12).
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>

#include "security/certs.h"
#include "security/cluster_key.h"
#include "security/openssl_util.h"
#include "security/tls.h"
#include "support/test_util.h"

namespace wavekv::security {
namespace {

namespace fs = std::filesystem;
using asio::ip::tcp;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "wavekv-security-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_text(const std::string& path, const std::string& text, mode_t mode = 0600) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  ::chmod(path.c_str(), mode);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return st.st_mode & 07777;
}

X509Ptr load_cert(const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  return X509Ptr(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
}

// ---- the cluster key file ----

TEST(ClusterKey, GeneratedKeyRoundTripsThroughItsFile) {
  TempDir dir;
  auto a = generate_cluster_key();
  auto b = generate_cluster_key();
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b) << "two keys from the CSPRNG must differ";
  std::string text = format_cluster_key(*a);
  EXPECT_EQ(text.substr(0, text.find('\n')), "wavekv-cluster-key v1");
  EXPECT_EQ(text.size(), 22u + 64u + 1u) << text;
  write_text(dir / "cluster.key", text);
  auto loaded = load_cluster_key(dir / "cluster.key");
  ASSERT_TRUE(loaded) << loaded.status().to_string();
  EXPECT_EQ(loaded->key, *a);
  EXPECT_EQ(loaded->warning, "") << "mode 0600 is private";
}

TEST(ClusterKey, EveryMalformedFileIsAClearError) {
  TempDir dir;
  const std::string hex(64, 'a');
  struct Case {
    std::string text;
    std::string message;
  };
  const Case cases[] = {
      {"", "first line must be 'wavekv-cluster-key v1'"},
      {"wavekv-cluster-key v2\n" + hex + "\n", "first line must be"},
      {hex + "\n", "first line must be"},
      {"wavekv-cluster-key v1\n" + hex.substr(2) + "\n", "found 62"},
      {"wavekv-cluster-key v1\n" + hex + "aa\n", "found 66"},
      {"wavekv-cluster-key v1\n", "found 0"},
      {"wavekv-cluster-key v1\n" + hex.substr(1) + "g\n", "not a hex digit at offset 63"},
      {"wavekv-cluster-key v1\n" + hex + "\n" + hex + "\n", "not a hex digit at offset 64"},
  };
  for (const auto& c : cases) {
    write_text(dir / "k", c.text);
    auto r = load_cluster_key(dir / "k");
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << c.text;
    EXPECT_NE(r.status().message().find(c.message), std::string::npos)
        << c.text << " -> " << r.status().message();
    EXPECT_NE(r.status().message().find(dir / "k"), std::string::npos) << "names the file";
  }
  auto missing = load_cluster_key(dir / "nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("does not exist"), std::string::npos);
}

TEST(ClusterKey, UppercaseAndCrlfAreAccepted) {
  TempDir dir;
  std::string hex;
  for (int i = 0; i < 32; ++i) hex += "0F";
  write_text(dir / "k", "wavekv-cluster-key v1\r\n" + hex + "\r\n");
  auto r = load_cluster_key(dir / "k");
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->key[0], 0x0f);
  EXPECT_EQ(r->key[31], 0x0f);
}

TEST(ClusterKey, FileReadableByOthersLoadsWithAWarning) {
  TempDir dir;
  write_text(dir / "k", format_cluster_key(*generate_cluster_key()), 0644);
  auto r = load_cluster_key(dir / "k");
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_NE(r->warning.find("mode 0644"), std::string::npos) << r->warning;
  EXPECT_NE(r->warning.find("chmod 600"), std::string::npos) << r->warning;
  ::chmod((dir / "k").c_str(), 0640);
  EXPECT_NE(load_cluster_key(dir / "k")->warning, "") << "group-readable is also too open";
}

// ---- certificates ----

// Verifies `cert` against the CA in `ca_file` for `purpose` (X509_PURPOSE_*);
// returns X509_V_OK or OpenSSL's reason.
int verify(const std::string& ca_file, const std::string& cert_file, int purpose) {
  X509Ptr ca = load_cert(ca_file);
  X509Ptr cert = load_cert(cert_file);
  if (!ca || !cert) return -1;
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca.get());
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, cert.get(), nullptr);
  X509_STORE_CTX_set_purpose(ctx, purpose);
  int ok = X509_verify_cert(ctx);
  int err = ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return err;
}

TEST(Certs, CaSignsNodeAndClientCertificatesThatVerify) {
  TempDir dir;
  auto ca = init_ca(dir.path());
  ASSERT_TRUE(ca) << ca.status().to_string();
  EXPECT_EQ(ca->cert_path, dir / "ca.crt");
  EXPECT_EQ(mode_of(dir / "ca.key"), 0600u);
  EXPECT_EQ(mode_of(dir / "ca.crt"), 0644u);
  auto node = issue_node_cert(dir.path(), "n1", 42, {"localhost", "127.0.0.1", "[::1]"});
  ASSERT_TRUE(node) << node.status().to_string();
  EXPECT_EQ(node->cert_path, dir / "node.n1.crt");
  EXPECT_EQ(mode_of(dir / "node.n1.key"), 0600u);
  EXPECT_EQ(verify(dir / "ca.crt", dir / "node.n1.crt", X509_PURPOSE_SSL_SERVER), X509_V_OK);
  EXPECT_EQ(verify(dir / "ca.crt", dir / "node.n1.crt", X509_PURPOSE_SSL_CLIENT), X509_V_OK);

  X509Ptr cert = load_cert(dir / "node.n1.crt");
  ASSERT_TRUE(cert);
  auto id = node_id_of(cert.get());
  ASSERT_TRUE(id) << id.status().to_string();
  EXPECT_EQ(*id, 42u);
  EXPECT_EQ(X509_check_host(cert.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "other.example", 0, 0, nullptr), 0);

  auto client = issue_client_cert(dir.path(), "alice");
  ASSERT_TRUE(client) << client.status().to_string();
  EXPECT_EQ(mode_of(dir / "client.alice.key"), 0600u);
  EXPECT_EQ(verify(dir / "ca.crt", dir / "client.alice.crt", X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  EXPECT_NE(verify(dir / "ca.crt", dir / "client.alice.crt", X509_PURPOSE_SSL_SERVER), X509_V_OK)
      << "a client certificate must not serve as a server's";
  X509Ptr alice = load_cert(dir / "client.alice.crt");
  EXPECT_EQ(common_name_of(alice.get()).value(), "alice");
  EXPECT_FALSE(node_id_of(alice.get())) << "a client certificate binds no node id";
}

TEST(Certs, CertificateFromAnotherCaFailsVerification) {
  TempDir a, b;
  ASSERT_TRUE(init_ca(a.path()) && init_ca(b.path()));
  ASSERT_TRUE(issue_node_cert(b.path(), "n1", 1, {"localhost"}));
  EXPECT_EQ(verify(a / "ca.crt", b / "node.n1.crt", X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  EXPECT_EQ(verify(b / "ca.crt", b / "node.n1.crt", X509_PURPOSE_SSL_SERVER), X509_V_OK);
}

TEST(Certs, ExistingFilesAreNotOverwrittenUnlessAsked) {
  TempDir dir;
  ASSERT_TRUE(init_ca(dir.path()));
  std::string first = read_text(dir / "ca.crt");
  auto again = init_ca(dir.path());
  ASSERT_FALSE(again);
  EXPECT_NE(again.status().message().find("already exists"), std::string::npos);
  EXPECT_EQ(read_text(dir / "ca.crt"), first);
  ASSERT_TRUE(issue_node_cert(dir.path(), "n1", 1, {"localhost"}));
  std::string node = read_text(dir / "node.n1.key");
  EXPECT_FALSE(issue_node_cert(dir.path(), "n1", 2, {"localhost"}));
  EXPECT_EQ(read_text(dir / "node.n1.key"), node);
  ASSERT_TRUE(issue_node_cert(dir.path(), "n1", 2, {"localhost"}, /*overwrite=*/true));
  EXPECT_NE(read_text(dir / "node.n1.key"), node);
  EXPECT_EQ(node_id_of(load_cert(dir / "node.n1.crt").get()).value(), 2u);
  ASSERT_TRUE(init_ca(dir.path(), /*overwrite=*/true));
  EXPECT_NE(read_text(dir / "ca.crt"), first);
}

TEST(Certs, BadRequestsAreRefused) {
  TempDir dir;
  auto no_ca = issue_node_cert(dir.path(), "n1", 1, {"localhost"});
  ASSERT_FALSE(no_ca);
  EXPECT_EQ(no_ca.status().code(), Code::kNotFound);
  EXPECT_NE(no_ca.status().message().find("wavekv cert init-ca"), std::string::npos);
  ASSERT_TRUE(init_ca(dir.path()));
  EXPECT_FALSE(issue_node_cert(dir.path(), "n1", 0, {"localhost"})) << "node id 0";
  EXPECT_FALSE(issue_node_cert(dir.path(), "n1", 1, {})) << "no host";
  EXPECT_FALSE(issue_node_cert(dir.path(), "n1", 1, {"a b"})) << "not a host";
  EXPECT_FALSE(issue_node_cert(dir.path(), "n1", 1, {"a,URI:x"})) << "SAN syntax injection";
  EXPECT_FALSE(issue_node_cert(dir.path(), "../n1", 1, {"localhost"})) << "path in the name";
  EXPECT_FALSE(issue_client_cert(dir.path(), "a/b"));
  EXPECT_FALSE(issue_client_cert(dir.path(), ""));
  EXPECT_FALSE(fs::exists(dir / "node.n1.crt"));
}

// A self-signed certificate whose SAN is `san`, to feed node_id_of.
X509Ptr cert_with_san(const std::string& san) {
  PKeyPtr key(EVP_EC_gen("P-256"));
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), X509_VERSION_3);
  X509_set_pubkey(cert.get(), key.get());
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
  X509_add_ext(cert.get(), ext, -1);
  X509_EXTENSION_free(ext);
  X509_sign(cert.get(), key.get(), EVP_sha256());
  return cert;
}

TEST(Certs, NodeIdNeedsExactlyOneWellFormedUri) {
  EXPECT_EQ(node_id_of(cert_with_san("URI:wavekv://node/18446744073709551615").get()).value(),
            18446744073709551615u);
  EXPECT_EQ(node_id_of(cert_with_san("DNS:x,URI:https://e.org/,URI:wavekv://node/7").get()).value(),
            7u);
  const char* refused[] = {
      "DNS:localhost",
      "URI:wavekv://node/1,URI:wavekv://node/2",
      "URI:wavekv://node/1,URI:wavekv://node/1",
      "URI:wavekv://node/",
      "URI:wavekv://node/0",
      "URI:wavekv://node/12x",
      "URI:wavekv://node/+5",
      "URI:wavekv://node/18446744073709551616",
  };
  for (const char* san : refused) EXPECT_FALSE(node_id_of(cert_with_san(san).get())) << san;
  EXPECT_FALSE(node_id_of(nullptr));
}

// ---- TLS handshakes over loopback ----

// What happened on one connection, as each side saw it.
struct Handshake {
  bool finished = false;  // both sides were done before the deadline
  bool server_ok = false, client_ok = false;
  std::error_code server_error, client_error;
  std::string server_received;   // bytes the server's application read after its handshake
  bool server_used_psk = false;  // the handshake was keyed by a pre-shared key
  int server_group = 0;          // the (EC)DHE group it used, 0 for none
  Result<uint64_t> client_id = Status::invalid("no handshake");  // as the server saw it
};

// One connection: the server accepts, handshakes, then reads until the
// stream ends; the client handshakes and sends "hello" (with no client
// context: sends plaintext transport bytes instead). A side whose handshake
// fails closes its socket, so the other side finishes too; the io_context
// runs at most 10 s, so a hang fails the test instead of blocking it.
Handshake run_handshake(const SslContextPtr& server_ctx, const SslContextPtr& client_ctx) {
  Handshake out;
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  asio::ssl::stream<tcp::socket> server(io, *server_ctx);
  std::optional<asio::ssl::stream<tcp::socket>> client;
  tcp::socket plain(io);
  if (client_ctx) client.emplace(io, *client_ctx);
  tcp::socket& client_socket = client ? client->next_layer() : plain;
  std::array<char, 256> buf;
  std::function<void()> read_more = [&] {
    server.async_read_some(asio::buffer(buf), [&](std::error_code ec, size_t n) {
      out.server_received.append(buf.data(), n);
      if (!ec) read_more();
    });
  };
  acceptor.async_accept(server.next_layer(), [&](std::error_code ec) {
    if (ec) return void(out.server_error = ec);
    server.async_handshake(asio::ssl::stream_base::server, [&](std::error_code ec) {
      out.server_error = ec;
      out.server_ok = !ec;
      if (ec) return server.next_layer().close();
      out.client_id = peer_node_id(server.native_handle());
      out.server_used_psk = SSL_session_reused(server.native_handle()) == 1;
      out.server_group = SSL_get_negotiated_group(server.native_handle());
      read_more();
    });
  });
  static const std::string kHello = "hello";
  static const std::string kPlain("WKVT\x01\x05\x00\x00\x00hello", 14);
  client_socket.async_connect(acceptor.local_endpoint(), [&](std::error_code ec) {
    if (ec) return void(out.client_error = ec);
    if (!client) {
      return asio::async_write(plain, asio::buffer(kPlain),
                               [&](std::error_code, size_t) { plain.close(); });
    }
    client->async_handshake(asio::ssl::stream_base::client, [&](std::error_code ec) {
      out.client_error = ec;
      out.client_ok = !ec;
      if (ec) return client_socket.close();
      asio::async_write(*client, asio::buffer(kHello),
                        [&](std::error_code, size_t) { client_socket.close(); });
    });
  });
  io.run_for(std::chrono::seconds(10));
  out.finished = io.stopped();
  return out;
}

// A CA with two nodes (ids 1 and 2) and a client, and a second CA with a node.
class Tls : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(init_ca(ca_.path()));
    ASSERT_TRUE(issue_node_cert(ca_.path(), "n1", 1, {"127.0.0.1"}));
    ASSERT_TRUE(issue_node_cert(ca_.path(), "n2", 2, {"127.0.0.1"}));
    ASSERT_TRUE(issue_client_cert(ca_.path(), "alice"));
    ASSERT_TRUE(init_ca(other_.path()));
    ASSERT_TRUE(issue_node_cert(other_.path(), "n9", 9, {"127.0.0.1"}));
  }
  // The peer context of `file_prefix` (e.g. "node.n1") in `dir`, trusting `trust`'s CA.
  SslContextPtr peer(const TempDir& dir, const std::string& file_prefix, const TempDir& trust) {
    auto ctx = make_peer_context(
        {trust / "ca.crt", dir / (file_prefix + ".crt"), dir / (file_prefix + ".key")});
    EXPECT_TRUE(ctx) << ctx.status().to_string();
    return ctx ? *ctx : nullptr;
  }
  SslContextPtr psk(const ClusterKey& key) {
    auto ctx = make_psk_context(key);
    EXPECT_TRUE(ctx) << ctx.status().to_string();
    return ctx ? *ctx : nullptr;
  }
  TempDir ca_, other_;
};

TEST_F(Tls, PeersOfOneCaConnectAndTheServerLearnsTheClientsNodeId) {
  Handshake h = run_handshake(peer(ca_, "node.n1", ca_), peer(ca_, "node.n2", ca_));
  ASSERT_TRUE(h.finished);
  EXPECT_TRUE(h.server_ok) << h.server_error.message();
  EXPECT_TRUE(h.client_ok) << h.client_error.message();
  EXPECT_EQ(h.server_received, "hello");
  ASSERT_TRUE(h.client_id) << h.client_id.status().to_string();
  EXPECT_EQ(*h.client_id, 2u);
}

TEST_F(Tls, PeerWithAnotherCasCertificateIsRefusedBeforeAnyByte) {
  // The stranger trusts our CA (so it accepts our server), but its own
  // certificate is from another CA: only the server's check stops it.
  Handshake h = run_handshake(peer(ca_, "node.n1", ca_), peer(other_, "node.n9", ca_));
  ASSERT_TRUE(h.finished);
  EXPECT_FALSE(h.server_ok);
  EXPECT_EQ(h.server_received, "") << "the application must never see a stranger's bytes";
  EXPECT_FALSE(h.client_id);
}

TEST_F(Tls, ServerWithAnotherCasCertificateIsRefusedByTheClient) {
  Handshake h = run_handshake(peer(other_, "node.n9", other_), peer(ca_, "node.n1", ca_));
  ASSERT_TRUE(h.finished);
  EXPECT_FALSE(h.client_ok) << "a node must not send frames to a server outside its CA";
  EXPECT_FALSE(h.server_ok);
  EXPECT_EQ(h.server_received, "");
}

TEST_F(Tls, ClientCertificateOfTheSameCaIsNotAPeer) {
  Handshake h = run_handshake(peer(ca_, "node.n1", ca_), peer(ca_, "client.alice", ca_));
  ASSERT_TRUE(h.finished);
  EXPECT_FALSE(h.server_ok) << "a certificate without a node id must not pass the peer handshake";
  EXPECT_EQ(h.server_received, "");
}

TEST_F(Tls, PeerWithoutACertificateIsRefused) {
  auto anonymous = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  anonymous->load_verify_file(ca_ / "ca.crt");
  anonymous->set_verify_mode(asio::ssl::verify_peer);
  Handshake h = run_handshake(peer(ca_, "node.n1", ca_), anonymous);
  ASSERT_TRUE(h.finished);
  EXPECT_FALSE(h.server_ok);
  EXPECT_EQ(h.server_received, "");
}

TEST_F(Tls, PeerThatOffersOnlyTls12IsRefused) {
  SslContextPtr old = peer(ca_, "node.n2", ca_);
  SSL_CTX_set_max_proto_version(old->native_handle(), TLS1_2_VERSION);
  Handshake h = run_handshake(peer(ca_, "node.n1", ca_), old);
  ASSERT_TRUE(h.finished);
  EXPECT_FALSE(h.server_ok) << "peers speak TLS 1.3 only";
  EXPECT_FALSE(h.client_ok);
  EXPECT_EQ(h.server_received, "");
}

TEST_F(Tls, PlaintextClientFailsAtTheHandshake) {
  Handshake h = run_handshake(peer(ca_, "node.n1", ca_), nullptr);
  ASSERT_TRUE(h.finished);
  EXPECT_FALSE(h.server_ok);
  EXPECT_TRUE(h.server_error) << "the server must report the failed handshake";
  EXPECT_EQ(h.server_received, "");
}

TEST_F(Tls, ClusterKeyPeersConnect) {
  ClusterKey key = *generate_cluster_key();
  Handshake h = run_handshake(psk(key), psk(key));
  ASSERT_TRUE(h.finished);
  EXPECT_TRUE(h.server_ok) << h.server_error.message();
  EXPECT_TRUE(h.client_ok) << h.client_error.message();
  EXPECT_EQ(h.server_received, "hello");
  EXPECT_TRUE(h.server_used_psk);
  EXPECT_NE(h.server_group, 0) << "PSK with (EC)DHE: a leaked key must not decrypt old traffic";
  EXPECT_FALSE(h.client_id) << "the cluster key binds no node id";
}

TEST_F(Tls, DifferentClusterKeysCannotConnect) {
  Handshake h = run_handshake(psk(*generate_cluster_key()), psk(*generate_cluster_key()));
  ASSERT_TRUE(h.finished);
  EXPECT_FALSE(h.server_ok);
  EXPECT_FALSE(h.client_ok);
  EXPECT_EQ(h.server_received, "");
}

TEST_F(Tls, ClusterKeyClientRefusesAServerWithOnlyACertificate) {
  // An attacker's server with any certificate must not receive a member's frames.
  Handshake h = run_handshake(peer(ca_, "node.n1", ca_), psk(*generate_cluster_key()));
  ASSERT_TRUE(h.finished);
  EXPECT_FALSE(h.client_ok);
  EXPECT_EQ(h.server_received, "");
}

TEST_F(Tls, PlaintextClientFailsAgainstAClusterKeyServer) {
  Handshake h = run_handshake(psk(*generate_cluster_key()), nullptr);
  ASSERT_TRUE(h.finished);
  EXPECT_FALSE(h.server_ok);
  EXPECT_EQ(h.server_received, "");
}

TEST_F(Tls, ClientPortServesAClientThatTrustsTheCa) {
  auto server = make_server_context({ca_ / "node.n1.crt", ca_ / "node.n1.key", "", false});
  ASSERT_TRUE(server) << server.status().to_string();
  auto client = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  client->load_verify_file(ca_ / "ca.crt");
  client->set_verify_mode(asio::ssl::verify_peer);
  Handshake h = run_handshake(*server, client);
  ASSERT_TRUE(h.finished);
  EXPECT_TRUE(h.client_ok) << h.client_error.message();
  EXPECT_EQ(h.server_received, "hello");
}

TEST_F(Tls, ClientPortCanRequireAClientCertificate) {
  ServerTlsFiles files{ca_ / "node.n1.crt", ca_ / "node.n1.key", ca_ / "ca.crt", true};
  auto server = make_server_context(files);
  ASSERT_TRUE(server) << server.status().to_string();
  auto anonymous = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  anonymous->load_verify_file(ca_ / "ca.crt");
  Handshake refused = run_handshake(*server, anonymous);
  ASSERT_TRUE(refused.finished);
  EXPECT_FALSE(refused.server_ok);
  EXPECT_EQ(refused.server_received, "");

  auto alice = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  alice->load_verify_file(ca_ / "ca.crt");
  alice->use_certificate_chain_file(ca_ / "client.alice.crt");
  alice->use_private_key_file(ca_ / "client.alice.key", asio::ssl::context::pem);
  Handshake ok = run_handshake(*server, alice);
  ASSERT_TRUE(ok.finished);
  EXPECT_TRUE(ok.server_ok) << ok.server_error.message();
  EXPECT_EQ(ok.server_received, "hello");
}

TEST_F(Tls, BuildersReportBadFiles) {
  auto missing = make_peer_context({ca_ / "ca.crt", ca_ / "node.nx.crt", ca_ / "node.nx.key"});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  auto mismatched = make_peer_context({ca_ / "ca.crt", ca_ / "node.n1.crt", ca_ / "node.n2.key"});
  ASSERT_FALSE(mismatched);
  EXPECT_NE(mismatched.status().message().find("node.n2.key for"), std::string::npos)
      << mismatched.status().message();
  EXPECT_NE(mismatched.status().message().find("mismatch"), std::string::npos)
      << mismatched.status().message();
}

TEST_F(Tls, ReloadKeepsTheOldContextWhenTheNewFilesAreBad) {
  auto source = ContextSource::peer({ca_ / "ca.crt", ca_ / "node.n1.crt", ca_ / "node.n1.key"});
  ASSERT_TRUE(source) << source.status().to_string();
  SslContextPtr before = (*source)->current();
  write_text(ca_ / "node.n1.crt", "-----BEGIN CERTIFICATE-----\ngarbage\n", 0644);
  Status broken = (*source)->reload();
  EXPECT_FALSE(broken.is_ok());
  EXPECT_NE(broken.message().find("node.n1.crt"), std::string::npos) << broken.message();
  ASSERT_EQ((*source)->current(), before) << "a failed reload must keep the working context";
  Handshake still = run_handshake((*source)->current(), peer(ca_, "node.n2", ca_));
  EXPECT_TRUE(still.server_ok) << still.server_error.message();

  // A renewed certificate (node id 3 now) is picked up by the next reload.
  ASSERT_TRUE(issue_node_cert(ca_.path(), "n1", 3, {"127.0.0.1"}, /*overwrite=*/true));
  ASSERT_TRUE((*source)->reload().is_ok());
  EXPECT_NE((*source)->current(), before);
  Handshake renewed = run_handshake(peer(ca_, "node.n2", ca_), (*source)->current());
  ASSERT_TRUE(renewed.server_ok) << renewed.server_error.message();
  EXPECT_EQ(renewed.client_id.value(), 3u);
}

// ---- the `wavekv` commands ----

test::Outcome wavekv(const std::string& args) {
  return test::run_command(std::string(WAVEKV_BINARY) + " " + args);
}

TEST(SecurityCli, CertCommandsWriteVerifiableFilesWithPrivateKeys) {
  TempDir tmp;
  std::string dir = tmp / "certs";
  test::Outcome ca = wavekv("cert init-ca --dir " + dir);
  ASSERT_EQ(ca.exit_code, 0) << ca.out;
  EXPECT_EQ(mode_of(dir), 0700u) << "a new certificate directory is private";
  EXPECT_EQ(mode_of(dir + "/ca.key"), 0600u);
  test::Outcome node =
      wavekv("cert node --dir " + dir + " --name n1 --node-id 7 --host 127.0.0.1,localhost");
  ASSERT_EQ(node.exit_code, 0) << node.out;
  EXPECT_NE(node.out.find("node.n1.crt"), std::string::npos) << node.out;
  EXPECT_EQ(mode_of(dir + "/node.n1.key"), 0600u);
  EXPECT_EQ(verify(dir + "/ca.crt", dir + "/node.n1.crt", X509_PURPOSE_SSL_SERVER), X509_V_OK);
  EXPECT_EQ(node_id_of(load_cert(dir + "/node.n1.crt").get()).value(), 7u);
  ASSERT_EQ(wavekv("cert client --dir " + dir + " --name alice").exit_code, 0);
  EXPECT_EQ(mode_of(dir + "/client.alice.key"), 0600u);
  EXPECT_EQ(common_name_of(load_cert(dir + "/client.alice.crt").get()).value(), "alice");

  test::Outcome again = wavekv("cert init-ca --dir " + dir);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.out.find("already exists"), std::string::npos) << again.out;
  test::Outcome no_ca = wavekv("cert node --dir " + tmp.path() + " --name n1 --node-id 1 --host h");
  EXPECT_NE(no_ca.exit_code, 0);
  EXPECT_NE(no_ca.out.find("init-ca"), std::string::npos) << no_ca.out;
}

TEST(SecurityCli, KeygenPrintsALoadableKeyFile) {
  TempDir tmp;
  test::Outcome k = wavekv("keygen > " + (tmp / "cluster.key"));
  ASSERT_EQ(k.exit_code, 0) << k.out;
  EXPECT_EQ(mode_of(tmp / "cluster.key"), 0600u) << "keygen makes the file it writes to private";
  auto key = load_cluster_key(tmp / "cluster.key");
  ASSERT_TRUE(key) << key.status().to_string() << "\n" << read_text(tmp / "cluster.key");
  test::Outcome k2 = wavekv("keygen");
  ASSERT_EQ(k2.exit_code, 0);
  EXPECT_NE(k2.out, read_text(tmp / "cluster.key")) << "every key is new";
}

}  // namespace
}  // namespace wavekv::security
