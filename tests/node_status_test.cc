// The status field table (src/monitoring/node_status.h) is the one source of
// GET /v1/status, /metrics and INFO: every row shows in all three, with its
// value, through the real HTTP and RESP servers.
#include "monitoring/node_status.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <set>
#include <type_traits>

#include "http/client.h"
#include "http/server.h"
#include "resp/server.h"
#include "support/resp_client.h"
#include "support/test_util.h"

namespace wavekv::monitoring {
namespace {

// Gives every uint64_t of a struct made only of them the next value.
template <typename T>
void fill(T& t, uint64_t& next) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) % sizeof(uint64_t) == 0);
  std::array<uint64_t, sizeof(T) / sizeof(uint64_t)> v;
  for (auto& x : v) x = next++;
  std::memcpy(static_cast<void*>(&t), v.data(), sizeof(T));  // trivially copyable
}

// A node's status where every figure differs, so a value found is its own.
NodeStatus full_status() {
  uint64_t next = 1000;
  NodeStatus s;
  StoreStatus& st = s.store;
  st.node_id = 7;
  st.incarnation = 99;
  for (uint64_t* f : {&st.live_keys, &st.tombstones, &st.data_bytes, &st.next_seq, &st.last_lsn,
                      &st.durable_lsn, &st.wal_segments, &st.wal_bytes, &st.writes,
                      &st.group_commits, &st.fsyncs, &st.checkpoint_lsn, &st.checkpoints,
                      &st.snapshot_bytes, &st.wal_bytes_since_checkpoint, &st.ops_since_checkpoint})
    *f = next++;
  fill(s.replication, next);
  fill(s.driver, next);
  fill(s.transport, next);
  s.address = "10.0.0.1:7400";
  s.digest = 0xabc;
  s.poisoned_keys = next++;
  s.members = {{2, 3, "10.0.0.2:7400", 12, 0, -7},
               {3, 4, "10.0.0.3:7400", std::nullopt, 5, std::nullopt}};
  HttpStats h;
  for (uint64_t* f : {&h.connections, &h.connections_total, &h.connections_refused,
                      &h.watch_subscribers, &h.watch_events, &h.watch_resets})
    *f = next++;
  h.responses = {{"200", next++}, {"other", next++}};
  s.http = h;
  return s;
}

const nlohmann::json* json_field(const nlohmann::json& j, const StatusField& f) {
  static const std::map<Group, const char*> kObject = {{Group::kStorage, "storage"},
                                                       {Group::kReplication, "replication"},
                                                       {Group::kTransport, "transport"},
                                                       {Group::kHttp, "http"}};
  const nlohmann::json* obj = &j;
  if (kObject.count(f.group)) {
    if (!j.contains(kObject.at(f.group))) return nullptr;
    obj = &j[kObject.at(f.group)];
  }
  return obj->contains(f.name) ? &(*obj)[f.name] : nullptr;
}

class NodeStatusTable : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "wavekv-status-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    Config c;
    c.data_dir = dir_ + "/db";
    c.durability = Durability::kNone;
    auto s = Store::open(c);
    ASSERT_TRUE(s) << s.status().to_string();
    store_ = std::move(*s);
  }
  void TearDown() override {
    http_.reset();
    resp_.reset();
    if (store_) (void)store_->close();
    std::filesystem::remove_all(dir_);
  }
  // The three renderings of `provider`'s status, as served.
  void serve(std::function<NodeStatus()> provider) {
    http::HttpHooks hooks;
    hooks.status = provider;
    auto h = http::HttpServerThread::start(*store_, {}, hooks);
    ASSERT_TRUE(h) << h.status().to_string();
    http_ = std::move(*h);
    resp::RespConfig rc;
    rc.listen_address = "127.0.0.1:0";
    auto r = resp::RespServerThread::start(*store_, rc, provider);
    ASSERT_TRUE(r) << r.status().to_string();
    resp_ = std::move(*r);
    auto j = http::http_request(http_->address(), "GET", "/v1/status", "", 5000);
    ASSERT_TRUE(j && j->status == 200);
    json_ = nlohmann::json::parse(j->body);
    auto m = http::http_request(http_->address(), "GET", "/metrics", "", 5000);
    ASSERT_TRUE(m && m->status == 200);
    metrics_ = m->body;
    test::Client c(resp_->port());
    info_ = "\r\n" + c.call({"INFO", "everything"});
  }
  std::string dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<http::HttpServerThread> http_;
  std::unique_ptr<resp::RespServerThread> resp_;
  nlohmann::json json_;
  std::string metrics_, info_;
};

