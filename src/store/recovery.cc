#include "store/recovery.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <sstream>

#include "store/snapshot.h"
#include "store/wal.h"
#include "util/coding.h"

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

// The WAL segments and snapshots a data directory holds.
struct DirFiles {
  std::string dir;
  std::vector<uint64_t> segs;   // first LSNs of WAL segments, ascending
  std::vector<uint64_t> snaps;  // LSNs of snapshots, ascending
  std::string seg_path(uint64_t lsn) const { return dir + "/" + wal_segment_name(lsn); }
  std::string snap_path(uint64_t lsn) const { return dir + "/" + snapshot_name(lsn); }
};

// The name a file is set aside under in its directory: `NAME.damaged`, or
// `NAME.damaged.K` if an earlier repair already took that.
std::string damaged_name(FileSystem& fs, const std::string& path) {
  const std::string base = path.substr(path.rfind('/') + 1) + ".damaged";
  const std::string dir = path.substr(0, path.rfind('/'));
  std::string name = base;
  for (int k = 1; fs.exists(dir + "/" + name); k++) name = base + "." + std::to_string(k);
  return name;
}

// Lists the directory; leftover *.tmp files go to plan.remove_files.
Result<DirFiles> list_files(FileSystem& fs, const std::string& dir, RecoveryPlan& plan) {
  auto names = fs.list_dir(dir);
  if (!names) return names.status();
  DirFiles files{dir, {}, {}};
  for (const auto& name : *names) {
    if (uint64_t lsn = parse_wal_segment_name(name))
      files.segs.push_back(lsn);
    else if (uint64_t s = parse_snapshot_name(name))
      files.snaps.push_back(s);
    else if (name.ends_with(".tmp"))
      plan.remove_files.push_back(dir + "/" + name);
  }
  std::sort(files.segs.begin(), files.segs.end());
  std::sort(files.snaps.begin(), files.snaps.end());
  plan.snapshots = files.snaps;
  return files;
}

Status read_identity_file(FileSystem& fs, const std::string& dir, RecoveryPlan& plan) {
  std::string id_path = dir + "/" + kIdentityFile;
  if (!fs.exists(id_path)) return Status::ok();
  auto text = read_file(fs, id_path);
  if (!text) return text.status();
  auto id = decode_identity(*text);
  if (!id) return Status::corruption(id_path + ": " + id.status().message());
  plan.identity = *id;
  plan.identity_exists = true;
  return Status::ok();
}

Status check_owner(const std::string& path, NodeId owner, NodeId& recorded) {
  if (recorded == 0) recorded = owner;
  if (owner == recorded) return Status::ok();
  return Status::wrong_node(path + " belongs to node " + std::to_string(owner) + ", not " +
                            std::to_string(recorded));
}

// The node id every readable WAL and snapshot header names (0 if none does),
// starting from `recorded` (IDENTITY's); kWrongNode if two disagree. Damaged
// headers are skipped: replay deals with them.
Result<NodeId> recorded_node(FileSystem& fs, const DirFiles& files, NodeId recorded) {
  for (uint64_t s : files.segs) {
    auto data = fs.open_readable(files.seg_path(s));
    if (!data) return data.status();
    char buf[kWalHeaderBytes];
    auto n = (*data)->read_at(0, sizeof buf, buf);
    if (!n) return n.status();
    auto h = decode_wal_header(std::string_view(buf, *n));
    if (h) WAVEKV_RETURN_IF_ERROR(check_owner(files.seg_path(s), h->node, recorded));
  }
  for (uint64_t s : files.snaps) {
    auto h = read_snapshot_header(fs, files.snap_path(s));
    if (h) WAVEKV_RETURN_IF_ERROR(check_owner(files.snap_path(s), h->node, recorded));
  }
  return recorded;
}

