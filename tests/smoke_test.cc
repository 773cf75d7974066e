#include <gtest/gtest.h>

#include "testing/mem_fs.h"
#include "wavekv/store.h"

namespace wavekv {
namespace {

TEST(Smoke, PutGetReopen) {
  auto fs = std::make_shared<testing::MemFileSystem>();
  Config c;
  c.data_dir = "/db";
  c.fs = fs;
  {
    auto s = Store::open(c);
    ASSERT_TRUE(s) << s.status().to_string();
    ASSERT_TRUE((*s)->put("a", "1"));
    ASSERT_TRUE((*s)->del("b"));
    EXPECT_EQ((*s)->get("a").value(), "1");
  }
  auto s = Store::open(c);
  ASSERT_TRUE(s) << s.status().to_string();
  EXPECT_EQ((*s)->get("a").value(), "1");
  EXPECT_EQ((*s)->get("b").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace wavekv

namespace wavekv {
namespace {

class FixedClock final : public Clock {
 public:
  explicit FixedClock(uint64_t ms) : ms_(ms) {}
  uint64_t now_ms() override { return ms_; }
  uint64_t ms_;
};

// docs/PROTOCOL.md, "Incarnations": a node rebuilt with an empty data directory
// under its old id writes to a new origin stream: the old stream's seqs (which
// peers already cover) are never issued again. Fixture: the old incarnation
// wrote 100 keys, so the new first write (seq 1) collides in (node, seq) but
// not in stream.
TEST(Identity, WipedNodeWritesToANewStream) {
  auto clock = std::make_shared<FixedClock>(1'000'000);
  Config c;
  c.data_dir = "/db";
  c.node_id = 7;
  c.clock = clock;
  c.fs = std::make_shared<testing::MemFileSystem>();
  uint64_t old_incarnation = 0;
  {
    auto s = Store::open(c);
    ASSERT_TRUE(s) << s.status().to_string();
    for (int i = 0; i < 100; i++) ASSERT_TRUE((*s)->put("k" + std::to_string(i), "v"));
    old_incarnation = (*s)->status().incarnation;
    EXPECT_EQ((*s)->get_entry("k0")->meta.incarnation, old_incarnation);
  }
  c.fs = std::make_shared<testing::MemFileSystem>();  // wiped
  auto s = Store::open(c);
  ASSERT_TRUE(s) << s.status().to_string();
  const uint64_t incarnation = (*s)->status().incarnation;
  EXPECT_NE(incarnation, old_incarnation);
  ASSERT_TRUE((*s)->put("fresh", "v"));
  EXPECT_EQ((*s)->get_entry("fresh")->meta.incarnation, incarnation);
  EXPECT_EQ((*s)->get_entry("fresh")->meta.seq, 1u);
}

// Which reopenings keep the stream: a clean close always; an unclean stop
// only with durability `always` (everything issued was on disk before it was
// acknowledged or sent). With `interval`, an unclean stop may have lost
// issued seqs, so the next open starts a new stream.
TEST(Identity, StreamContinuesExactlyWhenNothingIssuedCanBeLost) {
  for (Durability d : {Durability::kAlways, Durability::kInterval}) {
    SCOPED_TRACE(durability_name(d));
    auto fs = std::make_shared<testing::MemFileSystem>();
    Config c;
    c.data_dir = "/db";
    c.fs = fs;
    c.durability = d;
    uint64_t first = 0;
    {
      auto s = Store::open(c);
      ASSERT_TRUE(s);
      first = (*s)->status().incarnation;
      ASSERT_TRUE((*s)->put("a", "1"));
      ASSERT_TRUE((*s)->close());
    }
    std::unique_ptr<Store> store;
    {
      auto s = Store::open(c);
      ASSERT_TRUE(s);
      EXPECT_EQ((*s)->status().incarnation, first) << "a clean close keeps the stream";
      EXPECT_EQ((*s)->status().next_seq, 2u);
      ASSERT_TRUE((*s)->put("b", "2"));
      store = std::move(s).value();
    }
    fs->crash();  // unclean: the process dies without close()
    store.reset();
    fs->power_on();
    auto s = Store::open(c);
    ASSERT_TRUE(s);
    if (d == Durability::kAlways) {
      EXPECT_EQ((*s)->status().incarnation, first);
      EXPECT_EQ((*s)->status().next_seq, 3u);
      EXPECT_TRUE((*s)->status().recovery.new_incarnation.empty());
    } else {
      EXPECT_NE((*s)->status().incarnation, first);
      EXPECT_EQ((*s)->status().next_seq, 1u);
      EXPECT_FALSE((*s)->status().recovery.new_incarnation.empty());
    }
  }
}

}  // namespace
}  // namespace wavekv
