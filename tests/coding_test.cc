// The fixed-width encoding and the bounds-checked Decoder (src/util/coding.h).
#include "util/coding.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace wavekv {
namespace {

TEST(Coding, U32RoundTripsAtLimits) {
  for (uint32_t v : {0u, 1u, 0xffu, 0x100u, 0x7fffffffu, 0x80000000u, UINT32_MAX - 1, UINT32_MAX}) {
    SCOPED_TRACE(v);
    std::string s;
    put_u32(s, v);
    ASSERT_EQ(s.size(), 4u) << "put_u32 writes exactly 4 bytes";
    EXPECT_EQ(load_u32(s.data()), v) << "load_u32 inverts put_u32";
    Decoder d(s);
    EXPECT_EQ(d.u32(), v) << "Decoder::u32 inverts put_u32";
    EXPECT_TRUE(d.done()) << "the decoder consumed exactly the 4 bytes";
  }
}

TEST(Coding, U64RoundTripsAtLimits) {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{UINT32_MAX}, uint64_t{1} << 32,
                     uint64_t{INT64_MAX}, uint64_t{1} << 63, UINT64_MAX - 1, UINT64_MAX}) {
    SCOPED_TRACE(v);
    std::string s;
    put_u64(s, v);
    ASSERT_EQ(s.size(), 8u) << "put_u64 writes exactly 8 bytes";
    EXPECT_EQ(load_u64(s.data()), v) << "load_u64 inverts put_u64";
    Decoder d(s);
    EXPECT_EQ(d.u64(), v) << "Decoder::u64 inverts put_u64";
    EXPECT_TRUE(d.done()) << "the decoder consumed exactly the 8 bytes";
  }
}

TEST(Coding, U8RoundTripsAtLimits) {
  for (uint8_t v : {uint8_t{0}, uint8_t{1}, uint8_t{0x7f}, uint8_t{0x80}, uint8_t{0xff}}) {
    std::string s;
    put_u8(s, v);
    Decoder d(s);
    EXPECT_EQ(d.u8(), v);
    EXPECT_TRUE(d.done());
  }
}

