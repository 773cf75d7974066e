// filesync: mirror a directory between WaveKV nodes.
//   filesync run   --watch-dir DIR --data-dir DIR [--id N] --listen HOST:PORT [--peers ...]
//                  [--cluster-key-file F | --ca-file F --cert-file F --key-file F | --insecure]
//   filesync check --dirs DIR1,DIR2[,...]
// `run` embeds a node (src/filesync/mirror.h); `check` compares trees and
// exits 0 only if they agree.

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "../common/listening.h"
#include "../common/log_flags.h"
#include "../common/peer_security.h"
#include "filesync/mirror.h"
#include "filesync/tree.h"
#include "wavekv/log.h"

using namespace wavekv;
using namespace wavekv::filesync;

namespace {

// Reports the addresses the node bound (listening.h) and pins them in
// `config`, so a restart after a re-bootstrap binds the same ports even where
// the flags said port 0. main() refuses port 0 with --advertise, so the
// node's peer address is the bound one.
Status announce(Node& node, const std::string& ready_file, NodeConfig& config) {
  cli::BoundAddresses bound{node.store().node_id(), node.peer_address(), node.resp_address(),
                            node.http_address()};
  config.listen = cli::keep_bound_port(config.listen, bound.peer);
  config.http_listen = cli::keep_bound_port(config.http_listen, bound.http);
  return cli::announce_listening(bound, ready_file);
}

int run(MirrorConfig config, const std::string& ready_file) {
  // Before any thread starts, so every thread inherits the signal mask.
  const std::atomic<int>& got_signal = catch_stop_signals();

  std::unique_ptr<Mirror> mirror;
  SuperviseHooks hooks;
  hooks.start = [&]() -> Result<Node*> {
    mirror.reset();  // the last run, stopped: free its sockets before binding again
    auto started = Mirror::start(config);
    if (!started) return started.status();
    mirror = std::move(*started);
    return &mirror->node();
  };
  hooks.announce = [&](Node& node) {
    WAVEKV_RETURN_IF_ERROR(announce(node, ready_file, config.node));
    std::vector<LogField> fields = {{"node", std::to_string(node.store().node_id())},
                                    {"watch_dir", config.watch_dir},
                                    {"peer", node.peer_address()}};
    if (!node.http_address().empty()) fields.push_back({"http", node.http_address()});
    log(config.node.log, LogLevel::kInfo, "filesync", "mirroring", std::move(fields));
    return Status::ok();
  };
  hooks.stop = [&] { return mirror->stop(); };
  // The index and the files stay on a re-bootstrap; the rescan after the new
  // bootstrap decides each file again.
  hooks.reload_requests = &reload_requests();  // SIGHUP
  hooks.data_dir = config.data_dir + "/kv";
  hooks.component = "filesync";
  hooks.log = config.node.log;

  const SuperviseEnd end = supervise(hooks, got_signal);
  if (end.error.is_ok()) return 0;
  const char* during = end.failed == SuperviseEnd::Failed::kClose ? "closing: " : "";
  std::fprintf(stderr, "filesync: %s%s\n", during, end.error.to_string().c_str());
  return end.failed == SuperviseEnd::Failed::kStart ? 2 : 1;
}

int check(const std::vector<std::string>& dirs, bool json) {
  auto report = check_trees(dirs);
  if (!report) {
    std::fprintf(stderr, "filesync check: %s\n", report.status().to_string().c_str());
    return 2;
  }
  if (json) {
    nlohmann::json j;
    j["agree"] = report->agree();
    j["dirs"] = report->dirs;
    j["files"] = report->files;
    j["differences"] = report->differences;
    std::printf("%s\n", j.dump().c_str());
    return report->agree() ? 0 : 1;
  }
  for (size_t i = 0; i < report->dirs.size(); i++)
    std::printf("%-40s %zu files\n", report->dirs[i].c_str(), report->files[i]);
  for (const auto& d : report->differences) std::printf("  %s\n", d.c_str());
  if (report->agree())
    std::printf("agree: %zu trees, %zu files each\n", report->dirs.size(), report->files[0]);
  else
    std::printf("DIFFER: %zu differences\n", report->differences.size());
  return report->agree() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"filesync: mirror a directory between WaveKV nodes"};
  app.require_subcommand(1);

