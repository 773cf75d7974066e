// Issue 12, the peer side (docs/SECURITY.md, "Peers"), against real `wavekv
// serve` processes: before this, one unauthenticated frame on the peer port
// could wipe a node (Rebootstrap), inject or delete keys (Push), or make it
// dial any address and send it every value in plaintext (SyncRequest).
//
// Here strangers (plain TCP, another CA, another cluster key) send exactly
// those frames and change nothing, learn nothing, cause no dial; a node with
// the wrong credentials never joins; no value crosses the wire in plaintext;
// a member cannot speak in another member's name; a member that names a
// stranger's address makes the node dial a handshake that fails, with no
// value sent; the node refuses to listen beyond loopback without
// authentication; SIGHUP reloads the key. The same attacks against a node
// without security (the controls) succeed, so each test can fail.
//
// The certificates and keys are made once for the suite (wavekv/security.h).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "replication/messages.h"
#include "support/serve_node.h"
#include "support/tcp_proxy.h"
#include "support/test_util.h"
#include "wavekv/node.h"
#include "wavekv/security.h"
#include "wavekv/transport.h"

namespace wavekv {
namespace {

using test::eventually;
using test::get;
using test::put;
using test::ScratchNodes;
using test::ServeNode;
using test::status;

constexpr const char* kSecret = "the-secret-value-5150";

// A listener that a test names as its own address: it records what any
// dialer sends, and closes each connection after the first bytes (a TLS
// ClientHello, say), as a stranger that holds no credentials must.
class Recorder {
 public:
  Recorder() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0)
      return;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~Recorder() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int connections() const { return connections_; }
  std::string bytes() {
    std::lock_guard lock(mu_);
    return bytes_;
  }

 private:
  void loop() {
    while (!stopping_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      connections_++;
      // Everything that comes within 300 ms of the last bytes (a plaintext
      // dialer writes its frames at once), then close; a dialer that keeps
      // writing is read until the test ends.
      char buf[64 * 1024];
      while (!stopping_) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 300) <= 0) break;
        ssize_t k = ::recv(c, buf, sizeof buf, 0);
        if (k <= 0) break;
        std::lock_guard lock(mu_);
        bytes_.append(buf, static_cast<size_t>(k));
      }
      ::close(c);
    }
  }
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
  std::mutex mu_;
  std::string bytes_;
};

uint64_t now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::string frame(NodeId from, const std::string& from_address, Body body) {
  Message m;
  m.from = from;
  m.from_incarnation = 77;
  m.from_address = from_address;
  m.body = std::move(body);
  return encode_message(m);
}

// A Push from `from` that sets `key` (a tombstone if `value` is empty).
std::string push(NodeId from, const std::string& key, const std::string& value, uint64_t seq) {
  Entry e{value, value.empty(), Meta{from, seq, timestamp_from_millis(now_ms()), 77}};
  return frame(from, "127.0.0.1:1", Push{{{key, std::move(e)}}});
}

// What a stranger sends: a Rebootstrap, a Push deleting `kept` and setting
// "injected", and a SyncRequest asking for everything at `reply_to`.
std::vector<std::string> attack_frames(NodeId as, const std::string& reply_to) {
  return {frame(as, reply_to, Rebootstrap{"evicted"}), push(as, "kept", "", 1),
          push(as, "injected", "x", 2), frame(as, reply_to, SyncRequest{})};
}

uint64_t figure(const ServeNode& n, const char* group, const char* name) {
  nlohmann::json s = status(n);
  return s.contains(group) ? s[group].value(name, uint64_t{0}) : 0;
}

