// TLS and the users file on the client ports (issue 12): the RESP command
// gate (unit), RespServer and HttpServer over real sockets, and `wavekv
// serve` driven by the real redis-cli and curl.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>

#include <asio.hpp>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "auth/authenticator.h"
#include "auth/password.h"
#include "http/client.h"
#include "http/server.h"
#include "net/address.h"
#include "resp/commands.h"
#include "resp/server.h"
#include "support/resp_client.h"
#include "support/test_util.h"
#include "wavekv/node.h"
#include "wavekv/security.h"

namespace wavekv {
namespace {

using test::Client;

// The port of a "host:port" address.
uint16_t port_of(const std::string& address) {
  return net::parse_host_port(address, net::AddressUse::kDial)->port;
}

constexpr int kTimeoutMs = 10'000;  // a guard against hangs only

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "wavekv-cauth-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Low scrypt cost: the tests check behaviour, not the cost.
std::string fast_hash(const std::string& password) {
  auto h = auth::hash_password(password, auth::ScryptParams{1024, 8, 1});
  EXPECT_TRUE(h) << h.status().to_string();
  return h ? *h : "";
}

struct Fixture {
  std::string users_file;
  std::string token;  // ci's bearer token (role read)
};

// alice admin, reader read, app readwrite under "app:", default readwrite,
// ci read by token.
Fixture write_users(const std::string& dir, const std::string& extra = "") {
  Fixture f;
  f.users_file = dir + "/users.toml";
  auto t = auth::generate_token();
  EXPECT_TRUE(t);
  f.token = *t;
  std::ofstream out(f.users_file);
  out << "version = 1\n"
      << "[[user]]\nname = \"alice\"\nrole = \"admin\"\npassword = \"" << fast_hash("apw") << "\"\n"
      << "[[user]]\nname = \"reader\"\nrole = \"read\"\npassword = \"" << fast_hash("rpw") << "\"\n"
      << "[[user]]\nname = \"app\"\nrole = \"readwrite\"\nprefixes = [\"app:\"]\npassword = \""
      << fast_hash("ppw") << "\"\n"
      << "[[user]]\nname = \"default\"\nrole = \"readwrite\"\npassword = \"" << fast_hash("dpw")
      << "\"\n"
      << "[[user]]\nname = \"ci\"\nrole = \"read\"\ntokens = [\"" << auth::hash_token(f.token)
      << "\"]\n"
      << extra;
  return f;
}

std::unique_ptr<Store> open_store(const std::string& dir) {
  Config c;
  c.data_dir = dir + "/db";
  c.durability = Durability::kNone;
  auto s = Store::open(c);
  EXPECT_TRUE(s) << s.status().to_string();
  return s ? std::move(*s) : nullptr;
}

void put(Store& store, const std::string& k, const std::string& v) {
  WriteBatch b;
  b.put(k, v);
  ASSERT_TRUE(store.write(std::move(b)).is_ok());
}

// ---------------------------------------------------------------------------
// The command gate, without sockets.

class CommandGateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = open_store(dir_.path());
    put(*store_, "app:1", "a");
    put(*store_, "app:2", "b");
    put(*store_, "other", "c");
    users_ = std::move(
        *auth::parse_users("version = 1\n[[user]]\nname = \"x\"\nrole = \"read\"\ntokens = [\"" +
                               auth::hash_token("t") + "\"]\n",
                           "u.toml"));
  }
  std::string run(resp::Session& s, std::vector<std::string> args) {
    resp::CommandContext ctx{*store_, config_, status_, cursors_, stats_, 0, true};
    resp::Outcome o = resp::execute(ctx, s, args);
    return o.reply;
  }
  static resp::Session as(std::string name, auth::Role role,
                          std::optional<std::vector<std::string>> prefixes = std::nullopt) {
    resp::Session s;
    s.identity = auth::Identity{std::move(name), role, std::move(prefixes)};
    return s;
  }
  TempDir dir_;
  std::unique_ptr<Store> store_;
  resp::RespConfig config_;
  resp::RespStatusFn status_;
  resp::ScanCursors cursors_{16};
  resp::ServerStats stats_;
  auth::Users users_;
};

TEST_F(CommandGateTest, NothingButAuthHelloAuthAndQuitBeforeLogIn) {
  resp::Session s;  // not logged in
  for (auto cmd : std::vector<std::vector<std::string>>{
           {"GET", "app:1"}, {"PING"}, {"SET", "a", "b"}, {"NOSUCH"}, {"GET"}, {"ACL", "WHOAMI"}})
    EXPECT_EQ(run(s, cmd), "-NOAUTH Authentication required.\r\n") << cmd[0];
  EXPECT_TRUE(run(s, {"HELLO", "3"}).starts_with("-NOAUTH HELLO must be called")) << "HELLO";
  EXPECT_EQ(run(s, {"HELLO", "9"}), "-NOPROTO unsupported protocol version\r\n");
  // The server verifies credentials first; unverified, execute() refuses.
  EXPECT_TRUE(run(s, {"AUTH", "u", "p"}).starts_with("-ERR AUTH was not verified"));
  EXPECT_TRUE(run(s, {"HELLO", "3", "AUTH", "u", "p"}).starts_with("-ERR HELLO AUTH was not"));
  EXPECT_FALSE(s.identity);
  EXPECT_EQ(s.protocol, resp::Protocol::kResp2);
  EXPECT_EQ(run(s, {"QUIT"}), "+OK\r\n");
}

TEST_F(CommandGateTest, CredentialsOfAuthAndHello) {
  auto c = resp::credentials_of({"AUTH", "pw"});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->user, "default");
  EXPECT_EQ(c->password, "pw");
  c = resp::credentials_of({"auth", "u", "p"});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->user, "u");
  c = resp::credentials_of({"HELLO", "2", "SETNAME", "n", "AUTH", "u", "p"});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->password, "p");
  EXPECT_FALSE(resp::credentials_of({"AUTH", "a", "b", "c"}));
  EXPECT_FALSE(resp::credentials_of({"AUTH"}));
  EXPECT_FALSE(resp::credentials_of({"HELLO", "4", "AUTH", "u", "p"}));
  EXPECT_FALSE(resp::credentials_of({"HELLO", "3", "AUTH", "u"}));
  EXPECT_FALSE(resp::credentials_of({"HELLO", "3", "BOGUS"}));
  EXPECT_FALSE(resp::credentials_of({"GET", "k"}));
}

