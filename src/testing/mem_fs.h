// An in-memory FileSystem that models what a crash keeps and can be told to fail.
//
// Each file has its current bytes and the bytes it had at its last sync(); each
// directory has its current entries and the entries it had at its last
// sync_dir(). crash() throws away everything that was never made durable, as a
// power cut would. Used by the unit tests, the reference-model test and the
// simulator; never by a real node.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "wavekv/fs.h"

namespace wavekv::testing {

class MemFileSystem final : public FileSystem, public std::enable_shared_from_this<MemFileSystem> {
 public:
  struct Node {
    std::string data;    // what readers see now
    std::string synced;  // what survives a crash
  };

  Result<std::unique_ptr<WritableFile>> open_writable(const std::string& path,
                                                      bool create) override;
  Result<std::unique_ptr<ReadableFile>> open_readable(const std::string& path) override;
  Result<std::vector<std::string>> list_dir(const std::string& dir) override;
  Status create_dirs(const std::string& dir) override;
  Status remove(const std::string& path) override;
  Status rename(const std::string& from, const std::string& to) override;
  Status sync_dir(const std::string& dir) override;
  bool exists(const std::string& path) override;
  Result<std::unique_ptr<FileLock>> lock(const std::string& path) override;

  // Power cut: every file reverts to its synced bytes, every directory to its
  // synced entries, and all locks are released. If `torn_seed` is non-zero, each
  // file also keeps a pseudo-random prefix of its unsynced bytes (a torn write).
  // The machine then stays down: every change fails (so the crashed process,
  // still an object in the test, cannot write a thing) until power_on().
  void crash(uint64_t torn_seed = 0);
  void power_on();

  // The next `n`-th write_at (1 = the very next) fails with an I/O error, once.
  void fail_nth_write(uint64_t n);
  // The next `n`-th sync (file or directory) fails with an I/O error, once.
  void fail_nth_sync(uint64_t n);
  // Writes that would take the total file bytes past this fail ("disk full").
  void set_space_limit(uint64_t bytes);

  uint64_t writes() const;
  uint64_t syncs() const;

  // Direct access for corruption tests.
  std::string contents(const std::string& path);
  void set_contents(const std::string& path, std::string data, bool durable = true);

 private:
  friend class MemWritable;
  friend class MemLock;
  friend class MemReadable;
  Status before_write(uint64_t new_total_bytes);
  Status before_sync();
  Status check_power() const;
  uint64_t total_bytes_locked() const;

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Node>> files_;          // live names
  std::map<std::string, std::shared_ptr<Node>> durable_files_;  // names as of sync_dir
  std::set<std::string> dirs_;
  std::set<std::string> locks_;
  uint64_t writes_ = 0;
  uint64_t syncs_ = 0;
  uint64_t fail_write_at_ = 0;  // absolute write count that fails; 0: none
  uint64_t fail_sync_at_ = 0;
  uint64_t space_limit_ = UINT64_MAX;
  bool powered_off_ = false;
};

}  // namespace wavekv::testing