TEST_F(NodeStatusTable, EveryFieldShowsInJsonPrometheusAndInfo) {
  const NodeStatus s = full_status();
  serve([s] { return s; });
  for (const StatusField& f : status_fields()) {
    SCOPED_TRACE(f.name);
    const std::string value = std::to_string(f.get(s));
    const nlohmann::json* j = json_field(json_, f);
    ASSERT_NE(j, nullptr) << json_.dump();
    EXPECT_EQ(*j, f.get(s));
    const std::string p = f.prometheus_name;
    const std::string kind = f.kind == Kind::kCounter ? "counter" : "gauge";
    EXPECT_NE(metrics_.find("# HELP " + p + " " + f.help + "\n# TYPE " + p + " " + kind + "\n" + p +
                            " " + value + "\n"),
              std::string::npos)
        << metrics_;
    EXPECT_NE(info_.find("\r\n" + info_name(f) + ":" + value + "\r\n"), std::string::npos) << info_;
  }
}

// Histograms as Prometheus has them: cumulative `le` buckets ending in
// +Inf, then _sum and _count, under one HELP and TYPE.
TEST_F(NodeStatusTable, HistogramsShowAsCumulativeBucketsSumAndCount) {
  NodeStatus s = full_status();
  s.store.wal_fsync_seconds = {{0.001, 0.01}, {3, 0, 2}, 2.5, 5};
  s.store.group_commit_requests = {{1, 2}, {4, 1, 0}, 6, 5};
  serve([s] { return s; });
  EXPECT_NE(metrics_.find("# HELP wavekv_wal_fsync_duration_seconds How long each fsync of WAL "
                          "records took (not segment rolls).\n"
                          "# TYPE wavekv_wal_fsync_duration_seconds histogram\n"
                          "wavekv_wal_fsync_duration_seconds_bucket{le=\"0.001\"} 3\n"
                          "wavekv_wal_fsync_duration_seconds_bucket{le=\"0.01\"} 3\n"
                          "wavekv_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} 5\n"
                          "wavekv_wal_fsync_duration_seconds_sum 2.5\n"
                          "wavekv_wal_fsync_duration_seconds_count 5\n"),
            std::string::npos)
      << metrics_;
  EXPECT_NE(metrics_.find("wavekv_group_commit_requests_bucket{le=\"2\"} 5\n"
                          "wavekv_group_commit_requests_bucket{le=\"+Inf\"} 5\n"),
            std::string::npos)
      << metrics_;
}

// A value exactly at a bound counts in that bound's bucket (Prometheus's le).
TEST(Histogram, AValueAtABoundCountsInItsBucket) {
  Histogram h({1, 2});
  for (double v : {0.5, 1.0, 1.5, 2.0, 2.5}) h.record(v);
  const HistogramSnapshot s = h.snapshot();
  EXPECT_EQ(s.counts, (std::vector<uint64_t>{2, 2, 1}));
  EXPECT_EQ(s.count, 5u);
  EXPECT_EQ(s.sum, 7.5);
}

// A store records every fsync's duration and every group commit's size.
TEST(StoreHistograms, EveryFsyncAndGroupCommitIsRecorded) {
  test::ScratchDir dir("wavekv-hist");
  Config c;
  c.data_dir = dir.path() + "/db";
  c.durability = Durability::kAlways;
  auto opened = Store::open(c);
  ASSERT_TRUE(opened) << opened.status().to_string();
  Store& store = **opened;
  const StoreStatus before = store.status();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(store.put("k" + std::to_string(i), "v").is_ok());
  const StoreStatus after = store.status();
  EXPECT_EQ(after.wal_fsync_seconds.count - before.wal_fsync_seconds.count,
            after.fsyncs - before.fsyncs);
  EXPECT_GE(after.fsyncs - before.fsyncs, 5u) << "one per write, one at a time";
  EXPECT_GT(after.wal_fsync_seconds.sum, before.wal_fsync_seconds.sum);
  EXPECT_EQ(after.group_commit_requests.count - before.group_commit_requests.count,
            after.group_commits - before.group_commits);
  EXPECT_EQ(after.group_commit_requests.sum - before.group_commit_requests.sum, 5.0)
      << "the writes, one request each";
  EXPECT_EQ(after.write_seconds.count - before.write_seconds.count, 5u);
  EXPECT_GE(after.write_seconds.sum - before.write_seconds.sum,
            after.wal_fsync_seconds.sum - before.wal_fsync_seconds.sum)
      << "a durable write waits for its fsync";
  uint64_t in_buckets = 0;
  for (uint64_t n : after.wal_fsync_seconds.counts) in_buckets += n;
  EXPECT_EQ(in_buckets, after.wal_fsync_seconds.count);
  ASSERT_TRUE(store.close().is_ok());
}