TEST_F(CommandGateTest, RolesDecideCommands) {
  auto reader = as("r", auth::Role::kRead);
  EXPECT_EQ(run(reader, {"GET", "other"}), "$1\r\nc\r\n");
  EXPECT_EQ(run(reader, {"SET", "k", "v"}),
            "-NOPERM User r has no permissions to run the 'set' command\r\n");
  EXPECT_TRUE(run(reader, {"DEL", "other"}).starts_with("-NOPERM"));
  EXPECT_TRUE(run(reader, {"MSET", "a", "1"}).starts_with("-NOPERM"));
  EXPECT_EQ(run(reader, {"DBSIZE"}), ":3\r\n");
  EXPECT_EQ(run(reader, {"ACL", "WHOAMI"}), "$1\r\nr\r\n");
  EXPECT_EQ(run(reader, {"PING"}), "+PONG\r\n");
  EXPECT_EQ(run(reader, {"CLIENT", "LIST"}),
            "-NOPERM User r has no permissions to run the 'client|list' command\r\n");
  EXPECT_TRUE(run(reader, {"CLIENT", "KILL", "ID", "1"}).starts_with("-NOPERM"));
  EXPECT_TRUE(run(reader, {"INCR", "other"}).starts_with("-NOPERM"));
  EXPECT_EQ(run(reader, {"FLUSHDB"}),
            "-NOPERM User r has no permissions to run the 'flushdb' command\r\n");
  EXPECT_EQ(run(reader, {"TYPE", "other"}), "+string\r\n");
  auto admin = as("adm", auth::Role::kAdmin);
  EXPECT_TRUE(run(admin, {"CLIENT", "LIST"}).starts_with("$"));
  auto writer = as("w", auth::Role::kReadWrite);
  resp::CommandContext ctx{*store_, config_, status_, cursors_, stats_, 0, true};
  resp::Outcome o = resp::execute(ctx, writer, {"SET", "k", "v"});
  EXPECT_EQ(o.reply, "+OK\r\n");
  EXPECT_TRUE(o.write);
}

TEST_F(CommandGateTest, PrefixesDecideKeysIncludingMultiKeyCommands) {
  auto app = as("app", auth::Role::kReadWrite, std::vector<std::string>{"app:"});
  EXPECT_EQ(run(app, {"GET", "app:1"}), "$1\r\na\r\n");
  EXPECT_EQ(run(app, {"GET", "other"}),
            "-NOPERM User app has no permissions to access the 'other' key\r\n");
  EXPECT_TRUE(run(app, {"MGET", "app:1", "other"}).starts_with("-NOPERM"));
  EXPECT_TRUE(run(app, {"MSET", "app:3", "1", "other", "2"}).starts_with("-NOPERM"));
  EXPECT_TRUE(run(app, {"MSET", "app:3", "1", "app:4", "2"}).starts_with("+OK"));
  EXPECT_TRUE(run(app, {"DEL", "app:1", "other"}).starts_with("-NOPERM"));
  EXPECT_TRUE(run(app, {"EXISTS", "other"}).starts_with("-NOPERM"));
  // A key with control bytes is shown printable, on one line.
  EXPECT_EQ(run(app, {"GET", "x\r\ny"}),
            "-NOPERM User app has no permissions to access the 'x??y' key\r\n");
  // DBSIZE counts every key: not for a user limited to prefixes.
  EXPECT_TRUE(run(app, {"DBSIZE"}).starts_with("-NOPERM"));
  // Listings show only the user's keys.
  EXPECT_EQ(run(app, {"KEYS", "*"}), "*2\r\n$5\r\napp:1\r\n$5\r\napp:2\r\n");
  EXPECT_EQ(run(app, {"KEYS", "oth*"}), "*0\r\n");
  EXPECT_EQ(run(app, {"SCAN", "0", "COUNT", "100"}),
            "*2\r\n$1\r\n0\r\n*2\r\n$5\r\napp:1\r\n$5\r\napp:2\r\n");
  EXPECT_EQ(run(app, {"SCAN", "0", "MATCH", "o*"}), "*2\r\n$1\r\n0\r\n*0\r\n");
  EXPECT_EQ(run(app, {"RENAME", "app:1", "other"}),
            "-NOPERM User app has no permissions to access the 'other' key\r\n");
  EXPECT_TRUE(run(app, {"COPY", "other", "app:9"}).starts_with("-NOPERM"));
  EXPECT_TRUE(run(app, {"RANDOMKEY"}).starts_with("-NOPERM")) << "it may show any key";
  EXPECT_TRUE(run(app, {"FLUSHALL"}).starts_with("-NOPERM")) << "it deletes keys beyond app:";
  EXPECT_EQ(run(app, {"GET", "app:1"}), "$1\r\na\r\n");
  // Inside MULTI the same checks run as commands are queued.
  EXPECT_EQ(run(app, {"MULTI"}), "+OK\r\n");
  EXPECT_EQ(run(app, {"GET", "app:1"}), "+QUEUED\r\n");
  EXPECT_TRUE(run(app, {"GET", "other"}).starts_with("-NOPERM"));
  EXPECT_TRUE(run(app, {"EXEC"}).starts_with("-EXECABORT"));
  auto none = as("none", auth::Role::kRead, std::vector<std::string>{});
  EXPECT_EQ(run(none, {"KEYS", "*"}), "*0\r\n");
  EXPECT_TRUE(run(none, {"GET", "app:1"}).starts_with("-NOPERM"));
}

