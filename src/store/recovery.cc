#include "store/recovery.h"

#include <algorithm>
#include <random>
#include <sstream>

#include "store/snapshot.h"
#include "store/wal.h"

namespace wavekv {

std::string encode_identity(const Identity& id) {
  return "wavekv-identity 2\nnode " + std::to_string(id.node) + "\nincarnation " +
         std::to_string(id.incarnation) + "\n";
}

Result<Identity> decode_identity(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::string magic, version, k1, k2, rest;
  Identity id;
  if (!(in >> magic >> version >> k1 >> id.node >> k2 >> id.incarnation) ||
      magic != "wavekv-identity" || version != "2" || k1 != "node" || k2 != "incarnation" ||
      id.node == 0 || id.incarnation == 0 || (in >> rest))
    return Status::corruption("IDENTITY file is malformed");
  return id;
}

namespace {

uint64_t random_nonzero(const std::function<uint64_t()>& random) {
  uint64_t v = 0;
  std::random_device rd;
  while (v == 0) v = random ? random() : (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return v;
}

}  // namespace

Result<RecoveryPlan> plan_recovery(FileSystem& fs, const std::string& dir, NodeId wanted_node,
                                   Durability durability, const std::function<uint64_t()>& random) {
  RecoveryPlan plan;
  auto names = fs.list_dir(dir);
  if (!names) return names.status();

  std::vector<uint64_t> segs;
  std::vector<uint64_t> snaps;
  for (const auto& name : *names) {
    if (uint64_t lsn = parse_wal_segment_name(name))
      segs.push_back(lsn);
    else if (uint64_t s = parse_snapshot_name(name))
      snaps.push_back(s);
    else if (name.ends_with(".tmp"))
      plan.remove_files.push_back(dir + "/" + name);
  }
  std::sort(segs.begin(), segs.end());
  std::sort(snaps.begin(), snaps.end());
  plan.snapshots = snaps;
  auto seg_path = [&](uint64_t lsn) { return dir + "/" + wal_segment_name(lsn); };
  auto snap_path = [&](uint64_t lsn) { return dir + "/" + snapshot_name(lsn); };

  // 1. Whose directory is this? Decide before anything is changed.
  std::string id_path = dir + "/" + kIdentityFile;
  if (fs.exists(id_path)) {
    auto text = read_file(fs, id_path);
    if (!text) return text.status();
    auto id = decode_identity(*text);
    if (!id) return Status::corruption(id_path + ": " + id.status().message());
    plan.identity = *id;
    plan.identity_exists = true;
  }
  plan.clean_marker = fs.exists(dir + "/" + kCleanFile);
  NodeId recorded = plan.identity.node;
  for (uint64_t s : segs) {
    auto data = fs.open_readable(seg_path(s));
    if (!data) return data.status();
    char buf[kWalHeaderBytes];
    auto n = (*data)->read_at(0, sizeof buf, buf);
    if (!n) return n.status();
    auto h = decode_wal_header(std::string_view(buf, *n));
    if (!h) continue;  // damaged: dealt with during replay
    if (recorded == 0) recorded = h->node;
    if (h->node != recorded)
      return Status::wrong_node(seg_path(s) + " belongs to node " + std::to_string(h->node) +
                                ", not " + std::to_string(recorded));
  }
  for (uint64_t s : snaps) {
    auto h = read_snapshot_header(fs, snap_path(s));
    if (!h) continue;
    if (recorded == 0) recorded = h->node;
    if (h->node != recorded)
      return Status::wrong_node(snap_path(s) + " belongs to node " + std::to_string(h->node) +
                                ", not " + std::to_string(recorded));
  }
  if (wanted_node != 0 && recorded != 0 && wanted_node != recorded)
    return Status::wrong_node("data directory " + dir + " belongs to node " +
                              std::to_string(recorded) + ", not " + std::to_string(wanted_node));
  plan.identity.node =
      recorded != 0 ? recorded : (wanted_node != 0 ? wanted_node : random_nonzero(random));
  if (!plan.identity_exists) plan.identity.incarnation = random_nonzero(random);

  // 2. The newest snapshot that verifies; older ones are fallbacks.
  uint64_t snap_lsn = 0;
  plan.state = State(plan.identity.node, plan.identity.incarnation);
  for (auto it = snaps.rbegin(); it != snaps.rend(); ++it) {
    State candidate(plan.identity.node, plan.identity.incarnation);
    auto loaded = load_snapshot(fs, snap_path(*it), candidate);
    if (loaded) {
      snap_lsn = *it;
      plan.state = std::move(candidate);
      break;
    }
    plan.report.snapshots_skipped.push_back(snapshot_name(*it) + ": " + loaded.status().message());
  }
  plan.report.snapshot_lsn = snap_lsn;

  // 3. Replay the WAL after the snapshot, stopping at the first damage.
  if (!segs.empty() && segs.front() > snap_lsn + 1) {
    return Status::corruption("the WAL starts at LSN " + std::to_string(segs.front()) +
                              " but the newest usable "
                              "snapshot covers only up to " +
                              std::to_string(snap_lsn) +
                              (plan.report.snapshots_skipped.empty()
                                   ? std::string()
                                   : " (" + plan.report.snapshots_skipped.front() + ")") +
                              "; refusing to open without the records in between");
  }
  if (segs.empty() && !snaps.empty() && snap_lsn == 0) {
    return Status::corruption("no snapshot verifies and there is no WAL to rebuild from: " +
                              plan.report.snapshots_skipped.front());
  }
  // Segments wholly covered by the snapshot are not read: recovery time is
  // bounded by the checkpoint interval, and damage there loses nothing.
  size_t i = 0;
  while (i + 1 < segs.size() && segs[i + 1] <= snap_lsn + 1) {
    plan.segments.push_back(segs[i]);
    i++;
  }
  uint64_t expect = segs.empty() ? snap_lsn + 1 : segs[i];
  uint64_t wal_last = 0;
  for (; i < segs.size(); i++) {
    std::string path = seg_path(segs[i]);
    if (segs[i] != expect) {
      plan.report.wal_damage = path + " starts at LSN " + std::to_string(segs[i]) + " where " +
                               std::to_string(expect) + " was expected";
      break;
    }
    auto scan = scan_wal_segment(fs, path, [&](uint64_t lsn, std::vector<StateOp>&& ops) {
      if (lsn <= snap_lsn) return;
      for (const auto& op : ops) plan.state.apply(op);
      plan.report.wal_records_replayed++;
    });
    if (!scan) {
      if (scan.status().code() != Code::kCorruption) return scan.status();
      plan.report.wal_damage = scan.status().message();
      break;
    }
    plan.segments.push_back(segs[i]);
    plan.wal_bytes += scan->valid_bytes - kWalHeaderBytes;
    plan.resume_first_lsn = segs[i];
    plan.resume_offset = scan->valid_bytes;
    if (scan->records > 0) wal_last = scan->last_lsn;
    expect = scan->records > 0 ? scan->last_lsn + 1 : segs[i];
    if (!scan->damage.empty()) {
      plan.report.wal_damage = scan->damage;
      plan.report.wal_bytes_cut = scan->file_bytes - scan->valid_bytes;
      plan.truncate = {path, scan->valid_bytes};
      i++;
      break;
    }
  }
  for (; i < segs.size(); i++) {
    plan.set_aside.push_back(seg_path(segs[i]));
    plan.report.files_set_aside.push_back(wal_segment_name(segs[i]) + ".damaged");
  }
  plan.last_lsn = std::max(wal_last, snap_lsn);
  if (wal_last < snap_lsn) {
    // The log ends before the snapshot: start a fresh segment after it rather
    // than reuse LSNs the snapshot already covers.
    plan.resume_first_lsn = 0;
    plan.resume_offset = 0;
  }

  // 4. Lesson 11: a stream never issues a seq twice. If writes of ours may be
  // gone from this disk but not from peers, continue in a new stream.
  if (plan.identity_exists) {
    if (!plan.report.wal_damage.empty())
      plan.report.new_incarnation = "WAL damage was cut off";
    else if (durability != Durability::kAlways && !plan.clean_marker)
      plan.report.new_incarnation = "unclean shutdown with durability that is not 'always'";
    if (!plan.report.new_incarnation.empty()) {
      plan.identity.incarnation = random_nonzero(random);
      plan.state.begin_stream(plan.identity.incarnation);
    }
  }
  return plan;
}

Status apply_repairs(FileSystem& fs, const std::string& dir, const RecoveryPlan& plan) {
  for (const auto& path : plan.remove_files) WAVEKV_RETURN_IF_ERROR(fs.remove(path));
  if (plan.truncate) {
    auto file = fs.open_writable(plan.truncate->first, false);
    if (!file) return file.status();
    WAVEKV_RETURN_IF_ERROR((*file)->truncate(plan.truncate->second));
    WAVEKV_RETURN_IF_ERROR((*file)->sync());
    WAVEKV_RETURN_IF_ERROR((*file)->close());
  }
  for (const auto& path : plan.set_aside)
    WAVEKV_RETURN_IF_ERROR(fs.rename(path, path + ".damaged"));
  if (!plan.identity_exists || !plan.report.new_incarnation.empty()) {
    WAVEKV_RETURN_IF_ERROR(
        write_file_atomic(fs, dir, kIdentityFile, encode_identity(plan.identity)));
  }
  // The marker is gone (durably, below) before this process writes anything:
  // a crash from here on is unclean.
  if (plan.clean_marker) WAVEKV_RETURN_IF_ERROR(fs.remove(dir + "/" + kCleanFile));
  return fs.sync_dir(dir);
}

}  // namespace wavekv
