// `wavekv user hash`, `user token` and `user check`: make the secrets a users
// file stores (docs/SECURITY.md) and check the file, so nobody needs the
// openssl command line.
#include <termios.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include "cli.h"
#include "wavekv/security.h"

namespace wavekv::cli {
namespace {

// One line from stdin without its line ending; with echo off on a terminal.
bool read_password(std::string& out) {
  const bool tty = ::isatty(STDIN_FILENO) == 1;
  termios saved{};
  if (tty && ::tcgetattr(STDIN_FILENO, &saved) == 0) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    std::cerr << "Password: " << std::flush;
  }
  const bool got = static_cast<bool>(std::getline(std::cin, out));
  if (tty) {
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    std::cerr << "\n";
  }
  if (!out.empty() && out.back() == '\r') out.pop_back();
  return got;
}

}  // namespace

int run_user_hash(const UserHashOptions& options) {
  std::string password;
  if (!read_password(password) || password.empty()) {
    std::cerr << "wavekv: no password on stdin (give it as one line)\n";
    return 2;
  }
  PasswordHashOptions params{options.scrypt_n, options.scrypt_r, options.scrypt_p};
  auto hash = hash_password(password, params);
  if (!hash) {
    std::cerr << "wavekv: " << hash.status().to_string() << "\n";
    return 2;
  }
  std::cout << *hash << "\n";
  return 0;
}

int run_user_token() {
  auto token = generate_token();
  if (!token) {
    std::cerr << "wavekv: " << token.status().to_string() << "\n";
    return 2;
  }
  // The token is shown here only: the users file keeps its hash.
  std::cout << "token: " << token->token << "\n"
            << "stored: " << token->stored << "\n";
  std::cerr << "wavekv: give the token to the client (it is not shown again); put the stored "
               "line in the user's tokens = [...]\n";
  return 0;
}

int run_user_check(const std::string& users_file) {
  auto users = check_users_file(users_file);
  if (!users) {
    std::cerr << "wavekv: " << users.status().message() << "\n";
    return 1;
  }
  for (const UserSummary& id : *users) {
    std::cout << id.name << "\t" << id.role << "\t";
    if (!id.prefixes) {
      std::cout << "every key";
    } else if (id.prefixes->empty()) {
      std::cout << "no key";
    } else {
      for (size_t i = 0; i < id.prefixes->size(); ++i)
        std::cout << (i ? " " : "") << "'" << escape((*id.prefixes)[i]) << "'";
    }
    std::cout << "\n";
  }
  std::cout << users->size() << (users->size() == 1 ? " user\n" : " users\n");
  return 0;
}

}  // namespace wavekv::cli
