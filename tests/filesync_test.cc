// filesync: content-defined chunking, the manifest format, `check`, and two
// in-process mirrors on loopback TCP that must agree after every kind of
// change (binary, empty, nested, modes, deletes, renames, concurrent edits,
// changes made while one was down), without echoing what they received.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "filesync/chunker.h"
#include "filesync/index.h"
#include "filesync/manifest.h"
#include "filesync/mirror.h"
#include "filesync/transfer.h"
#include "filesync/tree.h"
#include "support/test_util.h"

namespace wavekv::filesync {
namespace {

namespace fs = std::filesystem;

std::string random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

std::vector<std::string> chunk_all(std::string_view data, ChunkerLimits limits,
                                   size_t slice = SIZE_MAX) {
  Chunker c(limits);
  std::vector<std::string> out;
  std::string cur;
  while (!data.empty()) {
    std::string_view piece = data.substr(0, std::min(slice, data.size()));
    data.remove_prefix(piece.size());
    while (!piece.empty()) {
      size_t take = c.next_cut(piece);
      cur.append(piece.substr(0, take));
      piece.remove_prefix(take);
      if (c.at_cut()) out.push_back(std::exchange(cur, {}));
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

TEST(Chunker, AnInsertNearTheStartKeepsTheLaterChunks) {
  // Fixed-size chunking would shift every chunk after the insert; content-
  // defined cuts move with the content.
  std::string data = random_bytes(2 << 20, 1);
  std::string edited = data;
  edited.insert(1000, "seventeen bytes!!");
  auto a = chunk_all(data, {});
  auto b = chunk_all(edited, {});
  std::set<ChunkHash> before;
  for (const auto& c : a) before.insert(hash_chunk(c));
  size_t shared = 0;
  for (const auto& c : b) shared += before.count(hash_chunk(c));
  ASSERT_GE(a.size(), 8u);
  EXPECT_GE(shared, b.size() - 2) << "only the chunk holding the insert may differ";
}

TEST(Chunker, CutsRespectTheLimitsExactly) {
  ChunkerLimits limits{1024, 4096, 8192};
  // Zeros make the gear hash periodic; whatever it does, no chunk is below
  // the minimum (but the last) or above the maximum.
  for (const std::string& data : {std::string(100000, '\0'), random_bytes(300000, 2)}) {
    auto chunks = chunk_all(data, limits);
    for (size_t i = 0; i < chunks.size(); i++) {
      EXPECT_LE(chunks[i].size(), 8192u);
      if (i + 1 < chunks.size()) {
        EXPECT_GE(chunks[i].size(), 1024u);
      }
    }
  }
  // A run that never hits the pattern is cut at exactly the maximum.
  auto chunks = chunk_all(std::string(12000, '\x01'), {1024, 1u << 30, 5000});
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].size(), 5000u);
  EXPECT_EQ(chunks[1].size(), 5000u);
  EXPECT_EQ(chunks[2].size(), 2000u);
}

TEST(Chunker, SlicingTheInputDoesNotMoveTheCuts) {
  std::string data = random_bytes(700000, 3);
  EXPECT_EQ(chunk_all(data, {}), chunk_all(data, {}, 1));
  EXPECT_EQ(chunk_all(data, {}), chunk_all(data, {}, 4099));
}

TEST(Manifest, RoundTripsAndRefusesMalformedBytes) {
  Manifest m;
  m.mode = 0755;
  m.chunks = {{hash_chunk("a"), 1}, {hash_chunk("bc"), 2}};
  m.size = 3;
  std::string enc = encode_manifest(m);
  auto back = decode_manifest(enc);
  ASSERT_TRUE(back) << back.status().to_string();
  EXPECT_EQ(*back, m);

  EXPECT_FALSE(decode_manifest(""));
  EXPECT_FALSE(decode_manifest(enc.substr(0, enc.size() - 1)));  // one byte short
  std::string v2 = enc;
  v2[0] = 2;  // a newer version
  auto refused = decode_manifest(v2);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.status().message().find("version 2"), std::string::npos);
  Manifest lying = m;
  lying.size = 4;  // chunks add up to 3
  EXPECT_FALSE(decode_manifest(encode_manifest(lying)));
  Manifest setuid_plus = m;
  setuid_plus.mode = 010000;  // beyond 07777
  EXPECT_FALSE(decode_manifest(encode_manifest(setuid_plus)));
  Manifest empty;  // an empty file, 0644: the example of docs/FORMAT.md
  EXPECT_EQ(encode_manifest(empty), std::string("\x01\xa4\x01\x00\x00"
                                                "\0\0\0\0\0\0\0\0"
                                                "\0\0\0\0",
                                                17));
  EXPECT_TRUE(decode_manifest(encode_manifest(empty)));
}

// The local index's record (src/filesync/index.h): 52 bytes, little-endian,
// on disk in <data_dir>/index, so its layout must not move.
TEST(FilesyncIndex, RecordsAre52LittleEndianBytesAndRoundTrip) {
  IndexRecord r;
  r.mtime_ns = 0x0102030405060708ull;
  r.ctime_ns = 2;
  r.size = 3;
  r.ino = 4;
  r.mode = 0100644;
  r.digest = hash_chunk("x");
  std::string enc = encode_index(r);
  ASSERT_EQ(enc.size(), 52u);
  EXPECT_EQ(enc.substr(0, 8), std::string("\x08\x07\x06\x05\x04\x03\x02\x01", 8));
  EXPECT_EQ(enc.substr(32, 4), std::string("\xa4\x81\x00\x00", 4));  // the mode
  auto back = decode_index(enc);
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->same_stat(r));
  EXPECT_EQ(back->digest, r.digest);
  EXPECT_FALSE(decode_index(enc.substr(0, 51)));  // one byte short
  EXPECT_FALSE(decode_index(enc + "x"));          // one byte over
}

TEST(Manifest, ValidPaths) {
  EXPECT_TRUE(valid_path("a"));
  EXPECT_TRUE(valid_path("a/b/c.txt"));
  EXPECT_TRUE(valid_path(".hidden/x"));
  EXPECT_FALSE(valid_path(""));
  EXPECT_FALSE(valid_path("/abs"));
  EXPECT_FALSE(valid_path("a/"));
  EXPECT_FALSE(valid_path("a//b"));
  EXPECT_FALSE(valid_path("a/../b"));
  EXPECT_FALSE(valid_path("./a"));
  EXPECT_FALSE(valid_path("d/.filesync.x.1.2"));  // our temp files never replicate
}

// Writes the file whole, mode included, and renames it into place: one event
// for the mirror, so counts of what it published do not depend on whether it
// happened to look between the write and the chmod.
void write_file(const fs::path& p, std::string_view bytes, mode_t mode = 0644) {
  static int counter = 0;
  fs::create_directories(p.parent_path());
  fs::path stage =
      fs::temp_directory_path() /
      ("filesync-test-stage-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::ofstream(stage, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size());
  ::chmod(stage.c_str(), mode);
  fs::rename(stage, p);
}
std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class TreeDir : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() /
            ("filesync-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(base_);
    fs::create_directories(base_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(base_);
  }
  fs::path base_;
};

TEST_F(TreeDir, CheckSeesContentModeAndMissingFilesButNotEmptyDirectories) {
  fs::path a = base_ / "a", b = base_ / "b";
  write_file(a / "x/y/z.bin", std::string("\0\1\2", 3), 0644);
  write_file(b / "x/y/z.bin", std::string("\0\1\2", 3), 0644);
  write_file(a / "empty", "");
  write_file(b / "empty", "");
  fs::create_directories(a / "only-a-empty-dir");
  auto r = check_trees({a.string(), b.string()});
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->agree()) << r->differences[0];

  ::chmod((b / "empty").c_str(), 0600);
  r = check_trees({a.string(), b.string()});
  ASSERT_EQ(r->differences.size(), 1u);
  EXPECT_NE(r->differences[0].find("mode differs: empty"), std::string::npos);

  ::chmod((b / "empty").c_str(), 0644);
  write_file(b / "x/y/z.bin", std::string("\0\1\3", 3));  // same size, other bytes
  write_file(a / "extra", "e");
  r = check_trees({a.string(), b.string()});
  ASSERT_EQ(r->differences.size(), 2u);
  EXPECT_NE(r->differences[0].find("missing in " + b.string() + ": extra"), std::string::npos);
  EXPECT_NE(r->differences[1].find("content differs: x/y/z.bin"), std::string::npos);
}

// ---------------------------------------------------------------- mirrors

template <typename F>
bool eventually(F done, int seconds = 20) {
  return test::eventually(done, seconds, 25);
}

class Mirrors : public TreeDir {
 protected:
  std::unique_ptr<Mirror> start(const std::string& name, std::vector<std::string> peers) {
    MirrorConfig c;
    c.watch_dir = (base_ / name).string();
    c.data_dir = (base_ / (name + "-data")).string();
    c.node.listen = ports_.count(name) ? ports_[name] : "127.0.0.1:0";
    c.node.peers = std::move(peers);
    c.node.replica.sync_interval_ms = 100;
    c.debounce_ms = 20;
    c.retry_ms = 100;
    c.bootstrap_timeout_ms = 5000;
    auto m = Mirror::start(c);
    EXPECT_TRUE(m) << m.status().to_string();
    if (!m) return nullptr;
    ports_[name] = (*m)->node().peer_address();
    return std::move(*m);
  }
  bool agree(std::initializer_list<const char*> names) {
    std::vector<std::string> dirs;
    for (const char* n : names) dirs.push_back((base_ / n).string());
    auto r = check_trees(dirs);
    return r && r->agree();
  }
  std::string diff(std::initializer_list<const char*> names) {
    std::vector<std::string> dirs;
    for (const char* n : names) dirs.push_back((base_ / n).string());
    auto r = check_trees(dirs);
    if (!r) return r.status().to_string();
    std::string s;
    for (const auto& d : r->differences) s += d + "\n";
    return s;
  }
  std::map<std::string, std::string> ports_;
};

TEST_F(Mirrors, FilesOfEveryKindRoundTripWithoutEchoes) {
  auto a = start("a", {});
  ASSERT_TRUE(a);
  auto b = start("b", {a->node().peer_address()});
  ASSERT_TRUE(b);
  write_file(base_ / "a/bin", random_bytes(600000, 7), 0600);  // several chunks
  write_file(base_ / "a/empty", "");
  write_file(base_ / "a/deep/er/still/file.txt", "nested", 0755);
  write_file(base_ / "b/from-b", "b wrote this");
  ASSERT_TRUE(eventually([&] { return agree({"a", "b"}); })) << diff({"a", "b"});
  EXPECT_EQ(read_file(base_ / "b/bin"), read_file(base_ / "a/bin"));
  EXPECT_EQ(fs::status(base_ / "b/deep/er/still/file.txt").permissions(), fs::perms(0755));

  ASSERT_TRUE(a->wait_idle(5000));
  ASSERT_TRUE(b->wait_idle(5000));
  // Each file was published once, by the node where it was written: what a
  // node wrote from the store did not come back as a new local write.
  EXPECT_EQ(a->stats().published, 3u);
  EXPECT_EQ(b->stats().published, 1u);
  EXPECT_EQ(b->stats().materialized, 3u);
  EXPECT_EQ(a->stats().materialized, 1u);
  // No temp file is left behind.
  for (auto& e : fs::recursive_directory_iterator(base_ / "b"))
    EXPECT_FALSE(is_temp_name(e.path().filename().string())) << e.path();
}

TEST_F(Mirrors, DeletesRenamesAndDirectoryMovesPropagate) {
  auto a = start("a", {});
  auto b = start("b", {a->node().peer_address()});
  write_file(base_ / "a/keep", "k");
  write_file(base_ / "a/old-name", "renamed");
  write_file(base_ / "a/dir/one", "1");
  write_file(base_ / "a/dir/sub/two", "2");
  write_file(base_ / "a/gone/only", "x");
  ASSERT_TRUE(eventually([&] { return agree({"a", "b"}); })) << diff({"a", "b"});

  fs::rename(base_ / "a/old-name", base_ / "a/new-name");
  fs::rename(base_ / "a/dir", base_ / "a/moved");
  fs::remove(base_ / "b/gone/only");  // deleted on the other node
  ASSERT_TRUE(eventually([&] {
    return agree({"a", "b"}) && fs::exists(base_ / "b/moved/sub/two") &&
           !fs::exists(base_ / "a/gone/only");
  })) << diff({"a", "b"});
  EXPECT_FALSE(fs::exists(base_ / "b/old-name"));
  EXPECT_FALSE(fs::exists(base_ / "b/dir")) << "a directory emptied by deletes goes too";
  EXPECT_EQ(read_file(base_ / "b/new-name"), "renamed");
}

TEST_F(Mirrors, AReplicatedPathNeverLeadsThroughASymlinkOutOfTheTree) {
  // On a, "link" is a symlink to a directory outside the tree; on b, "link"
  // is a directory with a file. a must not write b's file through its link.
  fs::create_directories(base_ / "outside");
  fs::create_directories(base_ / "a");
  fs::create_directory_symlink(base_ / "outside", base_ / "a/link");
  auto a = start("a", {});
  auto b = start("b", {a->node().peer_address()});
  write_file(base_ / "b/link/x", "through the link?");
  write_file(base_ / "b/plain", "p");
  // Either outcome ends the wait: refused (a conflict) or written outside.
  ASSERT_TRUE(eventually([&] {
    return fs::exists(base_ / "a/plain") &&
           (a->stats().conflicts >= 1 || fs::exists(base_ / "outside/x"));
  }));
  EXPECT_FALSE(fs::exists(base_ / "outside/x")) << "a file was written outside the tree";
  EXPECT_GE(a->stats().conflicts, 1u);
  EXPECT_TRUE(fs::is_symlink(base_ / "a/link"));
}

TEST(FilesyncModes, AManifestsSpecialBitsNeverReachTheFile) {
  EXPECT_EQ(materialized_mode(07777, 022), 0755u);
  EXPECT_EQ(materialized_mode(04755, 0), 0755u);
  EXPECT_EQ(materialized_mode(02644, 077), 0600u);
  EXPECT_EQ(materialized_mode(0640, 022), 0640u);
}

TEST_F(Mirrors, ACraftedManifestMakesNoSetuidSetgidOrStickyFile) {
  auto a = start("a", {});
  auto b = start("b", {a->node().peer_address()});
  ASSERT_TRUE(a && b);
  // What a compromised member could write straight into the store: a
  // manifest asking for every special bit.
  const std::string bytes = "#!/bin/sh\necho owned\n";
  Manifest m;
  m.mode = 07777;
  m.size = bytes.size();
  m.chunks.push_back({hash_chunk(bytes), static_cast<uint32_t>(bytes.size())});
  ASSERT_TRUE(a->node().store().put(chunk_key(m.chunks[0].hash), bytes).is_ok());
  ASSERT_TRUE(a->node().store().put(manifest_key("evil"), encode_manifest(m)).is_ok());
  ASSERT_TRUE(eventually([&] { return fs::exists(base_ / "b/evil"); }));
  struct stat st {};
  ASSERT_EQ(::lstat((base_ / "b/evil").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  unsigned mask = 022;  // read without setting it: other threads create files
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (std::sscanf(line.c_str(), "Umask: %o", &mask) == 1) break;
  EXPECT_EQ(st.st_mode & 07777, 0777u & ~mask);
  EXPECT_EQ(st.st_mode & 07000, 0u) << "setuid, setgid or sticky from a replicated manifest";
}

TEST_F(Mirrors, ASmallChangeToALargeFileSendsOnlyTheChangedChunks) {
  auto a = start("a", {});
  auto b = start("b", {a->node().peer_address()});
  std::string big = random_bytes(3 << 20, 11);
  write_file(base_ / "a/big", big);
  ASSERT_TRUE(eventually([&] { return agree({"a", "b"}); })) << diff({"a", "b"});
  ASSERT_TRUE(a->wait_idle(5000));
  MirrorStats before = a->stats();
  ASSERT_GE(before.chunks_written, 20u);
  big.replace(1500000, 100, std::string(100, 'Z'));
  write_file(base_ / "a/big", big);
  ASSERT_TRUE(eventually([&] { return agree({"a", "b"}); })) << diff({"a", "b"});
  ASSERT_TRUE(a->wait_idle(5000));
  MirrorStats after = a->stats();
  EXPECT_EQ(after.published, before.published + 1);
  // The 100 bytes fall in one chunk, or two if they straddle a cut.
  EXPECT_LE(after.chunks_written - before.chunks_written, 2u);
  EXPECT_GE(after.chunks_reused - before.chunks_reused, before.chunks_written - 2);
}

TEST_F(Mirrors, ConcurrentEditsEndWithTheSameBytesEverywhere) {
  auto a = start("a", {});
  auto b = start("b", {a->node().peer_address()});
  write_file(base_ / "a/f", "base");
  ASSERT_TRUE(eventually([&] { return agree({"a", "b"}); }));
  for (int i = 0; i < 20; i++) {
    write_file(base_ / "a/f", "from a " + std::to_string(i));
    write_file(base_ / "b/f", "from b, longer " + std::to_string(i));
  }
  ASSERT_TRUE(eventually([&] { return agree({"a", "b"}); })) << diff({"a", "b"});
}

TEST_F(Mirrors, ChangesMadeWhileANodeWasDownAreReconciledAtRestart) {
  auto a = start("a", {});
  auto b = start("b", {a->node().peer_address()});
  write_file(base_ / "a/edited-on-b", "v1");
  write_file(base_ / "a/deleted-on-b", "d");
  write_file(base_ / "a/edited-on-a", "v1");
  write_file(base_ / "a/deleted-on-a", "d");
  ASSERT_TRUE(eventually([&] { return agree({"a", "b"}); }));
  ASSERT_TRUE(b->wait_idle(5000));
  ASSERT_TRUE(b->stop().is_ok());
  b.reset();

  // While b is down: edits on both sides, of different files.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a later mtime
  write_file(base_ / "b/edited-on-b", "v2 from b");
  fs::remove(base_ / "b/deleted-on-b");
  write_file(base_ / "b/created-on-b", "new");
  write_file(base_ / "a/edited-on-a", "v2 from a");
  fs::remove(base_ / "a/deleted-on-a");
  ASSERT_TRUE(a->wait_idle(5000));

  b = start("b", {a->node().peer_address()});
  ASSERT_TRUE(eventually([&] { return agree({"a", "b"}); })) << diff({"a", "b"});
  EXPECT_EQ(read_file(base_ / "a/edited-on-b"), "v2 from b");
  EXPECT_EQ(read_file(base_ / "b/edited-on-a"), "v2 from a");
  EXPECT_FALSE(fs::exists(base_ / "a/deleted-on-b"));
  EXPECT_FALSE(fs::exists(base_ / "b/deleted-on-a"));
  EXPECT_EQ(read_file(base_ / "a/created-on-b"), "new");
}

TEST_F(Mirrors, AWipedNodeBootstrapsBeforeItJudgesItsFiles) {
  auto a = start("a", {});
  auto b = start("b", {a->node().peer_address()});
  write_file(base_ / "a/stays", "s");
  write_file(base_ / "a/deleted-later", "d");
  ASSERT_TRUE(eventually([&] { return agree({"a", "b"}); }));
  ASSERT_TRUE(b->wait_idle(5000));
  ASSERT_TRUE(b->stop().is_ok());
  b.reset();
  // b loses its store and its index but keeps the files; meanwhile a file is
  // deleted on a. Without the bootstrap wait, b would publish its stale copy
  // as new (a resurrection).
  fs::remove_all(base_ / "b-data");
  fs::remove(base_ / "a/deleted-later");
  ASSERT_TRUE(a->wait_idle(5000));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));

  b = start("b", {a->node().peer_address()});
  ASSERT_TRUE(eventually([&] { return agree({"a", "b"}); })) << diff({"a", "b"});
  EXPECT_FALSE(fs::exists(base_ / "a/deleted-later"));
  EXPECT_EQ(b->stats().published, 0u);
}

}  // namespace
}  // namespace wavekv::filesync
