// Checkpoint snapshots (src/storage/snapshot.h): round trip of the whole core
// state, and refusal of every truncated, flipped or foreign snapshot.
#include "store/snapshot.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "state/state.h"
#include "support/state_assertions.h"
#include "testing/mem_fs.h"
#include "util/coding.h"

namespace wavekv {
namespace {

constexpr NodeId kNode = 7;
constexpr uint64_t kLsn = 4242;
constexpr int kEntries = 3500;
constexpr size_t kValueBytes = 1000;  // ~3.5 MiB of entries: several 1 MiB blocks
const std::string kDir = "/db";

// A state with values and tombstones from several origins, peers with acks,
// and next_seq / max_timestamp above what the entries alone imply.
State make_state() {
  State s(kNode, kNode);
  const NodeId origins[] = {kNode, 3, 11};
  for (int i = 0; i < kEntries; i++) {
    char key[16];
    std::snprintf(key, sizeof key, "key%06d", i);
    OpSetEntry op;
    op.key = key;
    op.entry.meta = Meta{origins[i % 3], static_cast<uint64_t>(i + 1),
                         timestamp_from_millis(1'700'000'000'000ull) + static_cast<uint64_t>(i),
                         origins[i % 3]};
    if (i % 7 == 3) {
      op.entry.tombstone = true;
    } else {
      op.entry.value = std::string(kValueBytes, static_cast<char>(i));
    }
    (void)s.apply(op);
  }
  for (NodeId peer : {3, 11, 12}) {
    OpSetPeer p;
    p.peer = peer;
    p.meta.address = "10.0.0." + std::to_string(peer) + ":7000";
    p.meta.incarnation = 1000 + peer;
    if (peer != 12) p.meta.acked = {{kNode, 500 + peer}, {3, 77}, {peer, UINT64_MAX}};
    (void)s.apply(p);
  }
  (void)s.apply(OpAdoptAcks{{{3, 4000}, {11, 12}, {99, 1}}, {{3, 3999}, {11, 2}}, 123456789, 0});
  s.restore_counters(/*next_seq=*/1'000'000, kNode,
                     timestamp_from_millis(1'800'000'000'000ull) + 5);
  return s;
}

// The start of every block, then the end of the file.
std::vector<uint64_t> block_offsets(const std::string& data) {
  std::vector<uint64_t> out;
  uint64_t pos = kSnapHeaderBytes;
  while (pos + 8 <= data.size()) {
    out.push_back(pos);
    pos += 8 + load_u32(data.data() + pos);
  }
  out.push_back(pos);
  return out;
}

class SnapshotTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    state_ = new State(make_state());
    bytes_ = new std::string(encode_snapshot(*state_, kLsn));
  }
  static void TearDownTestSuite() {
    delete state_;
    delete bytes_;
    state_ = nullptr;
    bytes_ = nullptr;
  }

  void SetUp() override { ASSERT_TRUE(fs_->create_dirs(kDir)); }

  std::string path() const { return kDir + "/" + snapshot_name(kLsn); }

  Result<LoadedSnapshot> load(const std::string& bytes, State& into) {
    fs_->set_contents(path(), bytes);
    return load_snapshot(*fs_, path(), into);
  }

  // Loads `bytes` into a fresh state and expects kCorruption.
  void expect_refused(const std::string& bytes, const std::string& what) {
    State into(kNode, kNode);
    auto r = load(bytes, into);
    ASSERT_FALSE(r) << what << " was accepted";
    EXPECT_EQ(r.status().code(), Code::kCorruption) << what << ": " << r.status().to_string();
  }

  static State* state_;
  static std::string* bytes_;
  std::shared_ptr<testing::MemFileSystem> fs_ = std::make_shared<testing::MemFileSystem>();
};

State* SnapshotTest::state_ = nullptr;
std::string* SnapshotTest::bytes_ = nullptr;

TEST_F(SnapshotTest, RoundTripRestoresEntriesTombstonesPeersAndCounters) {
  ASSERT_TRUE(write_snapshot(*fs_, kDir, kLsn, *bytes_));
  EXPECT_TRUE(fs_->exists(path()));
  EXPECT_FALSE(fs_->exists(path() + ".tmp")) << "the temp file was renamed into place";

  State loaded(kNode, kNode);
  auto r = load_snapshot(*fs_, path(), loaded);
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->lsn, kLsn);
  EXPECT_EQ(r->node, kNode);
  EXPECT_EQ(r->entries, static_cast<uint64_t>(kEntries));
  expect_same_state(loaded, *state_);
  EXPECT_GT(loaded.tombstones(), 0u) << "the fixture has tombstones";
  EXPECT_EQ(loaded.peers().size(), 3u);
  EXPECT_EQ(loaded.adopted_acks().size(), 3u);
  EXPECT_EQ(loaded.next_seq(), 1'000'000u);

  auto h = read_snapshot_header(*fs_, path());
  ASSERT_TRUE(h) << h.status().to_string();
  EXPECT_EQ(h->lsn, kLsn);
  EXPECT_EQ(h->node, kNode);
}

