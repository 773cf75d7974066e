// The `wavekv` commands that talk to a running node over HTTP (docs/HTTP.md).
#include "http/client.h"

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <vector>

#include "cli.h"
#include "http/encoding.h"

namespace wavekv::cli {
namespace {

using json = nlohmann::json;
using http::HttpResponse;

int fail(const std::string& msg, int code = 2) {
  std::cerr << "wavekv: " << msg << "\n";
  return code;
}

// What the node said went wrong: its {"error": ...} or the raw body.
std::string server_error(const HttpResponse& r) {
  auto j = json::parse(r.body, nullptr, false);
  std::string what =
      (!j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_string())
          ? j["error"].get<std::string>()
          : r.body;
  return "node answered " + std::to_string(r.status) + ": " + what;
}

// Bytes from a JSON object that holds `name` as text or `name_base64`.
std::optional<std::string> json_bytes(const json& j, const std::string& name) {
  if (j.contains(name) && j[name].is_string()) return j[name].get<std::string>();
  std::string b64 = name + "_base64";
  if (j.contains(b64) && j[b64].is_string()) return http::base64_decode(j[b64].get<std::string>());
  return std::nullopt;
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

int print_status(const HttpResponse& r, bool as_json) {
  if (as_json) {
    std::cout << r.body;
    if (r.body.empty() || r.body.back() != '\n') std::cout << "\n";
    return 0;
  }
  auto j = json::parse(r.body, nullptr, false);
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

}  // namespace

int run_remote(const RemoteCommand& c) {
  using Kind = RemoteCommand::Kind;
  auto call = [&](std::string_view method, const std::string& target, std::string_view body) {
    return http::http_request(c.addr, method, target, body, c.timeout_ms);
  };
  const std::string key_path = "/v1/kv/" + http::percent_encode(c.key);
  switch (c.kind) {
    case Kind::kGet: {
      auto r = call("GET", key_path, "");
      if (!r) return fail(r.status().message());
      if (r->status == 404) return fail("key '" + escape(c.key) + "' not found", 1);
      if (r->status != 200) return fail(server_error(*r));
      std::fwrite(r->body.data(), 1, r->body.size(), stdout);
      std::fputc('\n', stdout);
      return 0;
    }
    case Kind::kPut:
    case Kind::kDel: {
      auto r = c.kind == Kind::kPut ? call("PUT", key_path, c.value) : call("DELETE", key_path, "");
      if (!r) return fail(r.status().message());
      if (r->status != 200) return fail(server_error(*r));
      return 0;
    }
    case Kind::kScan: {
      std::optional<std::string> start;
      // Page by page; a bound on pages guards against a node that never ends.
      for (int page = 0; page < 1'000'000; ++page) {
        std::string target = "/v1/kv?limit=1000&prefix=" + http::percent_encode(c.prefix);
        if (start) target += "&start=" + http::percent_encode(*start);
        auto r = call("GET", target, "");
        if (!r) return fail(r.status().message());
        if (r->status != 200) return fail(server_error(*r));
        auto j = json::parse(r->body, nullptr, false);
        if (j.is_discarded() || !j.contains("items") || !j["items"].is_array())
          return fail("node sent a listing that is not the expected JSON");
        for (const auto& item : j["items"]) {
          auto k = json_bytes(item, "key");
          auto v = json_bytes(item, "value");
          if (!k || !v) return fail("node sent an item without key or value");
          std::cout << escape(*k) << "\t" << escape(*v) << "\n";
        }
        start = json_bytes(j, "next");
        if (!start) return 0;
      }
      return fail("listing did not end");
    }
    case Kind::kStatus: {
      auto r = call("GET", "/v1/status", "");
      if (!r) return fail(r.status().message());
      if (r->status != 200) return fail(server_error(*r));
      return print_status(*r, c.json);
    }
  }
  return 2;
}

}  // namespace wavekv::cli
