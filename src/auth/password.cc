#include "auth/password.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <atomic>
#include <charconv>
#include <vector>

namespace wavekv::auth {
namespace {

constexpr std::string_view kScryptTag = "scrypt";
constexpr std::string_view kVersion = "v1";
constexpr std::string_view kTokenTag = "sha256$";
constexpr size_t kMaxSaltBytes = 64;

std::atomic<uint64_t> scrypt_runs{0};

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

// A decimal number that is the whole field (no sign, no spaces, no overflow).
bool parse_number(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

int lower_hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// scrypt of `password` with `salt`; empty on failure (OpenSSL refused).
std::string derive(std::string_view password, std::string_view salt, const ScryptParams& params) {
  // OpenSSL refuses to use more than `maxmem`; give it exactly what these
  // params need (validate() has bounded them): V is 128*r*(N+2), B is 128*r*p.
  const uint64_t maxmem =
      128 * uint64_t{params.r} * (params.n + 2) + 128 * uint64_t{params.r} * params.p;
  std::string key(kDerivedKeyBytes, '\0');
  scrypt_runs.fetch_add(1, std::memory_order_relaxed);
  int ok = EVP_PBE_scrypt(password.empty() ? "" : password.data(), password.size(),
                          reinterpret_cast<const unsigned char*>(salt.data()), salt.size(),
                          params.n, params.r, params.p, maxmem,
                          reinterpret_cast<unsigned char*>(key.data()), key.size());
  if (ok != 1) return {};
  return key;
}

}  // namespace

uint64_t scrypt_runs_total() { return scrypt_runs.load(std::memory_order_relaxed); }

Status ScryptParams::validate() const {
  if (n < 2 || n > (uint64_t{1} << 20) || (n & (n - 1)) != 0)
    return Status::invalid("scrypt N must be a power of two from 2 to 2^20, not " +
                           std::to_string(n));
  if (r < 1 || r > 32) return Status::invalid("scrypt r must be 1 to 32, not " + std::to_string(r));
  if (p < 1 || p > 16) return Status::invalid("scrypt p must be 1 to 16, not " + std::to_string(p));
  if (128 * n * r > kMaxScryptMemoryBytes)
    return Status::invalid("scrypt N and r need " + std::to_string(128 * n * r >> 20) +
                           " MiB, more than the " + std::to_string(kMaxScryptMemoryBytes >> 20) +
                           " MiB allowed");
  return Status::ok();
}

Result<std::string> hash_password(std::string_view password, const ScryptParams& params) {
  WAVEKV_RETURN_IF_ERROR(params.validate());
  PasswordHash h;
  h.params = params;
  h.salt.assign(kSaltBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(h.salt.data()), kSaltBytes) != 1)
    return Status::failed("RAND_bytes failed: no salt");
  h.key = derive(password, h.salt, params);
  if (h.key.empty()) return Status::failed("scrypt failed in OpenSSL");
  return encode_password_hash(h);
}

std::string encode_password_hash(const PasswordHash& h) {
  std::string out(kScryptTag);
  out += "$";
  out += kVersion;
  out += "$" + std::to_string(h.params.n) + "$" + std::to_string(h.params.r) + "$" +
         std::to_string(h.params.p) + "$" + base64_encode(h.salt) + "$" + base64_encode(h.key);
  return out;
}

Result<PasswordHash> parse_password_hash(std::string_view encoded) {
  auto bad = [](const std::string& what) {
    return Status::invalid(
        "bad password hash (want scrypt$v1$N$r$p$SALT$HASH, from `wavekv user "
        "hash`): " +
        what);
  };
  auto f = split(encoded, '$');
  if (f.size() != 7) return bad(std::to_string(f.size()) + " '$'-separated fields, not 7");
  // The fields are not echoed: a mistyped entry may hold a plaintext password.
  if (f[0] != kScryptTag) return bad("unknown scheme");
  if (f[1] != kVersion) return bad("unknown version");
  uint64_t n, r, p;
  if (!parse_number(f[2], n) || !parse_number(f[3], r) || !parse_number(f[4], p))
    return bad("N, r and p must be decimal numbers");
  if (r > UINT32_MAX || p > UINT32_MAX) return bad("r or p out of range");
  PasswordHash h;
  h.params = {n, static_cast<uint32_t>(r), static_cast<uint32_t>(p)};
  if (Status st = h.params.validate(); !st.is_ok()) return bad(st.message());
  auto salt = base64_decode(f[5]);
  if (!salt) return bad("salt: " + salt.status().message());
  if (salt->size() < kSaltBytes || salt->size() > kMaxSaltBytes)
    return bad("salt of " + std::to_string(salt->size()) + " bytes (16 to 64 expected)");
  auto key = base64_decode(f[6]);
  if (!key) return bad("hash: " + key.status().message());
  if (key->size() != kDerivedKeyBytes)
    return bad("hash of " + std::to_string(key->size()) + " bytes (32 expected)");
  h.salt = std::move(*salt);
  h.key = std::move(*key);
  return h;
}

bool verify_password(std::string_view password, const PasswordHash& hash) {
  std::string key = derive(password, hash.salt, hash.params);
  return !key.empty() && secrets_equal(key, hash.key);
}

Result<bool> verify_password(std::string_view password, std::string_view encoded) {
  auto hash = parse_password_hash(encoded);
  if (!hash) return hash.status();
  return verify_password(password, *hash);
}

Result<std::string> generate_token() {
  std::string bytes(kTokenBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), kTokenBytes) != 1)
    return Status::failed("RAND_bytes failed: no token");
  return hex(bytes);
}

std::string token_digest(std::string_view token) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // EVP_Digest with SHA-256 cannot fail short of memory exhaustion; an empty
  // digest would then match no stored one.
  if (EVP_Digest(token.data(), token.size(), md, &len, EVP_sha256(), nullptr) != 1) return {};
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::string hash_token(std::string_view token) {
  return std::string(kTokenTag) + hex(token_digest(token));
}

Result<std::string> parse_token_hash(std::string_view encoded) {
  auto bad = Status::invalid(
      "bad token hash (want sha256$ and 64 lowercase hex digits, from `wavekv user token`)");
  if (encoded.substr(0, kTokenTag.size()) != kTokenTag) return bad;
  std::string_view digits = encoded.substr(kTokenTag.size());
  if (digits.size() != 64) return bad;
  std::string out;
  for (size_t i = 0; i < digits.size(); i += 2) {
    int hi = lower_hex_value(digits[i]), lo = lower_hex_value(digits[i + 1]);
    if (hi < 0 || lo < 0) return bad;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

bool secrets_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  auto bad = Status::invalid("not canonical base64");
  if (text.size() % 4 != 0 || text.size() > 4096) return bad;
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return bad;
  // EVP_DecodeBlock counts the padding as zero bytes, and skips surrounding
  // blanks: drop the padding, then insist the text is exactly what encoding
  // the result gives, so one hash has one spelling.
  size_t pad = 0;
  while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
  if (static_cast<size_t>(n) < pad) return bad;
  out.resize(static_cast<size_t>(n) - pad);
  if (base64_encode(out) != text) return bad;
  return out;
}

}  // namespace wavekv::auth
