// wavekv: the command-line program. get/put/del/scan work offline on a data
// directory or, with --addr, on a running node (client.cc); `status` asks a
// node; `bench` measures the storage engine.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli.h"
#include "store/recovery.h"
#include "store/store_internal.h"
#include "wavekv/store.h"

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

int cmd_check(const std::string& dir, bool repair) {
  if (!std::filesystem::is_directory(dir)) return fail("data directory " + dir + " does not exist");
  auto fs = posix_filesystem();
  auto lock = fs->lock(dir + "/" + kLockFile);
  if (!lock) return fail(lock.status().to_string());
  auto plan = plan_recovery(*fs, dir, 0);
  if (!plan) {
    std::cout << "status: damaged beyond repair\n" << plan.status().to_string() << "\n";
    return 1;
  }
  const auto& p = *plan;
  const auto& r = p.report;
  std::cout << "node: " << p.identity.node << "\n"
            << "incarnation: " << p.identity.incarnation
            << (p.identity_exists ? "" : " (no IDENTITY file yet)") << "\n"
            << "wal segments: " << p.segments.size() << " (" << p.wal_bytes << " record bytes)\n"
            << "snapshots: " << p.snapshots.size() << ", recovering from LSN " << r.snapshot_lsn
            << "\n"
            << "wal records after snapshot: " << r.wal_records_replayed << "\n"
            << "last lsn: " << p.last_lsn << "\n"
            << "keys: " << p.state.live_keys() << " live, " << p.state.tombstones()
            << " tombstones, next_seq " << p.state.next_seq() << "\n";
  for (const auto& s : r.snapshots_skipped)
    std::cout << "corrupt snapshot (skipped): " << s << "\n";
  if (!r.wal_damage.empty())
    std::cout << "wal damage: " << r.wal_damage << " (" << r.wal_bytes_cut << " bytes to cut)\n";
  for (const auto& f : r.files_set_aside) std::cout << "segment to set aside: " << f << "\n";
  for (const auto& f : p.remove_files) std::cout << "leftover temp file: " << f << "\n";
  bool needs_repair = !r.wal_damage.empty() || !p.remove_files.empty();
  if (!r.clean() || needs_repair) {
    if (repair) {
      Status st = apply_repairs(*fs, dir, p);
      if (!st.is_ok()) return fail("repair failed: " + st.to_string());
      std::cout << "status: repaired\n";
      return 0;
    }
    std::cout << "status: damaged, repairable (opening the store or `check --repair` cuts it "
                 "off; everything before the damage is kept)\n";
    return 0;
  }
  std::cout << "status: ok\n";
  return 0;
}

// Lists the keys whose current version is stamped more than `max_drift_ms`
// ahead of this machine's clock and, unless `dry_run`, replaces each by the
// same value (or tombstone) written now (docs/PROTOCOL.md, "Future timestamps").
int cmd_repair_timestamps(const std::string& dir, const std::string& key, bool only_key,
                          uint64_t max_drift_ms, bool dry_run) {
  if (!std::filesystem::is_directory(dir)) return fail("data directory " + dir + " does not exist");
  Config c;
  c.data_dir = dir;
  auto store = open_replicated(c);
  if (!store) return fail(store.status().to_string());
  std::optional<std::string> which;
  if (only_key) which = key;
  auto found = (*store)->future_versions(max_drift_ms, which, !dry_run);
  if (!found) return fail(found.status().to_string());
  const uint64_t now_ms = system_clock()->now_ms();
  for (const auto& f : *found) {
    const uint64_t ts_ms = timestamp_millis(f.meta.timestamp);
    std::cout << escape(f.key) << "\t" << (f.tombstone ? "tombstone" : "value") << "\tnode "
              << f.meta.node << " seq " << f.meta.seq << "\tstamped " << ts_ms << " ms ("
              << (ts_ms > now_ms ? ts_ms - now_ms : 0) << " ms ahead)";
    if (!dry_run)
      std::cout << "\trewritten as node " << f.repaired.node << " seq " << f.repaired.seq;
    std::cout << "\n";
  }
  std::cout << found->size() << (found->size() == 1 ? " key" : " keys")
            << (dry_run ? " stamped too far ahead (dry run: nothing changed)\n" : " repaired\n");
  Status st = (*store)->close();
  if (!st.is_ok()) return fail(st.to_string());
  return 0;
}

}  // namespace
}  // namespace wavekv::cli

