#include "filesync/transfer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <vector>

#include "wavekv/store.h"

namespace wavekv::filesync {
namespace {

constexpr uint64_t kMaxBatchBytes = 4ull << 20;  // chunk bytes per store write

std::string parent_of(const std::string& rel) {
  size_t slash = rel.rfind('/');
  return slash == std::string::npos ? std::string() : rel.substr(0, slash);
}

// The process's umask, read once without changing it (umask(2) can only be
// read by setting it, which would race with the other threads' creates).
uint32_t process_umask() {
  static const uint32_t mask = [] {
    uint32_t m = 022;
    if (FILE* f = std::fopen("/proc/self/status", "r")) {
      char line[256];
      while (std::fgets(line, sizeof line, f))
        if (std::sscanf(line, "Umask: %o", &m) == 1) break;
      std::fclose(f);
    }
    return m & 0777;
  }();
  return mask;
}

Outcome outcome(Outcome::Kind kind, bool error = false) {
  Outcome o;
  o.kind = kind;
  o.error = error;
  return o;
}

}  // namespace

uint32_t materialized_mode(uint32_t manifest_mode, uint32_t umask) {
  return manifest_mode & 0777 & ~umask;
}

// The chunks of one file on their way into the store: those the store lacks
// are batched, up to kMaxBatchBytes per write.
class ChunkWriter {
 public:
  ChunkWriter(Store& store, const std::string& rel, const Logger& log)
      : store_(store), rel_(rel), log_(log) {}

  // Adds one chunk to `m`, and to the batch unless the store has it.
  void add(Manifest& m, const std::string& chunk) {
    ChunkHash h = hash_chunk(chunk);
    m.chunks.push_back({h, static_cast<uint32_t>(chunk.size())});
    m.size += chunk.size();
    std::string key = chunk_key(h);
    auto existing = store_.get_entry(key);
    if (existing && !existing->tombstone) {
      reused++;
      return;
    }
    batch_.put(key, chunk);
    batch_bytes_ += chunk.size();
    written++;
    if (batch_bytes_ >= kMaxBatchBytes) flush();
  }
  void put(const std::string& key, const std::string& value) { batch_.put(key, value); }
  void flush() {
    if (batch_.empty()) return;
    Status s = store_.write(batch_);
    if (!s.is_ok()) {
      log_(LogLevel::kError, "writing chunks of " + rel_ + ": " + s.to_string());
      failed = true;
    }
    batch_ = WriteBatch();
    batch_bytes_ = 0;
  }

  uint64_t written = 0, reused = 0;
  bool failed = false;

 private:
  Store& store_;
  const std::string& rel_;
  const Logger& log_;
  WriteBatch batch_;
  uint64_t batch_bytes_ = 0;
};

Transfer::Transfer(std::string root, Store& store, ChunkerLimits chunker, Logger log)
    : root_(std::move(root)), store_(store), chunker_(chunker), log_(std::move(log)) {}

LocalFile Transfer::stat_local(const std::string& rel) const {
  LocalFile l;
  struct stat st {};
  // A path under a symlink (or a file) is not in the tree: never read or
  // written through it.
  for (size_t pos = rel.find('/'); pos != std::string::npos; pos = rel.find('/', pos + 1)) {
    if (::lstat(full(rel.substr(0, pos)).c_str(), &st) != 0) return l;  // missing
    if (!S_ISDIR(st.st_mode)) {
      l.kind = LocalFile::kOther;
      return l;
    }
  }
  if (::lstat(full(rel).c_str(), &st) != 0) return l;
  l.kind = S_ISREG(st.st_mode) ? LocalFile::kFile : LocalFile::kOther;
  l.rec = record_of(st);
  return l;
}

Outcome Transfer::publish_delete(const std::string& rel) {
  Status st = store_.del(manifest_key(rel));
  if (!st.is_ok()) {
    log_(LogLevel::kError, "deleting " + rel + ": " + st.to_string());
    return outcome(Outcome::kFailed, true);
  }
  return outcome(Outcome::kDone);
}

// ---------------------------------------------------------------- publish

bool Transfer::read_chunks(int fd, const std::string& rel, Manifest& m, ChunkWriter& out) {
  Chunker chunker(chunker_);
  std::string chunk;
  std::vector<char> buf(1 << 16);
  bool read_failed = false;
  while (!out.failed) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      log_(LogLevel::kError, "reading " + full(rel) + ": " + strerror(errno));
      read_failed = true;
      break;
    }
    if (n == 0) break;
    std::string_view data(buf.data(), static_cast<size_t>(n));
    while (!data.empty()) {
      size_t take = chunker.next_cut(data);
      chunk.append(data.substr(0, take));
      data.remove_prefix(take);
      if (!chunker.at_cut()) continue;
      out.add(m, chunk);
      chunk.clear();
    }
  }
  if (!chunk.empty()) out.add(m, chunk);
  return !read_failed && !out.failed;
}

