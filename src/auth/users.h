// Who may connect, and what each may do: the users file (`--users-file`,
// docs/SECURITY.md) loaded into memory, credentials checked against it.
//
// The RESP and HTTP front ends call authenticate() / authenticate_token()
// once per connection or request and keep the Identity; every command then
// asks Identity::allows*. Nothing here does I/O after load_users.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/password.h"
#include "wavekv/status.h"

namespace wavekv::auth {

// Ordered: each role may do everything the one before it may.
enum class Role { kRead, kReadWrite, kAdmin };
// What a command needs. kAdmin: FLUSHDB, CONFIG SET, member removal and the
// like; a command that touches every key (FLUSHDB) must also pass
// allows_range(kAdmin, "") so a prefix-limited admin cannot wipe others' keys.
enum class Action { kRead, kWrite, kAdmin };

const char* role_name(Role role);  // "read", "readwrite", "admin"
const char* action_name(Action action);

// The text a failed AUTH gets, the same whatever was wrong (unknown user,
// wrong password, user without a password, unknown token), as Redis words it.
inline constexpr std::string_view kWrongPassMessage =
    "WRONGPASS invalid username-password pair or user is disabled.";
// The user `AUTH <password>` (one argument) logs in as, as in Redis.
inline constexpr std::string_view kDefaultUser = "default";

struct Identity {
  std::string name;
  Role role = Role::kRead;
  // nullopt: every key. Otherwise a key is allowed iff it starts with one of
  // these; an empty list allows no key at all (key-less commands only).
  std::optional<std::vector<std::string>> prefixes;

  // The role alone (commands that name no key).
  bool allows(Action action) const;
  // The role, and `key` under an allowed prefix.
  bool allows(Action action, std::string_view key) const;
  // Every key that starts with `prefix` is allowed (a SCAN/KEYS over that
  // range needs no per-key filtering): true iff an allowed prefix is itself
  // a prefix of `prefix`. allows_range(a, "") means "all keys".
  bool allows_range(Action action, std::string_view prefix) const;
  // Some key that starts with `prefix` may be allowed (a listing of that
  // range must then filter each key with allows(); false: it is empty).
  bool allows_some(Action action, std::string_view prefix) const;
};

// Immutable once loaded: const calls are safe from any number of threads, and
// a reload (SIGHUP) builds a new Users to swap in.
class Users {
 public:
  // kInvalidArgument with kWrongPassMessage on any failure. An unknown user,
  // or one with no password, costs one scrypt against a dummy hash, as long
  // as a wrong password does, so timing does not tell which names exist.
  Result<Identity> authenticate(std::string_view user, std::string_view password) const;
  // The identity whose `tokens` hold SHA-256(token); every stored digest is
  // compared, in constant time, whatever matches.
  Result<Identity> authenticate_token(std::string_view token) const;

  size_t size() const { return users_.size(); }
  // Every user's identity, in file order (no secret inside).
  std::vector<Identity> identities() const;
  // nullptr if no such user (for status pages and tests; no secret inside).
  const Identity* find(std::string_view name) const;

 private:
  struct User {
    Identity identity;
    std::optional<PasswordHash> password;
    std::vector<std::string> token_digests;  // raw 32-byte SHA-256 each
  };
  const User* find_user(std::string_view name) const;

  std::vector<User> users_;
  PasswordHash dummy_;  // the cost of the first user's hash, a random key
  friend Result<Users> parse_users(std::string_view text, std::string_view source_name);
};

// Parses a users file's text; `source_name` (the path) starts every error,
// with the line and column: "users.toml:7:1: unknown key 'pasword' in [[user]]".
// Refused: a TOML syntax error, a missing or other version than 1, unknown
// keys, a missing or unknown role, a bad user name, a duplicate user name or
// token, a malformed password or token hash, a user with neither a password
// nor a token, and a file with no user.
Result<Users> parse_users(std::string_view text, std::string_view source_name);
// Reads `path` (at most 16 MiB) and parses it.
Result<Users> load_users(const std::string& path);

}  // namespace wavekv::auth
