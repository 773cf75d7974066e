#include "filesync/watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "filesync/manifest.h"

namespace wavekv::filesync {
namespace {

namespace stdfs = std::filesystem;

constexpr uint32_t kWatchMask = IN_CREATE | IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_DELETE |
                                IN_MOVED_FROM | IN_MOVED_TO | IN_DONT_FOLLOW | IN_ONLYDIR |
                                IN_EXCL_UNLINK;

}  // namespace

Watcher::Watcher(std::string root, Logger log, OnChange on_change)
    : root_(std::move(root)), log_(std::move(log)), on_change_(std::move(on_change)) {}

Watcher::~Watcher() {
  stop();
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

Status Watcher::open() {
  inotify_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) return Status::io_error(std::string("inotify_init1: ") + strerror(errno));
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return Status::io_error(std::string("eventfd: ") + strerror(errno));
  return Status::ok();
}

void Watcher::start() {
  thread_ = std::thread([this] { loop(); });
}

void Watcher::stop() {
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
}

void Watcher::add_watch(const std::string& dir_rel) {
  int wd = inotify_add_watch(inotify_fd_, full_path(root_, dir_rel).c_str(), kWatchMask);
  if (wd < 0) {
    if (errno == ENOSPC)
      log_(LogLevel::kError,
           "out of inotify watches (fs.inotify.max_user_watches); changes under " +
               full_path(root_, dir_rel) + " are only seen by the next rescan");
    return;  // ENOENT/ENOTDIR: it went away; its parent's event handles that
  }
  std::lock_guard lock(wd_mu_);
  wd_to_rel_[wd] = dir_rel;  // a directory renamed inside the tree keeps its wd
}

std::vector<std::string> Watcher::watch_tree(const std::string& dir_rel) {
  add_watch(dir_rel);
  std::vector<std::string> files;
  std::error_code ec;
  for (auto it = stdfs::recursive_directory_iterator(
           full_path(root_, dir_rel), stdfs::directory_options::skip_permission_denied, ec);
       !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
    if (is_temp_name(it->path().filename().string())) {
      it.disable_recursion_pending();
      continue;
    }
    auto st = it->symlink_status(ec);
    if (ec) continue;  // vanished while we walked
    std::string rel = it->path().lexically_relative(root_).generic_string();
    if (stdfs::is_directory(st))
      add_watch(rel);
    else if (stdfs::is_regular_file(st) && valid_path(rel))
      files.push_back(std::move(rel));
  }
  return files;
}

void Watcher::loop() {
  alignas(struct inotify_event) char buf[64 * 1024];
  while (true) {
    struct pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (fds[1].revents & POLLIN)) return;
    ssize_t len = ::read(inotify_fd_, buf, sizeof buf);
    if (len <= 0) continue;
    for (char* p = buf; p < buf + len;) {
      auto* ev = reinterpret_cast<struct inotify_event*>(p);
      p += sizeof(struct inotify_event) + ev->len;
      handle(*ev);
    }
  }
}

void Watcher::handle(const struct inotify_event& ev) {
  if (ev.mask & IN_Q_OVERFLOW) {
    log_(LogLevel::kWarn, "inotify queue overflowed; rescanning the whole tree");
    on_change_("");
    return;
  }
  std::string dir_rel;
  {
    std::lock_guard lock(wd_mu_);
    auto it = wd_to_rel_.find(ev.wd);
    if (it == wd_to_rel_.end()) return;
    if (ev.mask & IN_IGNORED) {
      wd_to_rel_.erase(it);
      return;
    }
    dir_rel = it->second;
  }
  if (ev.len == 0) return;
  std::string name(ev.name);
  if (is_temp_name(name)) return;
  // A directory's own attribute changes are not mirrored.
  if ((ev.mask & IN_ISDIR) && !(ev.mask & (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO)))
    return;
  on_change_(dir_rel.empty() ? name : dir_rel + "/" + name);
}

}  // namespace wavekv::filesync