TEST_F(CommandGateTest, WithoutAUsersFileEveryoneIsTheDefaultAdmin) {
  resp::Session s;
  resp::CommandContext ctx{*store_, config_, status_, cursors_, stats_, 0, false};
  EXPECT_EQ(resp::execute(ctx, s, {"GET", "other"}).reply, "$1\r\nc\r\n");
  EXPECT_EQ(resp::execute(ctx, s, {"ACL", "WHOAMI"}).reply, "$7\r\ndefault\r\n");
  EXPECT_TRUE(resp::execute(ctx, s, {"AUTH", "pw"})
                  .reply.starts_with("-ERR AUTH <password> called without any password"));
  // Only the default user exists, and it needs no password.
  EXPECT_EQ(resp::execute(ctx, s, {"AUTH", "default", "x"}).reply, "+OK\r\n");
  EXPECT_TRUE(resp::execute(ctx, s, {"AUTH", "bob", "x"}).reply.starts_with("-WRONGPASS"));
  EXPECT_TRUE(resp::execute(ctx, s, {"HELLO", "3", "AUTH", "default", "x"}).reply.starts_with("%"));
  EXPECT_TRUE(
      resp::execute(ctx, s, {"HELLO", "3", "AUTH", "bob", "x"}).reply.starts_with("-WRONGPASS"));
}

TEST_F(CommandGateTest, RandomArgumentsNeverCrash) {
  std::mt19937_64 rng(12);
  const std::vector<std::string> names = {
      "AUTH",    "HELLO",  "ACL",    "GET",    "SET",      "MSET",      "SCAN",        "KEYS",
      "QUIT",    "DEL",    "DBSIZE", "auth",   "MULTI",    "EXEC",      "DISCARD",     "WATCH",
      "UNWATCH", "INCR",   "INCRBY", "APPEND", "SETRANGE", "GETRANGE",  "INCRBYFLOAT", "RENAME",
      "COPY",    "MSETNX", "CLIENT", "OBJECT", "MEMORY",   "RANDOMKEY", "GETDEL",      "TYPE"};
  const std::vector<std::string> words = {"AUTH",   "SETNAME", "3",
                                          "2",      "",        "app:",
                                          "x",      "\r\n",    "COUNT",
                                          "MATCH",  "*",       "WHOAMI",
                                          "-1",     "0",       "5",
                                          "-5",     "REPLACE", "ID",
                                          "LIST",   "KILL",    "INFO",
                                          "SKIPME", "no",      "ENCODING",
                                          "USAGE",  "1e3",     "9223372036854775807"};
  resp::Session kept;  // one session across iterations, so MULTI and WATCH states carry over
  for (int i = 0; i < 5000; ++i) {
    std::vector<std::string> args = {names[rng() % names.size()]};
    size_t n = rng() % 7;
    for (size_t j = 0; j < n; ++j) {
      if (rng() % 4 == 0) {
        std::string junk(rng() % 20, '\0');
        for (auto& ch : junk) ch = static_cast<char>(rng());
        args.push_back(junk);
      } else {
        args.push_back(words[rng() % words.size()]);
      }
    }
    resp::Session fresh;
    if (rng() % 2) fresh = as("app", auth::Role::kReadWrite, std::vector<std::string>{"app:"});
    if (!kept.identity) kept = as("adm", auth::Role::kAdmin);
    std::string reply = run(rng() % 2 ? fresh : kept, args);
    ASSERT_FALSE(reply.empty());
    (void)resp::credentials_of(args);
  }
}

// ---------------------------------------------------------------------------
// The authenticator's pool.

TEST(AuthenticatorTest, ChecksRunOffTheCallersThreadAndTheQueueIsBounded) {
  TempDir dir;
  auto f = write_users(dir.path());
  auto a = auth::Authenticator::open(f.users_file, {1, 2});
  ASSERT_TRUE(a) << a.status().to_string();
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  int done = 0, ok = 0;
  std::thread::id worker;
  // The first check holds the only worker until released.
  ASSERT_TRUE((*a)->verify("alice", "apw", [&](Result<auth::Identity> r) {
    std::unique_lock lock(mu);
    worker = std::this_thread::get_id();
    ok += r.is_ok();
    ++done;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  }));
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done == 1; });
  }
  EXPECT_NE(worker, std::this_thread::get_id());
  auto count = [&](Result<auth::Identity> r) {
    std::lock_guard lock(mu);
    ok += r.is_ok();
    ++done;
    cv.notify_all();
  };
  EXPECT_TRUE((*a)->verify("alice", "wrong", count));
  EXPECT_TRUE((*a)->verify("reader", "rpw", count));
  EXPECT_FALSE((*a)->verify("reader", "rpw", count));  // the queue holds 2
  EXPECT_EQ((*a)->busy_refusals(), 1u);
  {
    std::unique_lock lock(mu);
    release = true;
    cv.notify_all();
    cv.wait(lock, [&] { return done == 3; });
  }
  EXPECT_EQ(ok, 2);  // alice/apw and reader/rpw; alice/wrong failed
  // Tokens are checked inline.
  auto id = (*a)->verify_token(f.token);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->name, "ci");
  EXPECT_FALSE((*a)->verify_token("nope"));
  (*a)->shutdown();
  EXPECT_FALSE((*a)->verify("alice", "apw", count));
}

TEST(AuthenticatorTest, ReloadSwapsTheUsersAndKeepsThemOnABadFile) {
  TempDir dir;
  auto f = write_users(dir.path());
  auto a = auth::Authenticator::open(f.users_file);
  ASSERT_TRUE(a);
  EXPECT_EQ((*a)->users()->find("bob"), nullptr);
  write_users(dir.path(), "[[user]]\nname = \"bob\"\nrole = \"read\"\npassword = \"" +
                              fast_hash("bpw") + "\"\n");
  ASSERT_TRUE((*a)->reload().is_ok());
  EXPECT_NE((*a)->users()->find("bob"), nullptr);
  std::ofstream(f.users_file) << "version = 1\n[[user]]\nname = \"x\"\n";  // no role
  EXPECT_FALSE((*a)->reload().is_ok());
  EXPECT_NE((*a)->users()->find("bob"), nullptr);
  EXPECT_FALSE(auth::Authenticator::open(f.users_file));
}

// ---------------------------------------------------------------------------
// RespServer with a users file.

class RespAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fixture_ = write_users(dir_.path());
    store_ = open_store(dir_.path());
    put(*store_, "app:1", "a");
    put(*store_, "other", "c");
  }
  void start(resp::RespConfig config = {}) {
    config.listen_address = "127.0.0.1:0";
    config.security.users_file = fixture_.users_file;
    auto t = resp::RespServerThread::start(*store_, std::move(config));
    ASSERT_TRUE(t) << t.status().to_string();
    server_ = std::move(*t);
  }
  void TearDown() override {
    server_.reset();
    if (store_) (void)store_->close();
  }
  TempDir dir_;
  Fixture fixture_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<resp::RespServerThread> server_;
};

