// Client authentication building blocks (issue 12): password and token
// hashes (src/auth/password.h), the users file and identities
// (src/auth/users.h), and `wavekv user hash|token`.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "auth/password.h"
#include "auth/users.h"
#include "support/test_util.h"

namespace wavekv::auth {
namespace {

// Cheap parameters: the tests exercise the encoding, not the cost.
const ScryptParams kFast{16, 1, 1};

std::string fast_hash(const std::string& password) {
  auto h = hash_password(password, kFast);
  EXPECT_TRUE(h) << h.status().to_string();
  return h ? *h : std::string();
}

TEST(AuthPassword, HashThenVerifyRoundTrips) {
  std::string h = fast_hash("correct horse");
  EXPECT_EQ(h.rfind("scrypt$v1$16$1$1$", 0), 0u) << h;
  auto ok = verify_password("correct horse", h);
  ASSERT_TRUE(ok) << ok.status().to_string();
  EXPECT_TRUE(*ok);
  auto parsed = parse_password_hash(h);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(encode_password_hash(*parsed), h);
}

TEST(AuthPassword, WrongPasswordIsRefused) {
  std::string h = fast_hash("correct horse");
  for (std::string wrong : {"correct hors", "correct horse ", "Correct horse", "", "x"}) {
    auto ok = verify_password(wrong, h);
    ASSERT_TRUE(ok) << ok.status().to_string();
    EXPECT_FALSE(*ok) << "'" << wrong << "' verified";
  }
}

TEST(AuthPassword, SamePasswordGetsADifferentSaltEachTime) {
  std::string a = fast_hash("pw"), b = fast_hash("pw");
  EXPECT_NE(a, b);
  EXPECT_NE(parse_password_hash(a)->salt, parse_password_hash(b)->salt);
  EXPECT_TRUE(*verify_password("pw", a));
  EXPECT_TRUE(*verify_password("pw", b));
}

TEST(AuthPassword, DefaultParamsAreTheDocumentedOnesAndWork) {
  ScryptParams d;
  EXPECT_EQ(d.n, 32768u);
  EXPECT_EQ(d.r, 8u);
  EXPECT_EQ(d.p, 1u);
  auto h = hash_password("pw");
  ASSERT_TRUE(h) << h.status().to_string();
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(*verify_password("pw", *h));
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
  std::cout << "one verify with N=2^15, r=8, p=1: " << ms.count() << " ms\n";
  RecordProperty("default_verify_ms", static_cast<int>(ms.count()));
}

// Changing any one character of the salt, the hash or a parameter must never
// still verify: it is refused as malformed or it does not match.
TEST(AuthPassword, TamperedHashNeverVerifies) {
  std::string h = fast_hash("pw");
  size_t salt_start = h.find('$', std::string("scrypt$v1$16$1$").size()) + 1;
  for (size_t i = salt_start; i < h.size(); ++i) {
    if (h[i] == '$' || h[i] == '=') continue;
    std::string t = h;
    t[i] = t[i] == 'A' ? 'B' : 'A';
    auto ok = verify_password("pw", t);
    EXPECT_TRUE(!ok || !*ok) << "tampered at " << i << ": " << t;
  }
  std::string n32 = h;
  n32.replace(std::string("scrypt$v1$").size(), 2, "32");
  ASSERT_TRUE(verify_password("pw", n32)) << n32;
  EXPECT_FALSE(*verify_password("pw", n32)) << "another N must give another key";
}

TEST(AuthPassword, EveryTruncationIsAnErrorNotACrash) {
  std::string h = fast_hash("pw");
  for (size_t len = 0; len < h.size(); ++len) {
    auto ok = verify_password("pw", h.substr(0, len));
    EXPECT_FALSE(ok) << "accepted truncation to " << len << ": " << h.substr(0, len);
    if (!ok) {
      EXPECT_EQ(ok.status().code(), Code::kInvalidArgument);
    }
  }
  EXPECT_FALSE(verify_password("pw", h + "$")) << "an eighth field";
  EXPECT_FALSE(verify_password("pw", h + "A")) << "a hash of 4n+1 base64 digits";
}

TEST(AuthPassword, MalformedEncodingsAreNamedErrors) {
  const std::string salt = base64_encode(std::string(16, 's'));
  const std::string key = base64_encode(std::string(32, 'k'));
  auto enc = [&](const std::string& n, const std::string& r, const std::string& p) {
    return "scrypt$v1$" + n + "$" + r + "$" + p + "$" + salt + "$" + key;
  };
  ASSERT_TRUE(parse_password_hash(enc("16", "1", "1"))) << "the control must parse";
  struct Row {
    std::string encoded, why;
  };
  const std::vector<Row> rows = {
      {"bcrypt$v1$16$1$1$" + salt + "$" + key, "unknown scheme"},
      {"scrypt$v2$16$1$1$" + salt + "$" + key, "unknown version"},
      {enc("15", "1", "1"), "power of two"},
      {enc("0", "1", "1"), "power of two"},
      {enc("2097152", "1", "1"), "power of two"},  // 2^21
      {enc("99999999999999999999999", "1", "1"), "decimal"},
      {enc("-16", "1", "1"), "decimal"},
      {enc(" 16", "1", "1"), "decimal"},
      {enc("16", "0", "1"), "r must be"},
      {enc("16", "1", "17"), "p must be"},
      {enc("1048576", "32", "1"), "MiB"},  // 4 GiB of scrypt memory: refused unrun
      {"scrypt$v1$16$1$1$" + base64_encode("short") + "$" + key, "salt of 5 bytes"},
      {"scrypt$v1$16$1$1$" + salt + "$" + base64_encode(std::string(31, 'k')), "31 bytes"},
      {"scrypt$v1$16$1$1$" + salt + "$" + key.substr(0, 42) + "!=", "base64"},
      {"scrypt$v1$16$1$1$ " + salt.substr(1) + "$" + key, "base64"},
  };
  for (const auto& row : rows) {
    auto h = parse_password_hash(row.encoded);
    ASSERT_FALSE(h) << row.encoded;
    EXPECT_NE(h.status().message().find(row.why), std::string::npos)
        << row.encoded << " -> " << h.status().message();
  }
}

TEST(AuthPassword, Base64IsStrict) {
  for (size_t n = 0; n < 12; ++n) {
    std::string bytes(n, '\xfe');
    auto back = base64_decode(base64_encode(bytes));
    ASSERT_TRUE(back) << n;
    EXPECT_EQ(*back, bytes);
  }
  EXPECT_EQ(base64_encode("ab"), "YWI=");
  for (const char* bad : {"YWI", "YWI==", " YWI=", "YWI=\n", "YWJ=", "Y===", "YW=I", "YW I"})
    EXPECT_FALSE(base64_decode(bad)) << "'" << bad << "' decoded";
}

TEST(AuthToken, TokensAreRandomAndHashedAsDocumented) {
  auto a = generate_token(), b = generate_token();
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
  ASSERT_EQ(a->size(), 64u);
  EXPECT_TRUE(std::all_of(a->begin(), a->end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  })) << *a;
  // SHA-256("abc"), FIPS 180-2 appendix B.1.
  EXPECT_EQ(hash_token("abc"),
            "sha256$ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto d = parse_token_hash(hash_token(*a));
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, token_digest(*a));
  std::string good = hash_token("abc");
  for (std::string bad :
       {good.substr(0, good.size() - 1), good + "0", "sha512$" + good.substr(7),
        std::string("sha256$BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"),
        good.substr(7), std::string("sha256$")})
    EXPECT_FALSE(parse_token_hash(bad)) << bad;
}

TEST(AuthToken, SecretsEqualComparesEveryByte) {
  EXPECT_TRUE(secrets_equal("abc", "abc"));
  EXPECT_FALSE(secrets_equal("abc", "abd"));
  EXPECT_FALSE(secrets_equal("abc", "xbc"));
  EXPECT_FALSE(secrets_equal("abc", "ab"));
  EXPECT_TRUE(secrets_equal("", ""));
}

// ---- the users file ------------------------------------------------------

struct Fixture {
  std::string alice_pw = "alice-secret", bob_pw = "bob-secret";
  std::string token = *generate_token();
  std::string text() const {
    return "version = 1\n"
           "\n"
           "[[user]]\n"
           "name = \"alice\"\n"
           "password = \"" +
           fast_hash(alice_pw) +
           "\"\n"
           "role = \"admin\"\n"
           "\n"
           "[[user]]\n"
           "name = \"bob\"\n"
           "password = \"" +
           fast_hash(bob_pw) +
           "\"\n"
           "role = \"read\"\n"
           "prefixes = [\"app:\", \"cache:\"]\n"
           "\n"
           "[[user]]\n"
           "name = \"ci\"\n"
           "role = \"readwrite\"\n"
           "prefixes = []\n"
           "tokens = [\"" +
           hash_token(token) + "\"]\n";
  }
};

TEST(AuthUsersFile, GoodFileLoadsEveryField) {
  Fixture fx;
  auto users = parse_users(fx.text(), "users.toml");
  ASSERT_TRUE(users) << users.status().to_string();
  EXPECT_EQ(users->size(), 3u);
  const Identity* alice = users->find("alice");
  ASSERT_NE(alice, nullptr);
  EXPECT_EQ(alice->role, Role::kAdmin);
  EXPECT_FALSE(alice->prefixes.has_value()) << "absent prefixes: every key";
  const Identity* bob = users->find("bob");
  ASSERT_NE(bob, nullptr);
  EXPECT_EQ(bob->role, Role::kRead);
  EXPECT_EQ(*bob->prefixes, (std::vector<std::string>{"app:", "cache:"}));
  const Identity* ci = users->find("ci");
  ASSERT_NE(ci, nullptr);
  EXPECT_EQ(ci->role, Role::kReadWrite);
  ASSERT_TRUE(ci->prefixes.has_value()) << "prefixes = [] must not mean every key";
  EXPECT_TRUE(ci->prefixes->empty());
  EXPECT_EQ(users->find("carol"), nullptr);
}

TEST(AuthUsersFile, LoadsFromDiskAndNamesAMissingFile) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "wavekv-auth-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::string path = tmpl + "/users.toml";
  Fixture fx;
  std::ofstream(path) << fx.text();
  auto users = load_users(path);
  EXPECT_TRUE(users) << users.status().to_string();
  std::ofstream(path, std::ios::app) << "role = \"admin\"\n";  // a second role for ci, line 19
  auto dup = load_users(path);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.status().message().rfind(path + ":19:", 0), 0u) << dup.status().message();
  auto missing = load_users(tmpl + "/nope.toml");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.status().code(), Code::kIOError);
  EXPECT_NE(missing.status().message().find(tmpl + "/nope.toml"), std::string::npos);
  std::filesystem::remove_all(tmpl);
}

