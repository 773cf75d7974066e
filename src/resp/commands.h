// The commands of WaveKV's Redis-compatible port (docs/RESP.md): what each
// does to the store and the reply it gives. No sockets here; RespServer
// decides when a command runs (see Ordering) and submits the write a command
// asks for.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "auth/users.h"
#include "net/client_memory.h"
#include "resp/protocol.h"
#include "resp/server.h"
#include "wavekv/store.h"

namespace wavekv::resp {

// SCAN cursors. The store is ordered by key, so a scan resumes after the last
// key it returned; clients want an integer cursor, so the server maps integers
// to last keys. The table is bounded: beyond max_cursors the oldest cursor is
// forgotten, and using it gets an error (the client restarts from 0). A cursor
// stays valid while it is in the table and may be used again (a retry gets the
// same page, give or take concurrent writes). Thread-safe.
class ScanCursors {
 public:
  explicit ScanCursors(size_t max_cursors) : max_cursors_(max_cursors) {}
  // A new cursor (never 0) that resumes after `last_key`.
  uint64_t open(std::string last_key);
  std::optional<std::string> find(uint64_t cursor) const;

 private:
  const size_t max_cursors_;
  mutable std::mutex mu_;
  uint64_t next_ = 1;
  std::unordered_map<uint64_t, std::string> last_key_;
  std::deque<uint64_t> order_;  // oldest first
};

struct ServerStats {
  std::atomic<uint64_t> connected_clients{0};
  std::atomic<uint64_t> total_connections{0};
  std::atomic<uint64_t> rejected_connections{0};
  std::atomic<uint64_t> total_commands{0};
  std::atomic<uint64_t> next_client_id{1};
  // Request and reply bytes held for every connection, against
  // RespConfig::max_client_memory_bytes.
  net::ClientMemory memory;
  std::atomic<uint64_t> paused_clients{0};     // waiting for memory now
  std::atomic<uint64_t> client_pauses{0};      // times a connection waited for memory
  std::atomic<uint64_t> replies_too_large{0};  // answered with too_large_reply()
  std::atomic<uint64_t> idle_timeouts{0};      // closed after idle_timeout_ms
  // Subscribers closed for not reading their messages (max_pubsub_output_bytes).
  std::atomic<uint64_t> pubsub_overflows{0};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

class ClientRegistry;
class PubSub;
class Subscriber;

// Memory for a command's reply, asked for before the reply is built (the
// server's client memory budget, RespConfig::max_client_memory_bytes). A
// command asks for each data-sized part of its reply (a value, a key list)
// before it copies it; fixed small replies are covered by what the server
// reserves for every command (kBaseReplyBytes).
class ReplyBudget {
 public:
  enum class Grant {
    kYes,    // reserved: build it
    kLater,  // no room now: the command must stop; the server runs it again later
    kNever,  // larger than the connection may ever hold: the command must stop
  };
  virtual Grant reserve(uint64_t bytes) = 0;

 protected:
  ~ReplyBudget() = default;
};

// What the server reserves for any command's reply before running it; a
// reply with no data-sized part (INFO, COMMAND, an error) stays below it.
inline constexpr uint64_t kBaseReplyBytes = 64 * 1024;

// What commands may use of the server.
struct CommandContext {
  Store& store;
  const RespConfig& config;
  const RespStatusFn& status;  // may be null
  ScanCursors& cursors;
  ServerStats& stats;
  uint16_t port = 0;
  // A users file is on: a session must log in, and then may do what its
  // identity allows. Off: every session is kDefaultUser with every right.
  bool auth_enabled = false;
  ReplyBudget* budget = nullptr;      // null: no limit
  ClientRegistry* clients = nullptr;  // null: CLIENT LIST/INFO/KILL see only this session
  // Null: no pub/sub (SUBSCRIBE, PUBLISH and PUBSUB are refused).
  PubSub* pubsub = nullptr;
  // Where this session's messages go, for SUBSCRIBE and PSUBSCRIBE.
  std::shared_ptr<Subscriber> subscriber = nullptr;
};

// MULTI ... EXEC: the commands queued so far (docs/RESP.md, "MULTI / EXEC").
struct Transaction {
  std::vector<std::vector<std::string>> commands;
  uint64_t bytes = 0;   // of the queued arguments; at most limits.max_request_bytes
  bool failed = false;  // a command was refused while queuing: EXEC aborts
};

// A key WATCHed for EXEC, with the version it had then (nullopt: none).
struct WatchedKey {
  std::string key;
  std::optional<Meta> version;
};

// One connection's state as commands see it.
struct Session {
  uint64_t id = 0;
  std::string name;  // CLIENT SETNAME
  std::string lib_name, lib_ver;
  Protocol protocol = Protocol::kResp2;
  // Who this connection logged in as; nullopt: not yet (auth on). With auth
  // off the server sets it to default_identity() at once.
  std::optional<auth::Identity> identity;
  // Set by the server only while it runs an AUTH or HELLO ... AUTH whose
  // credentials it has just verified (into `identity`).
  bool credentials_verified = false;
  std::optional<Transaction> tx;  // inside MULTI
  std::vector<WatchedKey> watched;
  uint64_t watched_bytes = 0;
  // SUBSCRIBE and PSUBSCRIBE: how many, and the bytes their names take.
  size_t channels = 0, patterns = 0;
  uint64_t subscribed_bytes = 0;
  // CLIENT REPLY: OFF silences every reply until ON; SKIP silences its own
  // and the next command's. (Un)subscribe confirmations still go, as in Redis.
  bool reply_off = false, skip_next_reply = false;

