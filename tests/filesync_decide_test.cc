// filesync's decision rule (src/filesync/decide.h, ARCHITECTURE.md
// "filesync", "One decision rule"), one row per case: what is on disk, what
// the local index remembers, what the store holds, and what to do.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "filesync/decide.h"

namespace wavekv::filesync {
namespace {

constexpr uint64_t kMs = 1000000;  // ns per ms
constexpr uint64_t kMtimeMs = 5000;

enum class Disk { kMissing, kSame, kChanged, kSubMs, kOther };  // kSame: as the record has it
enum class Rec { kNone, kA };                                   // the record's manifest digest
enum class Kv { kAbsent, kTombstone, kLiveA, kLiveB };          // the store's version

ChunkHash digest(uint8_t b) {
  ChunkHash h{};
  h.fill(b);
  return h;
}

IndexRecord stat_fields(uint64_t mtime_ns) {
  IndexRecord r;
  r.mtime_ns = mtime_ns;
  r.ctime_ns = mtime_ns;
  r.size = 10;
  r.ino = 7;
  r.mode = S_IFREG | 0644;
  return r;
}

LocalFile local_of(Disk d) {
  LocalFile l;
  switch (d) {
    case Disk::kMissing: return l;
    case Disk::kSame:
      l.kind = LocalFile::kFile;
      l.rec = stat_fields(kMtimeMs * kMs);
      return l;
    case Disk::kChanged:  // written since: a later mtime
      l.kind = LocalFile::kFile;
      l.rec = stat_fields(kMtimeMs * kMs + 1);
      return l;
    case Disk::kSubMs:  // no record: mtime kMtimeMs ms and 999999 ns
      l.kind = LocalFile::kFile;
      l.rec = stat_fields(kMtimeMs * kMs + kMs - 1);
      return l;
    case Disk::kOther:  // a directory, a symlink, or under one
      l.kind = LocalFile::kOther;
      l.rec = stat_fields(kMtimeMs * kMs);
      l.rec.mode = S_IFDIR | 0755;
      return l;
  }
  return l;
}

struct Row {
  const char* name;
  Disk disk;
  Rec rec;
  Kv kv;
  uint64_t kv_ms;  // the store version's timestamp
  Action want;
};

// Timestamps only matter without a record; with one they are set far off to
// show the rule ignores them.
constexpr uint64_t kFar = kMtimeMs + 100000;

const std::vector<Row> kRows = {
    // Unchanged on disk since the record: the store decides (a remote change).
    {"unchanged, store = record: in step", Disk::kSame, Rec::kA, Kv::kLiveA, kFar,
     Action::kUnchanged},
    {"unchanged, store newer: remote change", Disk::kSame, Rec::kA, Kv::kLiveB, kFar,
     Action::kWrite},
    {"unchanged, store older than the file: still remote", Disk::kSame, Rec::kA, Kv::kLiveB, 1,
     Action::kWrite},
    {"unchanged, store tombstone: remote delete", Disk::kSame, Rec::kA, Kv::kTombstone, kFar,
     Action::kRemove},
    {"unchanged, store has nothing: remote delete", Disk::kSame, Rec::kA, Kv::kAbsent, 0,
     Action::kRemove},

    // Changed on disk since the record: a local change, whatever the store's
    // timestamp (publishing finds an echo or a touch by content).
    {"changed, store = record: local change", Disk::kChanged, Rec::kA, Kv::kLiveA, kFar,
     Action::kPublish},
    {"changed, store newer: local change still", Disk::kChanged, Rec::kA, Kv::kLiveB, kFar,
     Action::kPublish},
    {"changed, store tombstone: local change", Disk::kChanged, Rec::kA, Kv::kTombstone, kFar,
     Action::kPublish},
    {"changed, store has nothing: local change", Disk::kChanged, Rec::kA, Kv::kAbsent, 0,
     Action::kPublish},

    // Deleted on disk since the record.
    {"deleted, store = record: local delete", Disk::kMissing, Rec::kA, Kv::kLiveA, kFar,
     Action::kPublishDelete},
    {"deleted, store newer: keep the newer version", Disk::kMissing, Rec::kA, Kv::kLiveB, kFar,
     Action::kWrite},
    {"deleted, store tombstone: gone everywhere", Disk::kMissing, Rec::kA, Kv::kTombstone, kFar,
     Action::kForgetDeleted},
    {"deleted, store has nothing: gone everywhere", Disk::kMissing, Rec::kA, Kv::kAbsent, 0,
     Action::kForgetDeleted},

    // No file and no record.
    {"absent, no record, store live: write it", Disk::kMissing, Rec::kNone, Kv::kLiveB, 1,
     Action::kWrite},
    {"absent, no record, store tombstone: nothing", Disk::kMissing, Rec::kNone, Kv::kTombstone,
     kFar, Action::kNothing},
    {"absent, no record, store has nothing: nothing", Disk::kMissing, Rec::kNone, Kv::kAbsent, 0,
     Action::kNothing},

    // A file and no record: last writer wins between its mtime and the store
    // version's timestamp, in ms; a tie goes to the file.
    {"no record, store has nothing: publish", Disk::kSame, Rec::kNone, Kv::kAbsent, 0,
     Action::kPublish},
    {"no record, store live 1 ms older: publish", Disk::kSame, Rec::kNone, Kv::kLiveB, kMtimeMs - 1,
     Action::kPublish},
    {"no record, store live at the same ms: publish", Disk::kSame, Rec::kNone, Kv::kLiveB, kMtimeMs,
     Action::kPublish},
    {"no record, store live 1 ms newer: write", Disk::kSame, Rec::kNone, Kv::kLiveB, kMtimeMs + 1,
     Action::kWrite},
    {"no record, mtime's sub-ms part is dropped: a tie", Disk::kSubMs, Rec::kNone, Kv::kLiveB,
     kMtimeMs, Action::kPublish},
    {"no record, sub-ms mtime, store 1 ms newer: write", Disk::kSubMs, Rec::kNone, Kv::kLiveB,
     kMtimeMs + 1, Action::kWrite},
    {"no record, tombstone 1 ms older: publish", Disk::kSame, Rec::kNone, Kv::kTombstone,
     kMtimeMs - 1, Action::kPublish},
    {"no record, tombstone at the same ms: publish", Disk::kSame, Rec::kNone, Kv::kTombstone,
     kMtimeMs, Action::kPublish},
    {"no record, tombstone 1 ms newer: remove", Disk::kSame, Rec::kNone, Kv::kTombstone,
     kMtimeMs + 1, Action::kRemove},

    // Not a regular file here (a directory, a symlink, a path under one).
    {"other, store = record: the file is gone, delete it", Disk::kOther, Rec::kA, Kv::kLiveA, kFar,
     Action::kPublishDelete},
    {"other, store newer: forget the record only", Disk::kOther, Rec::kA, Kv::kLiveB, kFar,
     Action::kForget},
    {"other, store tombstone: forget the record", Disk::kOther, Rec::kA, Kv::kTombstone, kFar,
     Action::kForget},
    {"other, store has nothing: forget the record", Disk::kOther, Rec::kA, Kv::kAbsent, 0,
     Action::kForget},
    {"other, no record, store live: conflict", Disk::kOther, Rec::kNone, Kv::kLiveB, kFar,
     Action::kConflict},
    {"other, no record, store live and older: conflict", Disk::kOther, Rec::kNone, Kv::kLiveB, 1,
     Action::kConflict},
    {"other, no record, store tombstone: nothing", Disk::kOther, Rec::kNone, Kv::kTombstone, kFar,
     Action::kNothing},
    {"other, no record, store has nothing: nothing", Disk::kOther, Rec::kNone, Kv::kAbsent, 0,
     Action::kNothing},
};

TEST(FilesyncDecide, EveryCaseOfTheRule) {
  for (const Row& row : kRows) {
    SCOPED_TRACE(row.name);
    LocalFile local = local_of(row.disk);
    IndexRecord record = stat_fields(kMtimeMs * kMs);
    record.digest = digest(0xa);
    StoreVersion store;
    store.tombstone = row.kv == Kv::kTombstone;
    store.digest = row.kv == Kv::kLiveA   ? digest(0xa)
                   : row.kv == Kv::kLiveB ? digest(0xb)
                                          : ChunkHash{};
    store.timestamp_ms = row.kv_ms;
    Action got = decide(local, row.rec == Rec::kA ? &record : nullptr,
                        row.kv == Kv::kAbsent ? nullptr : &store);
    EXPECT_STREQ(action_name(got), action_name(row.want));
  }
}

}  // namespace
}  // namespace wavekv::filesync
