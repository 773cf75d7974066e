// An in-memory network for tests and the simulator's threaded cousins: a hub
// with its own delivery thread that moves frames between Transports it makes.
// It is meant to be realistic, not convenient: every frame is framed into a
// fresh buffer exactly as on TCP and decoded again on delivery, both ends
// enforce max_frame_bytes, each (from, to) link has a bounded queue that drops
// when full, delivery is in order per link, and links can be cut one way.
// A frame to an address nobody listens on is dropped at delivery and counted
// by the sender as a connect failure; a frame on a cut link, as dropped.
// Differences from TCP: no connect timeout, backoff or idle close (nothing to
// wait for), and connections_open counts the sender's links with frames queued.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "wavekv/transport.h"

namespace wavekv::testing {

class MemTransport;

class MemNetwork : public std::enable_shared_from_this<MemNetwork> {
 public:
  static std::shared_ptr<MemNetwork> create();
  ~MemNetwork();
  MemNetwork(const MemNetwork&) = delete;
  MemNetwork& operator=(const MemNetwork&) = delete;

  // A transport on this network. Its start() takes any "host:port"; port 0
  // picks a port unused on this network.
  std::unique_ptr<Transport> make_transport(TransportConfig config = {});

  // One way: frames from `from` to `to` are dropped (the sender counts them),
  // including those already queued, until restored. Addresses as started.
  void cut(const std::string& from, const std::string& to);
  void restore(const std::string& from, const std::string& to);
  // Cuts every link between the two sides, both ways.
  void partition(const std::vector<std::string>& side_a, const std::vector<std::string>& side_b);
  // Restores every link.
  void heal();

 private:
  friend class MemTransport;
  using LinkKey = std::pair<std::string, std::string>;  // (from, to)
  struct Link {
    MemTransport* from = nullptr;
    std::deque<std::string> wire;  // framed bytes: header + frame
    uint64_t bytes = 0;            // frame bytes queued
  };

  MemNetwork();
  void deliver_loop();

  std::mutex mu_;
  std::condition_variable work_cv_;  // a link got a frame, or shutdown
  std::condition_variable idle_cv_;  // a handler call returned
  bool shutdown_ = false;
  std::map<std::string, MemTransport*> listeners_;
  std::map<LinkKey, Link> links_;  // only links with frames queued
  std::set<LinkKey> cut_;
  LinkKey cursor_;                      // round robin over links
  MemTransport* delivering_ = nullptr;  // whose handler runs now
  uint32_t next_port_ = 1;
  std::thread thread_;
};

}  // namespace wavekv::testing
