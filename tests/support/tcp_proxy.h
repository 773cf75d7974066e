// A TCP proxy that a test puts in front of one node's peer port, and cuts and
// restores to make network partitions between real `wavekv serve` processes.
//
// Why it must know who dials: a peer connection carries one direction only
// (the dialer writes; docs/FORMAT.md, "Peer transport framing") and every
// node dials one advertised address per member. A proxy in front of node X
// therefore sees the traffic of every other node to X, and to cut {A} | {B, C}
// it must know who is dialing. Two ways:
//  - by the bytes (plain TCP): it reads the first 18 bytes of a connection,
//    the preface (5), the first frame's length (4), the wire version (1) and
//    the sender node id (8, little-endian; docs/FORMAT.md, "Wire format"),
//    decides, then forwards those bytes and everything after them unchanged;
//  - by the connection (identify_by_process; works under TLS, where the
//    bytes say nothing): the dialing socket is looked up in /proc/net/tcp
//    and its owner among the node processes the test named, by pid.
// record() keeps every byte that passes, for tests that look for plaintext.
//
// cut(senders): connections from those node ids that are open now are shut
// down, and new ones are accepted, identified and closed (the dialer sees its
// connection end, as with a peer that crashed). restore() lets them through
// again. Plain sockets and one thread per connection: a handful of
// connections for a few seconds.
#pragma once

#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

