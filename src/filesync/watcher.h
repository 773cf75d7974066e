// Local changes: inotify on every directory of the mirrored tree (never
// through a symlink), on a thread of its own. Each event names a path that
// may have changed; the mirror decides what did.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "filesync/log.h"
#include "wavekv/status.h"

struct inotify_event;

namespace wavekv::filesync {

class Watcher {
 public:
  // Called on the watcher's thread with the path that may have changed;
  // "" means the queue overflowed and the whole tree must be looked at.
  using OnChange = std::function<void(const std::string& rel)>;

  Watcher(std::string root, Logger log, OnChange on_change);
  ~Watcher();  // stop(), then closes the descriptors

  Status open();  // the inotify and wake-up descriptors; no thread yet
  void start();   // the thread reading events
  void stop();    // wakes and joins the thread; idempotent

  // Watches the directory `dir_rel` and every directory under it (never
  // through a symlink), and returns the regular files under it: one walk,
  // each directory watched before it is listed, so a later change is an event.
  std::vector<std::string> watch_tree(const std::string& dir_rel);

 private:
  void add_watch(const std::string& dir_rel);
  void loop();
  void handle(const struct inotify_event& ev);

  const std::string root_;
  const Logger log_;
  const OnChange on_change_;
  int inotify_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: wakes the thread to stop
  std::mutex wd_mu_;
  std::unordered_map<int, std::string> wd_to_rel_;
  std::thread thread_;
};

}  // namespace wavekv::filesync
