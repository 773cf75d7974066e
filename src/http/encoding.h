// The text encodings HTTP/JSON needs around binary keys and values: percent
// encoding in targets, base64 in JSON, and the UTF-8 check that picks between
// "value" and "value_base64".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wavekv::http {

// Decodes %XX escapes. With `plus_is_space` (query strings, form encoding) '+'
// becomes ' '. A '%' not followed by two hex digits is an error.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);
// Escapes every byte except the unreserved ones (A-Z a-z 0-9 - . _ ~), so any
// bytes round-trip through a path segment or a query value.
std::string percent_encode(std::string_view bytes);

std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

// Strict UTF-8: no overlong forms, surrogates or code points past U+10FFFF
// (what nlohmann::json accepts when it serializes).
bool is_valid_utf8(std::string_view s);

// "/v1/kv/a?b=c" -> path "/v1/kv/a", query "b=c" (both still encoded).
struct Target {
  std::string_view path;
  std::string_view query;
};
Target split_target(std::string_view target);

// Decoded name=value pairs in order; nullopt if an escape is malformed.
using QueryParams = std::vector<std::pair<std::string, std::string>>;
std::optional<QueryParams> parse_query(std::string_view query);
// The first value of `name`, if present.
std::optional<std::string> query_param(const QueryParams& params, std::string_view name);

}  // namespace wavekv::http
