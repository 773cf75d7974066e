// The `wavekv` commands that talk to a running node over HTTP (docs/HTTP.md),
// through the public client (wavekv/client.h); this file only prints.
#include "wavekv/client.h"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <vector>

#include "cli.h"

namespace wavekv::cli {
namespace {

using json = nlohmann::json;

int fail(const std::string& msg, int code = 2) {
  std::cerr << "wavekv: " << msg << "\n";
  return code;
}

// A field for the status table: "-" when the node did not send it.
std::string show(const json& obj, const std::string& name) {
  if (!obj.is_object() || !obj.contains(name) || obj[name].is_null()) return "-";
  const json& v = obj[name];
  return v.is_string() ? v.get<std::string>() : v.dump();
}

void print_section(const json& status, const std::string& name,
                   const std::vector<std::string>& known) {
  if (!status.contains(name) || !status[name].is_object()) return;
  const json& sec = status[name];
  std::vector<std::string> fields = known;
  for (auto it = sec.begin(); it != sec.end(); ++it)  // fields newer than this program
    if (std::find(known.begin(), known.end(), it.key()) == known.end()) fields.push_back(it.key());
  std::cout << "\n" << name << ":\n";
  for (const auto& f : fields) {
    std::string pad(f.size() < 20 ? 20 - f.size() : 1, ' ');
    std::cout << "  " << f << pad << show(sec, f) << "\n";
  }
}

void print_members(const json& status) {
  if (!status.contains("members") || !status["members"].is_array()) return;
  std::vector<std::vector<std::string>> rows = {
      {"ID", "INCARNATION", "ADDRESS", "LAST SEEN", "ACK LAG"}};
  for (const auto& m : status["members"]) {
    std::string seen = "never";
    if (m.is_object() && m.contains("last_seen_ms_ago") && m["last_seen_ms_ago"].is_number())
      seen = m["last_seen_ms_ago"].dump() + " ms ago";
    else if (!m.is_object() || !m.contains("last_seen_ms_ago"))
      seen = "-";
    rows.push_back(
        {show(m, "id"), show(m, "incarnation"), show(m, "address"), seen, show(m, "ack_lag")});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  std::cout << "\nmembers:\n";
  for (const auto& r : rows) {
    std::string line = " ";
    for (size_t i = 0; i < r.size(); ++i) {
      line += " " + r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 1, ' ');
    }
    std::cout << line << "\n";
  }
}

int print_status(const std::string& body, bool as_json) {
  if (as_json) {
    std::cout << body;
    if (body.empty() || body.back() != '\n') std::cout << "\n";
    return 0;
  }
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail("node sent a status that is not JSON");
  for (const char* f : {"node", "incarnation", "address", "digest"}) {
    std::string name = f;
    std::cout << name << ":" << std::string(12 - name.size(), ' ') << show(j, name) << "\n";
  }
  print_section(j, "storage",
                {"live_keys", "tombstones", "data_bytes", "next_seq", "last_lsn", "durable_lsn",
                 "wal_segments", "wal_bytes", "writes", "group_commits", "fsyncs", "checkpoints",
                 "checkpoint_lsn", "snapshot_bytes"});
  print_section(
      j, "replication",
      {"rounds", "sessions_completed", "sessions_aborted", "pages_served", "entries_received",
       "entries_merged", "entries_rejected", "pushes_sent", "digest_mismatches", "repairs"});
  print_members(j);
  return 0;
}

// Every page, printed as it comes; a bound on pages guards against a node
// that never ends.
int scan_all(const HttpClient& client, const std::string& prefix) {
  std::string start;
  for (int page = 0; page < 1'000'000; ++page) {
    auto p = client.scan(prefix, start);
    if (!p) return fail(p.status().message());
    for (const auto& kv : p->items) std::cout << escape(kv.key) << "\t" << escape(kv.value) << "\n";
    if (!p->next) return 0;
    start = std::move(*p->next);
  }
  return fail("listing did not end");
}

}  // namespace

int run_remote(const RemoteCommand& c) {
  using Kind = RemoteCommand::Kind;
  HttpClientOptions options;
  options.timeout_ms = c.timeout_ms;
  options.token = c.token;
  options.user = c.user;
  options.password = c.password;
  options.ca_file = c.ca_file;
  const HttpClient client(c.addr, options);
  switch (c.kind) {
    case Kind::kGet: {
      auto v = client.get(c.key);
      if (!v) return fail(v.status().message());
      if (!*v) return fail("key '" + escape(c.key) + "' not found", 1);
      std::fwrite((*v)->data(), 1, (*v)->size(), stdout);
      std::fputc('\n', stdout);
      return 0;
    }
    case Kind::kPut:
    case Kind::kDel: {
      Status st = c.kind == Kind::kPut ? client.put(c.key, c.value, c.ttl_ms) : client.del(c.key);
      return st.is_ok() ? 0 : fail(st.message());
    }
    case Kind::kScan: return scan_all(client, c.prefix);
    case Kind::kStatus: {
      auto body = client.status_json();
      if (!body) return fail(body.status().message());
      return print_status(*body, c.json);
    }
  }
  return 2;
}

}  // namespace wavekv::cli
