// Password and bearer-token hashing for client authentication (issue 12).
//
// A password is stored as a self-describing string, so parameters can be
// raised later without breaking existing entries:
//
//   scrypt$v1$<N>$<r>$<p>$<salt, base64>$<hash, base64>
//
// scrypt (RFC 7914) through OpenSSL 3, a 16-byte random salt and a 32-byte
// derived key. A bearer token is 32 random bytes shown once (64 hex digits);
// only its SHA-256 is stored, `sha256$<64 hex digits>`: a high-entropy secret
// needs no slow KDF. Every comparison of secrets runs in constant time
// (CRYPTO_memcmp). docs/SECURITY.md describes the users file that holds them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "wavekv/status.h"

namespace wavekv::auth {

struct ScryptParams {
  uint64_t n = uint64_t{1} << 15;  // CPU/memory cost: a power of two
  uint32_t r = 8;                  // block size
  uint32_t p = 1;                  // parallelism
  // Refuses what scrypt cannot compute or what would let a crafted entry cost
  // too much: n a power of two in [2, 2^20], r in [1, 32], p in [1, 16], and
  // at most kMaxScryptMemoryBytes of working memory (128 * n * r).
  Status validate() const;
};
inline constexpr uint64_t kMaxScryptMemoryBytes = uint64_t{256} << 20;
inline constexpr size_t kSaltBytes = 16;
inline constexpr size_t kDerivedKeyBytes = 32;
inline constexpr size_t kTokenBytes = 32;

// A parsed `scrypt$v1$...` string.
struct PasswordHash {
  ScryptParams params;
  std::string salt;  // raw bytes, kSaltBytes to 64
  std::string key;   // raw bytes, kDerivedKeyBytes
};

// A new random salt, then scrypt. Fails only on bad params or if OpenSSL does.
Result<std::string> hash_password(std::string_view password, const ScryptParams& params = {});
// Any malformed encoding (wrong field count, version, params out of bounds,
// bad base64, wrong lengths) is kInvalidArgument naming what is wrong.
Result<PasswordHash> parse_password_hash(std::string_view encoded);
std::string encode_password_hash(const PasswordHash& hash);
// True iff `password` derives the same key; constant time in the key compare.
bool verify_password(std::string_view password, const PasswordHash& hash);
// parse + verify: an error for a malformed encoding, else whether it matched.
Result<bool> verify_password(std::string_view password, std::string_view encoded);
// How many times this process ran scrypt (hashes and verifies): the cost a
// log-in pays, counted, so tests check it without timing anything.
uint64_t scrypt_runs_total();

// 64 lowercase hex digits from 32 random bytes (RAND_bytes).
Result<std::string> generate_token();
// "sha256$" + hex(SHA-256(token)): what the users file stores.
std::string hash_token(std::string_view token);
// The 32-byte digest from a `sha256$<hex>` string; kInvalidArgument otherwise.
Result<std::string> parse_token_hash(std::string_view encoded);
// SHA-256 of `token`, raw, to compare against parse_token_hash's output.
std::string token_digest(std::string_view token);

// Constant-time equality of two byte strings (the lengths are not secret).
bool secrets_equal(std::string_view a, std::string_view b);

// Strict base64 (RFC 4648, padded): nullopt-like error for anything a
// re-encoding would not reproduce byte for byte.
std::string base64_encode(std::string_view bytes);
Result<std::string> base64_decode(std::string_view text);

}  // namespace wavekv::auth