TEST_F(RespAuthTest, WrongCredentialsAreRefusedAndTheConnectionStaysUsable) {
  start();
  Client c(server_->port());
  EXPECT_EQ(c.call({"GET", "other"}), "(error) NOAUTH Authentication required.");
  EXPECT_EQ(c.call({"PING"}), "(error) NOAUTH Authentication required.");
  const std::string wrongpass =
      "(error) WRONGPASS invalid username-password pair or user is disabled.";
  EXPECT_EQ(c.call({"AUTH", "alice", "wrong"}), wrongpass);
  EXPECT_EQ(c.call({"AUTH", "nobody", "apw"}), wrongpass);
  EXPECT_EQ(c.call({"AUTH", "ci", "anything"}), wrongpass);  // a token-only user
  EXPECT_EQ(c.call({"HELLO", "3", "AUTH", "alice", "wrongpass"}), wrongpass);
  EXPECT_EQ(c.call({"GET", "other"}), "(error) NOAUTH Authentication required.");
  EXPECT_EQ(c.call({"AUTH", "alice", "apw"}), "OK");
  EXPECT_EQ(c.call({"ACL", "WHOAMI"}), "alice");
  EXPECT_EQ(c.call({"GET", "other"}), "c");
  // A failed AUTH later keeps who the connection is.
  EXPECT_EQ(c.call({"AUTH", "reader", "wrong"}), wrongpass);
  EXPECT_EQ(c.call({"ACL", "WHOAMI"}), "alice");
  // One argument: the user "default".
  EXPECT_EQ(c.call({"AUTH", "dpw"}), "OK");
  EXPECT_EQ(c.call({"ACL", "WHOAMI"}), "default");
}

TEST_F(RespAuthTest, HelloAuthLogsInAndSwitchesProtocol) {
  start();
  Client c(server_->port());
  EXPECT_EQ(c.call({"HELLO", "3", "AUTH", "reader", "nope"}).substr(0, 17), "(error) WRONGPASS");
  test::Reply r = c.cmd({"HELLO", "3", "AUTH", "reader", "rpw", "SETNAME", "me"});
  ASSERT_EQ(r.type, '%') << r.show();
  EXPECT_EQ(c.call({"ACL", "WHOAMI"}), "reader");
  EXPECT_EQ(c.call({"CLIENT", "GETNAME"}), "me");
  EXPECT_EQ(c.call({"SET", "k", "v"}),
            "(error) NOPERM User reader has no permissions to run the 'set' command");
  EXPECT_EQ(c.call({"GET", "other"}), "c");
  Client c2(server_->port());
  EXPECT_EQ(c2.cmd({"HELLO", "2", "AUTH", "alice", "apw"}).type, '*');
}

TEST_F(RespAuthTest, PipelinedCommandsAfterAuthSeeTheNewIdentity) {
  start();
  Client c(server_->port());
  std::string batch;
  for (auto& cmd : std::vector<std::vector<std::string>>{{"GET", "other"},
                                                         {"AUTH", "app", "ppw"},
                                                         {"SET", "app:2", "x"},
                                                         {"SET", "other", "x"},
                                                         {"SCAN", "0"},
                                                         {"AUTH", "alice", "apw"},
                                                         {"SET", "other", "y"}})
    batch += test::encode_command(cmd);
  c.send_raw(batch);
  EXPECT_EQ(c.read().show(), "(error) NOAUTH Authentication required.");
  EXPECT_EQ(c.read().show(), "OK");
  EXPECT_EQ(c.read().show(), "OK");
  EXPECT_EQ(c.read().show(),
            "(error) NOPERM User app has no permissions to access the 'other' key");
  EXPECT_EQ(c.read().show(), "[0, [app:1, app:2]]");
  EXPECT_EQ(c.read().show(), "OK");
  EXPECT_EQ(c.read().show(), "OK");
  EXPECT_EQ(*store_->get("other"), "y");
}

TEST_F(RespAuthTest, StrangersGetSmallRequestLimitsUntilTheyLogIn) {
  start();
  const std::string big(100 * 1024, 'v');
  Client c(server_->port());
  EXPECT_EQ(c.call({"SET", "app:big", big}).substr(0, 30), "(error) ERR Protocol error: bu");
  EXPECT_EQ(c.call({"AUTH", "app", "ppw"}), "OK");
  EXPECT_EQ(c.call({"SET", "app:big", big}), "OK");
  // Pipelined after AUTH: parsed once the log-in is done, with its limits.
  Client d(server_->port(), 5);
  d.send_raw(test::encode_command({"AUTH", "app", "ppw"}) +
             test::encode_command({"SET", "app:big2", big}));
  EXPECT_EQ(d.read().show(), "OK");
  EXPECT_EQ(d.read().show(), "OK");
  auto stored = store_->get("app:big2");
  ASSERT_TRUE(stored) << stored.status().to_string();
  EXPECT_EQ(stored->size(), big.size());
}

TEST_F(RespAuthTest, StrangersAreBoundedPerSourceAndLoggedInClientsAreNot) {
  resp::RespConfig config;
  config.security.auth_timeout_ms = 60'000;  // not what closes anything here
  config.security.max_unauthenticated_per_source = 2;
  start(config);
  Client a(server_->port()), b(server_->port());
  EXPECT_EQ(a.call({"AUTH", "alice", "apw"}), "OK");  // a is in; b is not
  Client c(server_->port());                          // the second unauthenticated one
  Client d(server_->port(), 5);                       // beyond 2 per source: refused
  EXPECT_TRUE(d.closed_by_peer());
  EXPECT_EQ(c.call({"AUTH", "reader", "rpw"}), "OK");  // c leaves the strangers' slots
  Client e(server_->port());
  EXPECT_EQ(e.call({"AUTH", "app", "ppw"}), "OK");
  EXPECT_EQ(a.call({"GET", "other"}), "c");
  EXPECT_EQ(b.call({"PING"}), "(error) NOAUTH Authentication required.");
}

