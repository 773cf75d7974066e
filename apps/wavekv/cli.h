// Shared pieces of the wavekv command-line program.
#pragma once

#include <string>
#include <vector>

#include "../common/log_flags.h"
#include "../common/peer_security.h"
#include "wavekv/node.h"
#include "wavekv/store.h"

namespace wavekv::cli {

// Makes bytes printable on one line: \\, \t, \n, \r and non-printable bytes
// become escapes (\xNN), so `scan` output stays one key<TAB>value per line.
std::string escape(std::string_view bytes);

struct BenchOptions {
  std::string data_dir;
  uint64_t ops = 100000;
  uint32_t concurrency = 1;
  uint32_t value_size = 100;
  Durability durability = Durability::kAlways;
  std::string acked_log;
  bool json = false;
  // false: `concurrency` threads each make blocking writes. true: one thread
  // keeps `concurrency` writes in flight with write_async (as a server would).
  bool async = false;
};
// Runs the write benchmark and prints its figures; returns the exit code.
int run_bench(const BenchOptions& options);

// A command against a running node over its HTTP API (--addr), in client.cc.
struct RemoteCommand {
  enum class Kind { kGet, kPut, kDel, kScan, kStatus };
  Kind kind = Kind::kGet;
  std::string addr;  // HOST:PORT of the node's HTTP listener
  std::string key, value, prefix;
  uint64_t ttl_ms = 0;  // put: expires this long after the write (0: never)
  bool json = false;    // status: print the node's JSON as is
  uint64_t timeout_ms = 10000;
  // --token (or $WAVEKV_TOKEN), --user with $WAVEKV_PASSWORD, --cacert (https).
  std::string token, user, password, ca_file;
};
// Runs it and returns the exit code: 0 done, 1 key not found, 2 any other
// failure (node unreachable, refused request).
int run_remote(const RemoteCommand& command);

struct ServeOptions {
  std::string data_dir = "wavekv-data";
  uint64_t id = 0;
  Durability durability = Durability::kAlways;
  std::string listen = "127.0.0.1:7400";
  std::string advertise;
  std::vector<std::string> peers;
  std::string resp = "127.0.0.1:6380";
  std::string http = "127.0.0.1:7480";
  uint64_t resp_max_client_memory_bytes = 512ull << 20;
  uint64_t resp_idle_timeout_ms = 0;
  std::string resp_notify_keyspace_events;
  uint64_t http_max_client_memory_bytes = 512ull << 20;
  uint64_t sync_interval_ms = 1000;
  uint32_t fanout = 3;
  uint64_t tombstone_grace_ms = 3600ull * 1000;
  uint64_t max_clock_offset_ms = 500;
  uint64_t member_expiry_ms = 24ull * 3600 * 1000;
  size_t keep_retired = 2;     // copies a re-bootstrap moves aside (retired/)
  std::string ready_file;      // written once every listener is bound (listening.h); empty: none
  LogFlags log;                // --log-level, --log-format (../common/log_flags.h)
  PeerSecurityFlags security;  // ../common/peer_security.h (with --insecure)
  ClientSecurity clients;  // --tls-cert-file, --tls-key-file, --tls-client-ca-file, --users-file
};
// Runs a node until SIGINT/SIGTERM; returns the exit code.
int run_serve(const ServeOptions& options);

// `user hash` (user.cc): scrypt parameters of the printed hash.
struct UserHashOptions {
  uint64_t scrypt_n = uint64_t{1} << 15;
  uint32_t scrypt_r = 8;
  uint32_t scrypt_p = 1;
};
// Reads one password line from stdin, prints its scrypt$v1$... encoding.
int run_user_hash(const UserHashOptions& options);
// Prints a new bearer token and the sha256$... line a users file stores.
int run_user_token();
// Loads a users file as a node would; lists its users (exit 0) or prints the
// first error with its line (exit 1).
int run_user_check(const std::string& users_file);

}  // namespace wavekv::cli