// Step 1: whose directory this is, decided before anything is changed.
Status decide_identity(FileSystem& fs, const DirFiles& files, NodeId wanted_node,
                       const std::function<uint64_t()>& random, RecoveryPlan& plan) {
  WAVEKV_RETURN_IF_ERROR(read_identity_file(fs, files.dir, plan));
  plan.clean_marker = fs.exists(files.dir + "/" + kCleanFile);
  auto recorded = recorded_node(fs, files, plan.identity.node);
  if (!recorded) return recorded.status();
  if (wanted_node != 0 && *recorded != 0 && wanted_node != *recorded)
    return Status::wrong_node("data directory " + files.dir + " belongs to node " +
                              std::to_string(*recorded) + ", not " + std::to_string(wanted_node));
  plan.identity.node =
      *recorded != 0 ? *recorded : (wanted_node != 0 ? wanted_node : random_nonzero(random));
  if (!plan.identity_exists) plan.identity.incarnation = random_nonzero(random);
  return Status::ok();
}

// Step 2: the newest snapshot that verifies (older ones are fallbacks) into
// plan.state; returns its LSN, 0 if none.
uint64_t load_newest_snapshot(FileSystem& fs, const DirFiles& files, RecoveryPlan& plan) {
  plan.state = State(plan.identity.node, plan.identity.incarnation);
  for (auto it = files.snaps.rbegin(); it != files.snaps.rend(); ++it) {
    State candidate(plan.identity.node, plan.identity.incarnation);
    auto loaded = load_snapshot(fs, files.snap_path(*it), candidate);
    if (loaded) {
      plan.state = std::move(candidate);
      return *it;
    }
    plan.report.snapshots_skipped.push_back(snapshot_name(*it) + ": " + loaded.status().message());
  }
  return 0;
}

// kCorruption if the WAL cannot continue from the snapshot at `snap_lsn`.
Status check_wal_follows_snapshot(const DirFiles& files, uint64_t snap_lsn,
                                  const RecoveryPlan& plan) {
  if (!files.segs.empty() && files.segs.front() > snap_lsn + 1) {
    return Status::corruption("the WAL starts at LSN " + std::to_string(files.segs.front()) +
                              " but the newest usable "
                              "snapshot covers only up to " +
                              std::to_string(snap_lsn) +
                              (plan.report.snapshots_skipped.empty()
                                   ? std::string()
                                   : " (" + plan.report.snapshots_skipped.front() + ")") +
                              "; refusing to open without the records in between");
  }
  if (files.segs.empty() && !files.snaps.empty() && snap_lsn == 0) {
    return Status::corruption("no snapshot verifies and there is no WAL to rebuild from: " +
                              plan.report.snapshots_skipped.front());
  }
  return Status::ok();
}

// A header that verifies but names a format version this build does not
// read: a newer WaveKV wrote this segment. Nothing may be cut or rewritten
// then.
bool newer_format(std::string_view header) {
  return header.size() >= kWalHeaderBytes &&
         std::memcmp(header.data(), kWalMagic, sizeof kWalMagic) == 0 &&
         load_u32(header.data() + 32) == checksum32(header.substr(0, 32)) &&
         (load_u32(header.data() + 8) > kWalVersion ||
          load_u32(header.data() + 8) < kOldestWalVersion);
}

// Intact records above `floor` in a segment that is set aside, from LSN
// `min_lsn` on (its header may be the damage, so it is not trusted).
Result<IntactRecords> intact_in(FileSystem& fs, const std::string& path, uint64_t min_lsn,
                                uint64_t floor) {
  auto data = read_file(fs, path);
  if (!data) return data.status();
  if (newer_format(*data))
    return Status::corruption(path + ": " + decode_wal_header(*data).status().message());
  return find_intact_records(*data, kWalHeaderBytes, min_lsn, floor);
}