Outcome Transfer::publish(const std::string& rel, const IndexRecord& expected,
                          const std::optional<ChunkHash>& store_digest) {
  int fd = ::open(full(rel).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return outcome(Outcome::kRetry);  // gone or replaced meanwhile: look again
  struct stat st {};
  ::fstat(fd, &st);
  Outcome o;
  o.record = record_of(st);
  if (!o.record.same_stat(expected)) {
    ::close(fd);
    return outcome(Outcome::kRetry);
  }
  Manifest m;
  m.mode = st.st_mode & 07777;
  ChunkWriter out(store_, rel, log_);
  bool read_ok = read_chunks(fd, rel, m, out);
  struct stat after {};
  ::fstat(fd, &after);
  ::close(fd);
  if (!read_ok) return outcome(Outcome::kFailed, true);
  if (!record_of(after).same_stat(o.record)) {
    // Written to while we read it: the next quiet moment gets a clean read.
    out.flush();
    return outcome(Outcome::kRetry);
  }
  std::string encoded = encode_manifest(m);
  o.record.digest = manifest_digest(encoded);
  o.chunks_written = out.written;
  o.chunks_reused = out.reused;
  if (store_digest == o.record.digest) {
    // Same bytes and mode as the store has: our own write coming back, or a
    // touch. Nothing to publish.
    out.flush();
    o.kind = Outcome::kSame;
    return o;
  }
  out.put(manifest_key(rel), encoded);
  out.flush();
  if (out.failed) return outcome(Outcome::kFailed, true);
  return o;
}

// ---------------------------------------------------------------- materialize

Outcome Transfer::chunks_ready(const std::string& rel, const Manifest& m) {
  for (const auto& c : m.chunks) {
    auto e = store_.get_entry(chunk_key(c.hash));
    if (!e || e->tombstone) return outcome(Outcome::kWaiting);
    if (e->value.size() != c.size || hash_chunk(e->value) != c.hash) {
      log_(LogLevel::kError, "chunk " + hash_hex(c.hash) + " of " + rel +
                                 " does not match its hash; waiting for a good copy");
      return outcome(Outcome::kWaiting, true);
    }
  }
  return outcome(Outcome::kDone);
}

bool Transfer::make_parents(const std::string& rel, const std::string& parent) {
  // One component at a time: each must be a real directory, never a symlink,
  // or a peer's path could lead the write out of the mirrored tree.
  for (size_t pos = 0; !parent.empty() && pos != std::string::npos;) {
    pos = parent.find('/', pos + 1);
    std::string dir = full(parent.substr(0, pos));
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 && ::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      log_(LogLevel::kWarn, "cannot create " + dir + " for " + rel + ": " + strerror(errno));
      return false;
    }
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      log_(LogLevel::kWarn,
           dir + " is not a directory (a file or a symlink); " + rel + " is not written");
      return false;
    }
  }
  return true;
}

