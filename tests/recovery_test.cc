// Opening a data directory after damage, through wavekv::Store::open: what is
// kept, what is cut, what is reported, and what is refused.
#include "store/recovery.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "store/snapshot.h"
#include "store/wal.h"
#include "testing/mem_fs.h"
#include "util/coding.h"
#include "wavekv/store.h"
#include "wavekv/tools.h"

namespace wavekv {
namespace {

constexpr NodeId kNode = 7;
const std::string kDir = "/db";

std::string key(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "key%04d", i);
  return buf;
}
std::string value(int i, size_t pad = 40) {
  return "value-" + std::to_string(i) + "-" + std::string(pad, static_cast<char>('a' + i % 26));
}

Config mem_config(const std::shared_ptr<testing::MemFileSystem>& fs, bool preallocate = false) {
  Config c;
  c.data_dir = kDir;
  c.node_id = kNode;
  c.fs = fs;
  c.wal_segment_bytes = 4096;
  c.wal_preallocate = preallocate;
  c.checkpoint_wal_bytes = 0;  // checkpoints only when a test asks
  return c;
}

std::unique_ptr<Store> open_ok(const Config& c) {
  auto s = Store::open(c);
  EXPECT_TRUE(s) << "open failed: " << s.status().to_string();
  return s ? std::move(s).value() : nullptr;
}

std::string seg_path(uint64_t first_lsn) { return kDir + "/" + wal_segment_name(first_lsn); }
std::string snap_path(uint64_t lsn) { return kDir + "/" + snapshot_name(lsn); }

std::vector<std::string> names(testing::MemFileSystem& fs) {
  auto n = fs.list_dir(kDir);
  EXPECT_TRUE(n);
  std::vector<std::string> v = n ? *n : std::vector<std::string>{};
  std::sort(v.begin(), v.end());
  return v;
}

bool has_name(testing::MemFileSystem& fs, const std::string& name) {
  auto v = names(fs);
  return std::find(v.begin(), v.end(), name) != v.end();
}

// Every file of the data directory with its bytes.
std::map<std::string, std::string> files(testing::MemFileSystem& fs) {
  std::map<std::string, std::string> out;
  for (const auto& n : names(fs)) out[n] = fs.contents(kDir + "/" + n);
  return out;
}

std::vector<uint64_t> wal_segments(testing::MemFileSystem& fs) {
  std::vector<uint64_t> out;
  for (const auto& n : names(fs)) {
    if (uint64_t lsn = parse_wal_segment_name(n)) out.push_back(lsn);
  }
  return out;
}

std::vector<uint64_t> snapshots(testing::MemFileSystem& fs) {
  std::vector<uint64_t> out;
  for (const auto& n : names(fs)) {
    if (uint64_t lsn = parse_snapshot_name(n)) out.push_back(lsn);
  }
  return out;
}

// Where a WAL record lies: [start, end) of segment `segment`.
struct Rec {
  uint64_t lsn = 0;
  uint64_t segment = 0;
  uint64_t start = 0;
  uint64_t end = 0;
};

std::vector<Rec> records(testing::MemFileSystem& fs, uint64_t segment) {
  std::string data = fs.contents(seg_path(segment));
  std::vector<Rec> out;
  uint64_t pos = kWalHeaderBytes;
  while (pos + kRecordHeaderBytes + 8 <= data.size()) {
    uint32_t len = load_u32(data.data() + pos);
    if (len == 0 || pos + kRecordHeaderBytes + len > data.size()) break;
    Rec r;
    r.lsn = load_u64(data.data() + pos + kRecordHeaderBytes);
    r.segment = segment;
    r.start = pos;
    r.end = pos + kRecordHeaderBytes + len;
    out.push_back(r);
    pos = r.end;
  }
  return out;
}

void flip(testing::MemFileSystem& fs, const std::string& path, uint64_t at) {
  std::string d = fs.contents(path);
  ASSERT_LT(at, d.size()) << path;
  d[at] = static_cast<char>(d[at] ^ 0x5a);
  fs.set_contents(path, d);
}

// Blocking puts from one thread: key(i) is WAL record LSN i + 1.
void put_keys(Store& s, int from, int to, size_t pad = 40) {
  for (int i = from; i < to; i++) ASSERT_TRUE(s.put(key(i), value(i, pad))) << key(i);
}

void expect_keys(Store& s, int from, int to, size_t pad = 40) {
  for (int i = from; i < to; i++) {
    auto v = s.get(key(i));
    ASSERT_TRUE(v) << key(i) << " is missing: " << v.status().to_string();
    EXPECT_EQ(*v, value(i, pad)) << key(i);
  }
}

void expect_absent(Store& s, int from, int to) {
  for (int i = from; i < to; i++) {
    EXPECT_EQ(s.get(key(i)).status().code(), Code::kNotFound) << key(i) << " should be gone";
  }
}

class RecoveryTest : public ::testing::Test {
 protected:
  std::shared_ptr<testing::MemFileSystem> fs_ = std::make_shared<testing::MemFileSystem>();
};

// --- (a) A damaged WAL tail is cut off on open and reported, never appended
// past (ARCHITECTURE.md, "Invariants": never append after garbage). ---------

TEST_F(RecoveryTest, DamagedTailIsCutReportedAndNeverAppendedPast) {
  for (bool preallocate : {false, true}) {
    SCOPED_TRACE(preallocate ? "preallocated segments" : "segments grown by writes");
    fs_ = std::make_shared<testing::MemFileSystem>();
    Config c = mem_config(fs_, preallocate);
    const int n = 20;
    {
      auto s = open_ok(c);
      ASSERT_TRUE(s);
      put_keys(*s, 0, n);
      ASSERT_TRUE(s->close());
    }
    uint64_t last_seg = wal_segments(*fs_).back();
    auto recs = records(*fs_, last_seg);
    ASSERT_FALSE(recs.empty());
    Rec last = recs.back();
    ASSERT_EQ(last.lsn, static_cast<uint64_t>(n)) << "the last record holds key(n-1)";
    uint64_t size_before = fs_->contents(seg_path(last_seg)).size();
    flip(*fs_, seg_path(last_seg), last.end - 1);  // a byte of its value: checksum mismatch

    {
      auto s = open_ok(c);
      ASSERT_TRUE(s);
      expect_keys(*s, 0, n - 1);
      expect_absent(*s, n - 1, n);
      RecoveryReport r = s->status().recovery;
      EXPECT_NE(r.wal_damage, "") << "the damage is reported";
      EXPECT_NE(r.wal_damage.find("checksum"), std::string::npos) << r.wal_damage;
      EXPECT_EQ(r.wal_bytes_cut, size_before - last.start)
          << "everything from the damaged record on was cut";
      EXPECT_FALSE(r.clean());
      EXPECT_EQ(s->status().last_lsn, static_cast<uint64_t>(n - 1));
      std::string after = fs_->contents(seg_path(last_seg));
      EXPECT_EQ(after.find_first_not_of('\0', last.start), std::string::npos)
          << "the garbage is gone from the segment";

      ASSERT_TRUE(s->put("new", "value written after the cut"));
      ASSERT_TRUE(s->close());
    }
    auto s = open_ok(c);
    ASSERT_TRUE(s);
    auto v = s->get("new");
    ASSERT_TRUE(v) << "a write after the cut was lost: it went after garbage";
    EXPECT_EQ(*v, "value written after the cut");
    expect_keys(*s, 0, n - 1);
    RecoveryReport r = s->status().recovery;
    EXPECT_TRUE(r.clean()) << "no damage is left behind: " << r.wal_damage;
    EXPECT_EQ(r.wal_bytes_cut, 0u);
  }
}

TEST_F(RecoveryTest, TornLastRecordIsCutAndReported) {
  Config c = mem_config(fs_);
  {
    auto s = open_ok(c);
    ASSERT_TRUE(s);
    put_keys(*s, 0, 10);
  }
  uint64_t seg = wal_segments(*fs_).back();
  Rec last = records(*fs_, seg).back();
  std::string d = fs_->contents(seg_path(seg));
  fs_->set_contents(seg_path(seg), d.substr(0, last.start + 11));  // a torn write
  {
    auto s = open_ok(c);
    ASSERT_TRUE(s);
    expect_keys(*s, 0, 9);
    expect_absent(*s, 9, 10);
    EXPECT_NE(s->status().recovery.wal_damage, "");
    EXPECT_EQ(s->status().recovery.wal_bytes_cut, 11u);
    ASSERT_TRUE(s->put("new", "v"));
  }
  auto s = open_ok(c);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->get("new"));
  EXPECT_TRUE(s->status().recovery.clean()) << s->status().recovery.wal_damage;
}

