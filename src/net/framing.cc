#include "net/framing.h"

namespace wavekv::net {

PrefaceCheck check_preface(std::string_view bytes) {
  if (bytes.size() != kPrefaceBytes) return PrefaceCheck::kBadMagic;
  if (bytes.substr(0, 4) != std::string_view(kPreface.data(), 4)) return PrefaceCheck::kBadMagic;
  if (static_cast<uint8_t>(bytes[4]) != kTransportVersion) return PrefaceCheck::kBadVersion;
  return PrefaceCheck::kOk;
}

std::array<char, kFrameHeaderBytes> encode_frame_header(uint32_t length) {
  std::array<char, kFrameHeaderBytes> out{};
  for (size_t i = 0; i < kFrameHeaderBytes; ++i)
    out[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  return out;
}

uint32_t decode_frame_header(const char* bytes) {
  uint32_t length = 0;
  for (size_t i = 0; i < kFrameHeaderBytes; ++i)
    length |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  return length;
}

}  // namespace wavekv::net