  bool subscribed() const { return channels + patterns > 0; }
  // Bytes the session holds for a transaction, its watched keys and its
  // subscriptions; the server charges them to the client memory budget.
  uint64_t held_bytes() const { return (tx ? tx->bytes : 0) + watched_bytes + subscribed_bytes; }
};

// What CLIENT LIST shows of one connection. The connection updates it after
// each command; CLIENT LIST and KILL on other connections read it.
struct ClientRecord {
  uint64_t id = 0;
  std::string addr, laddr;  // the client's and our end, "ip:port"
  std::chrono::steady_clock::time_point created, last_command;
  std::string name, user, lib_name, lib_ver, command;  // command: the last one, lower case
  int resp = 2;
  int multi = -1;            // commands queued in MULTI, -1 outside
  size_t sub = 0, psub = 0;  // channels and patterns subscribed to
};

// The connections of one RESP server, for CLIENT LIST, INFO and KILL.
// Thread-safe: connections run on their own strands.
class ClientRegistry {
 public:
  // `close` closes the connection from any thread.
  void add(const ClientRecord& record, std::function<void()> close);
  void remove(uint64_t id);
  // After a command: what the session now is, and the command it ran.
  void update(const Session& session, std::string_view command);
  std::vector<ClientRecord> list() const;  // by id
  // Closes every connection `match` accepts; how many.
  size_t kill(const std::function<bool(const ClientRecord&)>& match);

 private:
  struct Client {
    ClientRecord record;
    std::function<void()> close;
  };
  mutable std::mutex mu_;
  std::map<uint64_t, Client> clients_;
};

// Who a session is when no users file is on: kDefaultUser, admin, every key.
auth::Identity default_identity();

// The credentials of an AUTH or HELLO ... AUTH command that is well-formed
// (so that verifying them is the only thing left); nullopt for anything
// else, which execute() answers. `AUTH password` is user kDefaultUser.
struct Credentials {
  std::string user, password;
};
std::optional<Credentials> credentials_of(const std::vector<std::string>& args);

// When a command may run relative to others.
enum class Ordering {
  // Only writes (SET, MSET): submitted at once, even while earlier writes of
  // the connection are still in flight (the store commits them in order).
  kBlindWrite,
  // Reads something (most commands; DEL reads to count): runs once the
  // connection's earlier writes have completed, so it sees them.
  kAfterWrites,
  // Check-then-write (SET NX / XX / GET, INCR, EXEC, ...): like kAfterWrites,
  // and also one at a time across the whole server, from the check until its
  // write completed.
  kSerialized,
};
Ordering ordering_of(const std::vector<std::string>& args);

struct Outcome {
  // The reply. With `write` set it is sent only if the write succeeds;
  // otherwise the client gets an error with the store's reason.
  std::string reply;
  std::optional<WriteBatch> write;
  bool close = false;  // QUIT: close after this reply
  // CLIENT REPLY OFF or SKIP: no reply at all (`reply` is empty), even if
  // the write fails.
  bool silent = false;
  // The command stopped because its reply did not get memory (ReplyBudget):
  // it did nothing (no write, no session change); `reply` is to be dropped.
  // kLater: run it again once memory frees; kTooLarge: answer
  // too_large_reply(reply_bytes) instead.
  enum class Stopped { kNo, kLater, kTooLarge };
  Stopped stopped = Stopped::kNo;
  uint64_t reply_bytes = 0;  // kTooLarge: what the reply would have taken
};

// Runs one command. With auth on it first checks that the session logged in
// (else NOAUTH; only AUTH, HELLO with AUTH, and QUIT run before) and that
// its identity may run the command on its keys (else NOPERM). AUTH and HELLO
// ... AUTH expect the server to have verified the credentials first
// (Session::credentials_verified).
Outcome execute(CommandContext& ctx, Session& session, const std::vector<std::string>& args);

// The error reply for a write the store refused or failed.
std::string write_error_reply(const Status& status);
// The error reply for a command whose reply exceeds what a connection may
// hold (`limit`: the effective max_output_bytes).
std::string too_large_reply(uint64_t bytes, uint64_t limit);

}  // namespace wavekv::resp
