// The real file system: POSIX calls, fdatasync, fallocate, flock.
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "wavekv/fs.h"

namespace wavekv {
namespace {

Status errno_status(const std::string& what, const std::string& path, int err) {
  return Status::io_error(what + " " + path + ": " + std::strerror(err));
}

class PosixWritable final : public WritableFile {
 public:
  PosixWritable(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixWritable() override {
    if (fd_ >= 0) ::close(fd_);
  }
  Status write_at(uint64_t offset, std::string_view data) override {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n =
          ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno_status("write", path_, errno);
      }
      done += static_cast<size_t>(n);
    }
    return Status::ok();
  }
  Status sync() override {
    if (::fdatasync(fd_) != 0) return errno_status("fdatasync", path_, errno);
    return Status::ok();
  }
  Status preallocate(uint64_t bytes) override {
    int rc = ::posix_fallocate(fd_, 0, static_cast<off_t>(bytes));
    if (rc != 0) return errno_status("fallocate", path_, rc);
    return Status::ok();
  }
  Status truncate(uint64_t bytes) override {
    if (::ftruncate(fd_, static_cast<off_t>(bytes)) != 0)
      return errno_status("truncate", path_, errno);
    return Status::ok();
  }
  Status close() override {
    if (fd_ < 0) return Status::ok();
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) return errno_status("close", path_, errno);
    return Status::ok();
  }

 private:
  int fd_;
  std::string path_;
};

class PosixReadable final : public ReadableFile {
 public:
  PosixReadable(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixReadable() override { ::close(fd_); }
  Result<size_t> read_at(uint64_t offset, size_t n, char* buf) override {
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd_, buf + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return errno_status("read", path_, errno);
      }
      if (r == 0) break;
      done += static_cast<size_t>(r);
    }
    return done;
  }
  Result<uint64_t> size() override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return errno_status("stat", path_, errno);
    return static_cast<uint64_t>(st.st_size);
  }

 private:
  int fd_;
  std::string path_;
};

class PosixLock final : public FileLock {
 public:
  explicit PosixLock(int fd) : fd_(fd) {}
  ~PosixLock() override {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }

 private:
  int fd_;
};

class PosixFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<WritableFile>> open_writable(const std::string& path,
                                                      bool create) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
    if (fd < 0) return errno_status("open", path, errno);
    return std::unique_ptr<WritableFile>(new PosixWritable(fd, path));
  }
  Result<std::unique_ptr<ReadableFile>> open_readable(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return Status::not_found("no such file: " + path);
      return errno_status("open", path, errno);
    }
    return std::unique_ptr<ReadableFile>(new PosixReadable(fd, path));
  }
  Result<std::vector<std::string>> list_dir(const std::string& dir) override {
    std::error_code ec;
    std::vector<std::string> names;
    for (auto it = std::filesystem::directory_iterator(dir, ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      names.push_back(it->path().filename().string());
    }
    if (ec) return Status::io_error("list " + dir + ": " + ec.message());
    return names;
  }
  Status create_dirs(const std::string& dir) override {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return Status::io_error("create directory " + dir + ": " + ec.message());
    if (!std::filesystem::is_directory(dir, ec))
      return Status::io_error(dir + " exists and is not a directory");
    return Status::ok();
  }
  Status remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return errno_status("remove", path, errno);
    return Status::ok();
  }
  Status rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return errno_status("rename", from, errno);
    return Status::ok();
  }
  Status sync_dir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno_status("open directory", dir, errno);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return errno_status("fsync directory", dir, err);
    return Status::ok();
  }
  bool exists(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }
  Result<std::unique_ptr<FileLock>> lock(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return errno_status("open lock file", path, errno);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK)
        return Status::busy(path + " is locked: another process has this data directory open");
      return errno_status("lock", path, err);
    }
    return std::unique_ptr<FileLock>(new PosixLock(fd));
  }
};

}  // namespace

std::shared_ptr<FileSystem> posix_filesystem() {
  static std::shared_ptr<FileSystem> fs = std::make_shared<PosixFileSystem>();
  return fs;
}

Result<std::string> read_file(FileSystem& fs, const std::string& path) {
  auto file = fs.open_readable(path);
  if (!file) return file.status();
  auto size = (*file)->size();
  if (!size) return size.status();
  std::string data(*size, '\0');
  auto n = (*file)->read_at(0, data.size(), data.data());
  if (!n) return n.status();
  data.resize(*n);
  return data;
}

Status write_file_atomic(FileSystem& fs, const std::string& dir, const std::string& name,
                         std::string_view data) {
  std::string tmp = dir + "/" + name + ".tmp";
  if (fs.exists(tmp)) WAVEKV_RETURN_IF_ERROR(fs.remove(tmp));
  auto file = fs.open_writable(tmp, true);
  if (!file) return file.status();
  WAVEKV_RETURN_IF_ERROR((*file)->write_at(0, data));
  WAVEKV_RETURN_IF_ERROR((*file)->sync());
  WAVEKV_RETURN_IF_ERROR((*file)->close());
  WAVEKV_RETURN_IF_ERROR(fs.rename(tmp, dir + "/" + name));
  return fs.sync_dir(dir);
}

}  // namespace wavekv
