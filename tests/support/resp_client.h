// A minimal blocking RESP client over a real TCP socket, for the RESP server
// tests. Reads time out (a guard against hangs, not a correctness check).
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

namespace wavekv::test {

// A decoded reply, shown as a string to compare against:
// "OK", "(error) ERR ...", "42", "value", "(nil)", "[a, b]", "{k: v}".
struct Reply {
  char type = '!';  // '!' no reply: the connection closed or timed out
  std::string str;
  int64_t integer = 0;
  std::vector<Reply> elems;

  std::string show() const {
    switch (type) {
      case '+': return str;
      case '-': return "(error) " + str;
      case ':': return std::to_string(integer);
      case '$': return str;
      case '_': return "(nil)";
      case '*':
      case '>':  // RESP3 push: ">[a, b]"
      case '%': {
        std::string s = type == '*' ? "[" : type == '>' ? ">[" : "{";
        for (size_t i = 0; i < elems.size(); ++i) {
          if (i) s += (type == '%' && i % 2 == 1) ? ": " : ", ";
          s += elems[i].show();
        }
        return s + (type == '%' ? "}" : "]");
      }
      default: return "(closed)";
    }
  }
};

inline std::string encode_command(const std::vector<std::string>& args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return s;
}

class Client {
 public:
  // `receive_buffer` > 0 fixes the socket's receive buffer (no autotuning), so
  // a client that does not read fills it after a known number of bytes.
  // `must_connect` false: a refused connection is not a test failure (see
  // connected()), for tests that dial nodes they kill.
  explicit Client(uint16_t port, int timeout_s = 30, int receive_buffer = 0,
                  bool must_connect = true) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (receive_buffer > 0)
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    timeval tv{timeout_s, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (must_connect) {
      EXPECT_TRUE(connected_) << "connect to port " << port;
    }
  }
  bool connected() const { return connected_; }
  ~Client() { ::close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void send_raw(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return;  // the reply check will report it
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  }
  void send(const std::vector<std::string>& args) { send_raw(encode_command(args)); }
  Reply cmd(const std::vector<std::string>& args) {
    send(args);
    return read();
  }
  std::string call(const std::vector<std::string>& args) { return cmd(args).show(); }

  Reply read() {
    Reply r;
    std::string line;
    if (!read_line(line) || line.empty()) return r;
    char t = line[0];
    std::string rest = line.substr(1);
    switch (t) {
      case '+':
      case '-':
        r.type = t;
        r.str = rest;
        return r;
      case ':':
        r.type = t;
        r.integer = std::stoll(rest);
        return r;
      case '_': r.type = '_'; return r;
      case '$': {
        int64_t n = std::stoll(rest);
        if (n < 0) {
          r.type = '_';
          return r;
        }
        std::string body;
        if (!read_exact(static_cast<size_t>(n) + 2, body)) return r;
        r.type = '$';
        r.str = body.substr(0, static_cast<size_t>(n));
        return r;
      }
      case '*':
      case '>':
      case '%': {
        int64_t n = std::stoll(rest);
        if (n < 0) {
          r.type = '_';
          return r;
        }
        if (t == '%') n *= 2;
        r.type = t;
        for (int64_t i = 0; i < n; ++i) {
          r.elems.push_back(read());
          if (r.elems.back().type == '!') return Reply{};
        }
        return r;
      }
      default: return r;
    }
  }

  // True if the server closes the connection (EOF) before the timeout.
  bool closed_by_peer() {
    for (;;) {
      char c[4096];
      ssize_t n = ::recv(fd_, c, sizeof c, 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
  }

 private:
  bool fill() {
    char c[65536];
    ssize_t n = ::recv(fd_, c, sizeof c, 0);
    if (n <= 0) return false;
    buf_.append(c, static_cast<size_t>(n));
    return true;
  }
  bool read_line(std::string& line) {
    for (;;) {
      size_t p = buf_.find("\r\n");
      if (p != std::string::npos) {
        line = buf_.substr(0, p);
        buf_.erase(0, p + 2);
        return true;
      }
      if (!fill()) return false;
    }
  }
  bool read_exact(size_t n, std::string& out) {
    while (buf_.size() < n)
      if (!fill()) return false;
    out = buf_.substr(0, n);
    buf_.erase(0, n);
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

}  // namespace wavekv::test