// One row per refusal: the file, the line the error must name, and a word of
// the message.
TEST(AuthUsersFile, EveryErrorNamesTheFileAndLine) {
  const std::string pw = "password = \"" + fast_hash("x") + "\"\n";
  const std::string tok = hash_token("t");
  const std::string user = "[[user]]\nname = \"a\"\n" + pw + "role = \"read\"\n";
  struct Row {
    std::string what, text;
    int line;
    std::string word;
  };
  const std::vector<Row> rows = {
      {"toml syntax", "version = 1\n[[user]]\nname = \"a\n", 3, "bad TOML"},
      {"no version", user, 1, "version = 1"},
      {"version 2", "version = 2\n" + user, 1, "version must be 1"},
      {"version string", "version = \"1\"\n" + user, 1, "version must be 1"},
      {"unknown top key", "version = 1\nusers = 3\n" + user, 2, "unknown key 'users'"},
      {"no users", "version = 1\n", 1, "no [[user]]"},
      {"user table", "version = 1\n[user]\nname = \"a\"\n", 2, "[[user]] tables"},
      {"unknown user key", "version = 1\n" + user + "pasword = \"x\"\n", 6,
       "unknown key 'pasword'"},
      {"unknown role", "version = 1\n[[user]]\nname = \"a\"\n" + pw + "role = \"root\"\n", 5,
       "unknown role 'root'"},
      {"no role", "version = 1\n[[user]]\nname = \"a\"\n" + pw, 2, "no role"},
      {"no name", "version = 1\n[[user]]\n" + pw + "role = \"read\"\n", 2, "without a name"},
      {"bad name", "version = 1\n[[user]]\nname = \"a b\"\n" + pw + "role = \"read\"\n", 3,
       "bad user name"},
      {"name not string", "version = 1\n[[user]]\nname = 7\n" + pw + "role = \"read\"\n", 3,
       "must be a string"},
      {"duplicate name", "version = 1\n" + user + "\n" + user, 7,
       "duplicate user 'a' (first at line 2)"},
      {"bad hash",
       "version = 1\n[[user]]\nname = \"a\"\nrole = \"read\"\npassword = \"scrypt$v1$\"\n", 5,
       "bad password hash"},
      {"no secret", "version = 1\n[[user]]\nname = \"a\"\nrole = \"read\"\n", 2,
       "neither a password nor a token"},
      {"bad token",
       "version = 1\n[[user]]\nname = \"a\"\nrole = \"read\"\ntokens = [\n  \"" + tok +
           "\",\n  \"sha256$00\",\n]\n",
       7, "bad token hash"},
      {"duplicate token",
       "version = 1\n[[user]]\nname = \"a\"\nrole = \"read\"\ntokens = [\"" + tok +
           "\"]\n[[user]]\nname = \"b\"\nrole = \"read\"\ntokens = [\"" + tok + "\"]\n",
       9, "duplicate token (first at line 5)"},
      {"prefixes not array", "version = 1\n" + user + "prefixes = \"app:\"\n", 6,
       "array of strings"},
      {"prefix not string", "version = 1\n" + user + "prefixes = [\"a\", 1]\n", 6, "only strings"},
  };
  for (const auto& row : rows) {
    auto users = parse_users(row.text, "users.toml");
    ASSERT_FALSE(users) << row.what << " was accepted";
    const std::string& msg = users.status().message();
    EXPECT_EQ(msg.rfind("users.toml:" + std::to_string(row.line) + ":", 0), 0u)
        << row.what << ": " << msg;
    EXPECT_NE(msg.find(row.word), std::string::npos) << row.what << ": " << msg;
  }
}

