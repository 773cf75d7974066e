// All file I/O of WaveKV goes through this small interface, so that tests can
// inject faults (fail the Nth write or fsync, drop what was never fsynced) and
// embedders can bring their own storage.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "wavekv/status.h"

namespace wavekv {

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Writes `data` at `offset`, growing the file if needed. All or nothing from
  // the caller's view: a short write is reported as an error.
  virtual Status write_at(uint64_t offset, std::string_view data) = 0;
  // Makes every byte written so far durable (fdatasync).
  virtual Status sync() = 0;
  // Reserves `bytes` of zero-filled space so later syncs need not grow the file.
  virtual Status preallocate(uint64_t bytes) = 0;
  virtual Status truncate(uint64_t bytes) = 0;
  virtual Status close() = 0;
};

class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  // Reads up to `n` bytes at `offset` into `buf`; fewer only at the end of file.
  virtual Result<size_t> read_at(uint64_t offset, size_t n, char* buf) = 0;
  virtual Result<uint64_t> size() = 0;
};

// Held for as long as the object lives.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // Opens for writing, creating the file if `create`; never truncates.
  virtual Result<std::unique_ptr<WritableFile>> open_writable(const std::string& path,
                                                              bool create) = 0;
  virtual Result<std::unique_ptr<ReadableFile>> open_readable(const std::string& path) = 0;
  // The names (not paths) of the entries of `dir`, in no particular order.
  virtual Result<std::vector<std::string>> list_dir(const std::string& dir) = 0;
  // Creates `dir` and its missing parents; succeeds if it exists.
  virtual Status create_dirs(const std::string& dir) = 0;
  virtual Status remove(const std::string& path) = 0;
  virtual Status rename(const std::string& from, const std::string& to) = 0;
  // Makes creations, renames and removals inside `dir` durable.
  virtual Status sync_dir(const std::string& dir) = 0;
  virtual bool exists(const std::string& path) = 0;
  // An exclusive lock that another process (or FileSystem user) cannot take.
  virtual Result<std::unique_ptr<FileLock>> lock(const std::string& path) = 0;
};

// The operating system's file system (POSIX calls, flock for locks).
std::shared_ptr<FileSystem> posix_filesystem();

// Reads a whole file.
Result<std::string> read_file(FileSystem& fs, const std::string& path);

// Replaces `dir/name` atomically: temp file, fsync, rename, fsync dir.
Status write_file_atomic(FileSystem& fs, const std::string& dir, const std::string& name,
                         std::string_view data);

}  // namespace wavekv