TEST_F(NodeStatusTable, MembersAndIdentityShowBesideTheTable) {
  const NodeStatus s = full_status();
  serve([s] { return s; });
  EXPECT_EQ(json_["node"], 7);
  EXPECT_EQ(json_["incarnation"], 99);
  EXPECT_EQ(json_["address"], "10.0.0.1:7400");
  EXPECT_EQ(json_["digest"], "0000000000000abc");
  ASSERT_EQ(json_["members"].size(), 2u);
  EXPECT_EQ(json_["members"][0],
            nlohmann::json::parse(R"({"id": 2, "incarnation": 3, "address": "10.0.0.2:7400",
                                      "last_seen_ms_ago": 12, "ack_lag": 0,
                                      "clock_offset_ms": -7})"));
  EXPECT_TRUE(json_["members"][1]["last_seen_ms_ago"].is_null());
  EXPECT_TRUE(json_["members"][1]["clock_offset_ms"].is_null());
  EXPECT_EQ(json_["http"]["responses"]["200"], s.http->responses[0].second);
  for (const std::string& want : std::vector<std::string>{
           "wavekv_node_info{node=\"7\",incarnation=\"99\"} 1\n", "wavekv_members 2\n",
           "wavekv_http_responses_total{code=\"other\"} " +
               std::to_string(s.http->responses[1].second) + "\n"})
    EXPECT_NE(metrics_.find(want), std::string::npos) << want << "\n" << metrics_;
  for (const std::string& want : std::vector<std::string>{
           "\r\nnode_id:7\r\n", "\r\nincarnation:99\r\n", "\r\nnode_address:10.0.0.1:7400\r\n",
           "\r\ndigest:0000000000000abc\r\n", "\r\nwavekv_members:2\r\n",
           "\r\nmember0:id=2,address=10.0.0.2:7400,incarnation=3,last_seen_ms_ago=12,ack_lag=0,"
           "clock_offset_ms=-7\r\n",
           "\r\nmember1:id=3,address=10.0.0.3:7400,incarnation=4,last_seen_ms_ago=null,ack_lag="
           "5,clock_offset_ms=null\r\n"})
    EXPECT_NE(info_.find(want), std::string::npos) << want << "\n" << info_;
}

// A store served without a node shows its own figures and no replication,
// transport or members (they would all read 0 and mislead).
TEST_F(NodeStatusTable, AStoreAloneShowsNoNodeFigures) {
  serve(nullptr);
  EXPECT_TRUE(json_.contains("storage"));
  EXPECT_TRUE(json_.contains("http")) << "the HTTP server adds its own figures";
  for (const char* absent : {"address", "digest", "replication", "transport", "members"})
    EXPECT_FALSE(json_.contains(absent)) << absent;
  EXPECT_NE(metrics_.find("\nwavekv_live_keys 0\n"), std::string::npos) << metrics_;
  EXPECT_EQ(metrics_.find("wavekv_sync_rounds_total"), std::string::npos) << metrics_;
  EXPECT_NE(info_.find("\r\nlive_keys:0\r\n"), std::string::npos) << info_;
  EXPECT_EQ(info_.find("repl_rounds"), std::string::npos) << info_;
}

TEST(NodeStatusFields, NamesAreUniqueInEveryRendering) {
  std::set<std::string> json_paths, metric_names, info_names;
  for (const StatusField& f : status_fields()) {
    EXPECT_TRUE(json_paths.insert(std::to_string(static_cast<int>(f.group)) + f.name).second)
        << f.name;
    EXPECT_TRUE(metric_names.insert(f.prometheus_name).second) << f.prometheus_name;
    EXPECT_TRUE(info_names.insert(info_name(f)).second) << info_name(f);
    EXPECT_EQ(std::string(f.prometheus_name).rfind("wavekv_", 0), 0u) << f.prometheus_name;
    EXPECT_EQ(f.kind == Kind::kCounter, std::string(f.prometheus_name).ends_with("_total"))
        << f.prometheus_name << ": counters and only counters end in _total";
  }
}

}  // namespace
}  // namespace wavekv::monitoring