// --- (b) Damage with intact records after it is not a torn tail ------------
// A crash loses only a suffix of what was written (a segment is fsynced before
// the next one starts, and its header before it gets its name). Damage that
// intact records follow is bit rot, a bad disk or a mistake: opening refuses
// and names it; `wavekv check --repair` (repair_data_dir) cuts there, keeping
// what it cuts.

TEST_F(RecoveryTest, DamageFollowedByIntactRecordsRefusesToOpenUntilRepaired) {
  Config c = mem_config(fs_);
  const int n = 48;
  const size_t pad = 300;  // ~11 records per 4 KiB segment
  {
    auto s = open_ok(c);
    ASSERT_TRUE(s);
    put_keys(*s, 0, n, pad);
  }
  auto segs = wal_segments(*fs_);
  ASSERT_GE(segs.size(), 4u);
  auto recs = records(*fs_, segs[1]);
  ASSERT_GE(recs.size(), 4u);
  Rec bad = recs[2];
  const uint64_t at = bad.start + kRecordHeaderBytes + 20;
  flip(*fs_, seg_path(segs[1]), at);
  auto before = files(*fs_);
  before.erase("LOCK");
  const int first_lost = static_cast<int>(bad.lsn) - 1;  // key index of the damaged record
  // Every record after the damaged one is intact: LSN bad+1 .. n.
  const uint64_t intact_after = static_cast<uint64_t>(n) - bad.lsn;

  auto refused = Store::open(c);
  ASSERT_FALSE(refused) << "damage with intact records after it was cut on open";
  EXPECT_EQ(refused.status().code(), Code::kCorruption);
  const std::string why = refused.status().message();
  EXPECT_NE(why.find(seg_path(segs[1])), std::string::npos) << "names the file: " << why;
  EXPECT_NE(why.find("at byte " + std::to_string(bad.start)), std::string::npos)
      << "names the offset: " << why;
  EXPECT_NE(why.find(std::to_string(intact_after) + " intact records (LSN " +
                     std::to_string(bad.lsn + 1) + ".." + std::to_string(n) + ")"),
            std::string::npos)
      << "counts what a cut would lose: " << why;
  EXPECT_NE(why.find("wavekv check --repair"), std::string::npos) << why;
  auto after_refusal = files(*fs_);
  after_refusal.erase("LOCK");
  EXPECT_EQ(after_refusal, before) << "a refused open changes nothing";

  auto checked = check_data_dir(c);
  ASSERT_TRUE(checked);
  EXPECT_FALSE(checked->refused);
  EXPECT_EQ(checked->recovery.wal_records_after_damage, intact_after);
  EXPECT_NE(checked->recovery.wal_corruption, "");

  auto repaired = repair_data_dir(c);
  ASSERT_TRUE(repaired) << repaired.status().to_string();
  EXPECT_TRUE(repaired->repaired);
  const std::string damaged_seg = wal_segment_name(segs[1]);
  ASSERT_TRUE(has_name(*fs_, damaged_seg + ".damaged")) << "the cut segment is kept";
  EXPECT_EQ(fs_->contents(kDir + "/" + damaged_seg + ".damaged"), before[damaged_seg])
      << "byte for byte, as it was before the cut";
  std::vector<std::string> expected_aside;
  for (size_t i = 2; i < segs.size(); i++) {
    std::string name = wal_segment_name(segs[i]);
    expected_aside.push_back(name + ".damaged");
    EXPECT_FALSE(has_name(*fs_, name)) << name << " is no longer a live segment";
    ASSERT_TRUE(has_name(*fs_, name + ".damaged")) << name << " was set aside";
    EXPECT_EQ(fs_->contents(kDir + "/" + name + ".damaged"), before[name])
        << name << " is kept byte for byte for forensics";
  }
  EXPECT_EQ(repaired->found.recovery.files_set_aside, expected_aside);
  EXPECT_EQ(wal_segments(*fs_), (std::vector<uint64_t>{segs[0], segs[1]}));

  {
    auto s = open_ok(c);
    ASSERT_TRUE(s);
    expect_keys(*s, 0, first_lost, pad);
    expect_absent(*s, first_lost, n);
    EXPECT_TRUE(s->status().recovery.clean()) << s->status().recovery.wal_damage;
    ASSERT_TRUE(s->put("new", "v"));
  }
  auto s = open_ok(c);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->get("new")) << "the write after the cut survives a reopen";
  expect_keys(*s, 0, first_lost, pad);
  for (const auto& name : expected_aside) EXPECT_TRUE(has_name(*fs_, name));
}