TEST_F(RespAuthTest, ConnectionsThatNeverLogInAreClosedAfterTheAuthTimeout) {
  resp::RespConfig config;
  config.security.auth_timeout_ms = 200;
  start(config);
  Client a(server_->port()), b(server_->port());
  EXPECT_EQ(a.call({"AUTH", "alice", "apw"}), "OK");
  EXPECT_TRUE(b.closed_by_peer());
  EXPECT_EQ(a.call({"GET", "other"}), "c");
}

TEST_F(RespAuthTest, GarbageAndRandomAuthCommandsNeverCrashTheServer) {
  start();
  std::mt19937_64 rng(7);
  for (int round = 0; round < 20; ++round) {
    Client c(server_->port(), 10);
    std::string junk;
    for (int i = 0; i < 20; ++i) {
      std::vector<std::string> args = {rng() % 2 ? "AUTH" : "HELLO"};
      for (size_t j = rng() % 5; j > 0; --j) {
        std::string a(rng() % 12, 'x');
        for (auto& ch : a) ch = static_cast<char>(rng());
        args.push_back(rng() % 3 ? a : "AUTH");
      }
      junk += test::encode_command(args);
    }
    if (round % 2) junk += std::string("*3\r\n$4\r\nAUTH\r\n$-9\r\n\x01\x02garbage\r\n");
    c.send_raw(junk);
  }
  Client ok(server_->port());
  EXPECT_EQ(ok.call({"AUTH", "alice", "apw"}), "OK");
  EXPECT_EQ(ok.call({"PING"}), "PONG");
}

TEST_F(RespAuthTest, ReloadSecurityTakesNewUsers) {
  start();
  Client c(server_->port());
  const std::string wrongpass =
      "(error) WRONGPASS invalid username-password pair or user is disabled.";
  EXPECT_EQ(c.call({"AUTH", "bob", "bpw"}), wrongpass);
  write_users(dir_.path(), "[[user]]\nname = \"bob\"\nrole = \"read\"\npassword = \"" +
                               fast_hash("bpw") + "\"\n");
  ASSERT_TRUE(server_->server().reload_security().is_ok());
  EXPECT_EQ(c.call({"AUTH", "bob", "bpw"}), "OK");
}

// A keyspace notification names a key: it reaches only subscribers who may
// read that key, and follows a subscriber that logs in as someone else.
TEST_F(RespAuthTest, KeyspaceNotificationsReachOnlyThoseWhoMayReadTheKey) {
  resp::RespConfig config;
  config.notify_keyspace_events = "KA";
  start(config);
  Client app(server_->port()), admin(server_->port());
  ASSERT_EQ(admin.call({"AUTH", "alice", "apw"}), "OK");
  ASSERT_EQ(app.cmd({"HELLO", "3", "AUTH", "app", "ppw"}).type, '%');
  ASSERT_EQ(app.call({"PSUBSCRIBE", "__keyspace@0__:*"}), ">[psubscribe, __keyspace@0__:*, 1]");
  ASSERT_EQ(admin.call({"SET", "other", "x"}), "OK");  // not app's to read
  ASSERT_EQ(admin.call({"SET", "app:2", "y"}), "OK");
  EXPECT_EQ(app.read().show(), ">[pmessage, __keyspace@0__:*, __keyspace@0__:app:2, set]")
      << "the change of 'other' was not announced to app";
  // Nor may app speak for the server, or for anyone with PUBLISH's role: it
  // may write, so it may publish on ordinary channels.
  EXPECT_EQ(app.call({"PUBLISH", "__keyspace@0__:other", "del"}).substr(0, 11), "(error) ERR");
  EXPECT_EQ(app.call({"PUBLISH", "chat", "hi"}), "0");
  Client reader(server_->port());
  ASSERT_EQ(reader.call({"AUTH", "reader", "rpw"}), "OK");
  EXPECT_EQ(reader.call({"PUBLISH", "chat", "hi"}),
            "(error) NOPERM User reader has no permissions to run the 'publish' command");

  // Logged in as alice, the same subscription announces every key.
  ASSERT_EQ(app.call({"AUTH", "alice", "apw"}), "OK");
  ASSERT_EQ(admin.call({"SET", "other", "z"}), "OK");
  EXPECT_EQ(app.read().show(), ">[pmessage, __keyspace@0__:*, __keyspace@0__:other, set]");
}

// ---------------------------------------------------------------------------
// HttpServer with a users file.

// One keep-alive HTTP/1.1 connection; requests written by hand.
class HttpConn {
 public:
  explicit HttpConn(const std::string& address) : socket_(io_) {
    auto hp = net::parse_host_port(address, net::AddressUse::kDial);
    socket_.connect({asio::ip::make_address(hp->host), hp->port});
  }
  void send(std::string_view bytes) { asio::write(socket_, asio::buffer(bytes)); }
  // Sends a request, returns the response's status line, headers and body.
  std::string request(const std::string& method, const std::string& target,
                      const std::string& auth_header = "", const std::string& body = "") {
    std::string r = method + " " + target + " HTTP/1.1\r\nHost: x\r\n";
    if (!auth_header.empty()) r += "Authorization: " + auth_header + "\r\n";
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    send(r);
    return read_response();
  }
  std::string read_response() {
    for (;;) {
      size_t head_end = buf_.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        size_t cl = buf_.find("Content-Length: ");
        size_t len = cl < head_end ? std::stoul(buf_.substr(cl + 16)) : 0;
        if (buf_.size() >= head_end + 4 + len) {
          std::string out = buf_.substr(0, head_end + 4 + len);
          buf_.erase(0, out.size());
          return out;
        }
      }
      if (!read_some()) return buf_;
    }
  }
  // Whether the server closed the connection (reads until EOF or an error).
  bool closed() {
    while (read_some()) {
    }
    return eof_;
  }

 private:
  bool read_some() {
    pollfd p{socket_.native_handle(), POLLIN, 0};
    if (::poll(&p, 1, kTimeoutMs) <= 0) return false;
    char tmp[16 * 1024];
    asio::error_code ec;
    size_t n = socket_.read_some(asio::buffer(tmp), ec);
    buf_.append(tmp, n);
    if (ec) eof_ = true;
    return !ec && n > 0;
  }
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  std::string buf_;
  bool eof_ = false;
};