  MirrorConfig config;
  config.node.http_listen = "";
  config.node.resp_listen = "";
  std::string durability = "always";
  bool no_progress = false;
  auto* run_cmd = app.add_subcommand("run", "Mirror a directory (embeds a WaveKV node)");
  run_cmd->add_option("--watch-dir", config.watch_dir, "The directory to mirror")->required();
  run_cmd->add_option("--data-dir", config.data_dir, "Where the node and the index live")
      ->required();
  run_cmd->add_option("--id", config.node.store.node_id, "Node id (default: recorded or random)");
  run_cmd
      ->add_option("--listen", config.node.listen,
                   "Peer transport HOST:PORT (port 0: any free port, not with --advertise)")
      ->capture_default_str();
  run_cmd->add_option("--advertise", config.node.advertise, "Address peers dial");
  run_cmd->add_option("--peers", config.node.peers, "Any member's HOST:PORT (comma-separated)")
      ->delimiter(',');
  run_cmd->add_option("--http", config.node.http_listen,
                      "HTTP API HOST:PORT (default: off; port 0: any free port)");
  std::string ready_file;
  run_cmd->add_option("--ready-file", ready_file,
                      "Once the node is up and the directory scanned, write the bound addresses "
                      "here as JSON {node_id, pid, peer, resp, http} (atomically; rewritten "
                      "after a re-bootstrap); stdout gets a 'listening ...' line either way");
  run_cmd->add_option("--durability", durability, "always|interval|none")
      ->check(CLI::IsMember({"always", "interval", "none"}))
      ->capture_default_str();
  run_cmd
      ->add_option("--sync-interval-ms", config.node.replica.sync_interval_ms,
                   "Sync round interval")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  run_cmd
      ->add_option("--bootstrap-timeout-ms", config.bootstrap_timeout_ms,
                   "How long a node with an empty store waits for its first sync")
      ->capture_default_str();
  run_cmd->add_flag("--no-progress", no_progress, "No progress output");
  cli::PeerSecurityFlags security;
  cli::add_peer_security_flags(*run_cmd, security);
  cli::LogFlags log_flags;
  cli::add_log_flags(*run_cmd, log_flags);

  std::vector<std::string> dirs;
  bool json = false;
  auto* check_cmd = app.add_subcommand("check", "Compare trees; exit 0 only if they agree");
  check_cmd->add_option("--dirs", dirs, "Directories to compare (comma-separated)")
      ->required()
      ->delimiter(',');
  check_cmd->add_flag("--json", json, "One JSON object instead of text");

  CLI11_PARSE(app, argc, argv);
  if (*check_cmd) return check(dirs, json);
  config.node.store.durability = parse_durability(durability).value();
  config.node.log = cli::log_sink(log_flags);
  if (Status st = cli::apply_peer_security(security, config.node); !st.is_ok()) {
    std::fprintf(stderr, "filesync: %s\n", st.message().c_str());
    return 2;
  }
  if (!no_progress && isatty(2))
    config.progress = [](const std::string& line) { std::fputs(line.c_str(), stderr); };
  // `--peers ''` names no peer. Left in, the empty name made a first node
  // with an empty store wait for a bootstrap sync from no one.
  std::erase(config.node.peers, std::string());
  // With --advertise the node reports that address, not the port it bound,
  // and the peers who dial it must know the port anyway.
  if (!config.node.advertise.empty() && config.node.listen.ends_with(":0")) {
    std::fprintf(stderr, "filesync: --advertise needs a fixed --listen port, not 0\n");
    return 2;
  }
  return run(config, ready_file);
}
