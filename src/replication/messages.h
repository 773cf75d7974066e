// The messages replicas exchange (docs/PROTOCOL.md says when, docs/FORMAT.md
// gives the bytes). Plain data: the protocol state machine makes and consumes
// them; a transport only moves their encoding.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "state/state_op.h"
#include "wavekv/status.h"
#include "wavekv/types.h"

namespace wavekv {

// Version 3 adds the sender's wall clock to every message (the clock offset
// check); version 4 lets entries carry an expiry. Versions 2 and 3 are still
// read, and sent to peers that speak only them (an entry with an expiry goes
// to them as the tombstone it becomes; docs/FORMAT.md, "Wire versions").
constexpr uint8_t kWireVersion = 4;
// The first wire version whose entries may carry an expiry.
constexpr uint8_t kExpiryWireVersion = 4;
constexpr uint8_t kOldestWireVersion = 2;
constexpr size_t kDigestBuckets = 256;

struct Member {
  NodeId id = 0;
  uint64_t incarnation = 0;
  std::string address;
  bool operator==(const Member&) const = default;
};

struct WireEntry {
  std::string key;
  Entry entry;
  bool operator==(const WireEntry&) const = default;
};

// Where a paged delta resumes: the next (origin, seq) to consider.
struct Cursor {
  StreamId origin = 0;
  uint64_t seq = 0;
  bool operator==(const Cursor&) const = default;
};

// "Send me what I lack": the requester's version vector and where to resume.
struct SyncRequest {
  uint64_t session = 0;  // chosen by the requester; echoed in every page
  VersionVector have;
  Cursor cursor;
  // What the requester and every member it knows cover, by what it recorded
  // of them (tombstone GC, docs/PROTOCOL.md); first requests only.
  VersionVector stable;
  // For a next page: the previous page's `epoch` and `arrivals`, so the
  // responder also ships what arrived behind the cursor since then.
  uint64_t epoch = 0;
  uint64_t after = 0;
  bool operator==(const SyncRequest&) const = default;
};

// One page of a delta. `covers` is the responder's version vector from the
// same view as the first page's entries; the requester adopts it only after the
// last page merged with no rejection.
struct SyncPage {
  uint64_t session = 0;
  VersionVector covers;
  VersionVector stable;  // as in SyncRequest, the responder's; first pages only
  // The responder's tombstone-GC horizon: per stream, the highest seq of a
  // tombstone it (or a node whose claim it adopted) has forgotten. A requester
  // below it that holds a version stamped at or before `collected_before` may
  // hold versions those tombstones deleted; it must re-bootstrap.
  VersionVector collected;
  Timestamp collected_before = 0;  // the newest timestamp among those tombstones
  Timestamp clock = 0;             // the responder's newest timestamp
  std::vector<WireEntry> entries;
  bool last = true;
  Cursor next;  // where the next request resumes, if !last
  // Where the responder's arrivals stood when it built this page; `epoch`
  // names its process, since arrival numbers restart with it.
  uint64_t epoch = 0;
  uint64_t arrivals = 0;
  // The responder could not ship everything that arrived behind the cursor
  // since the previous page (it restarted, or too much arrived): the session
  // must not adopt `covers`.
  bool lost_track = false;
  bool operator==(const SyncPage&) const = default;
};

// Recent local writes, sent right away. Never moves anyone's acks.
struct Push {
  std::vector<WireEntry> entries;
  bool operator==(const Push&) const = default;
};

// Divergence check: the responder answers with its bucket digests keyed by
// the requester's fresh nonce, so it cannot echo the requester's own digest.
struct DigestRequest {
  uint64_t nonce = 0;
  bool operator==(const DigestRequest&) const = default;
};
struct DigestReply {
  uint64_t nonce = 0;
  VersionVector covers;  // digests are comparable only between equal covers
  std::array<uint64_t, kDigestBuckets> buckets{};
  bool operator==(const DigestReply&) const = default;
};
// "Send me every entry of these buckets."
struct BucketRequest {
  std::vector<uint16_t> buckets;
  bool operator==(const BucketRequest&) const = default;
};
struct BucketReply {
  std::vector<uint16_t> buckets;
  std::vector<WireEntry> entries;
  bool operator==(const BucketReply&) const = default;
};

// "You were evicted: discard your state and bootstrap again."
struct Rebootstrap {
  std::string reason;
  bool operator==(const Rebootstrap&) const = default;
};

using Body = std::variant<SyncRequest, SyncPage, Push, DigestRequest, DigestReply, BucketRequest,
                          BucketReply, Rebootstrap>;

// What every message carries besides its body: who sent it and the members
// the sender knows (discovery rides on every exchange).
struct Message {
  // Encoded as this version (kOldestWireVersion .. kWireVersion); decoded
  // messages say which one they came in.
  uint8_t version = kWireVersion;
  NodeId from = 0;
  uint64_t from_incarnation = 0;
  std::string from_address;
  // Version 3: the sender's wall clock (ms since the epoch) when it encoded
  // the message; 0 in version 2.
  uint64_t sent_at_ms = 0;
  std::vector<Member> members;
  Body body;
  bool operator==(const Message&) const = default;
};

std::string encode_message(const Message& m);

struct DecodeLimits {
  uint64_t max_key_bytes = 64 * 1024;
  uint64_t max_value_bytes = 64ull * 1024 * 1024;
  uint64_t max_entries = 1'000'000;
  uint64_t max_members = 100'000;
};
// Refuses, with a message that says why, anything malformed: a newer wire
// version, a length beyond what remains, an unknown body type, trailing bytes.
Result<Message> decode_message(std::string_view bytes, const DecodeLimits& limits = {});

}  // namespace wavekv