std::string basic(const std::string& user, const std::string& pass) {
  return "Basic " + auth::base64_encode(user + ":" + pass);
}

int status_of(const std::string& response) {
  return response.size() > 12 ? std::stoi(response.substr(9, 3)) : 0;
}

class HttpAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fixture_ = write_users(dir_.path());
    store_ = open_store(dir_.path());
    put(*store_, "app:1", "a");
    put(*store_, "other", "c");
  }
  void start(http::HttpConfig config = {}, bool users = true) {
    config.listen = "127.0.0.1:0";
    if (users) config.security.users_file = fixture_.users_file;
    auto t = http::HttpServerThread::start(*store_, std::move(config));
    ASSERT_TRUE(t) << t.status().to_string();
    server_ = std::move(*t);
  }
  void TearDown() override {
    server_.reset();
    if (store_) (void)store_->close();
  }
  TempDir dir_;
  Fixture fixture_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<http::HttpServerThread> server_;
};

TEST_F(HttpAuthTest, MissingOrWrongCredentialsGet401AndTheConnectionCarriesOn) {
  start();
  HttpConn c(server_->address());
  std::string r = c.request("GET", "/v1/kv/other");
  EXPECT_EQ(status_of(r), 401) << r;
  EXPECT_NE(r.find("WWW-Authenticate: Basic realm=\"wavekv\""), std::string::npos) << r;
  EXPECT_NE(r.find("WWW-Authenticate: Bearer realm=\"wavekv\""), std::string::npos) << r;
  EXPECT_EQ(status_of(c.request("GET", "/v1/kv/other", basic("alice", "no"))), 401);
  EXPECT_EQ(status_of(c.request("GET", "/v1/kv/other", "Bearer 00ff")), 401);
  EXPECT_EQ(status_of(c.request("GET", "/v1/kv/other", "Basic !!!")), 401);
  EXPECT_EQ(status_of(c.request("GET", "/v1/kv/other", "Digest x")), 401);
  EXPECT_EQ(status_of(c.request("GET", "/v1/status")), 401);
  EXPECT_EQ(status_of(c.request("GET", "/metrics")), 401);
  EXPECT_EQ(status_of(c.request("GET", "/healthz")), 200);  // open
  r = c.request("GET", "/v1/kv/other", basic("alice", "apw"));
  EXPECT_EQ(status_of(r), 200) << r;
  EXPECT_TRUE(r.ends_with("\r\n\r\nc")) << r;
  EXPECT_EQ(status_of(c.request("GET", "/v1/kv/other", "bearer " + fixture_.token)), 200);
  EXPECT_EQ(status_of(c.request("GET", "/v1/status", "Bearer " + fixture_.token)), 200);
}

TEST_F(HttpAuthTest, RolesAndPrefixesGet403) {
  start();
  HttpConn c(server_->address());
  EXPECT_EQ(status_of(c.request("PUT", "/v1/kv/k", basic("reader", "rpw"), "v")), 403);
  EXPECT_EQ(status_of(c.request("PUT", "/v1/kv/k", "Bearer " + fixture_.token, "v")), 403);
  EXPECT_EQ(status_of(c.request("DELETE", "/v1/kv/other", basic("reader", "rpw"))), 403);
  EXPECT_EQ(status_of(c.request("GET", "/v1/kv/other", basic("app", "ppw"))), 403);
  EXPECT_EQ(status_of(c.request("PUT", "/v1/kv/other", basic("app", "ppw"), "v")), 403);
  EXPECT_EQ(status_of(c.request("PUT", "/v1/kv/app:2", basic("app", "ppw"), "v")), 200);
  EXPECT_EQ(status_of(c.request("GET", "/v1/watch?prefix=", basic("app", "ppw"))), 403);
  std::string r = c.request("GET", "/v1/kv?prefix=", basic("app", "ppw"));
  EXPECT_EQ(status_of(r), 200);
  EXPECT_NE(r.find("\"app:1\""), std::string::npos) << r;
  EXPECT_NE(r.find("\"app:2\""), std::string::npos) << r;
  EXPECT_EQ(r.find("other"), std::string::npos) << r;
  EXPECT_EQ(*store_->get("other"), "c");
}