// The same damage in the last record of the log is a torn tail: cut on open.
// The two tests differ only in whether an intact record follows the damage.
TEST_F(RecoveryTest, DamageInTheLastRecordIsATornTailAndOneIntactRecordAfterItIsNot) {
  for (bool record_after : {false, true}) {
    SCOPED_TRACE(record_after ? "one intact record after the damage" : "damage at the end");
    fs_ = std::make_shared<testing::MemFileSystem>();
    Config c = mem_config(fs_, /*preallocate=*/true);
    const int n = 5;
    {
      auto s = open_ok(c);
      ASSERT_TRUE(s);
      put_keys(*s, 0, n);
    }
    uint64_t seg = wal_segments(*fs_).back();
    auto recs = records(*fs_, seg);
    ASSERT_EQ(recs.size(), static_cast<size_t>(n));
    const Rec victim = recs[record_after ? n - 2 : n - 1];
    flip(*fs_, seg_path(seg), victim.start + 1);  // its length: the record cannot be read
    auto s = Store::open(c);
    if (record_after) {
      ASSERT_FALSE(s);
      EXPECT_EQ(s.status().code(), Code::kCorruption);
      EXPECT_NE(s.status().message().find("1 intact record (LSN 5..5)"), std::string::npos)
          << s.status().message();
    } else {
      ASSERT_TRUE(s) << s.status().to_string();
      expect_keys(**s, 0, n - 1);
      expect_absent(**s, n - 1, n);
      EXPECT_NE((*s)->status().recovery.wal_damage, "");
      EXPECT_EQ((*s)->status().recovery.wal_corruption, "");
    }
  }
}

