// In-process nodes on loopback for the tests that start several Nodes in one
// process (node_test.cc, clock_offset_test.cc): a scratch directory each, a
// config that syncs fast, and a patient wait.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support/test_util.h"
#include "wavekv/node.h"

namespace wavekv::test {

// A fresh directory under the temp dir, named for the test and this process.
inline std::string temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("wavekv-node-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

// A node on 127.0.0.1:0 with a 100 ms sync interval.
inline NodeConfig config_for(const std::string& dir, std::vector<std::string> peers) {
  NodeConfig c;
  c.store.data_dir = dir;
  c.listen = "127.0.0.1:0";
  c.peers = std::move(peers);
  c.replica.sync_interval_ms = 100;
  return c;
}

// Polls `done` until it holds or 30 s pass (a guard against hangs, not a
// performance claim).
template <typename F>
bool eventually(F done) {
  return eventually(done, 30, 20);
}

}  // namespace wavekv::test