// ---- identities ------------------------------------------------------------

TEST(AuthIdentity, RoleActionMatrix) {
  // rows: read, readwrite, admin; columns: read, write, admin actions.
  const bool expected[3][3] = {{true, false, false}, {true, true, false}, {true, true, true}};
  const Role roles[] = {Role::kRead, Role::kReadWrite, Role::kAdmin};
  const Action actions[] = {Action::kRead, Action::kWrite, Action::kAdmin};
  for (int r = 0; r < 3; ++r) {
    for (int a = 0; a < 3; ++a) {
      Identity id{"u", roles[r], std::nullopt};
      EXPECT_EQ(id.allows(actions[a]), expected[r][a])
          << role_name(roles[r]) << " x " << action_name(actions[a]);
      EXPECT_EQ(id.allows(actions[a], "k"), expected[r][a]);
      EXPECT_EQ(id.allows_range(actions[a], ""), expected[r][a]);
      id.prefixes = std::vector<std::string>{"k"};
      EXPECT_EQ(id.allows(actions[a], "k1"), expected[r][a]) << "a prefix never widens a role";
    }
  }
}

TEST(AuthIdentity, PrefixEdgesAreExact) {
  Identity id{"bob", Role::kReadWrite, std::vector<std::string>{"app:", "cache:"}};
  EXPECT_TRUE(id.allows(Action::kWrite, "app:")) << "a key equal to the prefix";
  EXPECT_FALSE(id.allows(Action::kWrite, "app")) << "one byte shorter than the prefix";
  EXPECT_TRUE(id.allows(Action::kWrite, "app:1"));
  EXPECT_TRUE(id.allows(Action::kRead, "cache:x"));
  EXPECT_FALSE(id.allows(Action::kRead, "apq:"));
  EXPECT_FALSE(id.allows(Action::kRead, "xapp:"));
  EXPECT_FALSE(id.allows(Action::kRead, ""));
  EXPECT_FALSE(id.allows(Action::kRead, std::string("app\0", 4)));
  EXPECT_FALSE(id.allows(Action::kAdmin, "app:1")) << "the role still applies";

  EXPECT_TRUE(id.allows_range(Action::kRead, "app:"));
  EXPECT_TRUE(id.allows_range(Action::kRead, "app:x"));
  EXPECT_FALSE(id.allows_range(Action::kRead, "app")) << "'app' also holds 'apple'";
  EXPECT_FALSE(id.allows_range(Action::kRead, "")) << "not every key";
  EXPECT_TRUE(id.allows_some(Action::kRead, "app"));
  EXPECT_TRUE(id.allows_some(Action::kRead, ""));
  EXPECT_TRUE(id.allows_some(Action::kRead, "app:x"));
  EXPECT_FALSE(id.allows_some(Action::kRead, "apq"));
  EXPECT_FALSE(id.allows_some(Action::kRead, "b"));
}