class PeerSecurity : public ::testing::Test {
 protected:
  // The cluster CA and nodes 1..3; another CA with its own node 2; two keys.
  static void SetUpTestSuite() {
    dir_ = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                     ("wavekv-peer-security-" + std::to_string(::getpid())));
    std::filesystem::remove_all(*dir_);
    std::filesystem::create_directories(*dir_);
    ASSERT_TRUE(init_ca({good()}).is_ok());
    ASSERT_TRUE(init_ca({evil()}).is_ok());
    for (NodeId id : {1, 2, 3})
      ASSERT_TRUE(issue_node_cert({good(), "n" + std::to_string(id), id, {"127.0.0.1"}}).is_ok());
    ASSERT_TRUE(issue_node_cert({evil(), "n2", 2, {"127.0.0.1"}}).is_ok());
    for (const char* name : {"key1", "key2"}) {
      auto key = generate_cluster_key_file();
      ASSERT_TRUE(key.is_ok());
      std::ofstream(*dir_ / name) << *key;
      std::filesystem::permissions(
          *dir_ / name, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    }
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  static std::string good() { return (*dir_ / "good").string(); }
  static std::string evil() { return (*dir_ / "evil").string(); }
  static std::string key(const char* name) { return (*dir_ / name).string(); }

  static std::vector<std::string> mtls_flags(const std::string& certs, NodeId id) {
    return {"--certs-dir", certs, "--name", "n" + std::to_string(id)};
  }
  static wavekv::PeerSecurity mtls(const std::string& certs, NodeId id) {
    wavekv::PeerSecurity s;
    s.mode = wavekv::PeerSecurity::Mode::kMutualTls;
    const std::string n = certs + "/node.n" + std::to_string(id);
    s.ca_file = certs + "/ca.crt";
    s.cert_file = n + ".crt";
    s.key_file = n + ".key";
    return s;
  }
  static wavekv::PeerSecurity cluster_key(const std::string& file) {
    wavekv::PeerSecurity s;
    s.mode = wavekv::PeerSecurity::Mode::kClusterKey;
    s.cluster_key_file = file;
    return s;
  }

  // A transport of the test's own that dials the nodes: a stranger or a
  // member, depending on its credentials.
  std::unique_ptr<Transport> dialer(wavekv::PeerSecurity security) {
    TransportConfig c;
    c.security = std::move(security);
    c.connect_timeout_ms = 2000;
    c.backoff_initial_ms = 10;
    c.backoff_max_ms = 20;
    auto t = make_tcp_transport(c);
    Status st = t->start("127.0.0.1:0", [](std::string, PeerIdentity) {});
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    return t;
  }

  static std::filesystem::path* dir_;
};
std::filesystem::path* PeerSecurity::dir_ = nullptr;

// Plain TCP, a certificate of another CA and another cluster key: each
// sends the frames that used to wipe, change and drain a node. Its keys stay,
// nothing is injected, it is not wiped, it dials no one, and it counts one
// failed handshake per stranger.
TEST_F(PeerSecurity, StrangersChangeNothingAndReadNothing) {
  ScratchNodes scratch("peer-strangers", 1);
  ServeNode& node = scratch.nodes[0];
  node.id = "1";
  node.extra = mtls_flags(good(), 1);
  ASSERT_TRUE(node.start());
  ASSERT_TRUE(put(node, "kept", kSecret));
  const uint64_t incarnation = status(node)["incarnation"];
  Recorder attacker;

  auto plain = dialer({});
  auto other_ca = dialer(mtls(evil(), 2));
  auto other_key = dialer(cluster_key(key("key2")));
  for (Transport* t : {plain.get(), other_ca.get(), other_key.get()})
    for (auto& f : attack_frames(2, attacker.address())) t->send(node.peer, f);
  ASSERT_TRUE(eventually([&] { return figure(node, "transport", "handshake_failures") >= 3; }, 20))
      << status(node).dump();
  EXPECT_TRUE(eventually([&] {
    return other_ca->stats().dial_handshake_failures >= 1 &&
           other_key->stats().dial_handshake_failures >= 1;
  }));
  EXPECT_EQ(figure(node, "transport", "frames_received"), 0u);
  EXPECT_EQ(get(node, "kept"), kSecret);
  EXPECT_EQ(get(node, "injected"), "<absent>");
  EXPECT_EQ(status(node)["incarnation"], incarnation) << "not wiped";
  EXPECT_EQ(attacker.connections(), 0) << "the node dialed the stranger's address";
}

// The control: the same frames against a node without security (loopback,
// so it may) inject a key and make the node send its values, in plaintext,
// to whatever address the stranger names.
TEST_F(PeerSecurity, WithoutSecurityAStrangerInjectsAndReadsEverything) {
  ScratchNodes scratch("peer-insecure", 1);
  ServeNode& node = scratch.nodes[0];
  node.id = "1";
  ASSERT_TRUE(node.start());
  ASSERT_TRUE(put(node, "kept", kSecret));
  Recorder attacker;
  auto plain = dialer({});
  plain->send(node.peer, push(2, "injected", "x", 1));
  plain->send(node.peer, frame(2, attacker.address(), SyncRequest{}));
  EXPECT_TRUE(eventually([&] { return get(node, "injected") == "x"; }, 10));
  EXPECT_TRUE(eventually([&] { return attacker.bytes().find(kSecret) != std::string::npos; }, 10));
}

// A member (it holds the key) that names a stranger's address: the node
// dials it, the handshake fails (the stranger holds no key), and not one
// value byte reaches it.
TEST_F(PeerSecurity, AReplyToAStrangersAddressFailsTheHandshakeAndCarriesNothing) {
  ScratchNodes scratch("peer-dial-out", 1);
  ServeNode& node = scratch.nodes[0];
  node.extra = {"--cluster-key-file", key("key1")};
  ASSERT_TRUE(node.start());
  ASSERT_TRUE(put(node, "kept", kSecret));
  Recorder attacker;
  auto member = dialer(cluster_key(key("key1")));
  member->send(node.peer, frame(99, attacker.address(), SyncRequest{}));
  ASSERT_TRUE(
      eventually([&] { return figure(node, "transport", "dial_handshake_failures") >= 1; }, 20))
      << status(node).dump();
  EXPECT_GE(attacker.connections(), 1) << "the node did answer the member";
  EXPECT_EQ(attacker.bytes().find(kSecret), std::string::npos) << "a value left in plaintext";
  EXPECT_EQ(figure(node, "transport", "frames_received"), 1u);
}

// Mutual TLS binds node ids: node 3's certificate cannot speak as node 2.
// Its Push in node 2's name is refused and counted; its own Push, sent after
// on the same connection, arrives (so the refusal was the identity rule).
TEST_F(PeerSecurity, AMemberCannotSpeakAsAnother) {
  ScratchNodes scratch("peer-impersonation", 1);
  ServeNode& node = scratch.nodes[0];
  node.id = "1";
  node.extra = mtls_flags(good(), 1);
  ASSERT_TRUE(node.start());
  auto node3 = dialer(mtls(good(), 3));
  node3->send(node.peer, push(2, "forged", "by-3-as-2", 1));
  node3->send(node.peer, push(3, "genuine", "by-3", 1));
  ASSERT_TRUE(eventually([&] { return get(node, "genuine") == "by-3"; }, 10));
  EXPECT_EQ(get(node, "forged"), "<absent>");
  EXPECT_EQ(figure(node, "replication", "impersonations_refused"), 1u);
  EXPECT_NE(test::file_tail(node.log()).find("but the message says it is from node 2"),
            std::string::npos)
      << test::file_tail(node.log());
}

// A node with another cluster key, and one with a certificate of another
// CA, seeded with a member's address: both dial, fail every handshake, and
// never join (no member learned, no key replicated), while each member
// counts the failures.
TEST_F(PeerSecurity, ANodeWithTheWrongKeyOrCaNeverJoins) {
  ScratchNodes scratch("peer-wrong-credentials", 4);
  auto& n = scratch.nodes;
  for (auto& x : n) x.sync_interval_ms = "100";
  n[0].extra = {"--cluster-key-file", key("key1")};
  n[1].extra = {"--cluster-key-file", key("key2")};
  n[2].id = "1";
  n[2].extra = mtls_flags(good(), 1);
  n[3].id = "2";
  n[3].extra = mtls_flags(evil(), 2);
  ASSERT_TRUE(n[0].start());
  ASSERT_TRUE(n[2].start());
  ASSERT_TRUE(put(n[0], "kept", kSecret));
  ASSERT_TRUE(put(n[2], "kept", kSecret));
  n[1].seeds = n[0].peer;
  n[3].seeds = n[2].peer;
  ASSERT_TRUE(n[1].start());
  ASSERT_TRUE(n[3].start());
  for (int member : {0, 2}) {
    const ServeNode& stranger = n[member + 1];
    EXPECT_TRUE(eventually(
        [&] {
          return figure(stranger, "transport", "dial_handshake_failures") >= 3 &&
                 figure(n[member], "transport", "handshake_failures") >= 3;
        },
        30))
        << status(stranger).dump();
    EXPECT_EQ(get(stranger, "kept"), "<absent>");
    EXPECT_EQ(status(stranger)["members"].size(), 0u);
    EXPECT_EQ(status(n[member])["members"].size(), 0u);
    EXPECT_EQ(figure(n[member], "transport", "frames_received"), 0u);
  }
}

// Bytes recorded between two nodes (a proxy in front of the second, which
// it advertises): with certificates the value never shows; without security
// it does (the control).
class PeerWire : public PeerSecurity, public ::testing::WithParamInterface<bool> {};

TEST_P(PeerWire, AValueCrossesTheWireInPlaintextOnlyWithoutSecurity) {
  const bool secure = GetParam();
  ScratchNodes scratch(secure ? "peer-wire-tls" : "peer-wire-plain", 2);
  auto& n = scratch.nodes;
  test::TcpProxy proxy;
  ASSERT_TRUE(proxy.ok());
  proxy.record();
  for (int i = 0; i < 2; i++) {
    n[i].id = std::to_string(i + 1);
    n[i].sync_interval_ms = "100";
    if (secure) n[i].extra = mtls_flags(good(), i + 1);
  }
  n[1].advertise = proxy.address();
  ASSERT_TRUE(n[1].start());
  proxy.forward_to(test::port_of(n[1].peer));
  n[0].seeds = proxy.address();
  ASSERT_TRUE(n[0].start());
  ASSERT_TRUE(put(n[0], "k", kSecret));
  ASSERT_TRUE(eventually([&] { return get(n[1], "k") == kSecret; }, 20));
  ASSERT_GT(proxy.forwarded(), 0u);
  EXPECT_EQ(proxy.recorded().find(kSecret) != std::string::npos, !secure)
      << (secure ? "the value crossed in plaintext under TLS"
                 : "the control: without security the value is on the wire");
}

INSTANTIATE_TEST_SUITE_P(Tls, PeerWire, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "MutualTls" : "Plain"; });