TEST_F(RecoveryTest, DamagedSegmentHeaderRefusesToOpenAndRepairRewritesItLosingNothing) {
  // The magic, the flags, the node id, the first LSN, the checksum itself.
  for (uint64_t at : {0u, 12u, 16u, 24u, 32u}) {
    SCOPED_TRACE("header byte " + std::to_string(at));
    fs_ = std::make_shared<testing::MemFileSystem>();
    Config c = mem_config(fs_);
    const int n = 48;
    const size_t pad = 300;
    uint64_t incarnation = 0;
    {
      auto s = open_ok(c);
      ASSERT_TRUE(s);
      put_keys(*s, 0, n, pad);
      incarnation = s->status().incarnation;
    }
    auto segs = wal_segments(*fs_);
    ASSERT_GE(segs.size(), 3u);
    flip(*fs_, seg_path(segs[1]), at);
    auto refused = Store::open(c);
    ASSERT_FALSE(refused) << "a damaged header was cut on open";
    EXPECT_EQ(refused.status().code(), Code::kCorruption);
    EXPECT_NE(refused.status().message().find(seg_path(segs[1])), std::string::npos)
        << refused.status().message();
    EXPECT_NE(refused.status().message().find("rewrites the header and loses nothing"),
              std::string::npos)
        << refused.status().message();

    auto repaired = repair_data_dir(c);
    ASSERT_TRUE(repaired) << repaired.status().to_string();
    EXPECT_TRUE(repaired->repaired);
    auto s = open_ok(c);
    ASSERT_TRUE(s);
    expect_keys(*s, 0, n, pad);
    EXPECT_TRUE(s->status().recovery.clean()) << s->status().recovery.wal_damage;
    EXPECT_EQ(s->status().incarnation, incarnation) << "nothing was lost, so no new stream";
  }
}

TEST_F(RecoveryTest, SegmentOfANewerFormatVersionIsRefusedAndNeverCut) {
  Config c = mem_config(fs_);
  {
    auto s = open_ok(c);
    ASSERT_TRUE(s);
    put_keys(*s, 0, 48, 300);
  }
  auto segs = wal_segments(*fs_);
  ASSERT_GE(segs.size(), 3u);
  // A well-formed header of the next version, as a newer WaveKV would write.
  std::string d = fs_->contents(seg_path(segs[1]));
  std::string head = d.substr(0, 32);
  head[8] = static_cast<char>(kWalVersion + 1);
  std::string fixed = head;
  put_u32(fixed, checksum32(head));
  d.replace(0, 36, fixed);
  fs_->set_contents(seg_path(segs[1]), d);
  auto before = files(*fs_);
  before.erase("LOCK");

  auto s = Store::open(c);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.status().code(), Code::kCorruption);
  EXPECT_NE(
      s.status().message().find("version " + std::to_string(kWalVersion + 1) + " is not supported"),
      std::string::npos)
      << s.status().message();
  auto repaired = repair_data_dir(c);
  ASSERT_TRUE(repaired);
  EXPECT_TRUE(repaired->found.refused) << "a repair must not cut what a newer version wrote";
  EXPECT_FALSE(repaired->repaired);
  auto after = files(*fs_);
  after.erase("LOCK");
  EXPECT_EQ(after, before);
}

// --- (c), (d) Snapshots -------------------------------------------------------

// a0..a9 (LSN 1-10), checkpoint, b (11-20), checkpoint, c (21-25).
void write_with_two_checkpoints(const Config& c) {
  auto s = open_ok(c);
  ASSERT_TRUE(s);
  put_keys(*s, 0, 10);
  ASSERT_TRUE(s->checkpoint());
  put_keys(*s, 10, 20);
  ASSERT_TRUE(s->checkpoint());
  put_keys(*s, 20, 25);
  ASSERT_TRUE(s->close());
}

TEST_F(RecoveryTest, CorruptNewestSnapshotFallsBackToThePreviousOnePlusTheWal) {
  Config c = mem_config(fs_);
  write_with_two_checkpoints(c);
  ASSERT_EQ(snapshots(*fs_), (std::vector<uint64_t>{10, 20}));
  ASSERT_LE(wal_segments(*fs_).front(), 11u) << "the WAL reaches back to the fallback";
  std::string newest = fs_->contents(snap_path(20));
  flip(*fs_, snap_path(20), newest.size() / 2);

  auto s = open_ok(c);
  ASSERT_TRUE(s);
  expect_keys(*s, 0, 25);
  RecoveryReport r = s->status().recovery;
  ASSERT_EQ(r.snapshots_skipped.size(), 1u);
  EXPECT_NE(r.snapshots_skipped[0].find(snapshot_name(20)), std::string::npos)
      << r.snapshots_skipped[0];
  EXPECT_EQ(r.snapshot_lsn, 10u) << "recovery started from the fallback";
  EXPECT_EQ(r.wal_records_replayed, 15u) << "LSNs 11..25 were replayed";
  EXPECT_EQ(r.wal_damage, "");
  EXPECT_EQ(s->status().last_lsn, 25u);
}

