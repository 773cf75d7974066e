// The write-ahead log (src/storage/wal.h) on the in-memory file system:
// framing, segment rolling, headers, and how a reader treats damage.
#include "store/wal.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "testing/mem_fs.h"
#include "util/coding.h"

namespace wavekv {
namespace {

constexpr NodeId kNode = 7;
const std::string kDir = "/db";

std::vector<StateOp> ops_for(uint64_t i, size_t value_bytes) {
  OpSetEntry op;
  op.key = "key" + std::to_string(i);
  op.entry.value = std::string(value_bytes, static_cast<char>('a' + i % 26));
  op.entry.meta = Meta{kNode, i, 1000 + i, kNode};
  return {op};
}

std::string frame(uint64_t lsn, const std::vector<StateOp>& ops) {
  std::string enc;
  encode_ops(ops, enc);
  std::string framed;
  encode_wal_record(lsn, enc, framed);
  return framed;
}

std::string seg_path(uint64_t first_lsn) { return kDir + "/" + wal_segment_name(first_lsn); }

struct Scanned {
  SegmentScan scan;
  std::vector<uint64_t> lsns;
  std::vector<std::vector<StateOp>> ops;
};

Scanned scan(testing::MemFileSystem& fs, const std::string& path) {
  Scanned out;
  auto r = scan_wal_segment(fs, path, [&](uint64_t lsn, std::vector<StateOp>&& ops) {
    out.lsns.push_back(lsn);
    out.ops.push_back(std::move(ops));
  });
  EXPECT_TRUE(r) << "scan of " << path << " errored: " << r.status().to_string();
  if (r) out.scan = *r;
  return out;
}

std::vector<uint64_t> iota_lsns(uint64_t first, uint64_t count) {
  std::vector<uint64_t> v;
  for (uint64_t i = 0; i < count; i++) v.push_back(first + i);
  return v;
}

// The start offset of every record of a segment, then the end of the last one.
std::vector<uint64_t> record_offsets(const std::string& data) {
  std::vector<uint64_t> offsets;
  uint64_t pos = kWalHeaderBytes;
  while (pos + kRecordHeaderBytes <= data.size()) {
    uint32_t len = load_u32(data.data() + pos);
    if (len == 0) break;
    offsets.push_back(pos);
    pos += kRecordHeaderBytes + len;
  }
  offsets.push_back(pos);
  return offsets;
}

class WalTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fs_->create_dirs(kDir)); }

  std::unique_ptr<WalWriter> new_writer(uint64_t segment_bytes, bool preallocate) {
    WalWriter::Options o;
    o.dir = kDir;
    o.node = kNode;
    o.segment_bytes = segment_bytes;
    o.preallocate = preallocate;
    auto w = WalWriter::open(*fs_, o, 0, 0, 1);
    EXPECT_TRUE(w) << w.status().to_string();
    return w ? std::move(w).value() : nullptr;
  }

  // Appends records next_lsn().. with values of `value_bytes` each.
  void append(WalWriter& w, int count, size_t value_bytes) {
    for (int i = 0; i < count; i++) {
      uint64_t lsn = w.next_lsn();
      ASSERT_TRUE(w.append(frame(lsn, ops_for(lsn, value_bytes)), lsn));
    }
  }

  std::vector<uint64_t> segments() {
    auto names = fs_->list_dir(kDir);
    EXPECT_TRUE(names);
    std::vector<uint64_t> out;
    for (const auto& n : *names) {
      if (uint64_t lsn = parse_wal_segment_name(n)) out.push_back(lsn);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  std::shared_ptr<testing::MemFileSystem> fs_ = std::make_shared<testing::MemFileSystem>();
};

// --- Writing and reading back --------------------------------------------------

TEST_F(WalTest, RecordsReadBackInOrderWithTheirLsnsAndOps) {
  auto w = new_writer(1 << 20, /*preallocate=*/true);
  ASSERT_TRUE(w);
  uint64_t framed_bytes = 0;
  std::vector<std::vector<StateOp>> written;
  for (uint64_t lsn = 1; lsn <= 20; lsn++) {
    auto ops = ops_for(lsn, lsn * 7);
    if (lsn % 3 == 0) ops.push_back(OpRemovePeer{lsn});  // several ops in one record
    std::string f = frame(lsn, ops);
    framed_bytes += f.size();
    ASSERT_TRUE(w->append(f, lsn));
    written.push_back(ops);
  }
  ASSERT_TRUE(w->sync());
  EXPECT_EQ(w->next_lsn(), 21u);
  EXPECT_EQ(w->bytes_written(), framed_bytes);
  EXPECT_EQ(segments(), std::vector<uint64_t>{1});

  auto s = scan(*fs_, seg_path(1));
  EXPECT_EQ(s.lsns, iota_lsns(1, 20));
  EXPECT_EQ(s.ops, written);
  EXPECT_EQ(s.scan.records, 20u);
  EXPECT_EQ(s.scan.last_lsn, 20u);
  EXPECT_EQ(s.scan.header.node, kNode);
  EXPECT_EQ(s.scan.header.first_lsn, 1u);
  EXPECT_EQ(s.scan.valid_bytes, kWalHeaderBytes + framed_bytes);
  EXPECT_EQ(s.scan.file_bytes, 1u << 20) << "the segment was preallocated";
  EXPECT_EQ(s.scan.damage, "") << "a preallocated zero tail is a clean end";
}

// Every op type the store may log must read back, or recovery would treat the
// record as damage and cut it and everything after it.
TEST_F(WalTest, RecordsOfEveryOpTypeReadBackWithoutDamage) {
  OpSetPeer peer;
  peer.peer = 3;
  peer.meta.address = "h:1";
  peer.meta.acked = {{kNode, 4}};
  std::vector<std::vector<StateOp>> batches = {
      ops_for(1, 10),
      {peer},
      {OpRemovePeer{3}},
      {OpDropTombstone{"k", Meta{kNode, 1, 2, kNode}}},
      {OpAdoptAcks{{{3, 9}, {4, 1}}}},
      {OpAdoptAcks{}},
      {OpAdoptAcks{{{3, 10}}}, ops_for(2, 10)[0], OpRemovePeer{4}},
  };
  auto w = new_writer(1 << 16, /*preallocate=*/true);
  ASSERT_TRUE(w);
  for (const auto& b : batches) {
    uint64_t lsn = w->next_lsn();
    ASSERT_TRUE(w->append(frame(lsn, b), lsn));
  }
  auto s = scan(*fs_, seg_path(1));
  EXPECT_EQ(s.scan.damage, "");
  EXPECT_EQ(s.lsns, iota_lsns(1, batches.size()));
  EXPECT_EQ(s.ops, batches);
}

TEST_F(WalTest, WriterResumesAnExistingSegmentAtTheGivenOffset) {
  uint64_t valid = 0;
  {
    auto w = new_writer(1 << 16, /*preallocate=*/true);
    append(*w, 3, 50);
    ASSERT_TRUE(w->sync());
    valid = scan(*fs_, seg_path(1)).scan.valid_bytes;
  }
  WalWriter::Options o;
  o.dir = kDir;
  o.node = kNode;
  o.segment_bytes = 1 << 16;
  auto w = WalWriter::open(*fs_, o, /*first_lsn=*/1, /*offset=*/valid, /*next_lsn=*/4);
  ASSERT_TRUE(w) << w.status().to_string();
  append(**w, 3, 50);
  auto s = scan(*fs_, seg_path(1));
  EXPECT_EQ(s.lsns, iota_lsns(1, 6));
  EXPECT_EQ(s.scan.damage, "");
  EXPECT_EQ(segments(), std::vector<uint64_t>{1});
}

TEST_F(WalTest, FreshPreallocatedSegmentHasNoRecordsAndNoDamage) {
  auto w = new_writer(8192, /*preallocate=*/true);
  ASSERT_TRUE(w);
  auto s = scan(*fs_, seg_path(1));
  EXPECT_EQ(s.scan.records, 0u);
  EXPECT_EQ(s.scan.last_lsn, 0u);
  EXPECT_EQ(s.scan.valid_bytes, kWalHeaderBytes);
  EXPECT_EQ(s.scan.file_bytes, 8192u);
  EXPECT_EQ(s.scan.damage, "");
}

TEST_F(WalTest, FewerThanEightZeroBytesAtTheEndAreACleanEnd) {
  std::string data = encode_wal_header(kNode, 1) + frame(1, ops_for(1, 10));
  size_t end = data.size();
  fs_->set_contents(seg_path(1), data + std::string(5, '\0'));
  auto s = scan(*fs_, seg_path(1));
  EXPECT_EQ(s.lsns, iota_lsns(1, 1));
  EXPECT_EQ(s.scan.valid_bytes, end);
  EXPECT_EQ(s.scan.damage, "");
}

// --- Segments ------------------------------------------------------------------

TEST_F(WalTest, SegmentRollsWhenFullAndLsnsContinueAcrossSegments) {
  auto w = new_writer(4096, /*preallocate=*/true);
  ASSERT_TRUE(w);
  append(*w, 12, 1000);  // about 1 KiB framed: three fit in 4 KiB with the header
  ASSERT_TRUE(w->sync());
  auto segs = segments();
  ASSERT_GE(segs.size(), 4u) << "12 records of ~1 KiB need at least 4 segments of 4 KiB";
  EXPECT_EQ(segs.front(), 1u);
  EXPECT_EQ(w->segment_first_lsn(), segs.back());

  std::vector<uint64_t> all;
  for (uint64_t first : segs) {
    SCOPED_TRACE(wal_segment_name(first));
    auto s = scan(*fs_, seg_path(first));
    EXPECT_EQ(s.scan.header.first_lsn, first) << "the header agrees with the file name";
    ASSERT_FALSE(s.lsns.empty()) << "no segment is left empty";
    EXPECT_EQ(s.lsns.front(), first) << "a segment starts with its first LSN";
    EXPECT_EQ(s.scan.damage, "");
    EXPECT_LE(s.scan.valid_bytes, 4096u) << "records that fit never overflow a segment";
    EXPECT_EQ(s.scan.file_bytes, 4096u) << "each segment is preallocated to segment_bytes";
    all.insert(all.end(), s.lsns.begin(), s.lsns.end());
  }
  EXPECT_EQ(all, iota_lsns(1, 12)) << "LSNs are consecutive across the whole log";
}

TEST_F(WalTest, RecordBiggerThanASegmentGetsASegmentOfItsOwn) {
  auto w = new_writer(4096, /*preallocate=*/true);
  ASSERT_TRUE(w);
  append(*w, 1, 10);     // LSN 1
  append(*w, 1, 10000);  // LSN 2: bigger than a whole segment
  append(*w, 1, 10);     // LSN 3
  ASSERT_TRUE(w->sync());
  EXPECT_EQ(segments(), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(scan(*fs_, seg_path(1)).lsns, iota_lsns(1, 1));
  auto big = scan(*fs_, seg_path(2));
  EXPECT_EQ(big.lsns, iota_lsns(2, 1)) << "the oversized record is alone in its segment";
  EXPECT_EQ(big.scan.damage, "");
  EXPECT_GT(big.scan.file_bytes, 10000u);
  EXPECT_EQ(scan(*fs_, seg_path(3)).lsns, iota_lsns(3, 1));
}

TEST_F(WalTest, OversizedFirstRecordStaysAloneInTheFirstSegment) {
  auto w = new_writer(4096, /*preallocate=*/false);
  ASSERT_TRUE(w);
  append(*w, 1, 20000);  // LSN 1
  append(*w, 2, 10);     // LSNs 2, 3
  EXPECT_EQ(segments(), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(scan(*fs_, seg_path(1)).lsns, iota_lsns(1, 1));
  EXPECT_EQ(scan(*fs_, seg_path(2)).lsns, iota_lsns(2, 2));
}

TEST_F(WalTest, RollStartsANewSegmentAtTheNextLsn) {
  auto w = new_writer(1 << 16, /*preallocate=*/false);
  append(*w, 2, 10);
  ASSERT_TRUE(w->roll());
  EXPECT_EQ(w->segment_first_lsn(), 3u);
  append(*w, 1, 10);
  EXPECT_EQ(segments(), (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(scan(*fs_, seg_path(1)).lsns, iota_lsns(1, 2));
  EXPECT_EQ(scan(*fs_, seg_path(3)).lsns, iota_lsns(3, 1));
  auto names = fs_->list_dir(kDir);
  for (const auto& n : *names) EXPECT_EQ(n.find(".tmp"), std::string::npos) << n;
}

TEST(WalNames, SegmentNamesRoundTripAndOthersAreRejected) {
  EXPECT_EQ(wal_segment_name(1), "wal-00000000000000000001.log");
  EXPECT_EQ(parse_wal_segment_name(wal_segment_name(1)), 1u);
  EXPECT_EQ(parse_wal_segment_name(wal_segment_name(UINT64_MAX)), UINT64_MAX);
  EXPECT_EQ(parse_wal_segment_name(wal_segment_name(12345) + ".tmp"), 0u);
  EXPECT_EQ(parse_wal_segment_name(wal_segment_name(12345) + ".damaged"), 0u);
  EXPECT_EQ(parse_wal_segment_name("wal-0000000000000000000x.log"), 0u);
  EXPECT_EQ(parse_wal_segment_name("snap-00000000000000000001.snap"), 0u);
}

// --- Headers -------------------------------------------------------------------

std::string with_checksum(std::string h) {
  std::string c;
  put_u32(c, checksum32(std::string_view(h).substr(0, 32)));
  h.replace(32, 4, c);
  return h;
}

TEST(WalHeader, RoundTripsNodeAndFirstLsn) {
  std::string h = encode_wal_header(kNode, 42);
  ASSERT_EQ(h.size(), kWalHeaderBytes);
  auto d = decode_wal_header(h);
  ASSERT_TRUE(d) << d.status().to_string();
  EXPECT_EQ(d->node, kNode);
  EXPECT_EQ(d->first_lsn, 42u);
}

// The header carries its node id faithfully, so that opening a directory can
// refuse another node's segment (see RecoveryTest.WalSegmentOfAnotherNode...).
TEST(WalHeader, AnotherNodesHeaderDecodesAsThatNode) {
  auto d = decode_wal_header(encode_wal_header(kNode + 1, 1));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->node, kNode + 1);
  EXPECT_NE(d->node, kNode);
}

TEST(WalHeader, BadMagicIsRefused) {
  std::string h = with_checksum("XAVEKVWL" + encode_wal_header(kNode, 1).substr(8));
  auto d = decode_wal_header(h);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.status().code(), Code::kCorruption);
  EXPECT_NE(d.status().message().find("magic"), std::string::npos) << d.status().message();
}

TEST(WalHeader, UnsupportedVersionIsRefusedEvenWithAValidChecksum) {
  std::string h = encode_wal_header(kNode, 1);
  std::string v;
  put_u32(v, kWalVersion + 1);
  h.replace(8, 4, v);
  auto d = decode_wal_header(with_checksum(h));
  ASSERT_FALSE(d);
  EXPECT_EQ(d.status().code(), Code::kCorruption);
  EXPECT_NE(d.status().message().find("version"), std::string::npos) << d.status().message();
}

TEST(WalHeader, ChangedNodeIdWithoutChecksumIsRefused) {
  std::string h = encode_wal_header(kNode, 1);
  h[16] = static_cast<char>(kNode + 1);  // the node id's low byte
  auto d = decode_wal_header(h);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.status().code(), Code::kCorruption);
}

TEST(WalHeader, EveryByteFlipOfTheCheckedBytesIsRefused) {
  std::string h = encode_wal_header(kNode, 1);
  for (size_t i = 0; i < 36; i++) {
    std::string t = h;
    t[i] = static_cast<char>(t[i] ^ 0x20);
    EXPECT_FALSE(decode_wal_header(t)) << "flip at byte " << i;
  }
}

TEST(WalHeader, TruncatedHeaderAndLsnZeroAreRefused) {
  std::string h = encode_wal_header(kNode, 1);
  EXPECT_FALSE(decode_wal_header(h.substr(0, kWalHeaderBytes - 1)));
  EXPECT_FALSE(decode_wal_header(""));
  EXPECT_FALSE(decode_wal_header(encode_wal_header(kNode, 0))) << "LSNs start at 1";
}

TEST_F(WalTest, ScanOfASegmentWithABadHeaderIsAnError) {
  std::string data = encode_wal_header(kNode, 1) + frame(1, ops_for(1, 10));
  data[0] = 'X';
  fs_->set_contents(seg_path(1), data);
  bool called = false;
  auto r =
      scan_wal_segment(*fs_, seg_path(1), [&](uint64_t, std::vector<StateOp>&&) { called = true; });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_FALSE(called) << "no record of a segment with a bad header is delivered";
}

// --- Damage --------------------------------------------------------------------
//
// Each case damages record #k (0-based) of a 5-record segment and checks that
// the scan delivers exactly records 0..k-1, reports damage, and says the good
// part ends where record #k starts.

class WalDamageTest : public WalTest {
 protected:
  void SetUp() override {
    WalTest::SetUp();
    auto w = new_writer(1 << 20, /*preallocate=*/false);
    ASSERT_TRUE(w);
    append(*w, 5, 100);
    ASSERT_TRUE(w->sync());
    data_ = fs_->contents(seg_path(1));
    offsets_ = record_offsets(data_);
    ASSERT_EQ(offsets_.size(), 6u);
    ASSERT_EQ(offsets_.back(), data_.size());
    auto clean = scan(*fs_, seg_path(1));
    ASSERT_EQ(clean.lsns, iota_lsns(1, 5));
    ASSERT_EQ(clean.scan.damage, "");
  }

  uint64_t body_len(int k) const { return load_u32(data_.data() + offsets_[k]); }

  void expect_stops_before(const std::string& damaged, int k, const std::string& what) {
    fs_->set_contents(seg_path(1), damaged);
    auto s = scan(*fs_, seg_path(1));
    EXPECT_EQ(s.lsns, iota_lsns(1, k)) << "exactly the records before the damage are delivered";
    EXPECT_EQ(s.scan.records, static_cast<uint64_t>(k));
    EXPECT_EQ(s.scan.last_lsn, static_cast<uint64_t>(k));
    EXPECT_EQ(s.scan.valid_bytes, offsets_[k]) << "the good part ends where record #k starts";
    EXPECT_EQ(s.scan.file_bytes, damaged.size());
    EXPECT_NE(s.scan.damage, "") << "damage is reported";
    EXPECT_NE(s.scan.damage.find(what), std::string::npos)
        << "damage '" << s.scan.damage << "' names '" << what << "'";
  }

  std::string data_;
  std::vector<uint64_t> offsets_;
};

TEST_F(WalDamageTest, TornRecordHeaderAtTheEndOfTheFile) {
  expect_stops_before(data_.substr(0, offsets_[4] + 5), 4, "torn record header");
}

TEST_F(WalDamageTest, RecordCutShortInItsBody) {
  expect_stops_before(data_.substr(0, offsets_[4] + kRecordHeaderBytes + 20), 4,
                      "impossible record length");
}

TEST_F(WalDamageTest, ChecksumMismatchFromOneFlippedPayloadByte) {
  std::string d = data_;
  // The last byte of record #2's value: the ops would still decode, only the
  // checksum can tell.
  size_t at = offsets_[2] + kRecordHeaderBytes + body_len(2) - 1;
  d[at] = static_cast<char>(d[at] ^ 0x01);
  expect_stops_before(d, 2, "checksum");
}

TEST_F(WalDamageTest, ChecksumMismatchFromAFlippedChecksumField) {
  std::string d = data_;
  size_t at = offsets_[3] + 4;
  d[at] = static_cast<char>(d[at] ^ 0x40);
  expect_stops_before(d, 3, "checksum");
}

TEST_F(WalDamageTest, FlippedLsnIsCaughtByTheChecksum) {
  std::string d = data_;
  size_t at = offsets_[1] + kRecordHeaderBytes;  // the LSN's low byte
  d[at] = static_cast<char>(d[at] ^ 0x01);
  expect_stops_before(d, 1, "checksum");
}

TEST_F(WalDamageTest, ImpossibleLengthLargerThanTheFile) {
  for (uint32_t len : {UINT32_MAX, 0x7fffffffu, static_cast<uint32_t>(data_.size())}) {
    SCOPED_TRACE(len);
    std::string d = data_;
    std::string l;
    put_u32(l, len);
    d.replace(offsets_[2], 4, l);
    // Completing at all shows that nothing of that size was allocated or read.
    expect_stops_before(d, 2, "impossible record length");
  }
}

TEST_F(WalDamageTest, LengthBelowTheMinimumIsImpossible) {
  for (uint32_t len : {0u, 1u, 11u}) {
    SCOPED_TRACE(len);
    std::string d = data_;
    std::string l;
    put_u32(l, len);
    d.replace(offsets_[2], 4, l);
    if (len == 0) d[offsets_[2] + 4] = 1;  // a non-zero checksum: not preallocated space
    expect_stops_before(d, 2, "impossible record length");
  }
}

TEST_F(WalDamageTest, LsnOutOfSequenceIsDamage) {
  std::string d = encode_wal_header(kNode, 1);
  for (uint64_t lsn : {1, 2, 4, 3, 5}) d += frame(lsn, ops_for(lsn, 100));
  offsets_ = record_offsets(d);
  expect_stops_before(d, 2, "LSN 4");
}

TEST_F(WalDamageTest, RepeatedLsnIsDamage) {
  std::string d = encode_wal_header(kNode, 1);
  for (uint64_t lsn : {1, 2, 3, 3, 4}) d += frame(lsn, ops_for(lsn, 100));
  offsets_ = record_offsets(d);
  expect_stops_before(d, 3, "LSN 3");
}

TEST_F(WalDamageTest, FirstRecordMustCarryTheHeadersFirstLsn) {
  std::string d = encode_wal_header(kNode, 10) + data_.substr(kWalHeaderBytes);
  expect_stops_before(d, 0, "LSN 1 where 10");
}

TEST_F(WalDamageTest, ZeroedRecordHeaderFollowedByData) {
  // Record #2's 8-byte header is zeroed, its body and the later records remain.
  std::string d = data_;
  d.replace(offsets_[2], kRecordHeaderBytes, std::string(kRecordHeaderBytes, '\0'));
  expect_stops_before(d, 2, "zeroed record header followed by data");
}

TEST_F(WalDamageTest, ZeroGapThenARecord) {
  std::string d = data_.substr(0, offsets_[2]) + std::string(64, '\0') + data_.substr(offsets_[2]);
  expect_stops_before(d, 2, "followed by data");
}

TEST_F(WalDamageTest, ValidChecksumOverUndecodableOpsIsDamage) {
  std::string body;
  put_u64(body, 3);
  body += std::string("\x01\x00\x00\x00\x09garbage!", 13);  // one op of unknown type 9
  std::string rec;
  put_u32(rec, static_cast<uint32_t>(body.size()));
  put_u32(rec, checksum32(body));
  rec += body;
  std::string d = data_.substr(0, offsets_[2]) + rec + data_.substr(offsets_[3]);
  expect_stops_before(d, 2, "unknown op type");
}

// A single stray byte anywhere in a large preallocated tail is damage, whether
// it lies in the first 4 KiB after the log's end, further on, or in the very
// last byte of the file.
TEST_F(WalTest, StrayByteAnywhereInAZeroTailIsDamage) {
  auto w = new_writer(1 << 20, /*preallocate=*/true);
  ASSERT_TRUE(w);
  append(*w, 3, 100);
  ASSERT_TRUE(w->sync());
  std::string clean = fs_->contents(seg_path(1));
  ASSERT_EQ(clean.size(), 1u << 20);
  uint64_t end = record_offsets(clean).back();
  for (uint64_t at : {end + 8, end + 4095, end + 4096, end + 4097, end + 100'000,
                      uint64_t{clean.size()} - 4097, uint64_t{clean.size()} - 1}) {
    SCOPED_TRACE("stray byte at " + std::to_string(at));
    std::string d = clean;
    d[at] = 1;
    fs_->set_contents(seg_path(1), d);
    auto s = scan(*fs_, seg_path(1));
    EXPECT_EQ(s.lsns, iota_lsns(1, 3)) << "the records before it are kept";
    EXPECT_EQ(s.scan.valid_bytes, end);
    EXPECT_NE(s.scan.damage.find("followed by data"), std::string::npos) << s.scan.damage;
  }
}

TEST_F(WalTest, TornShortTailOfNonZeroBytesIsDamage) {
  std::string data = encode_wal_header(kNode, 1) + frame(1, ops_for(1, 10));
  uint64_t end = data.size();
  fs_->set_contents(seg_path(1), data + std::string("\0\0\x07\0\0", 5));
  auto s = scan(*fs_, seg_path(1));
  EXPECT_EQ(s.lsns, iota_lsns(1, 1));
  EXPECT_EQ(s.scan.valid_bytes, end);
  EXPECT_NE(s.scan.damage.find("torn record header"), std::string::npos) << s.scan.damage;
}

}  // namespace
}  // namespace wavekv
