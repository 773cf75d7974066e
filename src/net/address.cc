#include "net/address.h"

namespace wavekv::net {

Result<HostPort> parse_host_port(std::string_view address, AddressUse use) {
  auto bad = [&](std::string_view why) {
    return Status::invalid("address '" + std::string(address) + "' is not host:port (" +
                           std::string(why) + ")");
  };
  HostPort out;
  std::string_view port;
  if (address.starts_with("[")) {
    size_t close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() || address[close + 1] != ':')
      return bad("an [IPv6] host must be followed by :port");
    out.host = address.substr(1, close - 1);
    port = address.substr(close + 2);
    if (out.host.empty()) return bad("empty [] host");
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string_view::npos) return bad("no port");
    out.host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (out.host.find(':') != std::string::npos) return bad("an IPv6 host needs brackets");
  }
  if (out.host.empty() && use == AddressUse::kDial)
    return bad("no host; ':port' means every interface and is for listening only");
  if (port.empty()) return bad("no port");
  for (char c : port)
    if (c < '0' || c > '9') return bad("the port is not a decimal number");
  if (port.size() > 5) return bad("port above 65535");
  uint32_t value = 0;
  for (char c : port) value = value * 10 + static_cast<uint32_t>(c - '0');
  if (value > 65535) return bad("port above 65535");
  if (value == 0 && use == AddressUse::kDial) return bad("port 0 is for listening only");
  out.port = static_cast<uint16_t>(value);
  return out;
}

std::string format_host_port(const std::string& host, uint16_t port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

}  // namespace wavekv::net