TEST_F(RecoveryTest, IntactNewestSnapshotReplaysOnlyTheRecordsAfterIt) {
  Config c = mem_config(fs_);
  write_with_two_checkpoints(c);
  auto s = open_ok(c);
  ASSERT_TRUE(s);
  expect_keys(*s, 0, 25);
  RecoveryReport r = s->status().recovery;
  EXPECT_TRUE(r.clean());
  EXPECT_EQ(r.snapshot_lsn, 20u);
  EXPECT_EQ(r.wal_records_replayed, 5u);
}

TEST_F(RecoveryTest, AllSnapshotsCorruptAndWalNotReachingLsnOneIsRefusedWithoutChanges) {
  Config c = mem_config(fs_);
  write_with_two_checkpoints(c);
  auto segs = wal_segments(*fs_);
  ASSERT_FALSE(segs.empty());
  ASSERT_GT(segs.front(), 1u) << "the checkpoints dropped the start of the WAL";
  for (uint64_t lsn : snapshots(*fs_)) flip(*fs_, snap_path(lsn), 100);
  auto before = files(*fs_);

  auto s = Store::open(c);
  ASSERT_FALSE(s) << "opened with keys missing instead of refusing";
  EXPECT_EQ(s.status().code(), Code::kCorruption) << s.status().to_string();
  EXPECT_EQ(files(*fs_), before) << "a refused open changes nothing";
}

TEST_F(RecoveryTest, CorruptOnlySnapshotIsRebuiltFromAWalThatReachesBackToLsnOne) {
  Config c = mem_config(fs_);
  {
    auto s = open_ok(c);
    ASSERT_TRUE(s);
    put_keys(*s, 0, 10);
    ASSERT_TRUE(s->checkpoint());
    put_keys(*s, 10, 15);
  }
  ASSERT_EQ(wal_segments(*fs_).front(), 1u);
  ASSERT_EQ(snapshots(*fs_), std::vector<uint64_t>{10});
  flip(*fs_, snap_path(10), 60);
  auto s = open_ok(c);
  ASSERT_TRUE(s);
  expect_keys(*s, 0, 15);
  RecoveryReport r = s->status().recovery;
  EXPECT_EQ(r.snapshots_skipped.size(), 1u);
  EXPECT_EQ(r.snapshot_lsn, 0u);
  EXPECT_EQ(r.wal_records_replayed, 15u);
}

TEST_F(RecoveryTest, CorruptSnapshotWithNoWalAtAllIsRefused) {
  Config c = mem_config(fs_);
  write_with_two_checkpoints(c);
  for (uint64_t lsn : wal_segments(*fs_)) ASSERT_TRUE(fs_->remove(seg_path(lsn)));
  for (uint64_t lsn : snapshots(*fs_)) flip(*fs_, snap_path(lsn), 50);
  auto s = Store::open(c);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.status().code(), Code::kCorruption);
}

// --- (e) Another node's directory ---------------------------------------------

TEST_F(RecoveryTest, DirectoryOfAnotherNodeIsRefusedAndLeftByteIdentical) {
  Config c = mem_config(fs_);
  write_with_two_checkpoints(c);
  // Leftovers that a successful open would remove or repair.
  fs_->set_contents(seg_path(99) + ".tmp", "partial");
  auto before = files(*fs_);
  ASSERT_TRUE(before.count("IDENTITY"));

  Config other = c;
  other.node_id = kNode + 1;
  auto s = Store::open(other);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.status().code(), Code::kWrongNode) << s.status().to_string();
  EXPECT_EQ(files(*fs_), before) << "nothing in the directory changed";

  // The recorded id is still accepted, and 0 means "whatever is recorded".
  Config any = c;
  any.node_id = 0;
  auto ok = open_ok(any);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->node_id(), kNode);
  expect_keys(*ok, 0, 25);
}

TEST_F(RecoveryTest, WithoutIdentityTheWalAndSnapshotHeadersStillNameTheNode) {
  Config c = mem_config(fs_);
  write_with_two_checkpoints(c);
  ASSERT_TRUE(fs_->remove(kDir + "/IDENTITY"));
  auto before = files(*fs_);
  Config other = c;
  other.node_id = kNode + 1;
  auto s = Store::open(other);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.status().code(), Code::kWrongNode) << s.status().to_string();
  EXPECT_EQ(files(*fs_), before);
}

