#include "monitoring/node_status.h"

#include <algorithm>
#include <array>
#include <cstdio>

namespace wavekv::monitoring {
namespace {

// A row's getter: the figure at `path` in a NodeStatus.
#define FIGURE(path) [](const NodeStatus& s) -> uint64_t { return s.path; }

constexpr Kind kCounter = Kind::kCounter;
constexpr Kind kGauge = Kind::kGauge;
constexpr Group kNode = Group::kNode;
constexpr Group kStorage = Group::kStorage;
constexpr Group kRepl = Group::kReplication;
constexpr Group kTransport = Group::kTransport;
constexpr Group kHttp = Group::kHttp;

// The JSON keys and metric names are an interface (tests, `wavekv status`,
// dashboards): rename none, only add.
const StatusField kFields[] = {
    // Storage (Store::status()).
    {kStorage, "live_keys", "wavekv_live_keys", "Keys with a live value.", kGauge,
     FIGURE(store.live_keys)},
    {kStorage, "tombstones", "wavekv_tombstones", "Deleted keys whose tombstone is still kept.",
     kGauge, FIGURE(store.tombstones)},
    {kStorage, "expiring_keys", "wavekv_expiring_keys", "Live values with an expiry.", kGauge,
     FIGURE(store.expiring_keys)},
    {kStorage, "expired_keys", "wavekv_expired_keys_total",
     "Values whose expiry passed, turned into tombstones since the store opened.", kCounter,
     FIGURE(store.expired_keys)},
    {kStorage, "data_bytes", "wavekv_data_bytes", "Bytes of keys and values of live entries.",
     kGauge, FIGURE(store.data_bytes)},
    {kStorage, "next_seq", "wavekv_next_seq", "The seq this node's next write gets.", kGauge,
     FIGURE(store.next_seq)},
    {kStorage, "last_lsn", "wavekv_wal_last_lsn", "The newest WAL record written.", kGauge,
     FIGURE(store.last_lsn)},
    {kStorage, "durable_lsn", "wavekv_wal_durable_lsn",
     "The newest WAL record known to be fsynced.", kGauge, FIGURE(store.durable_lsn)},
    {kStorage, "wal_segments", "wavekv_wal_segments", "Live WAL segment files.", kGauge,
     FIGURE(store.wal_segments)},
    {kStorage, "wal_bytes", "wavekv_wal_bytes", "Bytes of records in the live WAL segments.",
     kGauge, FIGURE(store.wal_bytes)},
    {kStorage, "writes", "wavekv_writes_total", "Write calls committed since open.", kCounter,
     FIGURE(store.writes)},
    {kStorage, "group_commits", "wavekv_group_commits_total",
     "Group commits (WAL appends) since open.", kCounter, FIGURE(store.group_commits)},
    {kStorage, "fsyncs", "wavekv_fsyncs_total", "WAL fsyncs since open.", kCounter,
     FIGURE(store.fsyncs)},
    {kStorage, "checkpoints", "wavekv_checkpoints_total", "Checkpoints taken since open.", kCounter,
     FIGURE(store.checkpoints)},
    {kStorage, "checkpoint_lsn", "wavekv_checkpoint_lsn",
     "The WAL position the newest checkpoint covers.", kGauge, FIGURE(store.checkpoint_lsn)},
    {kStorage, "snapshot_bytes", "wavekv_snapshot_bytes", "Bytes of the newest snapshot.", kGauge,
     FIGURE(store.snapshot_bytes)},
    {kStorage, "wal_bytes_since_checkpoint", "wavekv_wal_bytes_since_checkpoint",
     "WAL bytes written since the last checkpoint.", kGauge,
     FIGURE(store.wal_bytes_since_checkpoint)},
    {kStorage, "ops_since_checkpoint", "wavekv_ops_since_checkpoint",
     "Ops written since the last checkpoint.", kGauge, FIGURE(store.ops_since_checkpoint)},
    {kStorage, "recovery_clean", "wavekv_recovery_clean",
     "1 if opening the store found no damage, else 0.", kGauge, FIGURE(store.recovery.clean())},
    {kStorage, "scrub_passes", "wavekv_scrub_passes_total",
     "Scrub passes (every sealed WAL segment and snapshot re-verified) since open.", kCounter,
     FIGURE(store.scrub_passes)},
    {kStorage, "scrub_bytes", "wavekv_scrub_bytes_total", "Bytes scrubbed since open.", kCounter,
     FIGURE(store.scrub_bytes)},
    {kStorage, "scrub_damage", "wavekv_scrub_damage_total",
     "Damaged files the scrubber found since open.", kCounter, FIGURE(store.scrub_damage)},
    {kStorage, "scrub_repairs", "wavekv_scrub_repairs_total",
     "Scrubber repairs (a checkpoint replacing the damaged files) since open.", kCounter,
     FIGURE(store.scrub_repairs)},
    // The node.
    {kNode, "retired_data_dirs", "wavekv_retired_data_dirs",
     "Copies of the data directory a re-bootstrap moved aside (retired/).", kGauge,
     FIGURE(retired_data_dirs.size())},
    {kNode, "clock_ahead_ms", "wavekv_clock_ahead_ms",
     "How far this node's clock is ahead of its peers' (median), 0 if not ahead.", kGauge,
     FIGURE(clock.offset_ms > 0 ? s.clock.offset_ms : 0)},
    {kNode, "clock_behind_ms", "wavekv_clock_behind_ms",
     "How far this node's clock is behind its peers' (median), 0 if not behind.", kGauge,
     FIGURE(clock.offset_ms < 0 ? -s.clock.offset_ms : 0)},
    {kNode, "clock_peers", "wavekv_clock_peers", "Peers whose clocks were heard recently.", kGauge,
     FIGURE(clock.peers)},
    {kNode, "clock_peers_beyond", "wavekv_clock_peers_beyond",
     "Of them, further than max_clock_offset_ms from this node.", kGauge,
     FIGURE(clock.peers_beyond)},
    {kNode, "clock_refusing_writes", "wavekv_clock_refusing_writes",
     "1 while client writes are refused because this node's clock is out of bounds.", kGauge,
     FIGURE(clock.refusing_writes)},
    {kNode, "wire_v2_frames", "wavekv_wire_v2_frames_total",
     "Peer frames in wire version 2 (an older WaveKV; no clock).", kCounter,
     FIGURE(clock.wire_v2_frames)},
    {kNode, "wire_older_frames", "wavekv_wire_older_frames_total",
     "Peer frames in a wire version older than this build's (an older WaveKV).", kCounter,
     FIGURE(clock.wire_older_frames)},
    {kNode, "poisoned_keys", "wavekv_poisoned_keys",
     "Keys stamped further ahead of this clock than the drift bound.", kGauge,
     FIGURE(poisoned_keys)},
    // Replication: the protocol's counters, then the worker's.
    {kRepl, "rounds", "wavekv_sync_rounds_total", "Sync rounds started.", kCounter,
     FIGURE(replication.rounds)},
    {kRepl, "sessions_completed", "wavekv_sync_sessions_completed_total", "Delta sessions adopted.",
     kCounter, FIGURE(replication.sessions_completed)},
    {kRepl, "sessions_aborted", "wavekv_sync_sessions_aborted_total",
     "Delta sessions aborted (rejection, lost track, or no progress).", kCounter,
     FIGURE(replication.sessions_aborted)},
    {kRepl, "requests_retried", "wavekv_sync_requests_retried_total",
     "Sync requests sent again after a round without a page.", kCounter,
     FIGURE(replication.requests_retried)},
    {kRepl, "pages_served", "wavekv_sync_pages_served_total", "Sync pages sent to peers.", kCounter,
     FIGURE(replication.pages_served)},
    {kRepl, "entries_received", "wavekv_entries_received_total", "Replicated entries received.",
     kCounter, FIGURE(replication.entries_received)},
    {kRepl, "entries_merged", "wavekv_entries_merged_total", "Replicated entries newer than ours.",
     kCounter, FIGURE(replication.entries_merged)},
    {kRepl, "entries_rejected", "wavekv_entries_rejected_total",
     "Replicated entries refused by admission.", kCounter, FIGURE(replication.entries_rejected)},
    {kRepl, "entries_quarantined", "wavekv_entries_quarantined_total",
     "Replicated entries too large for this node's limits: skipped, and not blocking acks.",
     kCounter, FIGURE(replication.entries_quarantined)},
    {kRepl, "pushes_sent", "wavekv_pushes_sent_total", "Push messages sent.", kCounter,
     FIGURE(replication.pushes_sent)},
    {kRepl, "digest_mismatches", "wavekv_digest_mismatches_total",
     "Divergence checks that found differing buckets.", kCounter,
     FIGURE(replication.digest_mismatches)},
    {kRepl, "repairs", "wavekv_repairs_total", "Entries merged by bucket repair.", kCounter,
     FIGURE(replication.repairs)},
    {kRepl, "members_evicted", "wavekv_members_evicted_total", "Members evicted after the expiry.",
     kCounter, FIGURE(replication.members_evicted)},
    {kRepl, "members_refused", "wavekv_members_refused_total",
     "Members not learned: the table was at max_members, or a sender's gossip over its rate.",
     kCounter, FIGURE(replication.members_refused)},
    {kRepl, "tombstones_dropped", "wavekv_tombstones_dropped_total",
     "Tombstones collected by tombstone GC.", kCounter, FIGURE(replication.tombstones_dropped)},
    {kRepl, "rebootstraps_sent", "wavekv_rebootstraps_sent_total",
     "Rebootstrap replies sent to evicted members.", kCounter,
     FIGURE(replication.rebootstraps_sent)},
    {kRepl, "rebootstraps_needed", "wavekv_rebootstraps_needed_total",
     "Times this node had to wipe and bootstrap again (below a peer's collected horizon).",
     kCounter, FIGURE(replication.rebootstraps_needed)},
    {kRepl, "rebootstraps_refused", "wavekv_rebootstraps_refused_total",
     "Rebootstrap requests refused: the sender was no member, or heard from this incarnation "
     "within the member expiry.",
     kCounter, FIGURE(replication.rebootstraps_refused)},
    {kRepl, "claims_refused", "wavekv_claims_refused_total",
     "Sync claims refused: a collected horizon beyond the sender's own covers or our own stream.",
     kCounter, FIGURE(replication.claims_refused)},
    {kRepl, "decode_errors", "wavekv_frames_decode_errors_total",
     "Peer frames that failed to decode.", kCounter, FIGURE(driver.decode_errors)},
    {kRepl, "persist_errors", "wavekv_persist_errors_total",
     "Batches of replicated ops the store failed to persist.", kCounter,
     FIGURE(driver.persist_errors)},
    {kRepl, "inbound_dropped", "wavekv_inbound_frames_dropped_total",
     "Peer frames dropped because the worker's queue was full.", kCounter,
     FIGURE(driver.inbound_dropped)},
    {kRepl, "impersonations_refused", "wavekv_impersonations_refused_total",
     "Peer messages refused: the sender id is not the one its certificate binds.", kCounter,
     FIGURE(driver.impersonations_refused)},
    // The peer transport.
    {kTransport, "frames_sent", "wavekv_transport_frames_sent_total", "Peer frames sent.", kCounter,
     FIGURE(transport.frames_sent)},
    {kTransport, "frames_received", "wavekv_transport_frames_received_total",
     "Peer frames received.", kCounter, FIGURE(transport.frames_received)},
    {kTransport, "bytes_sent", "wavekv_transport_bytes_sent_total", "Peer frame bytes sent.",
     kCounter, FIGURE(transport.bytes_sent)},
    {kTransport, "bytes_received", "wavekv_transport_bytes_received_total",
     "Peer frame bytes received.", kCounter, FIGURE(transport.bytes_received)},
    {kTransport, "frames_dropped", "wavekv_transport_frames_dropped_total", "Peer frames dropped.",
     kCounter, FIGURE(transport.frames_dropped)},
    {kTransport, "frames_refused", "wavekv_transport_frames_refused_total",
     "Peer frames refused as too large.", kCounter, FIGURE(transport.frames_refused)},
    {kTransport, "protocol_errors", "wavekv_transport_protocol_errors_total",
     "Peer connections closed for a wrong preface.", kCounter, FIGURE(transport.protocol_errors)},
    {kTransport, "connect_failures", "wavekv_transport_connect_failures_total",
     "Peer connects that failed or timed out.", kCounter, FIGURE(transport.connect_failures)},
    {kTransport, "handshake_failures", "wavekv_transport_handshake_failures_total",
     "Accepted peer connections whose TLS handshake failed (not a member).", kCounter,
     FIGURE(transport.handshake_failures)},
    {kTransport, "dial_handshake_failures", "wavekv_transport_dial_handshake_failures_total",
     "Peer dials whose TLS handshake failed (the other side is not a member).", kCounter,
     FIGURE(transport.dial_handshake_failures)},
    {kTransport, "auth_timeouts", "wavekv_transport_auth_timeouts_total",
     "Accepted peer connections closed before their TLS handshake completed.", kCounter,
     FIGURE(transport.auth_timeouts)},
    {kTransport, "connections_refused", "wavekv_transport_connections_refused_total",
     "Accepted peer connections closed at once: over a connection bound.", kCounter,
     FIGURE(transport.connections_refused)},
    {kTransport, "connections_open", "wavekv_transport_connections",
     "Open peer connections, outgoing and incoming.", kGauge, FIGURE(transport.connections_open)},
    {kTransport, "frames_queued", "wavekv_transport_frames_queued",
     "Peer frames waiting to be sent.", kGauge, FIGURE(transport.frames_queued)},
    {kTransport, "bytes_queued", "wavekv_transport_bytes_queued",
     "Peer frame bytes waiting to be sent.", kGauge, FIGURE(transport.bytes_queued)},
    {kTransport, "inbound_buffered_bytes", "wavekv_transport_inbound_buffered_bytes",
     "Buffers of peer frames being received (max_inbound_buffer_bytes).", kGauge,
     FIGURE(transport.inbound_buffered_bytes)},
    // The HTTP API (when on; see shown()).
    {kHttp, "connections", "wavekv_http_connections", "Open HTTP connections.", kGauge,
     FIGURE(http->connections)},
    {kHttp, "connections_total", "wavekv_http_connections_total", "HTTP connections accepted.",
     kCounter, FIGURE(http->connections_total)},
    {kHttp, "connections_refused", "wavekv_http_connections_refused_total",
     "HTTP connections refused for max_connections.", kCounter, FIGURE(http->connections_refused)},
    {kHttp, "watch_subscribers", "wavekv_http_watch_subscribers", "Open watch streams.", kGauge,
     FIGURE(http->watch_subscribers)},
    {kHttp, "watch_events", "wavekv_http_watch_events_total",
     "Changes that entered the watch feed.", kCounter, FIGURE(http->watch_events)},
    {kHttp, "watch_resets", "wavekv_http_watch_resets_total",
     "Watch streams reset because they fell behind or events were lost.", kCounter,
     FIGURE(http->watch_resets)},
    {kHttp, "client_memory_bytes", "wavekv_http_client_memory_bytes",
     "Request bodies, replies and watch queues held for HTTP clients.", kGauge,
     FIGURE(http->client_memory_bytes)},
    {kHttp, "client_memory_peak_bytes", "wavekv_http_client_memory_peak_bytes",
     "The most HTTP client memory held at once.", kGauge, FIGURE(http->client_memory_peak_bytes)},
    {kHttp, "client_memory_limit_bytes", "wavekv_http_client_memory_limit_bytes",
     "The HTTP clients' memory budget (max_client_memory_bytes).", kGauge,
     FIGURE(http->client_memory_limit_bytes)},
    {kHttp, "client_memory_waits", "wavekv_http_client_memory_waits_total",
     "Times an HTTP connection waited for memory (or a watch was refused).", kCounter,
     FIGURE(http->client_memory_waits)},
};

#undef FIGURE

// The /v1/status object of a group; null: the top level.
const char* json_object(Group g) {
  switch (g) {
    case Group::kNode: return nullptr;
    case Group::kStorage: return "storage";
    case Group::kReplication: return "replication";
    case Group::kTransport: return "transport";
    case Group::kHttp: return "http";
  }
  return nullptr;
}

InfoSection info_section(Group g) {
  switch (g) {
    case Group::kStorage: return InfoSection::kPersistence;
    case Group::kHttp: return InfoSection::kStats;
    case Group::kNode:
    case Group::kReplication:
    case Group::kTransport: return InfoSection::kReplication;
  }
  return InfoSection::kReplication;
}

const char* info_prefix(Group g) {
  switch (g) {
    case Group::kReplication: return "repl_";
    case Group::kTransport: return "transport_";
    case Group::kHttp: return "http_";
    case Group::kNode:
    case Group::kStorage: return "";
  }
  return "";
}

bool is_node(const NodeStatus& s) { return !s.address.empty(); }

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

nlohmann::json member_json(const MemberStatus& m) {
  nlohmann::json j = {{"id", m.id}, {"incarnation", m.incarnation}, {"address", m.address}};
  j["last_seen_ms_ago"] = m.last_seen_ms_ago ? nlohmann::json(*m.last_seen_ms_ago) : nullptr;
  j["ack_lag"] = m.ack_lag;
  j["clock_offset_ms"] = m.clock_offset_ms ? nlohmann::json(*m.clock_offset_ms) : nullptr;
  return j;
}

// "id=2,address=...,incarnation=3,last_seen_ms_ago=12,ack_lag=0": ',' and '='
// separate the fields, so ',' in a value becomes ';'.
std::string member_info(const MemberStatus& m) {
  std::string address = m.address;
  std::replace(address.begin(), address.end(), ',', ';');
  std::string v = "id=" + std::to_string(m.id) + ",address=" + address +
                  ",incarnation=" + std::to_string(m.incarnation);
  v += ",last_seen_ms_ago=" + (m.last_seen_ms_ago ? std::to_string(*m.last_seen_ms_ago) : "null");
  v += ",ack_lag=" + std::to_string(m.ack_lag);
  return v +
         ",clock_offset_ms=" + (m.clock_offset_ms ? std::to_string(*m.clock_offset_ms) : "null");
}

}  // namespace

std::span<const StatusField> status_fields() { return kFields; }

bool shown(Group group, const NodeStatus& s) {
  switch (group) {
    case Group::kStorage: return true;
    case Group::kHttp: return s.http.has_value();
    case Group::kNode:
    case Group::kReplication:
    case Group::kTransport: return is_node(s);
  }
  return false;
}

std::string info_name(const StatusField& f) { return std::string(info_prefix(f.group)) + f.name; }

nlohmann::json to_json(const NodeStatus& s) {
  nlohmann::json j = {{"node", s.store.node_id}, {"incarnation", s.store.incarnation}};
  if (is_node(s)) {
    j["address"] = s.address;
    j["digest"] = hex64(s.digest);
  }
  for (const StatusField& f : kFields) {
    if (!shown(f.group, s)) continue;
    const char* object = json_object(f.group);
    (object ? j[object] : j)[f.name] = f.get(s);
  }
  if (s.http) {
    nlohmann::json& by_code = j["http"]["responses"];
    by_code = nlohmann::json::object();
    for (const auto& [code, n] : s.http->responses) by_code[code] = n;
  }
  if (is_node(s)) {
    j["retired_data_dir_paths"] = s.retired_data_dirs;
    j["quarantined_keys"] = s.quarantined_keys;
    j["members"] = nlohmann::json::array();
    for (const MemberStatus& m : s.members) j["members"].push_back(member_json(m));
  }
  return j;
}

void write_prometheus(const NodeStatus& s, MetricsWriter& out) {
  out.gauge("wavekv_node_info", "This node's id and incarnation (value always 1).", 1,
            {{"node", std::to_string(s.store.node_id)},
             {"incarnation", std::to_string(s.store.incarnation)}});
  for (const StatusField& f : kFields) {
    if (!shown(f.group, s)) continue;
    if (f.kind == Kind::kCounter)
      out.counter(f.prometheus_name, f.help, f.get(s));
    else
      out.gauge(f.prometheus_name, f.help, f.get(s));
  }
  out.histogram("wavekv_wal_fsync_duration_seconds",
                "How long each fsync of WAL records took (not segment rolls).",
                s.store.wal_fsync_seconds);
  out.histogram("wavekv_group_commit_requests", "Write requests carried by each group commit.",
                s.store.group_commit_requests);
  out.histogram("wavekv_write_duration_seconds",
                "A client write's submission to its outcome (queue, WAL, fsync, apply).",
                s.store.write_seconds);
  if (is_node(s))
    out.gauge("wavekv_members", "Members this node knows.",
              static_cast<uint64_t>(s.members.size()));
  if (s.http)
    for (const auto& [code, n] : s.http->responses)
      out.counter("wavekv_http_responses_total", "HTTP responses sent, by status code.", n,
                  {{"code", code}});
}

void append_info(const NodeStatus& s, InfoSection section, InfoLines& lines) {
  if (section == InfoSection::kServer) {
    lines.emplace_back("node_id", std::to_string(s.store.node_id));
    lines.emplace_back("incarnation", std::to_string(s.store.incarnation));
    lines.emplace_back("node_address", s.address);
    if (is_node(s)) lines.emplace_back("digest", hex64(s.digest));
  }
  if (section == InfoSection::kReplication && is_node(s)) {
    lines.emplace_back("wavekv_members", std::to_string(s.members.size()));
    for (size_t i = 0; i < s.members.size(); ++i)
      lines.emplace_back("member" + std::to_string(i), member_info(s.members[i]));
  }
  for (const StatusField& f : kFields)
    if (info_section(f.group) == section && shown(f.group, s))
      lines.emplace_back(info_name(f), std::to_string(f.get(s)));
  if (section == InfoSection::kStats && s.http)
    for (const auto& [code, n] : s.http->responses)
      lines.emplace_back("http_responses_" + code, std::to_string(n));
}

NodeStatus store_only_status(const StoreStatus& store) {
  NodeStatus s;
  s.store = store;
  return s;
}

}  // namespace wavekv::monitoring