// Step 3: replays the WAL after the snapshot into plan.state, stopping at the
// first damage; the segments after it are set aside. If the damage is not a
// torn tail (intact records follow it, or a header is damaged), says so in
// report.wal_corruption. Returns the last LSN replayed (0 if none).
Result<uint64_t> replay_wal(FileSystem& fs, const DirFiles& files, uint64_t snap_lsn,
                            RecoveryPlan& plan) {
  const auto& segs = files.segs;
  auto& report = plan.report;
  // Segments wholly covered by the snapshot are not read: recovery time is
  // bounded by the checkpoint interval, and damage there loses nothing.
  size_t i = 0;
  while (i + 1 < segs.size() && segs[i + 1] <= snap_lsn + 1) {
    plan.segments.push_back(segs[i]);
    i++;
  }
  uint64_t expect = segs.empty() ? snap_lsn + 1 : segs[i];
  uint64_t wal_last = 0;
  IntactRecords lost;  // intact records after the damage
  auto add_lost = [&](const IntactRecords& r) {
    if (r.count == 0) return;
    if (lost.count == 0) lost.first_lsn = r.first_lsn;
    lost.count += r.count;
    lost.last_lsn = r.last_lsn;
  };
  for (; i < segs.size(); i++) {
    std::string path = files.seg_path(segs[i]);
    if (segs[i] != expect) {
      report.wal_damage = path + " starts at LSN " + std::to_string(segs[i]) + " where " +
                          std::to_string(expect) + " was expected";
      break;
    }
    auto apply = [&](uint64_t lsn, std::vector<StateOp>&& ops) {
      if (lsn <= snap_lsn) return;
      for (const auto& op : ops) plan.state.apply(op);
      report.wal_records_replayed++;
    };
    auto scan = scan_wal_segment(fs, path, apply, snap_lsn);
    if (!scan && scan.status().code() == Code::kCorruption) {
      // The header is damaged (it is durable before the segment gets its
      // name, so a crash never does this). If the records verify under the
      // header the file name and IDENTITY give, a repair rewrites it.
      auto head = read_file(fs, path);
      if (!head) return head.status();
      if (newer_format(*head)) return scan.status();
      const WalHeader assumed{plan.identity.node, segs[i]};
      auto rescan = scan_wal_segment(fs, path, apply, snap_lsn, &assumed);
      if (rescan && rescan->records > 0) {
        plan.rewrite_header = {path, assumed};
        report.wal_corruption = scan.status().message() +
                                "; its records verify under the header its name and IDENTITY "
                                "give (node " +
                                std::to_string(assumed.node) + ", first LSN " +
                                std::to_string(assumed.first_lsn) +
                                "), so a repair rewrites the header and loses nothing";
        scan = std::move(rescan);
      }
    }
    if (!scan) {
      if (scan.status().code() != Code::kCorruption) return scan.status();
      report.wal_damage = scan.status().message();
      break;
    }
    plan.segments.push_back(segs[i]);
    plan.wal_bytes += scan->valid_bytes - kWalHeaderBytes;
    // A segment of an older format version is not appended to: the next
    // record starts a segment of this one (a segment holds one version).
    plan.resume_first_lsn = scan->header.version == kWalVersion ? segs[i] : 0;
    plan.resume_offset = scan->valid_bytes;
    if (scan->records > 0) wal_last = scan->last_lsn;
    expect = scan->records > 0 ? scan->last_lsn + 1 : segs[i];
    if (!scan->damage.empty()) {
      report.wal_damage = scan->damage;
      report.wal_bytes_cut = scan->file_bytes - scan->valid_bytes;
      plan.truncate = {path, scan->valid_bytes};
      add_lost({scan->intact_after, scan->intact_after_first, scan->intact_after_last});
      i++;
      break;
    }
  }
  for (; i < segs.size(); i++) {
    // From the LSN its name gives: the search bounds LSNs by the bytes of one file.
    auto intact = intact_in(fs, files.seg_path(segs[i]), std::max(expect, segs[i]), snap_lsn);
    if (!intact) return intact.status();
    add_lost(*intact);
    plan.set_aside.push_back(files.seg_path(segs[i]));
    report.files_set_aside.push_back(damaged_name(fs, files.seg_path(segs[i])));
  }
  if (lost.count > 0) {
    report.wal_records_after_damage = lost.count;
    if (!report.wal_corruption.empty()) report.wal_corruption += "; then ";
    report.wal_corruption += report.wal_damage + ", followed by " + std::to_string(lost.count) +
                             " intact record" + (lost.count == 1 ? "" : "s") + " (LSN " +
                             std::to_string(lost.first_lsn) + ".." + std::to_string(lost.last_lsn) +
                             ") that a cut there would lose: this is not a torn tail";
  }
  return wal_last;
}