TEST_F(RecoveryTest, WalSegmentOfAnotherNodeInTheDirectoryIsRefused) {
  Config c = mem_config(fs_);
  {
    auto s = open_ok(c);
    ASSERT_TRUE(s);
    put_keys(*s, 0, 5);
  }
  // A segment that continues the log, written by node 8.
  fs_->set_contents(seg_path(6), encode_wal_header(kNode + 1, 6));
  auto before = files(*fs_);
  auto s = Store::open(c);
  ASSERT_FALSE(s) << "another node's segment was accepted";
  EXPECT_EQ(s.status().code(), Code::kWrongNode) << s.status().to_string();
  EXPECT_EQ(files(*fs_), before);
}

// --- (f) One process at a time -----------------------------------------------

TEST_F(RecoveryTest, SecondOpenWhileTheFirstIsOpenIsBusy) {
  Config c = mem_config(fs_);
  auto first = open_ok(c);
  ASSERT_TRUE(first);
  auto second = Store::open(c);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.status().code(), Code::kBusy) << second.status().to_string();
  ASSERT_TRUE(first->put("k", "v")) << "the first store is unaffected";
  ASSERT_TRUE(first->close());
  auto third = open_ok(c);
  ASSERT_TRUE(third) << "closing releases the directory";
  EXPECT_EQ(*third->get("k"), "v");
}

// --- (g) Leftover temp files ---------------------------------------------------

TEST_F(RecoveryTest, LeftoverTempFilesDoNotStopOpenAndAreRemoved) {
  Config c = mem_config(fs_, /*preallocate=*/true);
  {
    auto s = open_ok(c);
    ASSERT_TRUE(s);
    put_keys(*s, 0, 10);
    ASSERT_TRUE(s->checkpoint());
    put_keys(*s, 10, 12);
  }
  // A crash while creating the next segment, while writing a snapshot, and
  // while writing IDENTITY.
  std::vector<std::string> tmps = {wal_segment_name(13) + ".tmp", snapshot_name(12) + ".tmp",
                                   "IDENTITY.tmp"};
  fs_->set_contents(kDir + "/" + tmps[0], encode_wal_header(kNode, 13).substr(0, 20));
  fs_->set_contents(kDir + "/" + tmps[1], "WAVEKVSN garbage");
  fs_->set_contents(kDir + "/" + tmps[2], "wavekv-identity 1\nnode 99");
  {
    auto s = open_ok(c);
    ASSERT_TRUE(s);
    expect_keys(*s, 0, 12);
    EXPECT_EQ(s->node_id(), kNode) << "IDENTITY.tmp is not read";
    EXPECT_TRUE(s->status().recovery.clean());
    for (const auto& t : tmps) EXPECT_FALSE(has_name(*fs_, t)) << t << " was removed";
    ASSERT_TRUE(s->put("new", "v"));
    put_keys(*s, 12, 30);  // rolls into new segments
  }
  auto s = open_ok(c);
  ASSERT_TRUE(s);
  expect_keys(*s, 0, 30);
  EXPECT_TRUE(s->get("new"));
  EXPECT_TRUE(s->status().recovery.clean());
}

// --- (h) Random damage ---------------------------------------------------------