TEST_F(HttpAuthTest, ExpectContinueIsRefusedBeforeTheBodyWithoutCredentials) {
  start();
  HttpConn c(server_->address());
  c.send("PUT /v1/kv/k HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  std::string r = c.read_response();
  EXPECT_EQ(status_of(r), 401) << r;
  EXPECT_TRUE(c.closed());
  HttpConn d(server_->address());
  d.send("PUT /v1/kv/k HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n" +
         std::string("Authorization: ") + basic("alice", "apw") + "\r\n\r\n");
  r = d.read_response();
  EXPECT_EQ(status_of(r), 100) << r;
  d.send("hello");
  EXPECT_EQ(status_of(d.read_response()), 200);
  EXPECT_EQ(*store_->get("k"), "hello");
}

TEST_F(HttpAuthTest, BasicIsVerifiedOncePerKeepAliveConnection) {
  start();
  HttpConn c(server_->address());
  const uint64_t before = auth::scrypt_runs_total();
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(status_of(c.request("GET", "/v1/kv/other", basic("alice", "apw"))), 200);
  EXPECT_EQ(auth::scrypt_runs_total() - before, 1u);
  // Other credentials on the same connection are checked afresh.
  EXPECT_EQ(status_of(c.request("GET", "/v1/kv/other", basic("alice", "bad"))), 401);
  EXPECT_EQ(status_of(c.request("PUT", "/v1/kv/x", basic("reader", "rpw"), "v")), 403);
  EXPECT_EQ(auth::scrypt_runs_total() - before, 3u);
}

TEST_F(HttpAuthTest, ARequestHeadTricklingInIsCutOffAtItsDeadline) {
  http::HttpConfig config;
  config.idle_timeout_ms = 60'000;
  config.request_head_timeout_ms = 300;
  start(config, /*users=*/false);
  HttpConn c(server_->address());
  c.send("GET /v1/kv/other HTTP/1.1\r\n");
  // One byte at a time, each well within the idle timeout: the head as a
  // whole is late, and the server closes.
  bool closed = false;
  for (int i = 0; i < 400 && !closed; ++i) {
    asio::error_code ec;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    try {
      c.send("X");
    } catch (const std::exception&) {
      closed = true;
    }
    if (i == 20) closed = closed || c.closed();  // by then (500 ms) it must be gone
  }
  EXPECT_TRUE(closed);
  // A prompt request is unaffected.
  HttpConn d(server_->address());
  EXPECT_EQ(status_of(d.request("GET", "/v1/kv/other")), 200);
}

TEST_F(HttpAuthTest, TlsAndItsReloadWithTheBuiltInClient) {
  // Two CAs; the server starts with a certificate of the first.
  const std::string ca1 = dir_.path() + "/ca1", ca2 = dir_.path() + "/ca2";
  ASSERT_TRUE(init_ca({ca1}));
  ASSERT_TRUE(init_ca({ca2}));
  auto cert1 = issue_node_cert({ca1, "n", 1, {"127.0.0.1"}});
  auto cert2 = issue_node_cert({ca2, "n", 1, {"127.0.0.1"}});
  ASSERT_TRUE(cert1 && cert2);
  const std::string crt = dir_.path() + "/server.crt", key = dir_.path() + "/server.key";
  std::filesystem::copy_file(cert1->cert_path, crt);
  std::filesystem::copy_file(cert1->key_path, key);
  http::HttpConfig config;
  config.security.tls_cert_file = crt;
  config.security.tls_key_file = key;
  start(config);
  http::RequestOptions with_ca1{"Bearer " + fixture_.token, ca1 + "/ca.crt"};
  http::RequestOptions with_ca2{"Bearer " + fixture_.token, ca2 + "/ca.crt"};
  auto r = http::http_request(server_->address(), "GET", "/v1/kv/other", "", kTimeoutMs, with_ca1);
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "c");
  EXPECT_FALSE(http::http_request(server_->address(), "GET", "/healthz", "", kTimeoutMs, with_ca2));
  // Plain HTTP gets no answer from a TLS port.
  EXPECT_FALSE(http::http_request(server_->address(), "GET", "/healthz", "", kTimeoutMs));

  // A bad file: the reload fails and the old context stays.
  std::ofstream(crt) << "not a certificate";
  EXPECT_FALSE(server_->server().reload_security().is_ok());
  EXPECT_TRUE(http::http_request(server_->address(), "GET", "/healthz", "", kTimeoutMs, with_ca1));
  // The second CA's certificate: new connections get it.
  std::filesystem::copy_file(cert2->cert_path, crt,
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(cert2->key_path, key,
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_TRUE(server_->server().reload_security().is_ok());
  EXPECT_FALSE(http::http_request(server_->address(), "GET", "/healthz", "", kTimeoutMs, with_ca1));
  r = http::http_request(server_->address(), "GET", "/v1/kv/other", "", kTimeoutMs, with_ca2);
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->status, 200);
}

// ---------------------------------------------------------------------------
// Exposure: a client port on another interface needs auth and TLS.

TEST(ClientExposureTest, NonLoopbackNeedsUsersAndTlsOrInsecure) {
  NodeConfig c;
  for (std::string a : {"127.0.0.1:6379", "127.1.2.3:0", "[::1]:0", "localhost:80", ""}) {
    c.resp_listen = a;
    EXPECT_TRUE(check_exposure(c).is_ok()) << a;
  }
  c.resp_listen = "0.0.0.0:6379";
  Status st = check_exposure(c);
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("--users-file"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("--tls-cert-file"), std::string::npos) << st.message();
  c.resp_listen = "";
  c.http_listen = ":7480";  // every interface
  EXPECT_FALSE(check_exposure(c).is_ok());
  c.clients.users_file = "u.toml";
  st = check_exposure(c);
  EXPECT_FALSE(st.is_ok());
  EXPECT_EQ(st.message().find("--users-file"), std::string::npos) << st.message();
  c.clients.tls_cert_file = "c.crt";
  c.clients.tls_key_file = "c.key";
  EXPECT_TRUE(check_exposure(c).is_ok());
  c.clients = {};
  c.http_listen = "10.1.2.3:80";
  EXPECT_FALSE(check_exposure(c).is_ok());
  c.insecure = true;
  EXPECT_TRUE(check_exposure(c).is_ok());
}

TEST(ClientExposureTest, NodeStartRefusesAnExposedPortAndReloadsCredentials) {
  TempDir dir;
  auto f = write_users(dir.path());
  NodeConfig c;
  c.store.data_dir = dir.path() + "/data";
  c.store.durability = Durability::kNone;
  c.listen = "127.0.0.1:0";
  c.resp_listen = "0.0.0.0:0";
  auto refused = Node::start(c);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.status().message().find("--insecure"), std::string::npos);
  c.resp_listen = "127.0.0.1:0";
  c.http_listen = "127.0.0.1:0";
  c.clients.users_file = f.users_file;
  auto node = Node::start(c);
  ASSERT_TRUE(node) << node.status().to_string();
  Client r(port_of((*node)->resp_address()));
  EXPECT_EQ(r.call({"GET", "k"}), "(error) NOAUTH Authentication required.");
  EXPECT_EQ(r.call({"AUTH", "bob", "bpw"}).substr(0, 17), "(error) WRONGPASS");
  write_users(dir.path(), "[[user]]\nname = \"bob\"\nrole = \"read\"\npassword = \"" +
                              fast_hash("bpw") + "\"\n");
  EXPECT_TRUE((*node)->reload_credentials().is_ok());
  EXPECT_EQ(r.call({"AUTH", "bob", "bpw"}), "OK");
  std::ofstream(f.users_file) << "garbage";
  EXPECT_FALSE((*node)->reload_credentials().is_ok());
  EXPECT_EQ(r.call({"AUTH", "bob", "bpw"}), "OK");  // the old users stay
  EXPECT_TRUE((*node)->stop().is_ok());
}

TEST(ClientExposureTest, HalfATlsSetupIsRefused) {
  ClientSecurity s;
  EXPECT_TRUE(s.validate().is_ok());
  s.tls_cert_file = "c.crt";
  EXPECT_FALSE(s.validate().is_ok());
  s.tls_key_file = "c.key";
  EXPECT_TRUE(s.validate().is_ok());
  s.require_client_cert = true;
  EXPECT_FALSE(s.validate().is_ok());
  s.tls_client_ca_file = "ca.crt";
  EXPECT_TRUE(s.validate().is_ok());
}