TEST(AuthIdentity, EmptyPrefixListAllowsNoKeyAbsentAllowsEvery) {
  Identity none{"ci", Role::kAdmin, std::vector<std::string>{}};
  EXPECT_TRUE(none.allows(Action::kAdmin)) << "key-less commands still go by role";
  EXPECT_FALSE(none.allows(Action::kRead, ""));
  EXPECT_FALSE(none.allows(Action::kRead, "a"));
  EXPECT_FALSE(none.allows_range(Action::kAdmin, "")) << "FLUSHDB touches keys it may not";
  EXPECT_FALSE(none.allows_some(Action::kRead, ""));
  Identity all{"root", Role::kAdmin, std::nullopt};
  EXPECT_TRUE(all.allows(Action::kRead, ""));
  EXPECT_TRUE(all.allows(Action::kWrite, "anything"));
  EXPECT_TRUE(all.allows_range(Action::kAdmin, ""));
  Identity empty_prefix{"e", Role::kRead, std::vector<std::string>{""}};
  EXPECT_TRUE(empty_prefix.allows_range(Action::kRead, "")) << "the prefix \"\" covers every key";
}

// ---- authentication -----------------------------------------------------------

TEST(AuthUsers, PasswordLogInGivesTheIdentity) {
  Fixture fx;
  auto users = parse_users(fx.text(), "users.toml");
  ASSERT_TRUE(users) << users.status().to_string();
  auto bob = users->authenticate("bob", fx.bob_pw);
  ASSERT_TRUE(bob) << bob.status().to_string();
  EXPECT_EQ(bob->name, "bob");
  EXPECT_EQ(bob->role, Role::kRead);
  EXPECT_FALSE(users->authenticate("bob", fx.alice_pw)) << "another user's password";
  EXPECT_FALSE(users->authenticate("alice", fx.bob_pw));
  EXPECT_TRUE(users->authenticate("alice", fx.alice_pw));
}

