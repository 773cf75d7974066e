#include "auth/users.h"

#include <openssl/rand.h>

#include <fstream>
#include <iterator>
#include <map>

// Errors are values here too: toml::parse returns a parse_result instead of
// throwing. toml++ is header-only; apps/wavekv/config_file.cc sets it up the same way.
#define TOML_EXCEPTIONS 0
#include <toml++/toml.h>

namespace wavekv::auth {
namespace {

constexpr size_t kMaxUsersFileBytes = 16 << 20;
constexpr size_t kMaxNameBytes = 64;

// "path:line:column: what"
struct Where {
  std::string_view file;
  Status at(const toml::source_region& r, const std::string& what) const {
    return Status::invalid(std::string(file) + ":" + std::to_string(r.begin.line) + ":" +
                           std::to_string(r.begin.column) + ": " + what);
  }
};

bool valid_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.' || c == '@';
}

Status check_name(const Where& w, const toml::node& n, std::string& out) {
  const auto* s = n.as_string();
  if (s == nullptr) return w.at(n.source(), "name must be a string");
  out = s->get();
  bool ok = !out.empty() && out.size() <= kMaxNameBytes;
  for (char c : out) ok = ok && valid_name_char(c);
  if (!ok) return w.at(n.source(), "bad user name '" + out + "' (1 to 64 of A-Z a-z 0-9 _ - . @)");
  return Status::ok();
}

Status parse_role(const Where& w, const toml::node& n, Role& out) {
  const auto* s = n.as_string();
  for (Role r : {Role::kRead, Role::kReadWrite, Role::kAdmin}) {
    if (s != nullptr && s->get() == role_name(r)) {
      out = r;
      return Status::ok();
    }
  }
  return w.at(n.source(), "unknown role '" + (s != nullptr ? s->get() : std::string()) +
                              "' (read, readwrite or admin)");
}

// An array of strings, each checked by `each` (which may refuse it).
template <typename F>
Status for_each_string(const Where& w, const toml::node& n, std::string_view key, F each) {
  const auto* arr = n.as_array();
  if (arr == nullptr) return w.at(n.source(), std::string(key) + " must be an array of strings");
  for (const toml::node& el : *arr) {
    const auto* s = el.as_string();
    if (s == nullptr) return w.at(el.source(), std::string(key) + " must hold only strings");
    WAVEKV_RETURN_IF_ERROR(each(el, s->get()));
  }
  return Status::ok();
}

// What one [[user]] table holds, before the checks across users.
struct Parsed {
  Identity identity;
  std::optional<PasswordHash> password;
  std::vector<std::string> token_digests;
  std::vector<const toml::node*> token_nodes;  // for the duplicate-token error
};

Status parse_user_key(const Where& w, const toml::key& k, const toml::node& v, Parsed& u,
                      bool& has_role) {
  if (k.str() == "name") return check_name(w, v, u.identity.name);
  if (k.str() == "role") {
    has_role = true;
    return parse_role(w, v, u.identity.role);
  }
  if (k.str() == "password") {
    const auto* s = v.as_string();
    auto h = s != nullptr ? parse_password_hash(s->get())
                          : Result<PasswordHash>(Status::invalid("password must be a string"));
    if (!h) return w.at(v.source(), h.status().message());
    u.password = std::move(*h);
    return Status::ok();
  }
  if (k.str() == "prefixes") {
    u.identity.prefixes.emplace();
    return for_each_string(w, v, "prefixes", [&](const toml::node&, const std::string& p) {
      u.identity.prefixes->push_back(p);
      return Status::ok();
    });
  }
  if (k.str() == "tokens") {
    return for_each_string(w, v, "tokens", [&](const toml::node& el, const std::string& t) {
      auto d = parse_token_hash(t);
      if (!d) return w.at(el.source(), d.status().message());
      u.token_digests.push_back(std::move(*d));
      u.token_nodes.push_back(&el);
      return Status::ok();
    });
  }
  return w.at(k.source(), "unknown key '" + std::string(k.str()) +
                              "' in [[user]] (name, password, role, prefixes, tokens)");
}

Result<Parsed> parse_user(const Where& w, const toml::node& n) {
  const auto* t = n.as_table();
  if (t == nullptr) return w.at(n.source(), "each user must be a [[user]] table");
  Parsed u;
  bool has_role = false;
  for (auto&& [k, v] : *t) WAVEKV_RETURN_IF_ERROR(parse_user_key(w, k, v, u, has_role));
  if (u.identity.name.empty()) return w.at(t->source(), "[[user]] without a name");
  const std::string who = "user '" + u.identity.name + "'";
  if (!has_role) return w.at(t->source(), who + " has no role (read, readwrite or admin)");
  if (!u.password && u.token_digests.empty())
    return w.at(t->source(), who + " has neither a password nor a token: nobody could log in");
  return u;
}

Status check_version(const Where& w, const toml::table& root) {
  const toml::node* v = root.get("version");
  if (v == nullptr) return w.at(root.source(), "no 'version = 1' (the users file format version)");
  const auto* i = v->as_integer();
  if (i == nullptr || i->get() != 1)
    return w.at(v->source(), "version must be 1 (the only users file format this wavekv reads)");
  return Status::ok();
}

}  // namespace

const char* role_name(Role role) {
  switch (role) {
    case Role::kRead: return "read";
    case Role::kReadWrite: return "readwrite";
    case Role::kAdmin: return "admin";
  }
  return "unknown";
}

