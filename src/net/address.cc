#include "net/address.h"

namespace wavekv::net {

Result<HostPort> parse_host_port(const std::string& address) {
  auto bad = [&](const char* why) {
    return Status::invalid("address '" + address + "' is not host:port (" + why + ")");
  };
  HostPort out;
  std::string port;
  if (address.starts_with("[")) {
    size_t close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':')
      return bad("unterminated [v6] host");
    out.host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string::npos) return bad("no port");
    out.host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (out.host.find(':') != std::string::npos) return bad("an IPv6 host needs brackets");
  }
  if (out.host.empty()) return bad("empty host");
  if (port.empty() || port.size() > 5) return bad("bad port");
  uint32_t value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return bad("bad port");
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > 65535) return bad("port above 65535");
  out.port = static_cast<uint16_t>(value);
  return out;
}

std::string format_host_port(const std::string& host, uint16_t port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

}  // namespace wavekv::net
