// supervise() (wavekv/node.h), the loop `wavekv serve` and `filesync run`
// share, driven through its hooks with a stand-in node: when it starts again,
// what it wipes, and how it reports each way of ending.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "wavekv/node.h"

namespace wavekv {
namespace {

// A node that only answers whether a re-bootstrap was asked for. supervise()
// also asks it for its store (the node id of its log lines).
class StandInNode final : public Node {
 public:
  StandInNode(Store& store, bool rebootstrap) : store_(store), rebootstrap_(rebootstrap) {}
  Store& store() override { return store_; }
  std::string peer_address() const override { return "127.0.0.1:1"; }
  std::string resp_address() const override { return ""; }
  std::string http_address() const override { return ""; }
  NodeStatus status() override { return {}; }
  bool rebootstrap_requested() const override { return rebootstrap_; }
  bool wait_rebootstrap(uint64_t) override { return rebootstrap_; }
  Status stop() override { return Status::ok(); }
  Status reload_credentials() override {
    reloads++;
    return reload_error;
  }
  std::atomic<int> reloads{0};
  Status reload_error;  // set between reloads

 private:
  Store& store_;
  bool rebootstrap_;
};

class Supervise : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "wavekv-supervise-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    std::filesystem::create_directories(dir_ + "/data");
    Config c;
    c.data_dir = dir_ + "/store";
    auto s = Store::open(c);
    ASSERT_TRUE(s) << s.status().to_string();
    store_ = std::move(*s);
    // The hooks count what supervise() asked for; each run's node says
    // whether a re-bootstrap comes next (`rebootstraps` of them, then none).
    hooks_.start = [this]() -> Result<Node*> {
      starts_++;
      if (start_error_) return *start_error_;
      node_ = std::make_unique<StandInNode>(*store_, starts_ <= rebootstraps_);
      return node_.get();
    };
    hooks_.announce = [this](Node&) {
      announces_++;
      if (starts_ > rebootstraps_) stop_signal_ = 15;  // the last run: SIGTERM comes
      return announce_error_;
    };
    hooks_.stop = [this] {
      stops_++;
      return stop_error_;
    };
    hooks_.data_dir = dir_ + "/data";
    hooks_.component = "test";
    hooks_.log = [](const LogRecord&) {};
  }
  void TearDown() override {
    (void)store_->close();
    std::filesystem::remove_all(dir_);
  }
  void put_marker() { std::ofstream(dir_ + "/data/marker") << "x"; }
  bool marker() const { return std::filesystem::exists(dir_ + "/data/marker"); }

  std::string dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Node> node_;
  SuperviseHooks hooks_;
  std::atomic<int> stop_signal_{0};
  int rebootstraps_ = 0;
  int starts_ = 0, announces_ = 0, stops_ = 0;
  std::optional<Status> start_error_;
  Status announce_error_, stop_error_;
};

TEST_F(Supervise, ASignalStopsTheRunAndKeepsTheData) {
  put_marker();
  SuperviseEnd end = supervise(hooks_, stop_signal_);
  EXPECT_EQ(end.failed, SuperviseEnd::Failed::kNothing);
  EXPECT_TRUE(end.error.is_ok());
  EXPECT_EQ(end.signal, 15);
  EXPECT_EQ(starts_, 1);
  EXPECT_EQ(stops_, 1);
  EXPECT_TRUE(marker());
}

TEST_F(Supervise, EachRebootstrapStopsWipesAndStartsAgain) {
  rebootstraps_ = 2;
  put_marker();
  SuperviseEnd end = supervise(hooks_, stop_signal_);
  EXPECT_TRUE(end.error.is_ok()) << end.error.to_string();
  EXPECT_EQ(end.signal, 15);
  EXPECT_EQ(starts_, 3);
  EXPECT_EQ(announces_, 3) << "every run announces (the ready file is rewritten)";
  EXPECT_EQ(stops_, 3);
  EXPECT_FALSE(marker()) << "the data directory was emptied";
  EXPECT_TRUE(std::filesystem::is_directory(dir_ + "/data")) << "but kept";
  // Its contents were moved aside, not deleted: the first run's marker is in
  // the older copy, and the second copy is of the (empty) second run.
  auto retired = retired_data_dirs(dir_ + "/data");
  ASSERT_EQ(retired.size(), 2u);
  EXPECT_TRUE(std::filesystem::exists(retired[0] + "/marker"));
  EXPECT_FALSE(std::filesystem::exists(retired[1] + "/marker"));
  EXPECT_NE(retired[0].find("/data/retired/rebootstrap-"), std::string::npos) << retired[0];
}

TEST_F(Supervise, RetiredCopiesAreBoundedOldestGoingFirst) {
  const std::string data = dir_ + "/data";
  std::vector<std::string> made;
  for (int i = 0; i < 4; i++) {
    std::ofstream(data + "/run") << i;
    std::filesystem::create_directories(data + "/sub");
    std::ofstream(data + "/sub/file") << i;
    auto copy = retire_data_dir(data, 2, 1'764'000'000'000 + i);
    ASSERT_TRUE(copy) << copy.status().to_string();
    made.push_back(*copy);
    // Only `retired/` is left in the data directory.
    size_t entries = 0;
    for (const auto& e : std::filesystem::directory_iterator(data)) {
      entries++;
      EXPECT_EQ(e.path().filename(), kRetiredDir);
    }
    EXPECT_EQ(entries, 1u);
  }
  auto retired = retired_data_dirs(data);
  ASSERT_EQ(retired, (std::vector<std::string>{made[2], made[3]}));
  std::ifstream in(made[3] + "/sub/file");
  std::string text;
  in >> text;
  EXPECT_EQ(text, "3") << "the newest copy holds the last run's files";
  EXPECT_NE(made[0].find("rebootstrap-20251124T"), std::string::npos) << made[0];
  // keep 0 is the old wipe: nothing is moved, copies are gone.
  std::ofstream(data + "/run") << "x";
  auto none = retire_data_dir(data, 0, 1);
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, "");
  EXPECT_TRUE(std::filesystem::is_empty(data));
}