int main(int argc, char** argv) {
  using namespace wavekv;
  using namespace wavekv::cli;
  CLI::App app{"WaveKV: an embeddable, replicated key-value store"};
  app.require_subcommand(1);
  std::string dir, key, value, prefix, addr;

  // get/put/del/scan work on a data directory or, with --addr, on a running
  // node over HTTP (client.cc).
  auto target = [&](CLI::App* cmd) {
    auto* d = cmd->add_option("--data-dir", dir, "Data directory");
    auto* a = cmd->add_option("--addr", addr, "HOST:PORT of a running node's HTTP API");
    d->excludes(a);
  };
  auto* put = app.add_subcommand("put", "Write KEY=VALUE");
  target(put);
  put->add_option("key", key)->required();
  put->add_option("value", value)->required();

  auto* get = app.add_subcommand("get", "Print the value of KEY (exit 1 if absent)");
  target(get);
  get->add_option("key", key)->required();

  auto* del = app.add_subcommand("del", "Delete KEY");
  target(del);
  del->add_option("key", key)->required();

  auto* scan = app.add_subcommand("scan", "Print key<TAB>value for keys starting with PREFIX");
  target(scan);
  scan->add_option("prefix", prefix);

  bool status_json = false;
  auto* status = app.add_subcommand("status", "Show a running node's status");
  status->add_option("--addr", addr, "HOST:PORT of the node's HTTP API")->required();
  status->add_flag("--json", status_json, "Print the node's JSON as is");

  bool repair = false;
  auto* check = app.add_subcommand("check", "Verify the WAL and snapshots of a data directory");
  check->add_option("--data-dir", dir, "Data directory")->required();
  check->add_flag("--repair", repair, "Cut off damage now, as opening the store would");

  uint64_t max_drift_ms = 5 * 60 * 1000;
  bool dry_run = false;
  auto* repair_ts = app.add_subcommand(
      "repair-timestamps",
      "Rewrite keys stamped further ahead of this clock than the drift bound (node stopped)");
  repair_ts->add_option("--data-dir", dir, "Data directory")->required();
  auto* repair_key = repair_ts->add_option("--key", key, "Only this key");
  repair_ts->add_option("--max-drift-ms", max_drift_ms, "The peers' drift bound")
      ->capture_default_str();
  repair_ts->add_flag("--dry-run", dry_run, "List them; change nothing");

  BenchOptions bo;
  std::string durability = "always";
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
  std::string mode = "threads";
  bench
      ->add_option("--mode", mode,
                   "threads: C threads making blocking writes; async: one thread keeping C "
                   "writes in flight")
      ->check(CLI::IsMember({"threads", "async"}));

  ServeOptions so;
  std::string serve_durability = "always";
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
      ->add_option("--member-expiry-ms", so.member_expiry_ms,
                   "Evict a member not heard from for this long (0: never)")
      ->capture_default_str();

  CLI11_PARSE(app, argc, argv);

  if (*serve) {
    so.durability = parse_durability(serve_durability).value();
    return run_serve(so);
  }

  if (*bench) {
    bo.durability = parse_durability(durability).value();
    bo.async = mode == "async";
    return run_bench(bo);
  }
  if (*check) return cmd_check(dir, repair);
  if (*repair_ts)
    return cmd_repair_timestamps(dir, key, repair_key->count() > 0, max_drift_ms, dry_run);

  if (*status || !addr.empty()) {
    RemoteCommand rc;
    rc.addr = addr;
    rc.key = key;
    rc.value = value;
    rc.prefix = prefix;
    rc.json = status_json;
    rc.kind = *status ? RemoteCommand::Kind::kStatus
              : *put  ? RemoteCommand::Kind::kPut
              : *del  ? RemoteCommand::Kind::kDel
              : *scan ? RemoteCommand::Kind::kScan
                      : RemoteCommand::Kind::kGet;
    return run_remote(rc);
  }
  if (dir.empty()) return fail("give --data-dir DIR or --addr HOST:PORT");

  bool writes = *put || *del;
  auto store = open_store(dir, writes);
  if (!store) return fail(store.status().to_string());
  Store& s = **store;
  if (*put) {
    Status st = s.put(key, value);
    if (!st.is_ok()) return fail(st.to_string());
  } else if (*del) {
    Status st = s.del(key);
    if (!st.is_ok()) return fail(st.to_string());
  } else if (*get) {
    auto v = s.get(key);
    if (!v) return fail("key '" + escape(key) + "' not found", 1);
    std::fwrite(v->data(), 1, v->size(), stdout);
    std::fputc('\n', stdout);
  } else if (*scan) {
    for (const auto& kv : s.scan_prefix(prefix, 0))
      std::cout << escape(kv.key) << "\t" << escape(kv.value) << "\n";
  }
  Status st = s.close();
  if (!st.is_ok()) return fail(st.to_string());
  return 0;
}
