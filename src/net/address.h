// "host:port" addresses: the one parser for every port WaveKV listens on or
// dials (peer transport, RESP, HTTP, the HTTP client).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "wavekv/status.h"

namespace wavekv::net {

struct HostPort {
  std::string host;  // without brackets for IPv6 ("::1"); empty: every interface
  uint16_t port = 0;
};

// Listening allows more than dialing: ":port" (every interface) and port 0
// (the system picks one; the listener reports which).
enum class AddressUse { kListen, kDial };

// Accepts "host:port", "[v6]:port" and, to listen, ":port". The port is
// decimal 0..65535 (1..65535 to dial). An IPv6 host needs brackets.
Result<HostPort> parse_host_port(std::string_view address, AddressUse use);
// The inverse: brackets an IPv6 host.
std::string format_host_port(const std::string& host, uint16_t port);

}  // namespace wavekv::net