// Secure by default: the peer port beyond loopback needs authentication, and
// the error says which flag to add. --insecure or a key lets it start; a key
// and certificates together are refused.
TEST_F(PeerSecurity, ServeRefusesAnUnauthenticatedPeerPortBeyondLoopback) {
  ScratchNodes scratch("peer-exposure", 2);
  // `timeout`: were the check gone, serve would run instead of exiting.
  const std::string base = "timeout 20 " + std::string(WAVEKV_BINARY) +
                           " serve --http '' --resp '' --data-dir " + scratch.nodes[0].dir +
                           " --listen 0.0.0.0:0";
  test::Outcome refused = test::run_command(base);
  EXPECT_EQ(refused.exit_code, 2) << refused.out;
  for (const char* flag : {"--cluster-key-file", "--ca-file", "--insecure"})
    EXPECT_NE(refused.out.find(flag), std::string::npos) << refused.out;
  test::Outcome both = test::run_command(base + " --cluster-key-file " + key("key1") +
                                         " --certs-dir " + good() + " --name n1");
  EXPECT_EQ(both.exit_code, 2) << both.out;
  EXPECT_NE(both.out.find("exclude each other"), std::string::npos) << both.out;

  for (int i = 0; i < 2; i++) {
    ServeNode& node = scratch.nodes[i];
    node.listen = "0.0.0.0:0";
    if (i == 0)
      node.extra.push_back("--insecure");
    else
      node.extra.insert(node.extra.end(), {"--cluster-key-file", key("key1")});
    EXPECT_TRUE(node.start());
    EXPECT_EQ(node.stop(SIGTERM), 0);
  }
}

