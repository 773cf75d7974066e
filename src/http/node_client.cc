// wavekv::HttpClient (include/wavekv/client.h): the node's HTTP API over
// http_request (client.h), with the encodings of encoding.h.
#include <nlohmann/json.hpp>

#include "auth/password.h"
#include "http/client.h"
#include "http/encoding.h"
#include "wavekv/client.h"

namespace wavekv {
namespace {

using json = nlohmann::json;

// What the node said went wrong: its {"error": ...} or the raw body. A 4xx is
// a refused request; anything else is the node failing.
Status server_error(const http::HttpResponse& r) {
  auto j = json::parse(r.body, nullptr, false);
  std::string what =
      (!j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_string())
          ? j["error"].get<std::string>()
          : r.body;
  std::string msg = "node answered " + std::to_string(r.status) + ": " + what;
  if (r.status >= 400 && r.status < 500) return Status::invalid(std::move(msg));
  return Status::io_error(std::move(msg));
}

// Bytes from a JSON object that holds `name` as text or `name_base64`.
std::optional<std::string> json_bytes(const json& j, const std::string& name) {
  if (j.contains(name) && j[name].is_string()) return j[name].get<std::string>();
  std::string b64 = name + "_base64";
  if (j.contains(b64) && j[b64].is_string()) return http::base64_decode(j[b64].get<std::string>());
  return std::nullopt;
}

uint64_t json_u64(const json& j, const char* name) {
  return j.contains(name) && j[name].is_number_unsigned() ? j[name].get<uint64_t>() : 0;
}

// One page of GET /v1/kv parsed; errors name what is missing.
Result<ScanPage> parse_page(const std::string& body) {
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("items") || !j["items"].is_array())
    return Status::io_error("node sent a listing that is not the expected JSON");
  ScanPage page;
  for (const auto& item : j["items"]) {
    auto k = item.is_object() ? json_bytes(item, "key") : std::nullopt;
    auto v = item.is_object() ? json_bytes(item, "value") : std::nullopt;
    if (!k || !v) return Status::io_error("node sent an item without key or value");
    Meta meta;
    meta.node = json_u64(item, "node");
    meta.seq = json_u64(item, "seq");
    meta.timestamp = json_u64(item, "timestamp");
    page.items.push_back({std::move(*k), std::move(*v), meta});
  }
  page.next = json_bytes(j, "next");
  return page;
}

std::string key_path(std::string_view key) { return "/v1/kv/" + http::percent_encode(key); }

}  // namespace

HttpClient::HttpClient(std::string addr, HttpClientOptions options)
    : addr_(std::move(addr)), timeout_ms_(options.timeout_ms), ca_file_(options.ca_file) {
  if (!options.token.empty())
    authorization_ = "Bearer " + options.token;
  else if (!options.user.empty())
    authorization_ = "Basic " + auth::base64_encode(options.user + ":" + options.password);
}

Result<std::optional<std::string>> HttpClient::get(std::string_view key) const {
  auto r =
      http::http_request(addr_, "GET", key_path(key), "", timeout_ms_, {authorization_, ca_file_});
  if (!r) return r.status();
  if (r->status == 404) return std::optional<std::string>();
  if (r->status != 200) return server_error(*r);
  return std::optional<std::string>(std::move(r->body));
}

Status HttpClient::put(std::string_view key, std::string_view value, uint64_t ttl_ms) const {
  std::string path = key_path(key);
  if (ttl_ms != 0) path += "?ttl_ms=" + std::to_string(ttl_ms);
  auto r = http::http_request(addr_, "PUT", path, value, timeout_ms_, {authorization_, ca_file_});
  if (!r) return r.status();
  return r->status == 200 ? Status::ok() : server_error(*r);
}

Status HttpClient::del(std::string_view key) const {
  auto r = http::http_request(addr_, "DELETE", key_path(key), "", timeout_ms_,
                              {authorization_, ca_file_});
  if (!r) return r.status();
  return r->status == 200 ? Status::ok() : server_error(*r);
}

Result<ScanPage> HttpClient::scan(std::string_view prefix, std::string_view start,
                                  size_t limit) const {
  std::string target =
      "/v1/kv?limit=" + std::to_string(limit) + "&prefix=" + http::percent_encode(prefix);
  if (!start.empty()) target += "&start=" + http::percent_encode(start);
  auto r = http::http_request(addr_, "GET", target, "", timeout_ms_, {authorization_, ca_file_});
  if (!r) return r.status();
  if (r->status != 200) return server_error(*r);
  return parse_page(r->body);
}

Result<std::string> HttpClient::status_json() const {
  auto r =
      http::http_request(addr_, "GET", "/v1/status", "", timeout_ms_, {authorization_, ca_file_});
  if (!r) return r.status();
  if (r->status != 200) return server_error(*r);
  return std::move(r->body);
}

}  // namespace wavekv
