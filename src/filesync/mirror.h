// The mirror: keeps one directory and an embedded WaveKV node in step, both
// ways. Local changes (inotify, and a full rescan at start) become writes;
// replicated changes become files, written to a temp file and renamed into
// place so a reader never sees half a file.
//
// One rule decides every path (decide.h, applied by reconcile_file; its
// table is tests/filesync_decide_test.cc): a local index remembers, per
// file, the stat of the file as filesync last wrote or read it and which
// manifest that was. Then
//   - file unchanged since (stat equal) and the store's manifest differs:
//     the change is remote: write the store's version (or delete the file);
//   - file changed since (stat differs, or created, or deleted): the change
//     is local: publish it (or delete the manifest), unless its content and
//     mode equal the store's manifest already (an echo of our own write, or a
//     touch): then only the index is updated;
//   - no index record (a file filesync never saw, a fresh index): last writer
//     wins between the file's mtime and the store version's timestamp.
// Because the index is durable, the same rule is right after a restart: what
// changed while filesync was down is found by the startup rescan.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "filesync/chunker.h"
#include "wavekv/node.h"

namespace wavekv::filesync {

struct MirrorConfig {
  std::string watch_dir;      // the mirrored directory; created if missing
  std::string data_dir;       // <data_dir>/kv: the node's store; <data_dir>/index: the local index
  NodeConfig node;            // store.data_dir is set from data_dir
  uint64_t debounce_ms = 50;  // a path is handled once it has been quiet this long
  // A node whose store is empty (new, or wiped) first waits this long at most
  // for one complete sync from a peer, so it does not take the files of an
  // empty store as deletions, nor publish stale files over newer versions.
  uint64_t bootstrap_timeout_ms = 60000;
  uint64_t retry_ms = 1000;  // files waiting for chunks are retried this often
  // Lines for a terminal while the initial scan and the bootstrap run ("\r"
  // and all); empty: none. Log lines go to node.log.
  std::function<void(const std::string& line)> progress;
  ChunkerLimits chunker;

  Status validate() const;
};

struct MirrorStats {
  uint64_t published = 0;     // local file versions written to the store
  uint64_t unpublished = 0;   // local deletes written to the store
  uint64_t materialized = 0;  // store versions written to files
  uint64_t removed = 0;       // files deleted because the store says so
  uint64_t unchanged = 0;     // handled paths that needed nothing (echoes, touches)
  uint64_t waiting = 0;       // files whose chunks have not all arrived yet
  uint64_t conflicts = 0;     // a store version that cannot be written (a directory in the way)
  uint64_t errors = 0;
  uint64_t chunks_written = 0;  // chunks put in the store (new content)
  uint64_t chunks_reused = 0;   // chunks the store had already
};

class Mirror {
 public:
  // Opens the index and the node, waits for the first sync if the store is
  // empty and there are peers, rescans the directory, then follows changes.
  static Result<std::unique_ptr<Mirror>> start(MirrorConfig config);
  virtual ~Mirror() = default;  // stop()

  virtual Node& node() = 0;
  virtual MirrorStats stats() = 0;
  // True once nothing is queued and no file waits for chunks, or false after
  // `timeout_ms`.
  virtual bool wait_idle(uint64_t timeout_ms) = 0;
  // Stops following changes and closes the node and the index. Idempotent.
  virtual Status stop() = 0;
};

}  // namespace wavekv::filesync
