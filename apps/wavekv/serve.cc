// `wavekv serve`: parse flags (main.cc), run one Node until SIGINT/SIGTERM.
// If a peer says this node was evicted, wipe the data directory and start
// again as a new incarnation, on the ports the first start bound.

#include <atomic>
#include <cstdio>

#include "../common/listening.h"
#include "cli.h"
#include "wavekv/log.h"
#include "wavekv/node.h"

namespace wavekv::cli {
namespace {

// Reports the addresses `node` bound (listening.h) and pins them in `config`,
// so a restart after a re-bootstrap binds the same ports even where the
// flags said port 0. `peer_listener` is the node's transport: what it bound,
// also when peers dial an --advertise address instead.
Status announce(Node& node, const Transport& peer_listener, const std::string& ready_file,
                NodeConfig& config) {
  BoundAddresses bound{node.store().node_id(), peer_listener.local_address(), node.resp_address(),
                       node.http_address()};
  config.listen = keep_bound_port(config.listen, bound.peer);
  config.resp_listen = keep_bound_port(config.resp_listen, bound.resp);
  config.http_listen = keep_bound_port(config.http_listen, bound.http);
  return announce_listening(bound, ready_file);
}

}  // namespace

int run_serve(const ServeOptions& o) {
  NodeConfig config;
  config.store.data_dir = o.data_dir;
  config.store.node_id = o.id;
  config.store.durability = o.durability;
  config.listen = o.listen;
  config.advertise = o.advertise;
  config.peers = o.peers;
  config.resp_listen = o.resp;
  config.http_listen = o.http;
  config.replica.sync_interval_ms = o.sync_interval_ms;
  config.replica.fanout = o.fanout;
  config.replica.tombstone_grace_ms = o.tombstone_grace_ms;
  config.replica.member_expiry_ms = o.member_expiry_ms;

  // Before any thread starts, so every thread inherits the signal mask.
  const std::atomic<int>& got_signal = catch_stop_signals();

  while (true) {
    // The node owns the transport; it is made here to ask it what it bound.
    auto transport = make_tcp_transport(config.transport);
    const Transport& peer_listener = *transport;
    auto node = Node::start(config, std::move(transport));
    if (!node) {
      std::fprintf(stderr, "wavekv serve: %s\n", node.status().to_string().c_str());
      return 2;
    }
    const std::string id = std::to_string((*node)->store().node_id());
    Status announced = announce(**node, peer_listener, o.ready_file, config);
    if (!announced.is_ok()) {
      std::fprintf(stderr, "wavekv serve: %s\n", announced.to_string().c_str());
      (void)(*node)->stop();
      return 2;
    }
    bool rebootstrap = false;
    while (got_signal == 0) {
      if ((*node)->wait_rebootstrap(100)) {
        rebootstrap = true;
        break;
      }
    }
    Status st = (*node)->stop();
    if (!st.is_ok()) {
      std::fprintf(stderr, "wavekv serve: closing the store: %s\n", st.to_string().c_str());
      return 1;
    }
    if (!rebootstrap) {
      log(config.log, LogLevel::kInfo, "serve", "stopped by signal; store closed",
          {{"node", id}, {"signal", std::to_string(got_signal.load())}});
      return 0;
    }
    log(config.log, LogLevel::kWarn, "serve", "wiping the data directory to bootstrap again",
        {{"node", id}, {"data_dir", config.store.data_dir}});
    Status wiped = wipe_data_dir(config.store.data_dir);
    if (!wiped.is_ok()) {
      std::fprintf(stderr, "wavekv serve: %s\n", wiped.to_string().c_str());
      return 1;
    }
  }
}

}  // namespace wavekv::cli