namespace wavekv::test {

class TcpProxy {
 public:
  // Listens on 127.0.0.1 (port 0: the kernel picks one). Connections are
  // closed until forward_to() names the port to forward them to: a node's
  // advertised address must be the proxy's, known before the node starts and
  // binds its own port.
  TcpProxy() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a = loopback(0);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 128) != 0) {
      ::close(listen_fd_);
      listen_fd_ = -1;
      return;
    }
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~TcpProxy() {
    stopping_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    {
      std::lock_guard lock(mu_);
      for (auto& [id, c] : conns_) shut(c);
    }
    for (auto& w : workers_) w.thread.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  bool ok() const { return listen_fd_ >= 0; }
  void forward_to(uint16_t target_port) { target_port_ = target_port; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // Refuses traffic from these sender node ids: open connections from them are
  // shut down now, new ones are closed once identified.
  void cut(std::set<uint64_t> senders) {
    std::lock_guard lock(mu_);
    blocked_ = std::move(senders);
    for (auto& [id, c] : conns_)
      if (blocked_.count(c.sender)) shut(c);
  }
  // Lets every sender through again.
  void restore() {
    std::lock_guard lock(mu_);
    blocked_.clear();
  }

  // From now on a connection's sender is the node id of the process (by pid)
  // whose socket dials the proxy; a dialer not among them is closed.
  void identify_by_process(std::map<pid_t, uint64_t> nodes) {
    std::lock_guard lock(mu_);
    processes_ = std::move(nodes);
  }
  // Forwards every connection without asking who dials (cuts then have no
  // sender to match): a stable address in front of a port that changes, such
  // as a client port of a node that restarts on port 0.
  void forward_anyone() { anyone_ = true; }
  // Keeps a copy of every byte forwarded either way from now on.
  void record() { recording_ = true; }
  std::string recorded() {
    std::lock_guard lock(mu_);
    return recorded_;
  }

  uint64_t forwarded() const { return forwarded_; }  // connections passed through
  uint64_t refused() const { return refused_; }      // connections closed by a cut

 private:
  struct Conn {
    uint64_t sender = 0;
    int client = -1;
    int upstream = -1;
  };
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };

  static sockaddr_in loopback(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return a;
  }
  // Wakes the connection's worker (its poll or blocked send ends); the worker
  // alone closes the descriptors, after it has left conns_.
  static void shut(const Conn& c) {
    ::shutdown(c.client, SHUT_RDWR);
    ::shutdown(c.upstream, SHUT_RDWR);
  }

  void accept_loop() {
    while (!stopping_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      // Reap workers that finished, so a long cut does not pile up threads.
      for (auto it = workers_.begin(); it != workers_.end();) {
        if (it->done->load()) {
          it->thread.join();
          it = workers_.erase(it);
        } else {
          ++it;
        }
      }
      auto done = std::make_shared<std::atomic<bool>>(false);
      workers_.push_back({std::thread([this, fd, done] {
                            serve(fd);
                            *done = true;
                          }),
                          done});
    }
  }

  // Reads exactly n bytes, giving up after about 2 s or when stopping.
  bool read_exactly(int fd, char* buf, size_t n) {
    size_t got = 0;
    for (int waited_ms = 0; got < n && waited_ms < 2000 && !stopping_;) {
      pollfd p{fd, POLLIN, 0};
      int r = ::poll(&p, 1, 50);
      if (r == 0) {
        waited_ms += 50;
        continue;
      }
      if (r < 0) return false;
      ssize_t k = ::recv(fd, buf + got, n - got, 0);
      if (k <= 0) return false;
      got += static_cast<size_t>(k);
    }
    return got == n;
  }
  static bool write_all(int fd, const char* buf, size_t n) {
    while (n > 0) {
      ssize_t k = ::send(fd, buf, n, MSG_NOSIGNAL);
      if (k <= 0) return false;
      buf += k;
      n -= static_cast<size_t>(k);
    }
    return true;
  }

  // The inode of the socket at the other end of `client` (a loopback
  // dialer), from /proc/net/tcp; 0 if not found.
  uint64_t dialer_inode(int client) const {
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    if (::getpeername(client, reinterpret_cast<sockaddr*>(&peer), &len) != 0) return 0;
    char local[32], remote[32];
    // The kernel prints the address as the u32 it stores (network order) and
    // the port in host order, both in hex.
    std::snprintf(local, sizeof local, "%08X:%04X", peer.sin_addr.s_addr, ntohs(peer.sin_port));
    std::snprintf(remote, sizeof remote, "%08X:%04X", htonl(INADDR_LOOPBACK), port_);
    std::ifstream tcp("/proc/net/tcp");
    std::string line;
    std::getline(tcp, line);  // the header
    while (std::getline(tcp, line)) {
      std::istringstream in(line);
      std::string sl, l, r, st, queues, timer, retransmits, uid, timeout;
      uint64_t inode = 0;
      in >> sl >> l >> r >> st >> queues >> timer >> retransmits >> uid >> timeout >> inode;
      if (l == local && r == remote) return inode;
    }
    return 0;
  }
  // Which of processes_ holds socket `inode`; 0 if none.
  uint64_t owner_of(uint64_t inode, const std::map<pid_t, uint64_t>& processes) const {
    const std::string want = "socket:[" + std::to_string(inode) + "]";
    for (const auto& [pid, node] : processes) {
      const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
      DIR* d = ::opendir(dir.c_str());
      if (d == nullptr) continue;
      bool found = false;
      while (dirent* e = ::readdir(d)) {
        char target[64];
        ssize_t n = ::readlinkat(::dirfd(d), e->d_name, target, sizeof target - 1);
        if (n > 0 && want == std::string(target, static_cast<size_t>(n))) {
          found = true;
          break;
        }
      }
      ::closedir(d);
      if (found) return node;
    }
    return 0;
  }

  void serve(int client) {
    std::map<pid_t, uint64_t> processes;
    {
      std::lock_guard lock(mu_);
      processes = processes_;
    }
    // By the bytes: preface (5), frame length (4), wire version (1), sender
    // id (8). By the connection: nothing read yet.
    char head[18];
    size_t head_bytes = 0;
    uint64_t sender = 0;
    if (anyone_) {
      // forward_anyone(): sender 0, nothing read before forwarding.
    } else if (processes.empty()) {
      if (!read_exactly(client, head, sizeof head)) {
        ::close(client);
        return;
      }
      head_bytes = sizeof head;
      for (int i = 7; i >= 0; i--) sender = (sender << 8) | static_cast<uint8_t>(head[10 + i]);
    } else {
      const uint64_t inode = dialer_inode(client);
      sender = inode ? owner_of(inode, processes) : 0;
      if (sender == 0) {  // not a node the test knows: as if the proxy were down
        ::close(client);
        return;
      }
    }
    auto blocked = [&] {
      std::lock_guard lock(mu_);
      return stopping_ || blocked_.count(sender) > 0;
    };
    if (blocked()) {
      refused_++;
      ::close(client);
      return;
    }
    const uint16_t target_port = target_port_;
    if (target_port == 0) {  // not forwarding yet: as if the node were not up
      ::close(client);
      return;
    }
    int upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = loopback(target_port);
    if (::connect(upstream, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        !write_all(upstream, head, head_bytes)) {
      ::close(upstream);
      ::close(client);
      return;
    }
    uint64_t id = 0;
    {
      // Registered under the lock only if no cut came in meanwhile; from here
      // on a cut reaches this connection through conns_.
      std::lock_guard lock(mu_);
      if (stopping_ || blocked_.count(sender) > 0) {
        refused_++;
        ::close(upstream);
        ::close(client);
        return;
      }
      id = next_id_++;
      conns_[id] = Conn{sender, client, upstream};
    }
    forwarded_++;
    keep(head, head_bytes);
    pump(client, upstream);
    {
      std::lock_guard lock(mu_);
      conns_.erase(id);
    }
    ::close(upstream);
    ::close(client);
  }

  void keep(const char* bytes, size_t n) {
    if (!recording_ || n == 0) return;
    std::lock_guard lock(mu_);
    recorded_.append(bytes, n);
  }

  // Copies bytes both ways until either side ends, fails or is shut down.
  void pump(int a, int b) {
    char buf[64 * 1024];
    while (!stopping_) {
      pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      int r = ::poll(p, 2, 100);
      if (r < 0) return;
      for (int i = 0; i < 2; i++) {
        if (p[i].revents == 0) continue;
        ssize_t k = ::recv(p[i].fd, buf, sizeof buf, 0);
        if (k <= 0) return;
        keep(buf, static_cast<size_t>(k));
        if (!write_all(p[1 - i].fd, buf, static_cast<size_t>(k))) return;
      }
    }
  }

  std::atomic<uint16_t> target_port_{0};  // 0: not known yet
  std::atomic<bool> anyone_{false};       // forward_anyone()
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> recording_{false};
  std::atomic<uint64_t> forwarded_{0};
  std::atomic<uint64_t> refused_{0};
  std::thread acceptor_;
  std::list<Worker> workers_;  // the acceptor's, then the destructor's

  std::mutex mu_;
  std::set<uint64_t> blocked_;
  std::map<uint64_t, Conn> conns_;
  std::map<pid_t, uint64_t> processes_;  // identify_by_process(); empty: by the bytes
  std::string recorded_;
  uint64_t next_id_ = 1;
};

}  // namespace wavekv::test