TEST_F(SnapshotTest, FixtureSpansSeveralOneMebibyteBlocks) {
  auto blocks = block_offsets(*bytes_);
  ASSERT_EQ(blocks.back(), bytes_->size()) << "blocks tile the file exactly";
  // meta, at least three entries blocks, footer
  EXPECT_GE(blocks.size() - 1, 5u);
}

TEST_F(SnapshotTest, EmptyStateRoundTrips) {
  State empty(kNode, kNode);
  State loaded(kNode, kNode);
  auto r = load(encode_snapshot(empty, 1), loaded);
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->entries, 0u);
  expect_same_state(loaded, empty);
}

TEST_F(SnapshotTest, SnapshotOfAnotherNodeIsRefused) {
  State other(kNode + 1, kNode + 1);
  OpSetEntry op;
  op.key = "k";
  op.entry.value = "v";
  op.entry.meta = Meta{kNode + 1, 1, 1, kNode + 1};
  (void)other.apply(op);
  State into(kNode, kNode);
  auto r = load(encode_snapshot(other, 9), into);
  ASSERT_FALSE(r) << "another node's snapshot was loaded";
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find(std::to_string(kNode + 1)), std::string::npos)
      << r.status().message();
  EXPECT_TRUE(into.kv().empty()) << "nothing of it reached the state";
}

TEST_F(SnapshotTest, TruncationAtBlockBoundariesAndElsewhereIsRefused) {
  const std::string& b = *bytes_;
  std::set<uint64_t> cuts = {0, 1, 8, 39, 40, 41, 47, 48, b.size() / 2, b.size() - 2, b.size() - 1};
  for (uint64_t at : block_offsets(b)) {
    for (int64_t d : {-1, 0, 1, 4, 8, 9}) {
      int64_t c = static_cast<int64_t>(at) + d;
      if (c >= 0 && static_cast<uint64_t>(c) < b.size()) cuts.insert(static_cast<uint64_t>(c));
    }
  }
  for (uint64_t n : cuts) expect_refused(b.substr(0, n), "a cut at " + std::to_string(n));
}

TEST_F(SnapshotTest, TrailingBytesAfterTheFooterAreRefused) {
  expect_refused(*bytes_ + std::string(1, '\0'), "a trailing zero byte");
  expect_refused(*bytes_ + *bytes_, "a doubled snapshot");
}

TEST_F(SnapshotTest, SingleByteFlipsAreRefused) {
  const std::string& b = *bytes_;
  std::set<uint64_t> offsets;
  for (uint64_t i = 0; i < 36; i++) offsets.insert(i);  // the checked header bytes
  for (uint64_t at : block_offsets(b)) {
    for (uint64_t d = 0; d < 10; d++) {
      if (at + d < b.size()) offsets.insert(at + d);  // block length, checksum, type
    }
  }
  uint64_t x = 12345;
  for (int i = 0; i < 150; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    offsets.insert((x >> 17) % b.size());
  }
  offsets.insert(b.size() - 1);
  for (uint64_t at : offsets) {
    std::string t = b;
    t[at] = static_cast<char>(t[at] ^ 0x10);
    expect_refused(t, "a flip at byte " + std::to_string(at));
  }
}

// The four padding bytes at the end of the header are not covered by its
// checksum; a flip there must at worst be harmless.
TEST_F(SnapshotTest, FlipInHeaderPaddingIsRefusedOrHarmless) {
  for (uint64_t at = 36; at < kSnapHeaderBytes; at++) {
    std::string t = *bytes_;
    t[at] = static_cast<char>(t[at] ^ 0x10);
    State into(kNode, kNode);
    auto r = load(t, into);
    if (r) {
      expect_same_state(into, *state_);
    } else {
      EXPECT_EQ(r.status().code(), Code::kCorruption);
    }
  }
}

TEST_F(SnapshotTest, BadMagicAndVersionAreRefused) {
  std::string t = *bytes_;
  t[0] = 'X';
  expect_refused(t, "bad magic");
  t = *bytes_;
  std::string v;
  put_u32(v, kSnapVersion + 1);
  t.replace(8, 4, v);
  std::string c;
  put_u32(c, checksum32(std::string_view(t).substr(0, 32)));
  t.replace(32, 4, c);
  expect_refused(t, "version 2 with a valid header checksum");
}

TEST(SnapshotNames, RoundTripAndOthersAreRejected) {
  EXPECT_EQ(snapshot_name(7), "snap-00000000000000000007.snap");
  EXPECT_EQ(parse_snapshot_name(snapshot_name(7)), 7u);
  EXPECT_EQ(parse_snapshot_name(snapshot_name(UINT64_MAX)), UINT64_MAX);
  EXPECT_EQ(parse_snapshot_name(snapshot_name(7) + ".tmp"), 0u);
  EXPECT_EQ(parse_snapshot_name("wal-00000000000000000007.log"), 0u);
}

}  // namespace
}  // namespace wavekv
