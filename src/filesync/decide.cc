#include "filesync/decide.h"

namespace wavekv::filesync {
namespace {

// Not a regular file here (a directory, a symlink, or under one).
Action decide_other(const IndexRecord* record, const StoreVersion* live) {
  if (record) {
    // The file we knew became a directory or a symlink: the file is gone, and
    // if the store still has the version we knew, it goes everywhere.
    return live && live->digest == record->digest ? Action::kPublishDelete : Action::kForget;
  }
  // A directory or a symlink where the store has a file: not ours to touch.
  return live ? Action::kConflict : Action::kNothing;
}

// The file is new or changed here, or was never seen by this index.
Action decide_changed(const LocalFile& local, const IndexRecord* record,
                      const StoreVersion* store) {
  if (!record && store) {
    // Never seen by this index: last writer wins between the file's mtime and
    // the store's version.
    uint64_t mtime_ms = local.rec.mtime_ns / 1000000;
    if (mtime_ms < store->timestamp_ms) return store->tombstone ? Action::kRemove : Action::kWrite;
  }
  return Action::kPublish;
}

}  // namespace

Action decide(const LocalFile& local, const IndexRecord* record, const StoreVersion* store) {
  const StoreVersion* live = store && !store->tombstone ? store : nullptr;
  bool store_has_record = live && record && live->digest == record->digest;
  if (local.kind == LocalFile::kOther) return decide_other(record, live);
  if (record && local.kind == LocalFile::kFile && record->same_stat(local.rec)) {
    // Unchanged here since we last synced it.
    if (store_has_record) return Action::kUnchanged;
    return live ? Action::kWrite : Action::kRemove;
  }
  if (record && local.kind == LocalFile::kMissing) {
    // Deleted here: delete it everywhere, unless a newer version came in
    // meanwhile: then keep the newer version (a lost delete costs less than
    // lost data).
    if (store_has_record) return Action::kPublishDelete;
    return live ? Action::kWrite : Action::kForgetDeleted;
  }
  if (local.kind == LocalFile::kMissing) return live ? Action::kWrite : Action::kNothing;
  return decide_changed(local, record, store);
}

const char* action_name(Action a) {
  switch (a) {
    case Action::kNothing: return "nothing";
    case Action::kUnchanged: return "unchanged";
    case Action::kPublish: return "publish";
    case Action::kWrite: return "write";
    case Action::kRemove: return "remove";
    case Action::kPublishDelete: return "publish-delete";
    case Action::kForget: return "forget";
    case Action::kForgetDeleted: return "forget-deleted";
    case Action::kConflict: return "conflict";
  }
  return "?";
}

}  // namespace wavekv::filesync