TEST(AuthUsers, UnknownUserAndWrongPasswordLookTheSame) {
  Fixture fx;
  auto users = parse_users(fx.text(), "users.toml");
  ASSERT_TRUE(users);
  auto wrong = users->authenticate("alice", "nope");
  auto unknown = users->authenticate("mallory", "nope");
  auto no_password = users->authenticate("ci", "");
  ASSERT_FALSE(wrong);
  ASSERT_FALSE(unknown);
  ASSERT_FALSE(no_password);
  EXPECT_EQ(wrong.status().message(), std::string(kWrongPassMessage));
  EXPECT_EQ(unknown.status().to_string(), wrong.status().to_string());
  EXPECT_EQ(no_password.status().to_string(), wrong.status().to_string());
}

// An unknown name must cost exactly what a wrong password costs, one scrypt
// run (against a dummy hash), or the time a log-in takes tells which names
// exist. Counted, not timed: a busy machine cannot blur it.
TEST(AuthUsers, UnknownUserCostsAScryptLikeAWrongPassword) {
  auto h = hash_password("pw", ScryptParams{1 << 12, 8, 1});
  ASSERT_TRUE(h);
  auto users = parse_users(
      "version = 1\n[[user]]\nname = \"a\"\nrole = \"read\"\npassword = \"" + *h + "\"\n", "u");
  ASSERT_TRUE(users) << users.status().to_string();
  auto runs_for = [&](const char* name, const char* password) {
    const uint64_t before = scrypt_runs_total();
    (void)users->authenticate(name, password);
    return scrypt_runs_total() - before;
  };
  EXPECT_EQ(runs_for("a", "wrong"), 1u);
  EXPECT_EQ(runs_for("nobody", "wrong"), 1u) << "an unknown user runs the dummy scrypt";
  EXPECT_EQ(runs_for("a", "pw"), 1u);
}