TEST(Coding, IntegersAreLittleEndian) {
  std::string s;
  put_u32(s, 0x04030201u);
  put_u64(s, 0x0c0b0a0908070605ull);
  EXPECT_EQ(s, std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c", 12));
}

TEST(Coding, MixedSequenceDecodesInOrder) {
  std::string s;
  put_u8(s, 0xab);
  put_u64(s, UINT64_MAX);
  put_bytes(s, "hello");
  put_u32(s, 0);
  put_bytes(s, "");
  put_u32(s, UINT32_MAX);
  Decoder d(s);
  EXPECT_EQ(d.u8(), 0xab);
  EXPECT_EQ(d.u64(), UINT64_MAX);
  EXPECT_EQ(d.bytes(), "hello");
  EXPECT_EQ(d.u32(), 0u);
  EXPECT_EQ(d.bytes(), "");
  EXPECT_EQ(d.u32(), UINT32_MAX);
  EXPECT_FALSE(d.failed());
  EXPECT_TRUE(d.done());
}

TEST(Coding, BytesRoundTripEmptyBinaryAndLarge) {
  std::string binary("\0\xff\x00\x80 x", 6);
  std::string large(100'000, '\0');
  for (size_t i = 0; i < large.size(); i++) large[i] = static_cast<char>(i * 31);
  for (const std::string& v : {std::string(), binary, large}) {
    std::string s;
    put_bytes(s, v);
    ASSERT_EQ(s.size(), 4 + v.size()) << "a u32 length prefix, then the bytes";
    EXPECT_EQ(load_u32(s.data()), v.size());
    Decoder d(s);
    EXPECT_EQ(d.bytes(), v);
    EXPECT_TRUE(d.done());
  }
}

// The decoder is given a view of a prefix of a larger buffer: if it trusted the
// length prefix it would return bytes from past the end of its view.
TEST(Coding, LengthPrefixLongerThanRemainingFailsWithoutReadingPastTheEnd) {
  std::string buffer;
  put_u32(buffer, 5);
  buffer += "abcXY";  // "XY" lies outside the decoder's view
  Decoder d(std::string_view(buffer).substr(0, 7));
  std::string_view v = d.bytes();
  EXPECT_TRUE(d.failed()) << "a length of 5 with 3 bytes left is refused";
  EXPECT_TRUE(v.empty()) << "nothing is returned for a refused length";
  EXPECT_FALSE(d.done());
}

TEST(Coding, LengthPrefixOfUint32MaxFails) {
  std::string s;
  put_u32(s, UINT32_MAX);
  s += "abc";
  Decoder d(s);
  EXPECT_TRUE(d.bytes().empty());
  EXPECT_TRUE(d.failed());
}

TEST(Coding, LengthPrefixExactlyTheRemainderSucceeds) {
  std::string s;
  put_u32(s, 3);
  s += "abc";
  Decoder d(s);
  EXPECT_EQ(d.bytes(), "abc");
  EXPECT_FALSE(d.failed());
  EXPECT_TRUE(d.done());
  EXPECT_EQ(d.remaining(), 0u);
}

TEST(Coding, LengthAboveMaxLenIsRefusedEvenIfTheBytesArePresent) {
  std::string s;
  put_bytes(s, "abcd");
  Decoder refuse(s);
  EXPECT_TRUE(refuse.bytes(3).empty());
  EXPECT_TRUE(refuse.failed()) << "4 bytes exceed max_len 3";
  Decoder accept(s);
  EXPECT_EQ(accept.bytes(4), "abcd") << "max_len is inclusive";
  EXPECT_TRUE(accept.done());
}

TEST(Coding, TruncatedLengthPrefixFails) {
  Decoder d(std::string_view("\x01\x00\x00", 3));
  EXPECT_TRUE(d.bytes().empty());
  EXPECT_TRUE(d.failed());
}

TEST(Coding, ShortFixedWidthReadsFailAndYieldZero) {
  std::string seven(7, '\xff');
  Decoder d64(seven);
  EXPECT_EQ(d64.u64(), 0u) << "a u64 needs 8 bytes";
  EXPECT_TRUE(d64.failed());

  Decoder d32(std::string_view(seven).substr(0, 3));
  EXPECT_EQ(d32.u32(), 0u) << "a u32 needs 4 bytes";
  EXPECT_TRUE(d32.failed());

  Decoder d8(std::string_view{});
  EXPECT_EQ(d8.u8(), 0u) << "a u8 needs 1 byte";
  EXPECT_TRUE(d8.failed());
}

TEST(Coding, FailureIsStickyEvenWhenLaterReadsWouldFit) {
  std::string s;
  put_u32(s, 100);  // claims 100 bytes
  put_u64(s, 42);   // only 8 follow
  Decoder d(s);
  (void)d.bytes();
  ASSERT_TRUE(d.failed());
  EXPECT_EQ(d.u8(), 0u) << "reads after a failure yield zero";
  EXPECT_EQ(d.u32(), 0u);
  EXPECT_TRUE(d.failed());
  EXPECT_FALSE(d.done());
}

TEST(Coding, DoneRequiresEveryByteConsumed) {
  std::string s;
  put_u32(s, 7);
  put_u8(s, 1);
  Decoder d(s);
  EXPECT_EQ(d.u32(), 7u);
  EXPECT_FALSE(d.done()) << "a trailing byte remains";
  EXPECT_EQ(d.remaining(), 1u);
  EXPECT_EQ(d.u8(), 1u);
  EXPECT_TRUE(d.done());
}

TEST(Coding, FailMarksTheInputMalformed) {
  std::string s;
  put_u8(s, 1);
  Decoder d(s);
  (void)d.u8();
  ASSERT_TRUE(d.done());
  d.fail();
  EXPECT_TRUE(d.failed());
  EXPECT_FALSE(d.done());
}

// The checksum is part of the on-disk format (docs/FORMAT.md): the low 32 bits
// of XXH3-64 with seed 0.
TEST(Coding, Checksum32IsLowHalfOfXxh3) {
  EXPECT_EQ(checksum32(""), 0x38d394c2u);
  EXPECT_EQ(checksum32("wavekv"), 0xd8faafb8u);
}

TEST(Coding, Checksum32ChangesOnEverySingleByteFlip) {
  std::string s(256, '\0');
  for (size_t i = 0; i < s.size(); i++) s[i] = static_cast<char>(i);
  uint32_t base = checksum32(s);
  for (size_t i = 0; i < s.size(); i++) {
    std::string t = s;
    t[i] = static_cast<char>(t[i] ^ 0x01);
    EXPECT_NE(checksum32(t), base) << "flip at byte " << i;
  }
}

}  // namespace
}  // namespace wavekv