// ---------------------------------------------------------------------------
// `wavekv serve` with TLS and a users file, driven by redis-cli and curl.

class ServeTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fixture_ = write_users(dir_.path());
    ASSERT_TRUE(init_ca({dir_.path()}));
    auto cert = issue_node_cert({dir_.path(), "n1", 1, {"127.0.0.1"}});
    ASSERT_TRUE(cert) << cert.status().to_string();
    child_ =
        test::start_ready({WAVEKV_BINARY, "serve", "--data-dir", dir_.path() + "/data", "--listen",
                           "127.0.0.1:0", "--resp", "127.0.0.1:0", "--http", "127.0.0.1:0",
                           "--durability", "none", "--tls-cert-file", cert->cert_path,
                           "--tls-key-file", cert->key_path, "--users-file", fixture_.users_file},
                          dir_.path() + "/ready.json", dir_.path() + "/serve.log");
    ASSERT_TRUE(child_.error.empty()) << child_.error;
    ca_ = dir_.path() + "/ca.crt";
  }
  void TearDown() override {
    if (child_.pid > 0) test::stop_child(child_.pid, SIGTERM);
  }
  // redis-cli over TLS, `input` as its commands (one per line). It prints
  // an error reply followed by an empty line.
  std::string redis(const std::string& input) {
    std::ofstream(dir_.path() + "/in.txt") << input;
    auto hp = net::parse_host_port(child_.resp, net::AddressUse::kDial);
    auto out = test::run_command("redis-cli --tls --cacert " + ca_ + " -h 127.0.0.1 -p " +
                                 std::to_string(hp->port) + " < " + dir_.path() + "/in.txt");
    EXPECT_EQ(out.exit_code, 0) << out.out;
    return out.out;
  }
  // curl over https: "<status> <body>".
  std::string curl(const std::string& args, const std::string& path) {
    auto out = test::run_command("curl -s --cacert " + ca_ + " -w ' %{http_code}' " + args +
                                 " https://" + child_.http + path);
    EXPECT_EQ(out.exit_code, 0) << out.out;
    return out.out;
  }
  TempDir dir_;
  Fixture fixture_;
  test::ReadyChild child_;
  std::string ca_;
};

TEST_F(ServeTlsTest, RedisCliOverTlsWithAuth) {
  EXPECT_EQ(redis("SET a 1\nAUTH alice wrong\nHELLO 3 AUTH alice wrongpass\nAUTH alice apw\n"
                  "SET a 1\nSET app:1 x\nACL WHOAMI\n"),
            "NOAUTH Authentication required.\n\n"
            "WRONGPASS invalid username-password pair or user is disabled.\n\n"
            "WRONGPASS invalid username-password pair or user is disabled.\n\n"
            "OK\nOK\nOK\nalice\n");
  EXPECT_EQ(redis("AUTH reader rpw\nSET b 1\nGET a\n"),
            "OK\nNOPERM User reader has no permissions to run the 'set' command\n\n1\n");
  EXPECT_EQ(redis("AUTH app ppw\nGET a\nGET app:1\nSCAN 0\n"),
            "OK\nNOPERM User app has no permissions to access the 'a' key\n\nx\n0\napp:1\n");
}

TEST_F(ServeTlsTest, CurlOverHttpsWithBasicAndBearer) {
  EXPECT_TRUE(curl("", "/v1/kv/a").ends_with(" 401"));
  EXPECT_TRUE(curl("-u alice:nope", "/v1/kv/a").ends_with(" 401"));
  EXPECT_TRUE(curl("-u alice:apw -X PUT --data-binary v1", "/v1/kv/a").ends_with(" 200"));
  EXPECT_EQ(curl("-u alice:apw", "/v1/kv/a"), "v1 200");
  EXPECT_EQ(curl("-H 'Authorization: Bearer " + fixture_.token + "'", "/v1/kv/a"), "v1 200");
  EXPECT_TRUE(
      curl("-H 'Authorization: Bearer " + fixture_.token + "' -X PUT --data-binary x", "/v1/kv/a")
          .ends_with(" 403"));
  EXPECT_TRUE(curl("-u app:ppw", "/v1/kv/a").ends_with(" 403"));
  EXPECT_EQ(curl("", "/healthz"), "ok\n 200");
  // Plain HTTP on the TLS port gets nowhere.
  auto plain = test::run_command("curl -s -m 5 http://" + child_.http + "/healthz");
  EXPECT_NE(plain.exit_code, 0);
}

TEST_F(ServeTlsTest, WavekvClientCommandsWithUserTokenAndCacert) {
  const std::string w = std::string(WAVEKV_BINARY) + " ";
  const std::string to = " --addr " + child_.http + " --cacert " + ca_;
  auto put = test::run_command("WAVEKV_PASSWORD=apw " + w + "put --user alice" + to + " k v1");
  EXPECT_EQ(put.exit_code, 0) << put.out;
  auto get = test::run_command("WAVEKV_TOKEN=" + fixture_.token + " " + w + "get" + to + " k");
  EXPECT_EQ(get.exit_code, 0) << get.out;
  EXPECT_EQ(get.out, "v1\n");
  auto denied = test::run_command(w + "put --token " + fixture_.token + to + " k v2");
  EXPECT_EQ(denied.exit_code, 2);
  EXPECT_NE(denied.out.find("403"), std::string::npos) << denied.out;
  auto anonymous = test::run_command(w + "get" + to + " k");
  EXPECT_NE(anonymous.out.find("401"), std::string::npos) << anonymous.out;
  auto wrong = test::run_command("WAVEKV_PASSWORD=nope " + w + "get --user alice" + to + " k");
  EXPECT_NE(wrong.out.find("401"), std::string::npos) << wrong.out;
  // The node's certificate is not a CA: verification fails.
  auto untrusted = test::run_command(w + "get --addr " + child_.http + " --cacert " + dir_.path() +
                                     "/node.n1.crt --token x k");
  EXPECT_NE(untrusted.out.find("certificate verify failed"), std::string::npos) << untrusted.out;
}

}  // namespace
}  // namespace wavekv
