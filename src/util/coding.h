// Little-endian fixed-width encoding and a bounds-checked decoder. Every length
// read from untrusted bytes is checked against what remains before use.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace wavekv {

inline void put_u8(std::string& out, uint8_t v) { out.push_back(static_cast<char>(v)); }
inline void put_u32(std::string& out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; i++) b[i] = static_cast<char>(v >> (8 * i));
  out.append(b, 4);
}
inline void put_u64(std::string& out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; i++) b[i] = static_cast<char>(v >> (8 * i));
  out.append(b, 8);
}
// u32 length, then the bytes.
inline void put_bytes(std::string& out, std::string_view s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

inline uint32_t load_u32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}
inline uint64_t load_u64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

// Reads from a byte range; any read past the end sets failed() and yields zeros.
class Decoder {
 public:
  explicit Decoder(std::string_view data) : data_(data) {}
  uint8_t u8() {
    if (!need(1)) return 0;
    return static_cast<uint8_t>(data_[pos_++]);
  }
  uint32_t u32() {
    if (!need(4)) return 0;
    uint32_t v = load_u32(data_.data() + pos_);
    pos_ += 4;
    return v;
  }
  uint64_t u64() {
    if (!need(8)) return 0;
    uint64_t v = load_u64(data_.data() + pos_);
    pos_ += 8;
    return v;
  }
  // A u32-length-prefixed byte string, refused if longer than `max_len` or
  // than what remains.
  std::string_view bytes(uint64_t max_len = UINT32_MAX) {
    uint32_t n = u32();
    if (failed_ || n > max_len || !need(n)) {
      failed_ = true;
      return {};
    }
    std::string_view v = data_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  // Exactly `n` bytes with no length prefix (a fixed-size field).
  std::string_view raw(size_t n) {
    if (!need(n)) return {};
    std::string_view v = data_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  size_t remaining() const { return data_.size() - pos_; }
  // Marks the input malformed (a value out of range, say).
  void fail() { failed_ = true; }
  bool failed() const { return failed_; }
  bool done() const { return !failed_ && pos_ == data_.size(); }

 private:
  bool need(size_t n) {
    if (failed_ || data_.size() - pos_ < n) {
      failed_ = true;
      return false;
    }
    return true;
  }
  std::string_view data_;
  size_t pos_ = 0;
  bool failed_ = false;
};

// The number in a file name PREFIX<20 decimal digits>SUFFIX, or 0 if `name`
// is not of that form (WAL segments and snapshots are named so).
inline uint64_t parse_numbered_name(std::string_view name, std::string_view prefix,
                                    std::string_view suffix) {
  if (name.size() != prefix.size() + 20 + suffix.size() ||
      name.substr(0, prefix.size()) != prefix || name.substr(prefix.size() + 20) != suffix)
    return 0;
  uint64_t v = 0;
  for (char c : name.substr(prefix.size(), 20)) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

// The checksum of WAL records and snapshot blocks: the low 32 bits of XXH3-64.
uint32_t checksum32(std::string_view data);

}  // namespace wavekv