bool Transfer::write_chunks(int fd, const std::string& temp, const Manifest& m) {
  for (const auto& c : m.chunks) {
    auto e = store_.get_entry(chunk_key(c.hash));
    if (!e || e->tombstone) return false;
    std::string_view data = e->value;
    while (!data.empty()) {
      ssize_t n = ::write(fd, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        log_(LogLevel::kError, "writing " + temp + ": " + strerror(errno));
        return false;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
  }
  return true;
}

Outcome Transfer::materialize(const std::string& rel, const Manifest& m, const ChunkHash& digest,
                              const LocalFile& expected) {
  // Every chunk must be here and be what its name says, before we touch the
  // directory.
  Outcome ready = chunks_ready(rel, m);
  if (ready.kind != Outcome::kDone) return ready;
  // Parent directories, made as needed.
  std::string parent = parent_of(rel);
  if (!make_parents(rel, parent)) return outcome(Outcome::kConflict);
  std::string name = rel.substr(parent.empty() ? 0 : parent.size() + 1);
  std::string temp = full(parent) + "/" + std::string(kTempPrefix) + name + "." +
                     std::to_string(::getpid()) + "." + std::to_string(++temp_counter_);
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    log_(LogLevel::kError, "creating " + temp + ": " + strerror(errno));
    return outcome(Outcome::kFailed, true);
  }
  // A peer's manifest never makes a setuid, setgid or sticky file here, nor
  // one wider than this process's umask allows (docs/SECURITY.md).
  const uint32_t mode = materialized_mode(m.mode, process_umask());
  struct stat written {};
  bool ok = write_chunks(fd, temp, m) && ::fchmod(fd, mode) == 0 && ::fsync(fd) == 0 &&
            ::fstat(fd, &written) == 0;
  ::close(fd);
  // Last look before the rename: if the file changed here since we decided,
  // the local change is newer; handle it instead.
  LocalFile now = stat_local(rel);
  bool still = now.kind == expected.kind &&
               (now.kind == LocalFile::kMissing || now.rec.same_stat(expected.rec));
  if (!ok || !still || ::rename(temp.c_str(), full(rel).c_str()) != 0) {
    ::unlink(temp.c_str());
    return outcome(Outcome::kRetry, !ok);
  }
  // The index remembers the file as it is now if it is still the one we
  // wrote (the rename changed only its ctime). If it was written to right
  // after the rename, it remembers the file as we wrote it instead: the
  // next look then sees a local change and publishes it. (Remembering the
  // changed file's stat with our manifest's digest would hide that change
  // for good.)
  const IndexRecord ours = record_of(written);
  const LocalFile after = stat_local(rel);
  const bool untouched = after.kind == LocalFile::kFile && after.rec.ino == ours.ino &&
                         after.rec.size == ours.size && after.rec.mtime_ns == ours.mtime_ns &&
                         after.rec.mode == ours.mode;
  Outcome o;
  o.record = untouched ? after.rec : ours;
  o.record.digest = digest;
  return o;
}

// ---------------------------------------------------------------- remove

Outcome Transfer::remove(const std::string& rel, const LocalFile& expected) {
  LocalFile now = stat_local(rel);
  if (now.kind != LocalFile::kFile || !now.rec.same_stat(expected.rec))
    return outcome(Outcome::kRetry);  // changed meanwhile: decide again
  if (::unlink(full(rel).c_str()) != 0 && errno != ENOENT) {
    log_(LogLevel::kError, "deleting " + full(rel) + ": " + strerror(errno));
    return outcome(Outcome::kFailed, true);
  }
  prune_empty_parents(rel);
  return outcome(Outcome::kDone);
}

void Transfer::prune_empty_parents(const std::string& rel) {
  // Directories exist where files need them: one that a remote delete left
  // empty goes too (rmdir fails, harmlessly, on any that is not empty).
  for (std::string dir = parent_of(rel); !dir.empty(); dir = parent_of(dir))
    if (::rmdir(full(dir).c_str()) != 0) break;
}

}  // namespace wavekv::filesync