TEST_F(RecoveryTest, RandomDamageSweepKeepsEveryRecordBeforeTheDamage) {
  int opened = 0, refused = 0, reported = 0, lost_some = 0, with_snapshot = 0;
  int refused_until_repaired = 0, torn_tails_cut = 0;
  for (uint64_t seed = 1; seed <= 120; seed++) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    fs_ = std::make_shared<testing::MemFileSystem>();
    Config c = mem_config(fs_, /*preallocate=*/seed % 2 == 0);
    const int n = 20 + static_cast<int>(rng() % 30);
    std::vector<std::string> values(n);
    int checkpoints = static_cast<int>(rng() % 3);
    {
      auto s = open_ok(c);
      ASSERT_TRUE(s);
      for (int i = 0; i < n; i++) {
        values[i] = value(i, 1 + rng() % 600);
        ASSERT_TRUE(s->put(key(i), values[i]));
        if (checkpoints > 0 && rng() % 10 == 0) {
          ASSERT_TRUE(s->checkpoint());
          checkpoints--;
        }
      }
      ASSERT_TRUE(s->close());
    }
    // Where each record lies, before the damage.
    auto segs = wal_segments(*fs_);
    auto snaps = snapshots(*fs_);
    std::map<uint64_t, Rec> where;  // by LSN
    for (uint64_t seg : segs) {
      for (const Rec& r : records(*fs_, seg)) where[r.lsn] = r;
    }
    std::vector<std::string> victims;
    for (uint64_t seg : segs) victims.push_back(seg_path(seg));
    for (uint64_t snap : snaps) victims.push_back(snap_path(snap));
    const std::string victim = victims[rng() % victims.size()];
    const bool victim_is_wal = parse_wal_segment_name(victim.substr(kDir.size() + 1)) != 0;
    std::string data = fs_->contents(victim);
    ASSERT_FALSE(data.empty());
    uint64_t limit = data.size();
    if (victim_is_wal && rng() % 2 == 0) {
      // Aim at the records rather than the zero tail.
      uint64_t seg = parse_wal_segment_name(victim.substr(kDir.size() + 1));
      auto recs = records(*fs_, seg);
      uint64_t end = recs.empty() ? kWalHeaderBytes : recs.back().end;
      limit = std::min<uint64_t>(data.size(), end + 16);
    }
    const uint64_t at = rng() % limit;
    const bool truncate = rng() % 2 == 0;
    SCOPED_TRACE((truncate ? "truncate " : "flip byte of ") + victim + " at " + std::to_string(at) +
                 " of " + std::to_string(data.size()));
    if (truncate) {
      data.resize(at);
    } else {
      data[at] = static_cast<char>(data[at] ^ (1 + rng() % 255));
    }
    fs_->set_contents(victim, data);

    // What must survive: everything the newest undamaged snapshot covers, and
    // every record that lies wholly before the damage in log order.
    uint64_t good_snap = 0;
    for (uint64_t snap : snaps) {
      if (snap_path(snap) != victim) good_snap = std::max(good_snap, snap);
    }
    uint64_t victim_seg =
        victim_is_wal ? parse_wal_segment_name(victim.substr(kDir.size() + 1)) : 0;
    auto required = [&](uint64_t lsn) {
      if (lsn <= good_snap || !victim_is_wal) return true;
      auto it = where.find(lsn);
      if (it == where.end()) return false;  // only in a snapshot
      const Rec& r = it->second;
      return r.segment < victim_seg || (r.segment == victim_seg && r.end <= at);
    };

    // A single damaged file always leaves a way back: the other snapshot, or
    // a WAL that still starts at LSN 1.
    bool other_snapshot = false;
    for (uint64_t snap : snaps) other_snapshot |= snap_path(snap) != victim;
    const bool fallback = victim_is_wal || other_snapshot || segs.front() == 1;

    // WAL damage is a torn tail, cut on open, only if no intact record above
    // the snapshot lies after it; else the open refuses until repaired. A
    // segment wholly covered by the snapshot is not read, and the header's
    // padding (bytes 36..39) is not checked.
    auto end_of_records = [&](uint64_t seg) {
      uint64_t end = kWalHeaderBytes;
      for (const auto& [lsn, r] : where)
        if (r.segment == seg) end = std::max(end, r.end);
      return end;
    };
    bool not_torn = false;
    if (victim_is_wal && !truncate && at >= 32 + 4 && at < kWalHeaderBytes) {
      // padding: no damage at all
    } else if (victim_is_wal && truncate && at >= end_of_records(victim_seg)) {
      // only zeros past the last record were cut: no damage at all
    } else if (victim_is_wal) {
      auto next = std::upper_bound(segs.begin(), segs.end(), victim_seg);
      const bool covered = next != segs.end() && *next <= good_snap + 1;
      for (const auto& [lsn, r] : where) {
        if (covered || lsn <= good_snap) continue;
        if (r.segment > victim_seg || (r.segment == victim_seg && !truncate && r.start > at))
          not_torn = true;
      }
    }

    auto before_open = files(*fs_);
    auto s = Store::open(c);
    if (!s && not_torn) {
      // Refused, changing nothing; the repair cuts, and then it opens.
      EXPECT_EQ(s.status().code(), Code::kCorruption) << s.status().to_string();
      EXPECT_NE(s.status().message().find("wavekv check --repair"), std::string::npos);
      EXPECT_EQ(files(*fs_), before_open) << "a refused open changed the directory";
      refused_until_repaired++;
      reported++;
      auto repaired = repair_data_dir(c);
      ASSERT_TRUE(repaired) << repaired.status().to_string();
      ASSERT_TRUE(repaired->repaired);
      s = Store::open(c);
      ASSERT_TRUE(s) << "the repaired directory does not open: " << s.status().to_string();
    } else if (!s) {
      EXPECT_EQ(s.status().code(), Code::kCorruption) << s.status().to_string();
      EXPECT_FALSE(victim_is_wal) << "a torn WAL tail must never stop an open: "
                                  << s.status().to_string();
      EXPECT_FALSE(fallback) << "refused although a fallback was there: " << s.status().to_string();
      refused++;
      continue;
    } else {
      EXPECT_FALSE(not_torn) << "damage with intact records after it was cut on open";
      EXPECT_EQ((*s)->status().recovery.wal_corruption, "");
      if (!(*s)->status().recovery.wal_damage.empty()) torn_tails_cut++;
    }
    opened++;
    if (!(*s)->status().recovery.clean()) reported++;
    if (!snaps.empty()) with_snapshot++;
    std::map<std::string, std::string> present;
    for (int i = 0; i < n; i++) {
      auto v = (*s)->get(key(i));
      if (v) {
        EXPECT_EQ(*v, values[i]) << key(i) << " came back with another value";
        present[key(i)] = *v;
      } else {
        EXPECT_EQ(v.status().code(), Code::kNotFound);
        EXPECT_FALSE(required(static_cast<uint64_t>(i) + 1))
            << key(i) << " (LSN " << i + 1 << ") lay wholly before the damage but is gone";
      }
    }
    if (static_cast<int>(present.size()) < n) lost_some++;
    // Whatever was cut, new writes land after the cut and survive.
    ASSERT_TRUE((*s)->put("after", "damage"));
    if (rng() % 2 == 0) {
      ASSERT_TRUE((*s)->checkpoint());
    }
    ASSERT_TRUE((*s)->put("after2", "damage"));
    ASSERT_TRUE((*s)->close());
    auto again = open_ok(c);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status().recovery.wal_damage, "") << "the first open left damage behind";
    EXPECT_TRUE(again->get("after")) << "a write after recovery was lost";
    EXPECT_TRUE(again->get("after2")) << "a write after recovery was lost";
    for (const auto& [k, v] : present) {
      auto got = again->get(k);
      EXPECT_TRUE(got && *got == v) << k << " did not survive the second open";
    }
  }
  // The sweep must exercise what it claims to: damage that is reported and
  // loses records, with and without snapshots.
  EXPECT_GT(opened, 90) << "refused " << refused;
  EXPECT_GT(reported, 40) << "opens that reported damage";
  EXPECT_GT(lost_some, 25) << "opens that lost the records after the damage";
  EXPECT_GT(with_snapshot, 30) << "cases with a checkpoint";
  EXPECT_GT(refused_until_repaired, 30) << "damage with intact records after it";
  EXPECT_GT(torn_tails_cut, 8) << "torn tails cut on open";
  std::printf("sweep: %d opened, %d refused until repaired, %d torn tails cut, %d refused\n",
              opened, refused_until_repaired, torn_tails_cut, refused);
}