// SIGHUP reloads the key file: a broken file is refused and logged, and the
// node keeps its key (a member still gets in); a new key takes over for new
// connections (a holder of the old one no longer does).
TEST_F(PeerSecurity, SighupReloadsTheKeyAndABrokenFileKeepsTheOldOne) {
  ScratchNodes scratch("peer-reload", 1);
  ServeNode& node = scratch.nodes[0];
  const std::string file = (scratch.base / "cluster.key").string();
  std::filesystem::copy_file(key("key1"), file);
  node.extra = {"--cluster-key-file", file};
  ASSERT_TRUE(node.start());
  auto pushed = [&](const char* key_file, const char* k) {
    auto t = dialer(cluster_key(key(key_file)));
    t->send(node.peer, push(9, k, "v", 1));
    return eventually([&] { return get(node, k) == "v"; }, 5);
  };
  ASSERT_TRUE(pushed("key1", "one"));

  std::ofstream(file, std::ios::trunc) << "not a key\n";
  ::kill(node.pid, SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return test::file_tail(node.log()).find("reloading credentials failed") != std::string::npos;
  }));
  EXPECT_TRUE(pushed("key1", "two")) << "the old key still serves";

  std::filesystem::copy_file(key("key2"), file, std::filesystem::copy_options::overwrite_existing);
  ::kill(node.pid, SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return test::file_tail(node.log()).find("reloaded credentials") != std::string::npos;
  }));
  EXPECT_TRUE(pushed("key2", "three")) << "the new key serves";
  auto old_key = dialer(cluster_key(key("key1")));
  old_key->send(node.peer, push(9, "four", "v", 2));
  ASSERT_TRUE(eventually([&] { return old_key->stats().dial_handshake_failures >= 1; }));
  EXPECT_EQ(get(node, "four"), "<absent>");
}

