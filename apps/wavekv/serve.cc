// `wavekv serve`: parse flags (main.cc), run one Node until SIGINT/SIGTERM
// under supervise() (wavekv/node.h): if a peer says this node was evicted, it
// wipes the data directory and starts again as a new incarnation, on the
// ports the first start bound.

#include <atomic>
#include <cstdio>
#include <memory>

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
  config.resp_max_client_memory_bytes = o.resp_max_client_memory_bytes;
  config.http_max_client_memory_bytes = o.http_max_client_memory_bytes;
  config.resp_idle_timeout_ms = o.resp_idle_timeout_ms;
  config.resp_notify_keyspace_events = o.resp_notify_keyspace_events;
  config.replica.sync_interval_ms = o.sync_interval_ms;
  config.replica.fanout = o.fanout;
  config.replica.tombstone_grace_ms = o.tombstone_grace_ms;
  config.replica.max_clock_offset_ms = o.max_clock_offset_ms;
  config.replica.member_expiry_ms = o.member_expiry_ms;
  if (Status st = apply_peer_security(o.security, config); !st.is_ok()) {
    std::fprintf(stderr, "wavekv serve: %s\n", st.message().c_str());
    return 2;
  }
  config.clients = o.clients;
  config.log = log_sink(o.log);

  // Before any thread starts, so every thread inherits the signal mask.
  const std::atomic<int>& got_signal = catch_stop_signals();

  std::unique_ptr<Node> node;
  const Transport* peer_listener = nullptr;
  SuperviseHooks hooks;
  hooks.start = [&]() -> Result<Node*> {
    node.reset();  // the last run, stopped: free its sockets before binding again
    // The node owns the transport; it is made here to ask it what it bound.
    auto transport = make_tcp_transport(config.transport);
    peer_listener = transport.get();
    auto started = Node::start(config, std::move(transport));
    if (!started) return started.status();
    node = std::move(*started);
    return node.get();
  };
  hooks.announce = [&](Node& n) { return announce(n, *peer_listener, o.ready_file, config); };
  hooks.stop = [&] { return node->stop(); };
  hooks.reload_requests = &reload_requests();  // SIGHUP
  hooks.data_dir = config.store.data_dir;
  hooks.keep_retired = o.keep_retired;
  hooks.component = "serve";
  hooks.log = config.log;

  const SuperviseEnd end = supervise(hooks, got_signal);
  if (end.error.is_ok()) return 0;
  const char* during = end.failed == SuperviseEnd::Failed::kClose ? "closing the store: " : "";
  std::fprintf(stderr, "wavekv serve: %s%s\n", during, end.error.to_string().c_str());
  return end.failed == SuperviseEnd::Failed::kStart ? 2 : 1;
}

}  // namespace wavekv::cli
