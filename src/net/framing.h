// The bytes a peer connection carries (docs/FORMAT.md, "Peer transport
// framing"): a preface once, then frames as u32 little-endian length + bytes.
// Shared by the TCP transport and the in-memory one, which frames every
// message the same way so that both enforce the same limits.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace wavekv::net {

constexpr size_t kPrefaceBytes = 5;
constexpr uint8_t kTransportVersion = 1;
// "WKVT" then the version byte.
constexpr std::array<char, kPrefaceBytes> kPreface = {'W', 'K', 'V', 'T',
                                                      static_cast<char>(kTransportVersion)};

enum class PrefaceCheck { kOk, kBadMagic, kBadVersion };
PrefaceCheck check_preface(std::string_view bytes);  // bytes.size() must be kPrefaceBytes

constexpr size_t kFrameHeaderBytes = 4;
std::array<char, kFrameHeaderBytes> encode_frame_header(uint32_t length);
uint32_t decode_frame_header(const char* bytes);  // reads kFrameHeaderBytes

// The largest frame the framing can carry at all (the u32 length).
constexpr uint64_t kMaxEncodableFrameBytes = UINT32_MAX;

}  // namespace wavekv::net
