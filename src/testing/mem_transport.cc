#include "testing/mem_transport.h"

#include "net/address.h"
#include "net/framing.h"

namespace wavekv::testing {

using net::decode_frame_header;
using net::encode_frame_header;
using net::format_host_port;
using net::kFrameHeaderBytes;
using net::parse_host_port;

// Every field is guarded by the network's mu_; the handler runs on the
// network's delivery thread with no lock held.
class MemTransport final : public Transport {
 public:
  MemTransport(std::shared_ptr<MemNetwork> net, TransportConfig config)
      : net_(std::move(net)), config_(config) {}
  ~MemTransport() override { stop(); }

  Status start(const std::string& listen_address, Handler handler) override;
  std::string local_address() const override;
  bool send(const std::string& address, std::string frame) override;
  void stop() override;
  TransportStats stats() const override;

 private:
  friend class MemNetwork;
  enum class State { kNew, kRunning, kStopped };

  const std::shared_ptr<MemNetwork> net_;
  const TransportConfig config_;
  State state_ = State::kNew;
  std::string address_;
  Handler handler_;
  size_t links_open_ = 0;  // links from here with frames queued
  TransportStats stats_;
};

Status MemTransport::start(const std::string& listen_address, Handler handler) {
  WAVEKV_RETURN_IF_ERROR(config_.validate());
  if (!handler) return Status::invalid("start: the handler is empty");
  auto hp = parse_host_port(listen_address, net::AddressUse::kListen);
  if (!hp) return hp.status();

  std::lock_guard lock(net_->mu_);
  if (state_ != State::kNew) return Status::invalid("start: the transport was already started");
  std::string address = listen_address;
  if (hp->port == 0) {
    // Like an ephemeral port: the first free one on this network.
    for (uint32_t tries = 0; tries < 65535; ++tries) {
      uint16_t port = static_cast<uint16_t>(net_->next_port_);
      net_->next_port_ = net_->next_port_ % 65535 + 1;
      address = format_host_port(hp->host, port);
      if (!net_->listeners_.contains(address)) break;
    }
  }
  if (net_->listeners_.contains(address))
    return Status::io_error("cannot bind " + address + ": address in use");
  net_->listeners_[address] = this;
  address_ = address;
  handler_ = std::move(handler);
  state_ = State::kRunning;
  return Status::ok();
}

std::string MemTransport::local_address() const {
  std::lock_guard lock(net_->mu_);
  return address_;
}

bool MemTransport::send(const std::string& address, std::string frame) {
  std::lock_guard lock(net_->mu_);
  if (frame.size() > config_.max_frame_bytes) {
    ++stats_.frames_refused;
    return false;
  }
  if (state_ != State::kRunning) {
    ++stats_.frames_dropped;
    return false;
  }
  MemNetwork::LinkKey key{address_, address};
  auto it = net_->links_.find(key);
  if (it == net_->links_.end() && links_open_ >= config_.max_destinations) {
    ++stats_.frames_dropped;
    return false;
  }
  if (it != net_->links_.end() && (it->second.wire.size() >= config_.max_queued_frames ||
                                   it->second.bytes + frame.size() > config_.max_queued_bytes)) {
    ++stats_.frames_dropped;
    return false;
  }
  if (it == net_->links_.end()) {
    it = net_->links_.emplace(key, MemNetwork::Link{this, {}, 0}).first;
    ++links_open_;
  }
  // Serialize into a fresh buffer, as a socket would: the frame the receiver
  // gets shares nothing with the sender's.
  const auto header = encode_frame_header(static_cast<uint32_t>(frame.size()));
  std::string wire;
  wire.reserve(header.size() + frame.size());
  wire.append(header.data(), header.size());
  wire.append(frame);
  it->second.bytes += frame.size();
  it->second.wire.push_back(std::move(wire));
  ++stats_.frames_queued;
  stats_.bytes_queued += frame.size();
  net_->work_cv_.notify_one();
  return true;
}

void MemTransport::stop() {
  std::unique_lock lock(net_->mu_);
  if (state_ == State::kStopped) return;
  const bool was_running = state_ == State::kRunning;
  state_ = State::kStopped;
  if (!was_running) return;
  net_->listeners_.erase(address_);
  // What this node had queued dies with it, as with a closed socket.
  std::erase_if(net_->links_, [&](const auto& kv) { return kv.second.from == this; });
  links_open_ = 0;
  stats_.frames_dropped += stats_.frames_queued;
  stats_.frames_queued = 0;
  stats_.bytes_queued = 0;
  // Wait out a handler call in progress, unless it is the caller itself.
  if (net_->thread_.get_id() != std::this_thread::get_id())
    net_->idle_cv_.wait(lock, [&] { return net_->delivering_ != this; });
}

TransportStats MemTransport::stats() const {
  std::lock_guard lock(net_->mu_);
  TransportStats s = stats_;
  s.connections_open = links_open_;
  return s;
}

// ---- the network ----

MemNetwork::MemNetwork() = default;

std::shared_ptr<MemNetwork> MemNetwork::create() {
  std::shared_ptr<MemNetwork> net(new MemNetwork());
  net->thread_ = std::thread([raw = net.get()] { raw->deliver_loop(); });
  return net;
}

MemNetwork::~MemNetwork() {
  {
    std::lock_guard lock(mu_);
    shutdown_ = true;
  }
  work_cv_.notify_all();
  if (thread_.get_id() == std::this_thread::get_id()) {
    thread_.detach();  // the last owner let go from inside a handler
  } else {
    thread_.join();
  }
}

std::unique_ptr<Transport> MemNetwork::make_transport(TransportConfig config) {
  return std::make_unique<MemTransport>(shared_from_this(), config);
}

void MemNetwork::cut(const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  cut_.insert({from, to});
}

void MemNetwork::restore(const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  cut_.erase({from, to});
}

void MemNetwork::partition(const std::vector<std::string>& side_a,
                           const std::vector<std::string>& side_b) {
  std::lock_guard lock(mu_);
  for (const auto& a : side_a) {
    for (const auto& b : side_b) {
      cut_.insert({a, b});
      cut_.insert({b, a});
    }
  }
}

void MemNetwork::heal() {
  std::lock_guard lock(mu_);
  cut_.clear();
}

// One frame at a time, round robin over the links that have frames, so that
// one busy link cannot starve the others; in order within a link.
void MemNetwork::deliver_loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return shutdown_ || !links_.empty(); });
    if (shutdown_) return;
    auto it = links_.upper_bound(cursor_);
    if (it == links_.end()) it = links_.begin();
    cursor_ = it->first;
    const std::string to = it->first.second;
    Link& link = it->second;
    MemTransport* sender = link.from;
    std::string wire = std::move(link.wire.front());
    link.wire.pop_front();
    const uint64_t size = wire.size() - kFrameHeaderBytes;
    link.bytes -= size;
    --sender->stats_.frames_queued;
    sender->stats_.bytes_queued -= size;
    if (link.wire.empty()) {
      links_.erase(it);
      --sender->links_open_;
    }

    if (cut_.contains(cursor_)) {
      ++sender->stats_.frames_dropped;
      continue;
    }
    auto dest_it = listeners_.find(to);
    if (dest_it == listeners_.end()) {
      ++sender->stats_.connect_failures;
      ++sender->stats_.frames_dropped;
      continue;
    }
    MemTransport* dest = dest_it->second;
    ++sender->stats_.frames_sent;
    sender->stats_.bytes_sent += size;
    // Decode as the receiving end of a connection would.
    const uint32_t length = decode_frame_header(wire.data());
    if (length > dest->config_.max_frame_bytes) {
      ++dest->stats_.frames_refused;
      continue;
    }
    std::string frame = wire.substr(kFrameHeaderBytes, length);
    ++dest->stats_.frames_received;
    dest->stats_.bytes_received += length;

    delivering_ = dest;
    lock.unlock();
    try {
      dest->handler_(std::move(frame), PeerIdentity{});  // no security in memory
    } catch (...) {
      // The handler's exception is its own bug; delivery goes on.
    }
    lock.lock();
    delivering_ = nullptr;
    idle_cv_.notify_all();
  }
}

}  // namespace wavekv::testing
