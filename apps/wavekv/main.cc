// wavekv: the command-line program. get/put/del/scan work offline on a data
// directory or, with --addr, on a running node (client.cc); `status` asks a
// node; `bench` measures the storage engine; `keygen` and `cert` make the
// cluster key and the certificates (wavekv/security.h).
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "cli.h"
#include "config_file.h"
#include "wavekv/security.h"
#include "wavekv/store.h"
#include "wavekv/tools.h"

namespace wavekv::cli {

std::string escape(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          char buf[5];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out;
}

namespace {

int fail(const std::string& msg, int code = 2) {
  std::cerr << "wavekv: " << msg << "\n";
  return code;
}

// Opens an existing store (or creates one when `create`), reporting damage
// that recovery repaired.
Result<std::unique_ptr<Store>> open_store(const std::string& dir, bool create) {
  if (!create && !std::filesystem::is_directory(dir))
    return Status::not_found("data directory " + dir + " does not exist");
  Config c;
  c.data_dir = dir;
  auto s = Store::open(c);
  if (s) {
    const auto& r = (*s)->status().recovery;
    if (!r.clean()) {
      for (const auto& skipped : r.snapshots_skipped)
        std::cerr << "wavekv: warning: skipped corrupt snapshot " << skipped << "\n";
      if (!r.wal_damage.empty())
        std::cerr << "wavekv: warning: cut off a damaged WAL tail (" << r.wal_bytes_cut
                  << " bytes): " << r.wal_damage << "\n";
    }
  }
  return s;
}

// Prints what recovery found, one fact a line; the status line comes after.
void print_check(const CheckReport& r) {
  std::cout << "node: " << r.node << "\n"
            << "incarnation: " << r.incarnation
            << (r.identity_exists ? "" : " (no IDENTITY file yet)") << "\n"
            << "wal segments: " << r.wal_segments << " (" << r.wal_bytes << " record bytes)\n"
            << "snapshots: " << r.snapshots << ", recovering from LSN " << r.recovery.snapshot_lsn
            << "\n"
            << "wal records after snapshot: " << r.recovery.wal_records_replayed << "\n"
            << "last lsn: " << r.last_lsn << "\n"
            << "keys: " << r.live_keys << " live, " << r.tombstones << " tombstones, next_seq "
            << r.next_seq << "\n";
  for (const auto& s : r.recovery.snapshots_skipped)
    std::cout << "corrupt snapshot (skipped): " << s << "\n";
  if (!r.recovery.wal_damage.empty())
    std::cout << "wal damage: " << r.recovery.wal_damage << " (" << r.recovery.wal_bytes_cut
              << " bytes to cut)\n";
  if (!r.recovery.wal_corruption.empty())
    std::cout << "wal corruption (not a torn tail): " << r.recovery.wal_corruption << "\n"
              << "intact records a repair cuts: " << r.recovery.wal_records_after_damage << "\n";
  for (const auto& f : r.recovery.files_set_aside)
    std::cout << "segment to set aside: " << f << "\n";
  for (const auto& f : r.leftover_files) std::cout << "leftover temp file: " << f << "\n";
}

// Exit 0 if the directory is healthy, has only damage opening cuts by itself
// (a torn tail) or (with `repair`) was repaired; 1 if opening it would refuse
// (corruption that only `--repair` cuts, or worse); 2 if it could not be
// looked at.
int cmd_check(const std::string& dir, bool repair) {
  if (!std::filesystem::is_directory(dir)) return fail("data directory " + dir + " does not exist");
  Config c;
  c.data_dir = dir;
  CheckReport r;
  bool repaired = false;
  if (repair) {
    auto done = repair_data_dir(c);
    if (!done) return fail(done.status().to_string());
    r = std::move(done->found);
    repaired = done->repaired;
  } else {
    auto found = check_data_dir(c);
    if (!found) return fail(found.status().to_string());
    r = std::move(*found);
  }
  if (r.refused) {
    std::cout << "status: damaged beyond repair\n" << r.refusal.to_string() << "\n";
    return 1;
  }
  print_check(r);
  if (repaired) {
    std::cout << "status: repaired"
              << (r.recovery.wal_records_after_damage > 0
                      ? " (the cut records are kept in the *.damaged files; in a cluster, peers "
                        "send back the writes they hold once the node rejoins)"
                      : "")
              << "\n";
  } else if (!r.recovery.wal_corruption.empty()) {
    std::cout << "status: corrupt; the store refuses to open until `wavekv check --repair " << dir
              << "` "
              << (r.recovery.wal_records_after_damage > 0
                      ? "cuts at the damage (keeping what it cuts in *.damaged files)"
                      : "rewrites the damaged header")
              << "\n";
    return 1;
  } else if (r.damaged()) {
    std::cout << "status: damaged, repairable (opening the store or `check --repair` cuts it "
                 "off; everything before the damage is kept)\n";
  } else {
    std::cout << "status: ok\n";
  }
  return 0;
}

// Lists the keys whose current version is stamped more than `max_drift_ms`
// ahead of this machine's clock and, unless `dry_run`, replaces each by the
// same value (or tombstone) written now (docs/PROTOCOL.md, "Future timestamps").
int cmd_repair_timestamps(const std::string& dir, const TimestampRepairOptions& options) {
  if (!std::filesystem::is_directory(dir)) return fail("data directory " + dir + " does not exist");
  Config c;
  c.data_dir = dir;
  auto done = repair_timestamps(c, options);
  if (!done) return fail(done.status().to_string());
  for (const auto& k : done->keys) {
    std::cout << escape(k.key) << "\t" << (k.tombstone ? "tombstone" : "value") << "\tnode "
              << k.found.node << " seq " << k.found.seq << "\tstamped "
              << timestamp_millis(k.found.timestamp) << " ms (" << k.ahead_ms << " ms ahead)";
    if (!options.dry_run)
      std::cout << "\trewritten as node " << k.rewritten_as.node << " seq " << k.rewritten_as.seq;
    std::cout << "\n";
  }
  const size_t n = done->keys.size();
  std::cout << n << (n == 1 ? " key" : " keys")
            << (options.dry_run ? " stamped too far ahead (dry run: nothing changed)\n"
                                : " repaired\n");
  return 0;
}

// `wavekv keygen` and `wavekv cert ...`: the cluster key and certificates
// (wavekv/security.h), so nobody needs the openssl command line.
struct SecurityFlags {
  std::string dir, name;
  uint64_t node_id = 0;
  std::vector<std::string> hosts;
  bool overwrite = false;
};

struct SecurityCommands {
  CLI::App *keygen = nullptr, *cert = nullptr;
  CLI::App *init_ca = nullptr, *node = nullptr, *client = nullptr;
};

void add_security_commands(CLI::App& app, SecurityFlags& f, SecurityCommands& c) {
  c.keygen = app.add_subcommand(
      "keygen", "Print a new cluster key file (wavekv keygen > cluster.key), for every node");
  c.cert = app.add_subcommand("cert", "Create the cluster CA and node and client certificates");
  c.cert->require_subcommand(1);
  auto common = [&](CLI::App* cmd) {
    cmd->add_option("--dir", f.dir, "Certificate directory (holds ca.crt and ca.key)")->required();
    cmd->add_flag("--overwrite", f.overwrite, "Replace files that exist");
  };
  c.init_ca = c.cert->add_subcommand("init-ca", "Create the cluster CA (ca.crt, ca.key)");
  common(c.init_ca);
  c.node = c.cert->add_subcommand("node", "Issue node.NAME.crt/.key for a node, signed by the CA");
  common(c.node);
  c.node->add_option("--name", f.name, "Node name (file names, certificate CN)")->required();
  c.node->add_option("--node-id", f.node_id, "The node's id (its --id), bound to the certificate")
      ->required();
  c.node->add_option("--host", f.hosts, "Names and addresses peers dial it by (comma-separated)")
      ->required()
      ->delimiter(',');
  c.client = c.cert->add_subcommand("client", "Issue client.NAME.crt/.key for a RESP/HTTP client");
  common(c.client);
  c.client->add_option("--name", f.name, "User name (certificate CN)")->required();
}

// Prints the key file; a regular file on stdout (`> cluster.key`) is made
// private first, since the key is all a stranger needs to join.
int cmd_keygen() {
  auto key = generate_cluster_key_file();
  if (!key) return fail(key.status().to_string());
  struct stat st {};
  if (::fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) && ::fchmod(STDOUT_FILENO, 0600) != 0)
    return fail("cannot make the key file private (chmod 600)");
  std::cout << *key << std::flush;
  return std::cout ? 0 : fail("cannot write the key");
}

int cmd_cert(const SecurityCommands& c, const SecurityFlags& f) {
  Result<CertFiles> files = Status::invalid("no cert subcommand");
  if (*c.init_ca) files = init_ca({f.dir, f.overwrite});
  if (*c.node) files = issue_node_cert({f.dir, f.name, f.node_id, f.hosts, f.overwrite});
  if (*c.client) files = issue_client_cert({f.dir, f.name, f.overwrite});
  if (!files) return fail(files.status().to_string());
  std::cout << "wrote " << files->cert_path << "\nwrote " << files->key_path << " (mode 0600)\n";
  if (*c.init_ca)
    std::cout << "keep ca.key secret: whoever holds it can make members. Nodes need only ca.crt "
                 "and their own node.NAME.crt/.key\n";
  return 0;
}

// Everything the flags fill in, with their defaults.
struct Flags {
  std::string dir, key, value, prefix, addr;
  uint64_t ttl_ms = 0;
  std::string token, user, cacert;  // --token, --user, --cacert (with --addr)
  bool status_json = false;
  std::string config_file;    // serve --config
  bool print_config = false;  // serve --print-config
  bool repair = false;
  uint64_t max_drift_ms = 5 * 60 * 1000;
  bool dry_run = false;
  BenchOptions bench;
  std::string bench_durability = "always";
  std::string bench_mode = "threads";
  ServeOptions serve;
  std::string serve_durability = "always";
  SecurityFlags security;
  UserHashOptions user_hash;
  std::string users_file;
};

// The subcommands, to tell after parsing which one was given.
struct Commands {
  CLI::App *put = nullptr, *get = nullptr, *del = nullptr, *scan = nullptr;
  CLI::App *status = nullptr, *check = nullptr, *repair_ts = nullptr;
  CLI::App *bench = nullptr, *serve = nullptr;
  CLI::App *user_hash = nullptr, *user_token = nullptr, *user_check = nullptr;
  CLI::Option* repair_key = nullptr;  // given: repair-timestamps --key
  SecurityCommands security;
};

// A node's HTTP API with a users file or TLS: who to be, and whom to trust.
void add_remote_credentials(CLI::App* cmd, Flags& f) {
  cmd->add_option("--token", f.token,
                  "Bearer token (default: $WAVEKV_TOKEN; a flag shows in ps, the variable not)");
  cmd->add_option("--user", f.user, "User for Basic auth; the password from $WAVEKV_PASSWORD");
  cmd->add_option("--cacert", f.cacert, "https: verify the node against this CA file (PEM)");
}

// get/put/del/scan work on a data directory or, with --addr, on a running
// node over HTTP (client.cc).
void add_data_commands(CLI::App& app, Flags& f, Commands& c) {
  auto target = [&](CLI::App* cmd) {
    auto* d = cmd->add_option("--data-dir", f.dir, "Data directory");
    auto* a = cmd->add_option("--addr", f.addr, "HOST:PORT of a running node's HTTP API");
    d->excludes(a);
    add_remote_credentials(cmd, f);
  };
  c.put = app.add_subcommand("put", "Write KEY=VALUE");
  target(c.put);
  c.put->add_option("key", f.key)->required();
  c.put->add_option("value", f.value)->required();
  c.put->add_option("--ttl-ms", f.ttl_ms,
                    "The key expires this many milliseconds after the write (0: never)");

  c.get = app.add_subcommand("get", "Print the value of KEY (exit 1 if absent)");
  target(c.get);
  c.get->add_option("key", f.key)->required();

  c.del = app.add_subcommand("del", "Delete KEY");
  target(c.del);
  c.del->add_option("key", f.key)->required();

  c.scan = app.add_subcommand("scan", "Print key<TAB>value for keys starting with PREFIX");
  target(c.scan);
  c.scan->add_option("prefix", f.prefix);
}

CLI::App* add_status_command(CLI::App& app, Flags& f) {
  auto* status = app.add_subcommand("status", "Show a running node's status");
  status->add_option("--addr", f.addr, "HOST:PORT of the node's HTTP API")->required();
  status->add_flag("--json", f.status_json, "Print the node's JSON as is");
  add_remote_credentials(status, f);
  return status;
}

CLI::App* add_check_command(CLI::App& app, Flags& f) {
  auto* check = app.add_subcommand("check", "Verify the WAL and snapshots of a data directory");
  check->add_option("--data-dir", f.dir, "Data directory")->required();
  check->add_flag("--repair", f.repair,
                  "Repair now: cut a torn tail (as opening does), and corruption that opening "
                  "refuses (what is cut is kept in *.damaged files)");
  return check;
}

CLI::App* add_repair_timestamps_command(CLI::App& app, Flags& f, CLI::Option*& key_option) {
  auto* repair_ts = app.add_subcommand(
      "repair-timestamps",
      "Rewrite keys stamped further ahead of this clock than the drift bound (node stopped)");
  repair_ts->add_option("--data-dir", f.dir, "Data directory")->required();
  key_option = repair_ts->add_option("--key", f.key, "Only this key");
  repair_ts->add_option("--max-drift-ms", f.max_drift_ms, "The peers' drift bound")
      ->capture_default_str();
  repair_ts->add_flag("--dry-run", f.dry_run, "List them; change nothing");
  return repair_ts;
}

CLI::App* add_bench_command(CLI::App& app, BenchOptions& bo, std::string& durability,
                            std::string& mode) {
  auto* bench = app.add_subcommand("bench", "Measure write throughput and latency");
  bench->add_option("--data-dir", bo.data_dir, "Data directory")->required();
  bench->add_option("--ops", bo.ops, "Total writes")->check(CLI::PositiveNumber);
  bench->add_option("--concurrency", bo.concurrency, "Writer threads")
      ->check(CLI::Range(1u, 4096u));
  bench->add_option("--value-size", bo.value_size, "Value bytes")->check(CLI::Range(0u, 1u << 26));
  bench->add_option("--durability", durability, "always|interval|none")
      ->check(CLI::IsMember({"always", "interval", "none"}));
  bench->add_option("--acked-log", bo.acked_log, "Append each key here once acknowledged");
  bench->add_flag("--json", bo.json, "Print JSON instead of a table");
  bench
      ->add_option("--mode", mode,
                   "threads: C threads making blocking writes; async: one thread keeping C "
                   "writes in flight")
      ->check(CLI::IsMember({"threads", "async"}));
  return bench;
}

CLI::App* add_serve_command(CLI::App& app, ServeOptions& so, std::string& serve_durability) {
  auto* serve = app.add_subcommand("serve", "Run a node (peer transport, RESP port, HTTP API)");
  serve->add_option("--data-dir", so.data_dir, "Data directory")->capture_default_str();
  serve->add_option("--id", so.id, "Node id (default: recorded, or random on first start)");
  serve->add_option("--listen", so.listen, "Peer transport HOST:PORT (port 0: any free port)")
      ->capture_default_str();
  serve->add_option("--advertise", so.advertise, "Address peers dial (default: --listen)");
  serve->add_option("--peers", so.peers, "Any member's peer HOST:PORT (comma-separated)")
      ->delimiter(',');
  serve->add_option("--resp", so.resp, "Redis-compatible HOST:PORT ('' disables, port 0: any)")
      ->capture_default_str();
  serve
      ->add_option("--resp-max-client-memory-bytes", so.resp_max_client_memory_bytes,
                   "Memory for every RESP client's requests and replies together; beyond it "
                   "clients wait (docs/RESP.md, Memory)")
      ->capture_default_str();
  serve
      ->add_option("--http-max-client-memory-bytes", so.http_max_client_memory_bytes,
                   "Memory for every HTTP client's bodies, replies and watch queues together; "
                   "beyond it clients wait (docs/HTTP.md, Memory)")
      ->capture_default_str();
  serve
      ->add_option("--resp-idle-timeout-ms", so.resp_idle_timeout_ms,
                   "Close a RESP connection that sent nothing this long with nothing in "
                   "progress (0: never)")
      ->capture_default_str();
  serve->add_option("--resp-notify-keyspace-events", so.resp_notify_keyspace_events,
                    "Keyspace notifications on the RESP port, in Redis's notify-keyspace-events "
                    "letters (KEA: all; default none; CONFIG SET changes it)");
  serve->add_option("--http", so.http, "HTTP API HOST:PORT ('' disables, port 0: any)")
      ->capture_default_str();
  serve->add_option("--ready-file", so.ready_file,
                    "Once every port is bound, write the bound addresses here as JSON "
                    "{node_id, pid, peer, resp, http} (atomically; rewritten after a "
                    "re-bootstrap); stdout gets a 'listening ...' line either way");
  serve->add_option("--durability", serve_durability, "always|interval|none")
      ->check(CLI::IsMember({"always", "interval", "none"}))
      ->capture_default_str();
  serve->add_option("--sync-interval-ms", so.sync_interval_ms, "Sync round interval")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  serve->add_option("--fanout", so.fanout, "Peers synced with per round")
      ->check(CLI::Range(1u, 64u))
      ->capture_default_str();
  serve
      ->add_option("--tombstone-grace-ms", so.tombstone_grace_ms,
                   "Keep a tombstone at least this long after its delete, even once every "
                   "member covers it")
      ->capture_default_str();
  serve
      ->add_option("--max-clock-offset-ms", so.max_clock_offset_ms,
                   "Refuse client writes while this node's clock is further than this from a "
                   "majority of its peers' (0: no check)")
      ->capture_default_str();
  serve
      ->add_option("--member-expiry-ms", so.member_expiry_ms,
                   "Evict a member not heard from for this long (0: never)")
      ->capture_default_str();
  add_peer_security_flags(*serve, so.security);
  serve->add_option("--tls-cert-file", so.clients.tls_cert_file,
                    "RESP and HTTP ports speak TLS with this certificate (PEM)");
  serve->add_option("--tls-key-file", so.clients.tls_key_file, "Its private key (PEM)");
  serve->add_option("--tls-client-ca-file", so.clients.tls_client_ca_file,
                    "Ask clients for a certificate from this CA (PEM)");
  serve->add_flag("--tls-require-client-cert", so.clients.require_client_cert,
                  "Refuse clients without such a certificate");
  serve->add_option("--users-file", so.clients.users_file,
                    "RESP and HTTP clients log in as users of this file (docs/SECURITY.md)");
  add_log_flags(*serve, so.log);
  serve
      ->add_option("--keep-retired", so.keep_retired,
                   "Copies of the data directory a re-bootstrap moves aside to "
                   "DATA_DIR/retired/ and keeps (0: delete instead)")
      ->capture_default_str();
  return serve;
}

// `user hash`, `user token` and `user check` (user.cc): the secrets of a users file.
void add_user_commands(CLI::App& app, Flags& f, Commands& c) {
  UserHashOptions& uo = f.user_hash;
  auto* user = app.add_subcommand("user", "Make password hashes and tokens for a users file");
  user->require_subcommand(1);
  c.user_hash = user->add_subcommand("hash", "Read a password from stdin, print its hash");
  c.user_hash->add_option("--scrypt-n", uo.scrypt_n, "scrypt cost N (a power of two)")
      ->capture_default_str();
  c.user_hash->add_option("--scrypt-r", uo.scrypt_r, "scrypt block size r")->capture_default_str();
  c.user_hash->add_option("--scrypt-p", uo.scrypt_p, "scrypt parallelism p")->capture_default_str();
  c.user_token = user->add_subcommand("token", "Print a new bearer token and its stored hash");
  c.user_check = user->add_subcommand("check", "Load a users file as a node would; list its users");
  c.user_check->add_option("users_file", f.users_file, "The users file (TOML)")->required();
}

// get/put/del/scan/status against a running node (--addr).
int cmd_remote(const Commands& c, const Flags& f) {
  RemoteCommand rc;
  rc.addr = f.addr;
  rc.key = f.key;
  rc.value = f.value;
  rc.ttl_ms = f.ttl_ms;
  rc.prefix = f.prefix;
  rc.json = f.status_json;
  rc.token = f.token;
  if (rc.token.empty())
    if (const char* t = std::getenv("WAVEKV_TOKEN")) rc.token = t;
  rc.user = f.user;
  if (!rc.user.empty()) {
    const char* p = std::getenv("WAVEKV_PASSWORD");
    if (p == nullptr) return fail("--user needs the password in $WAVEKV_PASSWORD");
    rc.password = p;
  }
  rc.ca_file = f.cacert;
  rc.kind = *c.status ? RemoteCommand::Kind::kStatus
            : *c.put  ? RemoteCommand::Kind::kPut
            : *c.del  ? RemoteCommand::Kind::kDel
            : *c.scan ? RemoteCommand::Kind::kScan
                      : RemoteCommand::Kind::kGet;
  return run_remote(rc);
}

// get/put/del/scan on a data directory, no node running.
int cmd_local(const Commands& c, const Flags& f) {
  bool writes = *c.put || *c.del;
  auto store = open_store(f.dir, writes);
  if (!store) return fail(store.status().to_string());
  Store& s = **store;
  if (*c.put) {
    const uint64_t now = s.now_ms();
    if (f.ttl_ms > UINT64_MAX - now) return fail("--ttl-ms is too large");
    WriteBatch b;
    b.put(f.key, f.value, f.ttl_ms == 0 ? 0 : now + f.ttl_ms);
    Status st = s.write(b);
    if (!st.is_ok()) return fail(st.to_string());
  } else if (*c.del) {
    Status st = s.del(f.key);
    if (!st.is_ok()) return fail(st.to_string());
  } else if (*c.get) {
    auto v = s.get(f.key);
    if (!v) return fail("key '" + escape(f.key) + "' not found", 1);
    std::fwrite(v->data(), 1, v->size(), stdout);
    std::fputc('\n', stdout);
  } else if (*c.scan) {
    for (const auto& kv : s.scan_prefix(f.prefix, 0))
      std::cout << escape(kv.key) << "\t" << escape(kv.value) << "\n";
  }
  Status st = s.close();
  if (!st.is_ok()) return fail(st.to_string());
  return 0;
}

// Runs the one subcommand given; returns the exit code.
int run(const Commands& c, Flags& f) {
  if (*c.security.keygen) return cmd_keygen();
  if (*c.security.cert) return cmd_cert(c.security, f.security);
  if (*c.serve) {
    if (f.print_config) {
      std::cout << cli::effective_config(*c.serve);
      return 0;
    }
    f.serve.durability = parse_durability(f.serve_durability).value();
    return run_serve(f.serve);
  }
  if (*c.bench) {
    f.bench.durability = parse_durability(f.bench_durability).value();
    f.bench.async = f.bench_mode == "async";
    return run_bench(f.bench);
  }
  if (*c.user_hash) return run_user_hash(f.user_hash);
  if (*c.user_token) return run_user_token();
  if (*c.user_check) return run_user_check(f.users_file);
  if (*c.check) return cmd_check(f.dir, f.repair);
  if (*c.repair_ts) {
    TimestampRepairOptions options;
    if (c.repair_key->count() > 0) options.key = f.key;
    options.max_drift_ms = f.max_drift_ms;
    options.dry_run = f.dry_run;
    return cmd_repair_timestamps(f.dir, options);
  }
  if (*c.status || !f.addr.empty()) return cmd_remote(c, f);
  if (f.dir.empty()) return fail("give --data-dir DIR or --addr HOST:PORT");
  return cmd_local(c, f);
}

}  // namespace
}  // namespace wavekv::cli

int main(int argc, char** argv) {
  using namespace wavekv::cli;
  CLI::App app{"WaveKV: an embeddable, replicated key-value store"};
  app.require_subcommand(1);
  Flags f;
  Commands c;
  add_data_commands(app, f, c);
  c.status = add_status_command(app, f);
  c.check = add_check_command(app, f);
  c.repair_ts = add_repair_timestamps_command(app, f, c.repair_key);
  c.bench = add_bench_command(app, f.bench, f.bench_durability, f.bench_mode);
  c.serve = add_serve_command(app, f.serve, f.serve_durability);
  add_config_file(c.serve, f.config_file, f.print_config);
  add_security_commands(app, f.security, c.security);
  add_user_commands(app, f, c);
  CLI11_PARSE(app, argc, argv);
  if (*c.serve && !f.config_file.empty()) {
    try {
      apply_config_file(*c.serve, f.config_file);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
  }
  return run(c, f);
}
