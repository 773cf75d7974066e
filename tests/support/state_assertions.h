// Assertions shared by the test files.
#pragma once

#include <gtest/gtest.h>

#include "state/state.h"

namespace wavekv {

// Every observable part of two states is equal (the index is derived from kv).
inline void expect_same_state(const State& a, const State& b) {
  EXPECT_EQ(a.self(), b.self());
  EXPECT_TRUE(a.kv() == b.kv()) << "the key-value map (tombstones included) is identical";
  EXPECT_EQ(a.peers(), b.peers());
  EXPECT_EQ(a.next_seq(), b.next_seq());
  EXPECT_EQ(a.max_timestamp(), b.max_timestamp());
  EXPECT_EQ(a.live_keys(), b.live_keys());
  EXPECT_EQ(a.tombstones(), b.tombstones());
  EXPECT_EQ(a.data_bytes(), b.data_bytes());
  EXPECT_EQ(a.adopted_acks(), b.adopted_acks());
  EXPECT_EQ(a.collected(), b.collected());
  EXPECT_EQ(a.collected_before(), b.collected_before());
  EXPECT_EQ(a.removed(), b.removed());
  EXPECT_EQ(a.digest(), b.digest());
}

}  // namespace wavekv