// Step 4: a stream never issues a seq twice (docs/PROTOCOL.md,
// "Incarnations"). If writes of ours may be gone from this disk but not from
// peers, continue in a new stream.
void choose_stream(Durability durability, const std::function<uint64_t()>& random,
                   RecoveryPlan& plan) {
  if (!plan.identity_exists) return;
  if (!plan.report.wal_damage.empty())
    plan.report.new_incarnation = "WAL damage was cut off";
  else if (durability != Durability::kAlways && !plan.clean_marker)
    plan.report.new_incarnation = "unclean shutdown with durability that is not 'always'";
  if (plan.report.new_incarnation.empty()) return;
  plan.identity.incarnation = random_nonzero(random);
  plan.state.begin_stream(plan.identity.incarnation);
}

}  // namespace

Result<RecoveryPlan> plan_recovery(FileSystem& fs, const std::string& dir, NodeId wanted_node,
                                   Durability durability, const std::function<uint64_t()>& random) {
  RecoveryPlan plan;
  auto files = list_files(fs, dir, plan);
  if (!files) return files.status();
  WAVEKV_RETURN_IF_ERROR(decide_identity(fs, *files, wanted_node, random, plan));
  const uint64_t snap_lsn = load_newest_snapshot(fs, *files, plan);
  plan.report.snapshot_lsn = snap_lsn;
  WAVEKV_RETURN_IF_ERROR(check_wal_follows_snapshot(*files, snap_lsn, plan));
  auto wal_last = replay_wal(fs, *files, snap_lsn, plan);
  if (!wal_last) return wal_last.status();
  plan.last_lsn = std::max(*wal_last, snap_lsn);
  if (*wal_last < snap_lsn) {
    // The log ends before the snapshot: start a fresh segment after it rather
    // than reuse LSNs the snapshot already covers.
    plan.resume_first_lsn = 0;
    plan.resume_offset = 0;
  }
  choose_stream(durability, random, plan);
  return plan;
}

Status apply_repairs(FileSystem& fs, const std::string& dir, const RecoveryPlan& plan) {
  for (const auto& path : plan.remove_files) WAVEKV_RETURN_IF_ERROR(fs.remove(path));
  if (plan.rewrite_header) {
    const auto& [path, header] = *plan.rewrite_header;
    auto file = fs.open_writable(path, false);
    if (!file) return file.status();
    WAVEKV_RETURN_IF_ERROR((*file)->write_at(0, encode_wal_header(header.node, header.first_lsn)));
    WAVEKV_RETURN_IF_ERROR((*file)->sync());
    WAVEKV_RETURN_IF_ERROR((*file)->close());
  }
  if (plan.truncate && plan.report.wal_records_after_damage > 0) {
    // The cut loses intact records: keep the segment as it was beside it.
    auto bytes = read_file(fs, plan.truncate->first);
    if (!bytes) return bytes.status();
    WAVEKV_RETURN_IF_ERROR(
        write_file_atomic(fs, dir, damaged_name(fs, plan.truncate->first), *bytes));
  }
  if (plan.truncate) {
    auto file = fs.open_writable(plan.truncate->first, false);
    if (!file) return file.status();
    WAVEKV_RETURN_IF_ERROR((*file)->truncate(plan.truncate->second));
    WAVEKV_RETURN_IF_ERROR((*file)->sync());
    WAVEKV_RETURN_IF_ERROR((*file)->close());
  }
  for (const auto& path : plan.set_aside)
    WAVEKV_RETURN_IF_ERROR(fs.rename(path, dir + "/" + damaged_name(fs, path)));
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
