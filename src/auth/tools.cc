// The password, token and users-file calls of include/wavekv/security.h:
// thin forwards to password.h and users.h.
#include "auth/password.h"
#include "auth/users.h"
#include "wavekv/security.h"

namespace wavekv {

Result<std::string> hash_password(std::string_view password, const PasswordHashOptions& o) {
  return auth::hash_password(password, auth::ScryptParams{o.scrypt_n, o.scrypt_r, o.scrypt_p});
}

Result<NewToken> generate_token() {
  auto token = auth::generate_token();
  if (!token) return token.status();
  std::string stored = auth::hash_token(*token);
  return NewToken{std::move(*token), std::move(stored)};
}

Result<std::vector<UserSummary>> check_users_file(const std::string& path) {
  auto users = auth::load_users(path);
  if (!users) return users.status();
  std::vector<UserSummary> out;
  for (auth::Identity& id : users->identities())
    out.push_back({std::move(id.name), auth::role_name(id.role), std::move(id.prefixes)});
  return out;
}

}  // namespace wavekv