TEST(AuthUsers, TokenLogInRightAndWrong) {
  Fixture fx;
  auto users = parse_users(fx.text(), "users.toml");
  ASSERT_TRUE(users);
  auto ci = users->authenticate_token(fx.token);
  ASSERT_TRUE(ci) << ci.status().to_string();
  EXPECT_EQ(ci->name, "ci");
  EXPECT_EQ(ci->role, Role::kReadWrite);
  for (std::string bad : {*generate_token(), hash_token(fx.token), fx.token.substr(1),
                          fx.token + "0", std::string()}) {
    auto r = users->authenticate_token(bad);
    ASSERT_FALSE(r) << "'" << bad << "' logged in";
    EXPECT_EQ(r.status().message(), std::string(kWrongPassMessage));
  }
}

// ---- the CLI ----------------------------------------------------------------

test::Outcome wavekv(const std::string& args) {
  return test::run_command(std::string(WAVEKV_BINARY) + " " + args);
}

// `input` goes through printf (its escapes, no format directives).
test::Outcome wavekv_stdin(const std::string& input, const std::string& args) {
  return test::run_command("printf '" + input + "' | " + std::string(WAVEKV_BINARY) + " " + args);
}

TEST(AuthCli, UserHashPrintsAHashThatVerifies) {
  auto out = wavekv_stdin("hunter2\\n", "user hash --scrypt-n 16 --scrypt-r 1");
  ASSERT_EQ(out.exit_code, 0) << out.out;
  ASSERT_FALSE(out.out.empty());
  ASSERT_EQ(out.out.back(), '\n');
  std::string line = out.out.substr(0, out.out.size() - 1);
  EXPECT_EQ(line.find('\n'), std::string::npos) << "one line: " << out.out;
  EXPECT_EQ(line.rfind("scrypt$v1$16$1$1$", 0), 0u) << line;
  EXPECT_TRUE(*verify_password("hunter2", line)) << "the line ending is not part of the password";
  EXPECT_FALSE(*verify_password("hunter2\n", line));

  auto crlf = wavekv_stdin("hunter2\\r\\n", "user hash --scrypt-n 16 --scrypt-r 1");
  ASSERT_EQ(crlf.exit_code, 0) << crlf.out;
  EXPECT_TRUE(*verify_password("hunter2", crlf.out.substr(0, crlf.out.size() - 1)))
      << "a CRLF line ending is not part of the password either";
  auto none = wavekv("user hash --scrypt-n 16 --scrypt-r 1 < /dev/null");
  EXPECT_EQ(none.exit_code, 2) << none.out;
  EXPECT_NE(none.out.find("no password"), std::string::npos) << none.out;
  auto weak = wavekv_stdin("x\\n", "user hash --scrypt-n 15");
  EXPECT_EQ(weak.exit_code, 2) << weak.out;
  EXPECT_NE(weak.out.find("power of two"), std::string::npos) << weak.out;
}

TEST(AuthCli, UserTokenPrintsATokenAndItsStoredHash) {
  auto out = wavekv("user token 2>/dev/null");
  ASSERT_EQ(out.exit_code, 0) << out.out;
  auto value = [&](const std::string& label) {
    size_t at = out.out.find(label);
    if (at == std::string::npos) return std::string();
    at += label.size();
    return out.out.substr(at, out.out.find('\n', at) - at);
  };
  std::string token = value("token: "), stored = value("stored: ");
  EXPECT_EQ(token.size(), 64u) << out.out;
  EXPECT_EQ(stored, hash_token(token)) << out.out;
}

TEST(AuthCli, UserCheckListsUsersOrNamesTheBadLine) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "wavekv-auth-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::string path = tmpl + "/users.toml";
  Fixture fx;
  std::ofstream(path) << fx.text();
  auto good = wavekv("user check " + path);
  EXPECT_EQ(good.exit_code, 0) << good.out;
  EXPECT_EQ(
      good.out,
      "alice\tadmin\tevery key\nbob\tread\t'app:' 'cache:'\nci\treadwrite\tno key\n3 users\n");
  std::ofstream(path, std::ios::app) << "colour = \"red\"\n";  // line 19
  auto bad = wavekv("user check " + path);
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_NE(bad.out.find(path + ":19:1: unknown key 'colour'"), std::string::npos) << bad.out;
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace wavekv::auth