// --- The real file system -------------------------------------------------------

class PosixRecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/wavekv-recovery-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/db";
  }
  void TearDown() override {
    std::error_code ec;
    if (!root_.empty()) std::filesystem::remove_all(root_, ec);
  }
  Config config() const {
    Config c;
    c.data_dir = dir_;
    c.node_id = kNode;
    c.fs = posix_filesystem();
    c.wal_segment_bytes = 64 * 1024;
    c.durability = Durability::kNone;  // close() still fsyncs
    c.checkpoint_wal_bytes = 0;
    return c;
  }
  std::string root_;
  std::string dir_;
};

TEST_F(PosixRecoveryTest, OpenPutReopenAndTheLockIsExclusiveWithinOneProcess) {
  Config c = config();
  {
    auto s = open_ok(c);
    ASSERT_TRUE(s);
    put_keys(*s, 0, 30);
    auto second = Store::open(c);
    ASSERT_FALSE(second) << "flock is per open file description: a second open must be refused";
    EXPECT_EQ(second.status().code(), Code::kBusy) << second.status().to_string();
    ASSERT_TRUE(s->put("still", "writable"));
    ASSERT_TRUE(s->close());
  }
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/IDENTITY"));
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/" + wal_segment_name(1)));
  auto s = open_ok(c);
  ASSERT_TRUE(s) << "the lock was released by close";
  expect_keys(*s, 0, 30);
  EXPECT_EQ(*s->get("still"), "writable");
  EXPECT_TRUE(s->status().recovery.clean());
}

TEST_F(PosixRecoveryTest, DamagedTailOnDiskIsCutAndNewWritesSurvive) {
  Config c = config();
  {
    auto s = open_ok(c);
    ASSERT_TRUE(s);
    put_keys(*s, 0, 10);
  }
  auto fs = posix_filesystem();
  std::string path = dir_ + "/" + wal_segment_name(1);
  auto data = read_file(*fs, path);
  ASSERT_TRUE(data);
  // The last record: walk the records from the header.
  uint64_t pos = kWalHeaderBytes, last = 0;
  while (pos + kRecordHeaderBytes <= data->size() && load_u32(data->data() + pos) != 0) {
    last = pos;
    pos += kRecordHeaderBytes + load_u32(data->data() + pos);
  }
  ASSERT_GT(last, 0u);
  {
    auto f = fs->open_writable(path, false);
    ASSERT_TRUE(f);
    ASSERT_TRUE((*f)->write_at(pos - 1, std::string(1, static_cast<char>((*data)[pos - 1] ^ 1))));
    ASSERT_TRUE((*f)->close());
  }
  {
    auto s = open_ok(c);
    ASSERT_TRUE(s);
    expect_keys(*s, 0, 9);
    expect_absent(*s, 9, 10);
    EXPECT_NE(s->status().recovery.wal_damage, "");
    ASSERT_TRUE(s->put("new", "v"));
  }
  auto s = open_ok(c);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->get("new"));
  expect_keys(*s, 0, 9);
  EXPECT_TRUE(s->status().recovery.clean()) << s->status().recovery.wal_damage;
}

}  // namespace
}  // namespace wavekv
