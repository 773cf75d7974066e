// filesync's one decision rule, as a pure function: from what is on disk,
// what the local index remembers and what the store holds for one path, what
// to do (ARCHITECTURE.md, "filesync"; tests/filesync_decide_test.cc is its
// table). No I/O here: Mirror gathers the three inputs and performs the action.
//   - unchanged on disk since the record, and the store differs: a remote
//     change (write the store's version, or delete the file);
//   - changed on disk since the record (or created, or deleted): a local
//     change (publish it, or tombstone the manifest); whether the new content
//     equals the store's manifest (an echo or a touch) is found by publishing,
//     which must read the file;
//   - no record: last writer wins between the file's mtime and the store
//     version's timestamp; on a tie the local file wins.
#pragma once

#include <cstdint>

#include "filesync/chunker.h"
#include "filesync/index.h"

namespace wavekv::filesync {

// The local file at a path: a regular file, something else (a directory, a
// symlink, or a path under a symlink or a file), or nothing.
struct LocalFile {
  enum Kind { kMissing, kFile, kOther } kind = kMissing;
  IndexRecord rec;  // stat fields only (digest unset); kFile and kOther
};

// The store's version of a path's manifest (absent: no version at all).
struct StoreVersion {
  bool tombstone = false;
  ChunkHash digest{};         // manifest_digest of the manifest; live only
  uint64_t timestamp_ms = 0;  // the version's timestamp, milliseconds
};

enum class Action {
  kNothing,        // nothing here, nothing live in the store: not even counted
  kUnchanged,      // in step already (counted as unchanged)
  kPublish,        // local change: publish the file, unless it equals the store's manifest
  kWrite,          // remote change: write the store's version to the file
  kRemove,         // remote delete: delete the local file
  kPublishDelete,  // local delete: tombstone the manifest, then forget the record
  kForget,         // the file we knew is no longer a regular file: forget the record
  kForgetDeleted,  // deleted here and in the store: forget the record (counted as unchanged)
  kConflict,       // not a regular file here, a file in the store: leave both alone
};

Action decide(const LocalFile& local, const IndexRecord* record, const StoreVersion* store);

const char* action_name(Action a);

}  // namespace wavekv::filesync
