// Redis-style glob patterns for KEYS, SCAN MATCH and CONFIG GET: `*` any run of
// bytes, `?` one byte, `[abc]`, `[a-z]`, `[^a-z]` a byte in (or not in) a set,
// `\x` the byte x itself. Byte-wise, case-sensitive; an unterminated `[`
// extends to the end of the pattern, as in Redis.
#pragma once

#include <string>
#include <string_view>

namespace wavekv::resp {

bool glob_match(std::string_view pattern, std::string_view s);

// The bytes every match starts with: the pattern up to its first `*`, `?` or
// `[`, escapes resolved. Lets a scan visit only the keys under this prefix.
std::string glob_literal_prefix(std::string_view pattern);

}  // namespace wavekv::resp