// check_exposure's table: what counts as loopback.
TEST(CheckExposure, OnlyLoopbackListensWithoutAuthentication) {
  NodeConfig c;
  for (const char* ok : {"127.0.0.1:0", "127.9.9.9:7400", "[::1]:0", "localhost:7400"}) {
    c.listen = ok;
    EXPECT_TRUE(check_exposure(c).is_ok()) << ok;
  }
  for (const char* exposed : {"0.0.0.0:0", ":7400", "10.0.0.1:7400", "[::]:0", "example.com:1"}) {
    c.listen = exposed;
    const Status st = check_exposure(c);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << exposed;
    EXPECT_NE(st.message().find("--cluster-key-file"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("--insecure"), std::string::npos) << st.message();
  }
  c.listen = "0.0.0.0:0";
  c.insecure = true;
  EXPECT_TRUE(check_exposure(c).is_ok());
  c.insecure = false;
  c.transport.security.mode = wavekv::PeerSecurity::Mode::kClusterKey;
  c.transport.security.cluster_key_file = "/k";
  EXPECT_TRUE(check_exposure(c).is_ok());
}

}  // namespace
}  // namespace wavekv

namespace wavekv {
namespace {

// Strangers holding half-open connections (TCP up, no handshake) take at
// most max_unauthenticated slots, and only for handshake_timeout_ms: then
// they are closed and a member gets in.
TEST_F(PeerSecurity, HalfOpenStrangersAreBoundedAndTimedOut) {
  TransportConfig c;
  c.security = cluster_key(key("key1"));
  c.max_unauthenticated = 2;
  c.handshake_timeout_ms = 1000;
  auto node = make_tcp_transport(c);
  std::atomic<int> received{0};
  ASSERT_TRUE(node->start("127.0.0.1:0",
                          [&](std::string, PeerIdentity from) {
                            if (from.authenticated) received++;
                          })
                  .is_ok());
  const uint16_t port = test::port_of(node->local_address());
  std::vector<int> strangers;
  for (int i = 0; i < 2; i++) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    strangers.push_back(fd);
  }
  auto member = dialer(cluster_key(key("key1")));
  // The member retries (a refused dial backs off 10 ms) until a slot frees.
  EXPECT_TRUE(eventually(
      [&] {
        member->send(node->local_address(), "hello");
        return received > 0;
      },
      10));
  const TransportStats s = node->stats();
  EXPECT_GE(s.auth_timeouts, 2u) << "the strangers were closed at the deadline";
  EXPECT_GE(s.connections_refused, 1u) << "while they held the slots, the member was refused";
  for (int fd : strangers) ::close(fd);
  node->stop();
}

}  // namespace
}  // namespace wavekv

namespace wavekv {
namespace {

// Under mutual TLS peers hear a node only as the id its certificate binds:
// without --id the node takes that id; with another it refuses to start.
TEST_F(PeerSecurity, TheCertificateGivesTheNodeIdAndAnotherIdIsRefused) {
  ScratchNodes scratch("peer-cert-id", 1);
  ServeNode& node = scratch.nodes[0];
  node.extra = mtls_flags(good(), 3);
  ASSERT_TRUE(node.start());
  EXPECT_EQ(node.node_id, 3u);
  EXPECT_EQ(node.stop(SIGTERM), 0);
  test::Outcome other = test::run_command(
      "timeout 20 " + std::string(WAVEKV_BINARY) + " serve --http '' --resp '' --data-dir " +
      node.dir + "-other --listen 127.0.0.1:0 --id 5 --certs-dir " + good() + " --name n3");
  EXPECT_EQ(other.exit_code, 2) << other.out;
  EXPECT_NE(other.out.find("binds node 3 but this node's id is 5"), std::string::npos) << other.out;
}

}  // namespace
}  // namespace wavekv
