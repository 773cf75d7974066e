// "host:port" addresses, as the replication protocol names peers.
#pragma once

#include <cstdint>
#include <string>

#include "wavekv/status.h"

namespace wavekv::net {

struct HostPort {
  std::string host;  // without brackets for IPv6 ("::1")
  uint16_t port = 0;
};

// Accepts "host:port" and "[v6]:port"; the port must be 0..65535.
Result<HostPort> parse_host_port(const std::string& address);
// The inverse: brackets an IPv6 host.
std::string format_host_port(const std::string& host, uint16_t port);

}  // namespace wavekv::net
