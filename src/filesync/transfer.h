// The file side of the mirror: a local file into the store (publish: chunks
// first, then the manifest), a store version into a file (materialize: to a
// temp file, fsynced, renamed into place), and deletes both ways. Each call
// says how it went; the mirror updates the index, the counters and its queue.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "filesync/chunker.h"
#include "filesync/decide.h"
#include "filesync/index.h"
#include "filesync/log.h"
#include "filesync/manifest.h"

namespace wavekv {
class Store;
}

namespace wavekv::filesync {

class ChunkWriter;  // transfer.cc: batches the chunks of one publish

struct Outcome {
  enum Kind {
    kDone,      // done; `record` is what the index should remember (publish, write)
    kSame,      // publish only: the file equals the store's manifest; remember `record`
    kRetry,     // the file changed meanwhile (or a write failed): look again after the debounce
    kWaiting,   // materialize only: chunks missing or corrupt; retried when chunks arrive
    kConflict,  // materialize only: a parent is not a directory
    kFailed,    // given up (logged)
  } kind = kDone;
  bool error = false;  // counted as an error (logged)
  IndexRecord record;
  uint64_t chunks_written = 0;  // publish: chunks put in the store
  uint64_t chunks_reused = 0;   // publish: chunks the store had already
};

// The permission bits a file materialized from a replicated manifest gets:
// its rwx bits only (never setuid, setgid or sticky), narrowed by `umask`.
// Only regular files are ever created from a manifest.
uint32_t materialized_mode(uint32_t manifest_mode, uint32_t umask);

class Transfer {
 public:
  Transfer(std::string root, Store& store, ChunkerLimits chunker, Logger log);

  std::string full(const std::string& rel) const { return full_path(root_, rel); }
  // A path under a symlink (or a file) is kOther: never read or written through.
  LocalFile stat_local(const std::string& rel) const;

  // Reads the file, writes the chunks the store lacks and then the manifest,
  // unless the result equals `store_digest` (kSame). kRetry if the file is not
  // `expected` any more or changed while we read it.
  Outcome publish(const std::string& rel, const IndexRecord& expected,
                  const std::optional<ChunkHash>& store_digest);
  // Deletes the manifest (a tombstone that replicates).
  Outcome publish_delete(const std::string& rel);
  // Writes `m` over the file, if the file is still `expected` just before the
  // rename; the record carries `digest`.
  Outcome materialize(const std::string& rel, const Manifest& m, const ChunkHash& digest,
                      const LocalFile& expected);
  // Deletes the file if it is still `expected`, and the directories that
  // leaves empty.
  Outcome remove(const std::string& rel, const LocalFile& expected);

 private:
  bool read_chunks(int fd, const std::string& rel, Manifest& m, ChunkWriter& out);
  Outcome chunks_ready(const std::string& rel, const Manifest& m);
  bool make_parents(const std::string& rel, const std::string& parent);
  bool write_chunks(int fd, const std::string& temp, const Manifest& m);
  void prune_empty_parents(const std::string& rel);

  const std::string root_;
  Store& store_;
  const ChunkerLimits chunker_;
  const Logger log_;
  uint64_t temp_counter_ = 0;
};

}  // namespace wavekv::filesync