const char* action_name(Action action) {
  switch (action) {
    case Action::kRead: return "read";
    case Action::kWrite: return "write";
    case Action::kAdmin: return "admin";
  }
  return "unknown";
}

bool Identity::allows(Action action) const {
  // Role and Action are ordered alike: read < readwrite/write < admin.
  return static_cast<int>(role) >= static_cast<int>(action);
}

bool Identity::allows(Action action, std::string_view key) const {
  return allows_range(action, key);  // a key is allowed iff its own range is
}

bool Identity::allows_range(Action action, std::string_view prefix) const {
  if (!allows(action)) return false;
  if (!prefixes) return true;
  for (const auto& p : *prefixes)
    if (prefix.starts_with(p)) return true;
  return false;
}

bool Identity::allows_some(Action action, std::string_view prefix) const {
  if (!allows(action)) return false;
  if (!prefixes) return true;
  for (const auto& p : *prefixes)
    if (prefix.starts_with(p) || std::string_view(p).starts_with(prefix)) return true;
  return false;
}

Result<Users> parse_users(std::string_view text, std::string_view source_name) {
  const Where w{source_name};
  toml::parse_result parsed = toml::parse(text, source_name);
  if (!parsed)
    return w.at(parsed.error().source(), "bad TOML: " + std::string(parsed.error().description()));
  const toml::table& root = parsed.table();
  WAVEKV_RETURN_IF_ERROR(check_version(w, root));
  for (auto&& [k, v] : root)
    if (k.str() != "version" && k.str() != "user")
      return w.at(k.source(), "unknown key '" + std::string(k.str()) + "' (version, [[user]])");
  const toml::node* list = root.get("user");
  const toml::array* arr = list != nullptr ? list->as_array() : nullptr;
  if (list != nullptr && (arr == nullptr || !arr->is_array_of_tables()))
    return w.at(list->source(), "users must be [[user]] tables");
  if (arr == nullptr || arr->empty())
    return w.at(root.source(), "no [[user]] entries: nobody could log in");

  Users users;
  std::map<std::string, uint32_t, std::less<>> name_lines, token_lines;
  for (const toml::node& n : *arr) {
    auto u = parse_user(w, n);
    if (!u) return u.status();
    const uint32_t line = n.source().begin.line;
    if (auto [it, fresh] = name_lines.emplace(u->identity.name, line); !fresh)
      return w.at(n.source(), "duplicate user '" + u->identity.name + "' (first at line " +
                                  std::to_string(it->second) + ")");
    for (size_t i = 0; i < u->token_digests.size(); ++i) {
      const toml::node& t = *u->token_nodes[i];
      if (auto [it, fresh] = token_lines.emplace(u->token_digests[i], t.source().begin.line);
          !fresh)
        return w.at(t.source(),
                    "duplicate token (first at line " + std::to_string(it->second) + ")");
    }
    users.users_.push_back(
        {std::move(u->identity), std::move(u->password), std::move(u->token_digests)});
  }

  // The dummy costs what a real verify costs: the first password's params.
  users.dummy_.params = ScryptParams{};
  for (const auto& u : users.users_)
    if (u.password) {
      users.dummy_.params = u.password->params;
      break;
    }
  users.dummy_.salt.assign(kSaltBytes, '\0');
  users.dummy_.key.assign(kDerivedKeyBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(users.dummy_.salt.data()), kSaltBytes) != 1 ||
      RAND_bytes(reinterpret_cast<unsigned char*>(users.dummy_.key.data()), kDerivedKeyBytes) != 1)
    return Status::failed("RAND_bytes failed");
  return users;
}

Result<Users> load_users(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::io_error(path + ": cannot read the users file");
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxUsersFileBytes)
      return Status::invalid(path + ": larger than 16 MiB, not a users file");
  }
  if (in.bad()) return Status::io_error(path + ": read failed");
  return parse_users(text, path);
}

const Users::User* Users::find_user(std::string_view name) const {
  for (const auto& u : users_)
    if (u.identity.name == name) return &u;
  return nullptr;
}

std::vector<Identity> Users::identities() const {
  std::vector<Identity> out;
  for (const auto& u : users_) out.push_back(u.identity);
  return out;
}

const Identity* Users::find(std::string_view name) const {
  const User* u = find_user(name);
  return u != nullptr ? &u->identity : nullptr;
}

Result<Identity> Users::authenticate(std::string_view user, std::string_view password) const {
  const User* u = find_user(user);
  const bool has_password = u != nullptr && u->password.has_value();
  // Always run one scrypt, so an unknown name costs what a wrong password does.
  const bool match = verify_password(password, has_password ? *u->password : dummy_);
  if (!has_password || !match) return Status::invalid(std::string(kWrongPassMessage));
  return u->identity;
}

Result<Identity> Users::authenticate_token(std::string_view token) const {
  const std::string digest = token_digest(token);
  const User* found = nullptr;
  // No early exit: the time taken does not depend on where (or whether) it matched.
  for (const auto& u : users_)
    for (const auto& d : u.token_digests)
      if (secrets_equal(digest, d)) found = &u;
  if (found == nullptr || digest.empty()) return Status::invalid(std::string(kWrongPassMessage));
  return found->identity;
}

}  // namespace wavekv::auth
