// How `wavekv serve` and `filesync run` tell whoever started them which
// addresses they got. Every listen address may use port 0 (the kernel picks a
// free port); the program then reports the bound ports, so tests and scripts
// never guess a free port (a guessed port can be taken before it is bound).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "wavekv/fs.h"
#include "wavekv/status.h"

namespace wavekv::cli {

struct BoundAddresses {
  uint64_t node_id = 0;
  std::string peer;  // the peer listener as bound (peers dial --advertise if given)
  std::string resp;  // empty: off
  std::string http;  // empty: off
};

// Call once every listener is bound. Prints one line on stdout, flushed:
//   listening node=<id> peer=HOST:PORT resp=HOST:PORT http=HOST:PORT
// and, unless `ready_file` is empty, writes
//   {"node_id":..,"pid":..,"peer":"HOST:PORT","resp":"..","http":".."}
// to it atomically (temp file in the same directory, fsync, rename), so a
// reader that sees the file sees all of it.
inline Status announce_listening(const BoundAddresses& a, const std::string& ready_file) {
  std::printf("listening node=%llu peer=%s resp=%s http=%s\n",
              static_cast<unsigned long long>(a.node_id), a.peer.c_str(), a.resp.c_str(),
              a.http.c_str());
  std::fflush(stdout);
  if (ready_file.empty()) return Status::ok();
  nlohmann::json j = {{"node_id", a.node_id},
                      {"pid", static_cast<int64_t>(::getpid())},
                      {"peer", a.peer},
                      {"resp", a.resp},
                      {"http", a.http}};
  std::filesystem::path path(ready_file);
  std::string dir = path.has_parent_path() ? path.parent_path().string() : ".";
  Status st =
      write_file_atomic(*posix_filesystem(), dir, path.filename().string(), j.dump() + "\n");
  if (!st.is_ok()) return Status::io_error("--ready-file " + ready_file + ": " + st.to_string());
  return Status::ok();
}

// `configured` ("HOST:PORT") with the port `bound` got, so that a restart
// inside the same process binds the ports it reported the first time:
// ("127.0.0.1:0", "127.0.0.1:41234") gives "127.0.0.1:41234". The host stays
// as configured (it may be a name or a wildcard). Empty stays empty (off).
inline std::string keep_bound_port(const std::string& configured, const std::string& bound) {
  if (configured.empty() || bound.empty()) return configured;
  return configured.substr(0, configured.rfind(':')) + bound.substr(bound.rfind(':'));
}

}  // namespace wavekv::cli
