// The replication wire format: round trips, and defensive decoding of
// malformed input (docs/FORMAT.md, "Wire format").
#include <gtest/gtest.h>

#include "replication/messages.h"
#include "util/coding.h"

namespace wavekv {
namespace {

Message with_body(Body body) {
  Message m;
  m.from = 42;
  m.from_incarnation = 7;
  m.from_address = "127.0.0.1:7000";
  m.members = {{1, 11, "127.0.0.1:7001"}, {2, 22, ""}};
  m.body = std::move(body);
  return m;
}

std::vector<Message> one_of_each() {
  WireEntry live{std::string("key\0with-nul", 12), Entry{"value", false, Meta{1, 5, 99, 1}}};
  WireEntry tomb{"gone", Entry{"", true, Meta{2, 6, 100, 2}}};
  DigestReply dr;
  dr.nonce = 5;
  for (size_t i = 0; i < kDigestBuckets; i++) dr.buckets[i] = i * 0x9e3779b97f4a7c15ull;
  return {
      with_body(SyncRequest{9, {{1, 5}, {2, 3}}, Cursor{2, 4}, {{1, 2}}, 77, 1234}),
      with_body(SyncPage{9,
                         {{1, 5}},
                         {{1, 4}},
                         {{3, 8}},
                         4444,
                         5555,
                         {live, tomb},
                         false,
                         Cursor{2, 7},
                         77,
                         1300,
                         false}),
      with_body(SyncPage{9, {}, {}, {}, 0, 0, {}, true, Cursor{}, 0, 0, true}),
      with_body(Push{{live}}),
      with_body(DigestRequest{123}),
      with_body(dr),
      with_body(BucketRequest{{0, 17, 255}}),
      with_body(BucketReply{{17}, {tomb}}),
      with_body(Rebootstrap{"evicted after 3600 s unreachable"}),
  };
}

TEST(Wire, EveryMessageTypeRoundTrips) {
  for (const auto& m : one_of_each()) {
    auto decoded = decode_message(encode_message(m));
    ASSERT_TRUE(decoded) << decoded.status().to_string();
    EXPECT_EQ(*decoded, m) << "body index " << m.body.index();
  }
}

TEST(Wire, EveryTruncationIsRefusedWithoutCrashing) {
  for (const auto& m : one_of_each()) {
    std::string bytes = encode_message(m);
    for (size_t len = 0; len < bytes.size(); len++) {
      auto decoded = decode_message(std::string_view(bytes).substr(0, len));
      EXPECT_FALSE(decoded) << "a " << len << "-byte prefix of a " << bytes.size()
                            << "-byte message (body " << m.body.index() << ") was accepted";
    }
  }
}

TEST(Wire, TrailingBytesAreRefused) {
  std::string bytes = encode_message(with_body(DigestRequest{1})) + "x";
  auto decoded = decode_message(bytes);
  ASSERT_FALSE(decoded);
  EXPECT_NE(decoded.status().message().find("trailing"), std::string::npos);
}

TEST(Wire, NewerVersionIsRefusedWithAClearError) {
  std::string bytes = encode_message(with_body(DigestRequest{1}));
  bytes[0] = static_cast<char>(kWireVersion + 1);
  auto decoded = decode_message(bytes);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.status().code(), Code::kInvalidArgument);
  EXPECT_NE(decoded.status().message().find("not supported"), std::string::npos);
}

TEST(Wire, Version3CarriesTheSendersClockAndVersion2IsStillReadWithout) {
  Message m = with_body(DigestRequest{9});
  m.version = 3;
  m.sent_at_ms = 1'750'000'000'123ull;
  auto v3 = decode_message(encode_message(m));
  ASSERT_TRUE(v3) << v3.status().to_string();
  EXPECT_EQ(v3->version, 3);
  EXPECT_EQ(v3->sent_at_ms, m.sent_at_ms);
  EXPECT_EQ(*v3, m);

  // Version 2, as the previous release writes it: no clock field.
  m.version = 2;
  const std::string v2_bytes = encode_message(m);
  EXPECT_EQ(v2_bytes.size() + 8, encode_message(*v3).size()) << "8 bytes of clock in version 3";
  auto v2 = decode_message(v2_bytes);
  ASSERT_TRUE(v2) << v2.status().to_string();
  EXPECT_EQ(v2->version, 2);
  EXPECT_EQ(v2->sent_at_ms, 0u);
  EXPECT_EQ(v2->from, m.from);
  EXPECT_EQ(v2->body, m.body);

  std::string v1 = v2_bytes;
  v1[0] = 1;
  auto old = decode_message(v1);
  ASSERT_FALSE(old);
  EXPECT_EQ(old.status().code(), Code::kInvalidArgument);
}

TEST(Wire, EntryCountBeyondTheBytesIsRefusedBeforeAllocating) {
  // A Push that claims 2^32-1 entries but carries none. With no cap on the
  // count, only the check against the remaining bytes stands between this and
  // reserving hundreds of GiB.
  DecodeLimits no_cap;
  no_cap.max_entries = UINT64_MAX;
  std::string bytes = encode_message(with_body(Push{}));
  bytes.replace(bytes.size() - 4, 4, std::string(4, '\xff'));
  auto decoded = decode_message(bytes, no_cap);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.status().code(), Code::kCorruption);
}

TEST(Wire, KeyLimitIsEnforcedExactly) {
  DecodeLimits limits;
  limits.max_key_bytes = 8;
  auto push_with_key = [](size_t n) {
    return encode_message(with_body(Push{{WireEntry{std::string(n, 'k'), Entry{}}}}));
  };
  EXPECT_TRUE(decode_message(push_with_key(8), limits)) << "a key of exactly the limit";
  EXPECT_FALSE(decode_message(push_with_key(9), limits)) << "one byte over the limit";
}

TEST(Wire, BucketIndexOutOfRangeIsRefused) {
  std::string bytes = encode_message(with_body(BucketRequest{{1}}));
  // The last 4 bytes are the bucket index.
  std::string big;
  put_u32(big, static_cast<uint32_t>(kDigestBuckets));
  bytes.replace(bytes.size() - 4, 4, big);
  EXPECT_FALSE(decode_message(bytes));
}

}  // namespace
}  // namespace wavekv