TEST_F(Supervise, ARetiredCopyIsNotReplayedAsLiveData) {
  Config c;
  c.data_dir = dir_ + "/data";
  {
    auto s = Store::open(c);
    ASSERT_TRUE(s) << s.status().to_string();
    ASSERT_TRUE((*s)->put("k", "v").is_ok());
    ASSERT_TRUE((*s)->close().is_ok());
  }
  ASSERT_TRUE(retire_data_dir(c.data_dir, 2, 1'764'000'000'000));
  auto s = Store::open(c);
  ASSERT_TRUE(s) << s.status().to_string();
  EXPECT_FALSE((*s)->get("k")) << "the retired store came back as live data";
  ASSERT_TRUE((*s)->close().is_ok());
  // And the copy still opens on its own, with its data.
  Config old = c;
  old.data_dir = retired_data_dirs(c.data_dir).at(0);
  auto o = Store::open(old);
  ASSERT_TRUE(o) << o.status().to_string();
  auto v = (*o)->get("k");
  ASSERT_TRUE(v) << v.status().to_string();
  EXPECT_EQ(*v, "v");
  ASSERT_TRUE((*o)->close().is_ok());
}

// SIGHUP (reload_requests() moves): the running node reloads its
// credentials, and the run goes on whether that worked or not; each result
// is logged.
TEST_F(Supervise, AReloadRequestReloadsTheNodeAndKeepsItRunning) {
  std::atomic<uint64_t> reloads{0};
  hooks_.reload_requests = &reloads;
  hooks_.announce = [](Node&) { return Status::ok(); };  // no signal comes by itself
  std::mutex mu;
  std::vector<std::string> lines;
  hooks_.log = [&](const LogRecord& r) {
    std::lock_guard lock(mu);
    lines.push_back(r.message);
  };
  std::atomic<StandInNode*> current{nullptr};  // node_ belongs to supervise()'s thread
  hooks_.start = [&, start = hooks_.start]() -> Result<Node*> {
    auto n = start();
    if (n) current = static_cast<StandInNode*>(*n);
    return n;
  };
  auto reloaded = [&] { return current ? current.load()->reloads.load() : 0; };
  SuperviseEnd end;
  std::thread run([&] { end = supervise(hooks_, stop_signal_); });
  for (int i = 0; i < 500 && !current; i++)  // supervise() took its count before the start
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (current.load() == nullptr) {  // end the run before failing: `run` must be joined
    stop_signal_ = 15;
    run.join();
    FAIL() << "the node never started";
  }
  auto wait_for = [&](int n) {
    for (int i = 0; i < 500 && reloaded() < n; i++)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return reloaded() == n;
  };
  reloads++;
  EXPECT_TRUE(wait_for(1));
  current.load()->reload_error = Status::not_found("node.crt does not exist");
  reloads++;
  EXPECT_TRUE(wait_for(2));
  stop_signal_ = 15;
  run.join();
  EXPECT_EQ(starts_, 1) << "a reload is not a restart";
  EXPECT_EQ(end.signal, 15);
  std::lock_guard lock(mu);
  EXPECT_NE(std::find(lines.begin(), lines.end(), "reloaded credentials: new connections use them"),
            lines.end());
  EXPECT_NE(std::find(lines.begin(), lines.end(),
                      "reloading credentials failed; the old ones stay in use"),
            lines.end());
}

TEST_F(Supervise, AFailedStartOrAnnounceIsAStartFailure) {
  start_error_ = Status::invalid("cannot bind");
  SuperviseEnd end = supervise(hooks_, stop_signal_);
  EXPECT_EQ(end.failed, SuperviseEnd::Failed::kStart);
  EXPECT_EQ(end.error.message(), "cannot bind");
  EXPECT_EQ(stops_, 0) << "nothing started, nothing to stop";

  start_error_.reset();
  announce_error_ = Status::io_error("--ready-file: no space");
  end = supervise(hooks_, stop_signal_);
  EXPECT_EQ(end.failed, SuperviseEnd::Failed::kStart);
  EXPECT_EQ(end.error.message(), "--ready-file: no space");
  EXPECT_EQ(stops_, 1) << "the run that could not announce is stopped";
}

TEST_F(Supervise, AFailedCloseEndsItBeforeAnyWipe) {
  rebootstraps_ = 1;
  put_marker();
  stop_error_ = Status::io_error("fsync failed");
  SuperviseEnd end = supervise(hooks_, stop_signal_);
  EXPECT_EQ(end.failed, SuperviseEnd::Failed::kClose);
  EXPECT_EQ(end.error.message(), "fsync failed");
  EXPECT_EQ(starts_, 1);
  EXPECT_TRUE(marker()) << "a store that did not close cleanly is not wiped";
}

}  // namespace
}  // namespace wavekv
