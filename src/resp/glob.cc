#include "resp/glob.h"

#include <cstddef>
#include <optional>

namespace wavekv::resp {

namespace {

// Matches one non-`*` token of `pattern` at `p` against byte `c`. Returns the
// position after the token, or nullopt if `c` does not match it.
std::optional<size_t> match_token(std::string_view pattern, size_t p, unsigned char c) {
  const size_t n = pattern.size();
  char t = pattern[p];
  if (t == '?') return p + 1;
  if (t == '\\' && p + 1 < n) {
    if (static_cast<unsigned char>(pattern[p + 1]) != c) return std::nullopt;
    return p + 2;
  }
  if (t != '[') {
    if (static_cast<unsigned char>(t) != c) return std::nullopt;
    return p + 1;
  }
  // A set: [abc], [a-z], [^...]; `\` escapes the next byte.
  ++p;
  bool negate = p < n && pattern[p] == '^';
  if (negate) ++p;
  bool found = false;
  while (p < n && pattern[p] != ']') {
    unsigned char lo;
    if (pattern[p] == '\\' && p + 1 < n) {
      lo = static_cast<unsigned char>(pattern[p + 1]);
      p += 2;
    } else {
      lo = static_cast<unsigned char>(pattern[p]);
      p += 1;
    }
    unsigned char hi = lo;
    if (p + 1 < n && pattern[p] == '-' && pattern[p + 1] != ']') {
      size_t q = p + 1;
      if (pattern[q] == '\\' && q + 1 < n) ++q;
      hi = static_cast<unsigned char>(pattern[q]);
      p = q + 1;
      if (lo > hi) std::swap(lo, hi);  // [z-a] means [a-z], as in Redis
    }
    if (c >= lo && c <= hi) found = true;
  }
  if (p < n) ++p;  // the closing ']'
  if (found == negate) return std::nullopt;
  return p;
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view s) {
  // Greedy matching with one backtracking point: every token but `*` eats
  // exactly one byte, so on a mismatch it suffices to let the most recent
  // `*` eat one more byte. O(|pattern| * |s|) at worst, never exponential.
  size_t p = 0, i = 0;
  std::optional<size_t> star_p;  // the pattern position after the last `*`
  size_t star_i = 0;             // where that `*`'s match currently ends
  while (i < s.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      while (p < pattern.size() && pattern[p] == '*') ++p;
      star_p = p;
      star_i = i;
      continue;
    }
    if (p < pattern.size()) {
      if (auto next = match_token(pattern, p, static_cast<unsigned char>(s[i]))) {
        p = *next;
        ++i;
        continue;
      }
    }
    if (!star_p) return false;
    p = *star_p;
    i = ++star_i;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::string glob_literal_prefix(std::string_view pattern) {
  std::string out;
  for (size_t p = 0; p < pattern.size(); ++p) {
    char c = pattern[p];
    if (c == '*' || c == '?' || c == '[') break;
    if (c == '\\' && p + 1 < pattern.size()) c = pattern[++p];
    out.push_back(c);
  }
  return out;
}

}  // namespace wavekv::resp
