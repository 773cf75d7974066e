#include "resp/commands.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <random>
#include <set>
#include <string_view>
#include <variant>

#include "monitoring/node_status.h"
#include "resp/glob.h"
#include "resp/overlay.h"
#include "resp/pubsub.h"

namespace wavekv::resp {

namespace {

constexpr const char* kRedisVersion = "7.0.0";  // what we answer to clients that check
constexpr const char* kWaveKVVersion = "0.1.0";
// SCAN COUNT is clamped to this: it bounds what one SCAN call copies out of the store.
constexpr uint64_t kMaxScanCount = 100'000;
// KEYS reads the store in pages of this many keys.
constexpr size_t kKeysPage = 1024;

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::optional<int64_t> to_int(std::string_view s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<uint64_t> to_uint(std::string_view s) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// The smallest key above every key that starts with `prefix`; empty if none
// (a prefix of only 0xff bytes, or the empty prefix): no upper bound.
std::string prefix_end(std::string prefix) {
  while (!prefix.empty()) {
    auto last = static_cast<unsigned char>(prefix.back());
    if (last != 0xff) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;
}

std::string store_error(const Status& st) { return "ERR " + st.to_string(); }

// INFO values must stay on one line and not contain the separators.
std::string info_safe(std::string s) {
  for (auto& c : s)
    if (c == '\r' || c == '\n') c = ' ';
  return s;
}

struct Exec {
  CommandContext& ctx;
  Session& session;
  const std::vector<std::string>& args;
  Outcome& out;
  uint64_t asked = 0;  // reply bytes reserve() was asked for

  Protocol proto() const { return session.protocol; }
  void ok() { write_simple(out.reply, "OK"); }
  void error(std::string_view e) { write_error(out.reply, e); }
  void null() { write_null(out.reply, proto()); }
  void bulk(std::string_view s) { write_bulk(out.reply, s); }
  void integer(int64_t v) { write_integer(out.reply, v); }
  void syntax_error() { error("ERR syntax error"); }

  // Memory for `bytes` more of reply (ReplyBudget); false: stop now, having
  // done nothing (Outcome::stopped says why).
  bool reserve(uint64_t bytes) {
    if (ctx.budget == nullptr) return true;
    asked += bytes;
    switch (ctx.budget->reserve(bytes)) {
      case ReplyBudget::Grant::kYes: return true;
      case ReplyBudget::Grant::kLater: out.stopped = Outcome::Stopped::kLater; break;
      case ReplyBudget::Grant::kNever:
        out.stopped = Outcome::Stopped::kTooLarge;
        out.reply_bytes = asked;
        break;
    }
    return false;
  }
  // A bulk reply's bytes: header, body and CRLF.
  static uint64_t bulk_bytes(uint64_t n) {
    uint64_t digits = 1;
    for (uint64_t v = n; v >= 10; v /= 10) ++digits;
    return 1 + digits + 2 + n + 2;  // "$<n>\r\n<body>\r\n"
  }
};

using Handler = void (*)(Exec&);

// What a command needs of the session's identity (auth on), docs/SECURITY.md.
enum class Need {
  kNothing,   // connection commands: logged in is enough
  kRead,      // the read role; each key (first_key..last_key) readable
  kWrite,     // the readwrite role; each key writable
  kReadAll,   // the read role on every key (DBSIZE counts them all)
  kWriteAll,  // the readwrite role on every key (FLUSHDB deletes them all)
};

struct CommandSpec {
  const char* name;  // upper case
  int arity;         // Redis convention: n exactly n args (name included); -n at least n
  const char* flags;
  int first_key, last_key, step;
  const char* group;
  const char* summary;
  Handler handler;
  Need need;
};

// Whether the session may see `key` in a listing (KEYS, SCAN).
bool visible(const Exec& e, std::string_view key) {
  return !e.session.identity || e.session.identity->allows(auth::Action::kRead, key);
}

// How a listing of keys under `prefix` is filtered for the session: kAll
// (every key may be shown), kNone (none may), kEach (check each key).
enum class Filter { kAll, kNone, kEach };
Filter listing_filter(const Exec& e, std::string_view prefix) {
  const auto& id = e.session.identity;
  if (!id || id->allows_range(auth::Action::kRead, prefix)) return Filter::kAll;
  if (!id->allows_some(auth::Action::kRead, prefix)) return Filter::kNone;
  return Filter::kEach;
}

// ---- the commands ----

void cmd_ping(Exec& e) {
  if (e.args.size() > 2) return e.error("ERR wrong number of arguments for 'ping' command");
  if (e.session.subscribed() && e.proto() == Protocol::kResp2) {
    // Subscribed RESP2: a push-shaped reply, so clients tell it apart.
    const std::string arg = e.args.size() == 2 ? e.args[1] : "";
    if (!e.reserve(Exec::bulk_bytes(arg.size()))) return;
    write_array(e.out.reply, 2);
    e.bulk("pong");
    return e.bulk(arg);
  }
  if (e.args.size() == 2) {
    if (!e.reserve(Exec::bulk_bytes(e.args[1].size()))) return;
    return e.bulk(e.args[1]);
  }
  write_simple(e.out.reply, "PONG");
}

void cmd_echo(Exec& e) {
  if (!e.reserve(Exec::bulk_bytes(e.args[1].size()))) return;
  e.bulk(e.args[1]);
}

void cmd_quit(Exec& e) {
  e.ok();
  e.out.close = true;
}

// Appends the value of `key` as a bulk string, or null if absent. The value
// is sized before it is copied: false if its memory was refused (the reply
// is then incomplete and e.out.stopped says why).
bool value_reply(Exec& e, const std::string& key, bool errors_are_null) {
  bool granted = true;
  Status st = e.ctx.store.view(key, [&](std::string_view v) {
    granted = e.reserve(Exec::bulk_bytes(v.size()));
    if (granted) e.bulk(v);
  });
  if (!granted) return false;
  if (st.is_ok()) return true;
  if (st.code() == Code::kNotFound || errors_are_null)
    e.null();
  else
    e.error(store_error(st));
  return true;
}

void cmd_get(Exec& e) { value_reply(e, e.args[1], false); }

std::optional<int64_t> parse_int(std::string_view s);
constexpr std::string_view kNotInteger = "ERR value is not an integer or out of range";

// ---- expiry (docs/RESP.md, "Expiry") ----

// An expiry option's time as ms since the epoch: EX seconds and PX ms from
// now, EXAT seconds and PXAT ms since the epoch. nullopt, with Redis's error
// set, unless it is a positive integer that does not overflow.
std::optional<uint64_t> expiry_option(Exec& e, std::string_view unit, std::string_view arg,
                                      std::string_view command) {
  auto v = parse_int(arg);
  if (!v) {
    e.error(kNotInteger);
    return std::nullopt;
  }
  int64_t ms = *v;
  const bool seconds = unit == "EX" || unit == "EXAT";
  const bool relative = unit == "EX" || unit == "PX";
  if (ms <= 0 || (seconds && __builtin_mul_overflow(ms, 1000, &ms)) ||
      (relative && __builtin_add_overflow(ms, static_cast<int64_t>(e.ctx.store.now_ms()), &ms))) {
    e.error("ERR invalid expire time in '" + std::string(command) + "' command");
    return std::nullopt;
  }
  return static_cast<uint64_t>(ms);
}

bool is_expiry_unit(std::string_view opt) {
  return opt == "EX" || opt == "PX" || opt == "EXAT" || opt == "PXAT";
}

// What this node holds of `key` as a reader sees it: the value and its
// expiry (0: none); nullopt if absent or expired.
struct Held {
  std::string value;
  uint64_t expires_ms = 0;
};
std::optional<Held> held_of(Exec& e, const std::string& key) {
  auto entry = e.ctx.store.get_entry(key);
  if (!entry || !entry->live_at(e.ctx.store.now_ms())) return std::nullopt;
  return Held{std::move(entry->value), entry->expires_ms};
}

// Puts `value` with expiry `expires_ms`, or a tombstone if that time has
// already passed (an expiry in the past deletes the key, as in Redis).
void put_expiring(Exec& e, WriteBatch& b, const std::string& key, std::string_view value,
                  uint64_t expires_ms) {
  if (expires_ms != 0 && expires_ms <= e.ctx.store.now_ms())
    b.del(key);
  else
    b.put(key, value, expires_ms);
}

struct SetOptions {
  bool nx = false, xx = false, get = false, keepttl = false;
  uint64_t expires_ms = 0;  // 0: none
};

// Parses SET's options; on a bad one sets the error reply and returns nullopt.
std::optional<SetOptions> parse_set_options(Exec& e) {
  SetOptions o;
  bool expiry = false;
  for (size_t i = 3; i < e.args.size(); ++i) {
    std::string opt = upper(e.args[i]);
    if (opt == "NX" && !o.xx) {
      o.nx = true;
    } else if (opt == "XX" && !o.nx) {
      o.xx = true;
    } else if (opt == "GET") {
      o.get = true;
    } else if (opt == "KEEPTTL" && !expiry) {
      o.keepttl = true;
    } else if (is_expiry_unit(opt) && !expiry && !o.keepttl && i + 1 < e.args.size()) {
      auto at = expiry_option(e, opt, e.args[++i], "set");
      if (!at) return std::nullopt;
      o.expires_ms = *at;
      expiry = true;
    } else {
      e.syntax_error();
      return std::nullopt;
    }
  }
  return o;
}

void cmd_set(Exec& e) {
  auto opts = parse_set_options(e);
  if (!opts) return;
  const std::string& key = e.args[1];
  if (opts->keepttl) {
    std::optional<Held> held = held_of(e, key);
    if (held) opts->expires_ms = held->expires_ms;
  }
  if (opts->nx || opts->xx || opts->get) {
    // Check, then write. The server runs this one at a time (Ordering::
    // kSerialized), so no other conditional SET on this server slips in
    // between; other nodes may, as WaveKV has no cross-node atomicity.
    auto old = e.ctx.store.get(key);
    if (!old && old.status().code() != Code::kNotFound) return e.error(store_error(old.status()));
    bool exists = old.is_ok();
    if (opts->get && exists && !e.reserve(Exec::bulk_bytes(old->size()))) return;
    if ((opts->nx && exists) || (opts->xx && !exists)) {
      if (opts->get && exists) return e.bulk(*old);
      return e.null();
    }
    if (opts->get) {
      if (exists)
        e.bulk(*old);
      else
        e.null();
    } else {
      e.ok();
    }
  } else {
    e.ok();
  }
  WriteBatch b;
  put_expiring(e, b, key, e.args[2], opts->expires_ms);
  e.out.write = std::move(b);
}

// SETEX key seconds value, PSETEX key ms value.
void setex(Exec& e, std::string_view unit, std::string_view command) {
  auto at = expiry_option(e, unit, e.args[2], command);
  if (!at) return;
  e.ok();
  WriteBatch b;
  b.put(e.args[1], e.args[3], *at);
  e.out.write = std::move(b);
}
void cmd_setex(Exec& e) { setex(e, "EX", "setex"); }
void cmd_psetex(Exec& e) { setex(e, "PX", "psetex"); }

// GETEX key [EX s | PX ms | EXAT s | PXAT ms | PERSIST]: the value, and a
// new version with the new expiry (none for PERSIST, which writes only if
// there was one).
void cmd_getex(Exec& e) {
  std::optional<uint64_t> expires;  // set: write with this expiry (0: none)
  if (e.args.size() > 4) return e.syntax_error();
  if (e.args.size() >= 3) {
    std::string opt = upper(e.args[2]);
    if (opt == "PERSIST" && e.args.size() == 3) {
      expires = 0;
    } else if (is_expiry_unit(opt) && e.args.size() == 4) {
      expires = expiry_option(e, opt, e.args[3], "getex");
      if (!expires) return;
    } else {
      return e.syntax_error();
    }
  }
  std::optional<Held> held = held_of(e, e.args[1]);
  if (!held) return e.null();
  if (!e.reserve(Exec::bulk_bytes(held->value.size()))) return;
  e.bulk(held->value);
  if (!expires || (*expires == 0 && held->expires_ms == 0)) return;
  WriteBatch b;
  put_expiring(e, b, e.args[1], held->value, *expires);
  e.out.write = std::move(b);
}

// EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT key time [NX | XX | GT | LT]:
// 1 and a new version of the value with the new expiry (a tombstone if the
// time has passed), or 0 if the key is absent or the condition fails. No
// expiry counts as an infinite one for GT and LT, as in Redis.
void expire_generic(Exec& e, std::string_view unit, std::string_view command) {
  auto t = parse_int(e.args[2]);
  if (!t) return e.error(kNotInteger);
  bool nx = false, xx = false, gt = false, lt = false;
  for (size_t i = 3; i < e.args.size(); ++i) {
    std::string opt = upper(e.args[i]);
    if (opt == "NX")
      nx = true;
    else if (opt == "XX")
      xx = true;
    else if (opt == "GT")
      gt = true;
    else if (opt == "LT")
      lt = true;
    else
      return e.error("ERR Unsupported option " + e.args[i].substr(0, 64));
  }
  if (nx && (xx || gt || lt))
    return e.error("ERR NX and XX, GT or LT options at the same time are not compatible");
  if (gt && lt) return e.error("ERR GT and LT options at the same time are not compatible");
  int64_t when = *t;
  const bool seconds = unit == "EX" || unit == "EXAT";
  const bool relative = unit == "EX" || unit == "PX";
  if ((seconds && __builtin_mul_overflow(when, 1000, &when)) ||
      (relative && __builtin_add_overflow(when, static_cast<int64_t>(e.ctx.store.now_ms()), &when)))
    return e.error("ERR invalid expire time in '" + std::string(command) + "' command");
  std::optional<Held> held = held_of(e, e.args[1]);
  if (!held) return e.integer(0);
  const bool has = held->expires_ms != 0;
  const int64_t current = has ? static_cast<int64_t>(held->expires_ms) : INT64_MAX;
  if ((nx && has) || (xx && !has) || (gt && (!has || when <= current)) || (lt && when >= current))
    return e.integer(0);
  e.integer(1);
  WriteBatch b;
  if (when <= static_cast<int64_t>(e.ctx.store.now_ms()))
    b.del(e.args[1]);
  else
    b.put(e.args[1], held->value, static_cast<uint64_t>(when));
  e.out.write = std::move(b);
}
void cmd_expire(Exec& e) { expire_generic(e, "EX", "expire"); }
void cmd_pexpire(Exec& e) { expire_generic(e, "PX", "pexpire"); }
void cmd_expireat(Exec& e) { expire_generic(e, "EXAT", "expireat"); }
void cmd_pexpireat(Exec& e) { expire_generic(e, "PXAT", "pexpireat"); }

// TTL / PTTL / EXPIRETIME / PEXPIRETIME: -2 if the key is absent, -1 if it
// has no expiry; seconds are rounded to the nearest, as Redis does.
void ttl_generic(Exec& e, bool ms, bool absolute) {
  std::optional<Held> held = held_of(e, e.args[1]);
  if (!held) return e.integer(-2);
  if (held->expires_ms == 0) return e.integer(-1);
  const uint64_t now = e.ctx.store.now_ms();
  const uint64_t left = absolute                 ? held->expires_ms
                        : held->expires_ms > now ? held->expires_ms - now
                                                 : 0;
  e.integer(static_cast<int64_t>(ms ? left : (left + 500) / 1000));
}
void cmd_ttl(Exec& e) { ttl_generic(e, false, false); }
void cmd_pttl(Exec& e) { ttl_generic(e, true, false); }
void cmd_expiretime(Exec& e) { ttl_generic(e, false, true); }
void cmd_pexpiretime(Exec& e) { ttl_generic(e, true, true); }

// PERSIST: 1 and a new version without the expiry, or 0 if the key is
// absent or has none.
void cmd_persist(Exec& e) {
  std::optional<Held> held = held_of(e, e.args[1]);
  if (!held || held->expires_ms == 0) return e.integer(0);
  e.integer(1);
  WriteBatch b;
  b.put(e.args[1], held->value);
  e.out.write = std::move(b);
}

void cmd_mset(Exec& e) {
  if (e.args.size() % 2 != 1) return e.error("ERR wrong number of arguments for 'mset' command");
  WriteBatch b;
  for (size_t i = 1; i + 1 < e.args.size(); i += 2) b.put(e.args[i], e.args[i + 1]);
  e.ok();
  e.out.write = std::move(b);
}

void cmd_del(Exec& e) {
  // Writes a tombstone for every key named, present here or not, and replies
  // with how many of them this node held. A key this node has not seen yet
  // may be live on another node (a SET whose replication this DEL
  // overtook): the tombstone, stamped now, is the last write in time and
  // must win there too, so it is written whatever this node holds.
  std::set<std::string_view> seen;
  WriteBatch b;
  int64_t existed = 0;
  for (size_t i = 1; i < e.args.size(); ++i) {
    if (!seen.insert(e.args[i]).second) continue;
    Status st = e.ctx.store.view(e.args[i], [](std::string_view) {});  // no copy
    if (st.is_ok())
      ++existed;
    else if (st.code() != Code::kNotFound)
      return e.error(store_error(st));
    b.del(e.args[i]);
  }
  e.integer(existed);
  e.out.write = std::move(b);
}

void cmd_flushdb(Exec& e) {
  // FLUSHDB / FLUSHALL [ASYNC | SYNC]: a tombstone, stamped now, for every
  // key this node holds, in one batch. Each beats every older version of its
  // key on every node, as DEL does. A key this node has not received yet (a
  // SET on another node whose replication is still on its way) is not in the
  // batch and survives: docs/RESP.md, "FLUSHDB".
  if (e.args.size() > 2) return e.syntax_error();
  if (e.args.size() == 2) {
    const std::string mode = upper(e.args[1]);
    if (mode != "ASYNC" && mode != "SYNC") return e.syntax_error();
  }
  WriteBatch b;
  std::string from;
  for (;;) {
    auto page = e.ctx.store.scan_range(from, "", kKeysPage);
    for (const auto& kv : page) b.del(kv.key);
    if (page.size() < kKeysPage) break;
    from = page.back().key;
    from.push_back('\0');  // the smallest key after it
  }
  e.ok();
  if (!b.empty()) e.out.write = std::move(b);
}

void cmd_exists(Exec& e) {
  int64_t n = 0;
  for (size_t i = 1; i < e.args.size(); ++i)
    if (e.ctx.store.get(e.args[i])) ++n;  // duplicates count each time, as in Redis
  e.integer(n);
}

void cmd_mget(Exec& e) {
  write_array(e.out.reply, e.args.size() - 1);
  for (size_t i = 1; i < e.args.size(); ++i)
    if (!value_reply(e, e.args[i], true))
      return;  // errors too are null: MGET has no per-key errors
}

void cmd_keys(Exec& e) {
  const std::string& pattern = e.args[1];
  std::string prefix = glob_literal_prefix(pattern);
  std::string end = prefix_end(prefix);
  std::vector<std::string> keys;
  const Filter filter = listing_filter(e, prefix);
  if (filter == Filter::kNone) return write_array(e.out.reply, 0);
  std::string from = prefix;
  for (;;) {
    auto page = e.ctx.store.scan_range(from, end, kKeysPage);
    for (auto& kv : page) {
      if (!glob_match(pattern, kv.key)) continue;
      if (filter == Filter::kEach && !visible(e, kv.key)) continue;
      if (keys.size() >= e.ctx.config.max_keys_reply)
        return e.error("ERR KEYS would return more than " +
                       std::to_string(e.ctx.config.max_keys_reply) + " keys; use SCAN");
      keys.push_back(std::move(kv.key));
    }
    if (page.size() < kKeysPage) break;
    from = page.back().key;
    from.push_back('\0');  // the smallest key after it
  }
  uint64_t bytes = 0;
  for (const auto& k : keys) bytes += Exec::bulk_bytes(k.size());
  if (!e.reserve(bytes)) return;
  write_array(e.out.reply, keys.size());
  for (const auto& k : keys) e.bulk(k);
}

void cmd_scan(Exec& e) {
  auto cursor = to_uint(e.args[1]);
  if (!cursor) return e.error("ERR invalid cursor");
  std::optional<std::string> pattern;
  uint64_t count = 10;
  bool strings_only_type_ok = true;
  for (size_t i = 2; i < e.args.size(); i += 2) {
    if (i + 1 >= e.args.size()) return e.syntax_error();
    std::string opt = upper(e.args[i]);
    if (opt == "MATCH") {
      pattern = e.args[i + 1];
    } else if (opt == "COUNT") {
      auto n = to_int(e.args[i + 1]);
      if (!n) return e.error("ERR value is not an integer or out of range");
      if (*n < 1) return e.syntax_error();
      count = std::min<uint64_t>(static_cast<uint64_t>(*n), kMaxScanCount);
    } else if (opt == "TYPE") {
      strings_only_type_ok = lower(e.args[i + 1]) == "string";  // every WaveKV value is a string
    } else {
      return e.syntax_error();
    }
  }
  std::string from;
  if (*cursor != 0) {
    auto last = e.ctx.cursors.find(*cursor);
    if (!last) return e.error("ERR invalid cursor (unknown or expired; restart the scan from 0)");
    from = std::move(*last);
    from.push_back('\0');  // the smallest key after the last one returned
  }
  // With a MATCH pattern only keys under its literal prefix can match.
  std::string prefix = pattern ? glob_literal_prefix(*pattern) : "";
  std::string end = prefix_end(prefix);
  if (from < prefix) from = prefix;
  // A user limited to prefixes sees only its keys: a page may then hold
  // fewer keys than COUNT (as SCAN allows), the cursor still walks them all.
  const Filter filter = listing_filter(e, prefix);
  std::vector<KeyValue> page;
  if (filter != Filter::kNone && (end.empty() || from < end))
    page = e.ctx.store.scan_range(from, end, count);
  std::vector<const std::string*> keys;
  uint64_t bytes = 0;
  for (const auto& kv : page) {
    if (strings_only_type_ok && (!pattern || glob_match(*pattern, kv.key)) &&
        (filter == Filter::kAll || visible(e, kv.key))) {
      keys.push_back(&kv.key);
      bytes += Exec::bulk_bytes(kv.key.size());
    }
  }
  if (!e.reserve(bytes)) return;  // before a cursor is opened: a retry does the same
  uint64_t next = 0;
  if (page.size() == count) next = e.ctx.cursors.open(page.back().key);
  write_array(e.out.reply, 2);
  e.bulk(std::to_string(next));
  write_array(e.out.reply, keys.size());
  for (const auto* k : keys) e.bulk(*k);
}

void cmd_dbsize(Exec& e) { e.integer(static_cast<int64_t>(e.ctx.store.status().live_keys)); }

void cmd_select(Exec& e) {
  auto db = to_int(e.args[1]);
  if (!db) return e.error("ERR value is not an integer or out of range");
  if (*db != 0) return e.error("ERR DB index is out of range (WaveKV has only database 0)");
  e.ok();
}

void cmd_auth(Exec& e) {
  if (!e.ctx.auth_enabled) {
    if (e.args.size() > 3) return e.syntax_error();
    // As Redis without passwords: the default user takes any password.
    if (e.args.size() == 3)
      return e.args[1] == auth::kDefaultUser ? e.ok() : e.error(auth::kWrongPassMessage);
    return e.error(
        "ERR AUTH <password> called without any password configured for the default user. Are "
        "you sure your configuration is correct?");
  }
  // The server verified the credentials before running this.
  if (!e.session.credentials_verified) return e.error("ERR AUTH was not verified by the server");
  e.ok();
}

void cmd_acl(Exec& e) {
  std::string sub = upper(e.args[1]);
  if (sub == "WHOAMI") {
    if (e.args.size() != 2)
      return e.error("ERR wrong number of arguments for 'acl|whoami' command");
    return e.bulk(e.session.identity ? e.session.identity->name : std::string(auth::kDefaultUser));
  }
  e.error("ERR unknown subcommand '" + e.args[1] +
          "'. WaveKV supports ACL WHOAMI (users come from the users file).");
}

// ---- INFO ----

using monitoring::InfoLines;
using monitoring::InfoSection;

void info_section(std::string& out, const char* title, const InfoLines& lines) {
  if (!out.empty()) out += "\r\n";
  out += "# ";
  out += title;
  out += "\r\n";
  for (const auto& [k, v] : lines) out += k + ":" + info_safe(v) + "\r\n";
}

// The sections asked for: none named means the default ones.
std::set<std::string> info_wanted(const std::vector<std::string>& args) {
  static const std::vector<std::string> kDefault = {"server",      "clients",     "stats",
                                                    "replication", "persistence", "keyspace"};
  std::set<std::string> wanted;
  for (size_t i = 1; i < args.size(); ++i) {
    std::string s = lower(args[i]);
    if (s == "default" || s == "all" || s == "everything")
      wanted.insert(kDefault.begin(), kDefault.end());
    else
      wanted.insert(s);
  }
  if (args.size() == 1) wanted.insert(kDefault.begin(), kDefault.end());
  return wanted;
}

InfoLines info_server(const CommandContext& ctx, const NodeStatus& status) {
  auto uptime_s = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::steady_clock::now() - ctx.stats.started)
                      .count();
  InfoLines lines = {{"redis_version", kRedisVersion},
                     {"wavekv_version", kWaveKVVersion},
                     {"redis_mode", "standalone"},
                     {"arch_bits", std::to_string(sizeof(void*) * 8)},
                     {"process_id", std::to_string(::getpid())},
                     {"tcp_port", std::to_string(ctx.port)},
                     {"uptime_in_seconds", std::to_string(uptime_s)},
                     {"uptime_in_days", std::to_string(uptime_s / 86400)}};
  monitoring::append_info(status, InfoSection::kServer, lines);
  return lines;
}

void cmd_info(Exec& e) {
  const std::set<std::string> wanted = info_wanted(e.args);
  const NodeStatus status =
      e.ctx.status ? e.ctx.status() : monitoring::store_only_status(e.ctx.store.status());
  const StoreStatus& st = status.store;
  const auto& stats = e.ctx.stats;
  std::string out;
  if (wanted.count("server")) info_section(out, "Server", info_server(e.ctx, status));
  if (wanted.count("clients")) {
    info_section(out, "Clients",
                 {{"connected_clients", std::to_string(stats.connected_clients.load())},
                  {"maxclients", std::to_string(e.ctx.config.max_connections)},
                  {"blocked_clients", "0"},
                  // Redis's names where it has them (maxmemory-clients).
                  {"mem_clients_normal", std::to_string(stats.memory.used())},
                  {"mem_clients_peak", std::to_string(stats.memory.peak())},
                  {"maxmemory_clients", std::to_string(stats.memory.limit())},
                  {"paused_clients", std::to_string(stats.paused_clients.load())}});
  }
  if (wanted.count("stats")) {
    InfoLines lines = {
        {"total_connections_received", std::to_string(stats.total_connections.load())},
        {"total_commands_processed", std::to_string(stats.total_commands.load())},
        {"rejected_connections", std::to_string(stats.rejected_connections.load())},
        {"client_memory_pauses", std::to_string(stats.client_pauses.load())},
        {"replies_too_large", std::to_string(stats.replies_too_large.load())},
        {"idle_timeouts", std::to_string(stats.idle_timeouts.load())},
        {"client_output_buffer_limit_disconnections",
         std::to_string(stats.pubsub_overflows.load())},
        {"pubsub_channels", std::to_string(e.ctx.pubsub ? e.ctx.pubsub->channels({}).size() : 0)},
        {"pubsub_patterns", std::to_string(e.ctx.pubsub ? e.ctx.pubsub->numpat() : 0)}};
    monitoring::append_info(status, InfoSection::kStats, lines);
    info_section(out, "Stats", lines);
  }
  if (wanted.count("replication")) {
    // Every WaveKV node takes writes and there is no primary: "master" is
    // the Redis role closest to that, and what clients look for.
    InfoLines lines = {{"role", "master"}, {"connected_slaves", "0"}};
    monitoring::append_info(status, InfoSection::kReplication, lines);
    info_section(out, "Replication", lines);
  }
  if (wanted.count("persistence")) {
    InfoLines lines = {{"loading", "0"},
                       {"rdb_changes_since_last_save", std::to_string(st.ops_since_checkpoint)}};
    monitoring::append_info(status, InfoSection::kPersistence, lines);
    info_section(out, "Persistence", lines);
  }
  if (wanted.count("keyspace")) {
    InfoLines lines;
    if (st.live_keys > 0)
      lines.emplace_back("db0", "keys=" + std::to_string(st.live_keys) +
                                    ",expires=" + std::to_string(st.expiring_keys) + ",avg_ttl=0");
    info_section(out, "Keyspace", lines);
  }
  e.bulk(out);
}

// ---- CONFIG ----

// CONFIG SET: of WaveKV's parameters only notify-keyspace-events may change
// at run time (the rest come from the node's configuration).
void config_set(Exec& e) {
  if (e.args.size() < 4 || e.args.size() % 2 != 0)
    return e.error("ERR wrong number of arguments for 'config|set' command");
  if (e.session.identity && !e.session.identity->allows(auth::Action::kAdmin))
    return e.error("NOPERM User " + e.session.identity->name +
                   " has no permissions to run the 'config|set' command");
  std::optional<NotifyFlags> flags;
  for (size_t i = 2; i < e.args.size(); i += 2) {
    if (lower(e.args[i]) != "notify-keyspace-events")
      return e.error("ERR CONFIG SET of '" + e.args[i].substr(0, 64) +
                     "' is not supported by WaveKV (only notify-keyspace-events)");
    flags = NotifyFlags::parse(e.args[i + 1]);
    if (!flags || e.ctx.pubsub == nullptr)
      return e.error(
          "ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') "
          "- Invalid event class character. Use 'Ag$lshzxeKEtmdn'.");
  }
  e.ctx.pubsub->set_flags(*flags);
  e.ok();
}

void cmd_config(Exec& e) {
  std::string sub = upper(e.args[1]);
  if (sub == "SET") return config_set(e);
  if (sub != "GET") {
    if (sub == "RESETSTAT" || sub == "REWRITE")
      return e.error("ERR CONFIG " + sub + " is not supported by WaveKV");
    return e.error("ERR unknown subcommand '" + e.args[1] + "'. Try CONFIG GET.");
  }
  if (e.args.size() < 3) return e.error("ERR wrong number of arguments for 'config|get' command");
  const auto& c = e.ctx.config;
  // What clients and redis-benchmark probe, with WaveKV's answers: no RDB
  // snapshots ("save" is empty), and a log-structured store (appendonly yes).
  const std::vector<std::pair<std::string, std::string>> params = {
      {"save", ""},
      {"appendonly", "yes"},
      {"databases", "1"},
      {"maxmemory", "0"},
      {"maxmemory-policy", "noeviction"},
      {"maxclients", std::to_string(c.max_connections)},
      {"port", std::to_string(e.ctx.port)},
      {"timeout", std::to_string(c.idle_timeout_ms / 1000)},  // Redis counts seconds
      {"maxmemory-clients", std::to_string(c.max_client_memory_bytes)},
      {"proto-max-bulk-len", std::to_string(c.limits.max_bulk_bytes)},
      {"client-query-buffer-limit", std::to_string(c.limits.max_request_bytes)},
      {"cluster-enabled", "no"},
      {"notify-keyspace-events", e.ctx.pubsub ? e.ctx.pubsub->flags().to_string() : ""},
  };
  std::vector<const std::pair<std::string, std::string>*> hits;
  for (const auto& p : params) {
    for (size_t i = 2; i < e.args.size(); ++i) {
      if (glob_match(lower(e.args[i]), p.first)) {
        hits.push_back(&p);
        break;
      }
    }
  }
  write_map(e.out.reply, hits.size(), e.proto());
  for (const auto* p : hits) {
    e.bulk(p->first);
    e.bulk(p->second);
  }
}

// ---- CLIENT, HELLO ----

std::optional<int64_t> parse_int(std::string_view s);

// One line of CLIENT LIST / CLIENT INFO, in Redis 7's field order (the
// fields WaveKV has no notion of carry Redis's idle values).
std::string client_line(const ClientRecord& c) {
  const auto now = std::chrono::steady_clock::now();
  auto secs = [&](std::chrono::steady_clock::time_point t) {
    return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - t).count());
  };
  std::string cmd = c.command.empty() ? "NULL" : c.command;
  return "id=" + std::to_string(c.id) + " addr=" + c.addr + " laddr=" + c.laddr +
         " fd=-1 name=" + c.name + " age=" + secs(c.created) + " idle=" + secs(c.last_command) +
         " flags=" +
         (c.multi >= 0         ? "x"
          : c.sub + c.psub > 0 ? "P"
                               : "N") +
         " db=0 sub=" + std::to_string(c.sub) + " psub=" + std::to_string(c.psub) +
         " ssub=0 multi=" + std::to_string(c.multi) +
         " qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0" +
         " obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=" + cmd + " user=" + c.user +
         " redir=-1 resp=" + std::to_string(c.resp) + " lib-name=" + c.lib_name +
         " lib-ver=" + c.lib_ver + "\n";
}

// This session as CLIENT INFO shows it when the server keeps no registry.
ClientRecord own_record(const Exec& e) {
  ClientRecord r;
  r.id = e.session.id;
  r.created = r.last_command = std::chrono::steady_clock::now();
  r.name = e.session.name;
  r.user = e.session.identity ? e.session.identity->name : "";
  r.lib_name = e.session.lib_name;
  r.lib_ver = e.session.lib_ver;
  r.resp = e.session.protocol == Protocol::kResp3 ? 3 : 2;
  r.command = "client|info";
  r.sub = e.session.channels;
  r.psub = e.session.patterns;
  return r;
}

bool is_admin(const Exec& e) {
  return !e.session.identity || e.session.identity->allows(auth::Action::kAdmin);
}

void client_list(Exec& e) {
  std::set<uint64_t> ids;
  for (size_t i = 2; i < e.args.size(); ++i) {
    std::string opt = upper(e.args[i]);
    if (opt == "TYPE" && i + 1 < e.args.size()) {
      std::string type = lower(e.args[++i]);
      if (type == "normal") continue;
      if (type == "master" || type == "replica" || type == "slave" || type == "pubsub")
        return e.bulk("");  // none of those here
      return e.error("ERR Unknown client type '" + e.args[i].substr(0, 64) + "'");
    }
    if (opt == "ID" && i + 1 < e.args.size()) {
      while (i + 1 < e.args.size()) {
        auto id = parse_int(e.args[++i]);
        if (!id || *id <= 0) return e.error("ERR Invalid client ID");
        ids.insert(static_cast<uint64_t>(*id));
      }
      continue;
    }
    return e.syntax_error();
  }
  std::vector<ClientRecord> all =
      e.ctx.clients ? e.ctx.clients->list() : std::vector<ClientRecord>{own_record(e)};
  std::string out;
  for (const auto& c : all)
    if (ids.empty() || ids.count(c.id) != 0) out += client_line(c);
  if (!e.reserve(Exec::bulk_bytes(out.size()))) return;
  e.bulk(out);
}

// CLIENT KILL addr:port (the old form: OK, or an error if no such client),
// or filters ID, ADDR, LADDR, USER, SKIPME (a count).
void client_kill(Exec& e) {
  if (e.args.size() < 3) return e.error("ERR wrong number of arguments for 'client|kill' command");
  if (e.ctx.clients == nullptr) return e.error("ERR No such client");
  if (e.args.size() == 3) {
    const std::string addr = e.args[2];
    size_t n = e.ctx.clients->kill([&](const ClientRecord& c) { return c.addr == addr; });
    return n > 0 ? e.ok() : e.error("ERR No such client");
  }
  if (e.args.size() % 2 != 0) return e.syntax_error();
  std::optional<uint64_t> id;
  std::optional<std::string> addr, laddr, user;
  bool skipme = true;
  for (size_t i = 2; i + 1 < e.args.size(); i += 2) {
    std::string opt = upper(e.args[i]);
    const std::string& v = e.args[i + 1];
    if (opt == "ID") {
      auto n = parse_int(v);
      if (!n || *n <= 0) return e.error("ERR client-id should be greater than 0");
      id = static_cast<uint64_t>(*n);
    } else if (opt == "ADDR") {
      addr = v;
    } else if (opt == "LADDR") {
      laddr = v;
    } else if (opt == "USER") {
      user = v;
    } else if (opt == "SKIPME") {
      std::string yn = lower(v);
      if (yn != "yes" && yn != "no") return e.syntax_error();
      skipme = yn == "yes";
    } else if (opt == "TYPE") {
      if (lower(v) != "normal") return e.integer(0);
    } else {
      return e.syntax_error();
    }
  }
  const uint64_t me = e.session.id;
  size_t n = e.ctx.clients->kill([&](const ClientRecord& c) {
    return (!id || c.id == *id) && (!addr || c.addr == *addr) && (!laddr || c.laddr == *laddr) &&
           (!user || c.user == *user) && !(skipme && c.id == me);
  });
  e.integer(static_cast<int64_t>(n));
}

void cmd_client(Exec& e) {
  std::string sub = upper(e.args[1]);
  if (sub == "ID") return e.integer(static_cast<int64_t>(e.session.id));
  if (sub == "GETNAME") {
    if (e.session.name.empty()) return e.null();
    return e.bulk(e.session.name);
  }
  if (sub == "SETNAME") {
    if (e.args.size() != 3)
      return e.error("ERR wrong number of arguments for 'client|setname' command");
    for (char c : e.args[2])
      if (c <= ' ' || c > '~')
        return e.error("ERR Client names cannot contain spaces, newlines or special characters.");
    e.session.name = e.args[2];
    return e.ok();
  }
  if (sub == "SETINFO") {
    if (e.args.size() != 4)
      return e.error("ERR wrong number of arguments for 'client|setinfo' command");
    std::string attr = upper(e.args[2]);
    const std::string& v = e.args[3];
    for (char c : v)
      if (c < ' ' || c > '~' || c == ' ')
        return e.error("ERR " + attr + " cannot contain spaces, newlines or special characters.");
    if (attr == "LIB-NAME")
      e.session.lib_name = v;
    else if (attr == "LIB-VER")
      e.session.lib_ver = v;
    else
      return e.error("ERR Unrecognized option '" + e.args[2].substr(0, 64) + "'");
    return e.ok();
  }
  if (sub == "INFO") {
    ClientRecord me = own_record(e);
    if (e.ctx.clients)
      for (const auto& c : e.ctx.clients->list())
        if (c.id == e.session.id) me = c;
    me.command = "client|info";
    me.multi = e.session.tx ? static_cast<int>(e.session.tx->commands.size()) : -1;
    return e.bulk(client_line(me));
  }
  if (sub == "LIST" || sub == "KILL") {
    if (!is_admin(e))
      return e.error("NOPERM User " + e.session.identity->name +
                     " has no permissions to run the 'client|" + lower(sub) + "' command");
    return sub == "LIST" ? client_list(e) : client_kill(e);
  }
  if (sub == "REPLY") {
    if (e.args.size() != 3) return e.syntax_error();
    std::string mode = upper(e.args[2]);
    if (mode == "ON") {
      e.session.reply_off = false;
      return e.ok();
    }
    if (mode == "OFF") {
      e.session.reply_off = true;
      return;
    }
    if (mode == "SKIP") {
      e.session.skip_next_reply = true;
      e.out.silent = true;
      return;
    }
    return e.syntax_error();
  }
  e.error("ERR unknown subcommand '" + e.args[1].substr(0, 64) +
          "'. WaveKV supports CLIENT ID, GETNAME, SETNAME, SETINFO, INFO, LIST, KILL, REPLY.");
}

void hello_reply(Exec& e) {
  write_map(e.out.reply, 7, e.proto());
  e.bulk("server");
  e.bulk("redis");  // clients that check expect this name; INFO says wavekv_version
  e.bulk("version");
  e.bulk(kRedisVersion);
  e.bulk("proto");
  e.integer(static_cast<int64_t>(e.proto()));
  e.bulk("id");
  e.integer(static_cast<int64_t>(e.session.id));
  e.bulk("mode");
  e.bulk("standalone");
  e.bulk("role");
  e.bulk("master");
  e.bulk("modules");
  write_array(e.out.reply, 0);
}

struct HelloArgs {
  std::optional<Protocol> protocol;
  std::optional<Credentials> credentials;
  std::optional<std::string> name;
};

// HELLO [protover [AUTH username password] [SETNAME clientname]]; an error
// reply's text on a bad one.
std::variant<HelloArgs, std::string> parse_hello(const std::vector<std::string>& args) {
  HelloArgs h;
  size_t i = 1;
  if (args.size() > 1) {
    auto v = to_int(args[1]);
    if (!v) return std::string("ERR Protocol version is not an integer or out of range");
    if (*v != 2 && *v != 3) return std::string("NOPROTO unsupported protocol version");
    h.protocol = *v == 3 ? Protocol::kResp3 : Protocol::kResp2;
    i = 2;
  }
  for (; i < args.size(); ++i) {
    std::string opt = upper(args[i]);
    if (opt == "AUTH" && i + 2 < args.size()) {
      h.credentials = Credentials{args[i + 1], args[i + 2]};
      i += 2;
    } else if (opt == "SETNAME" && i + 1 < args.size()) {
      h.name = args[++i];
    } else {
      return "ERR Syntax error in HELLO option '" + args[i].substr(0, 64) + "'";
    }
  }
  return h;
}

void cmd_hello(Exec& e) {
  auto parsed = parse_hello(e.args);
  if (auto* err = std::get_if<std::string>(&parsed)) return e.error(*err);
  const HelloArgs& h = std::get<HelloArgs>(parsed);
  if (h.credentials) {
    if (e.ctx.auth_enabled) {
      if (!e.session.credentials_verified)
        return e.error("ERR HELLO AUTH was not verified by the server");
    } else if (h.credentials->user != auth::kDefaultUser) {
      // No users file: only the default user exists (and needs no password).
      return e.error(auth::kWrongPassMessage);
    }
  }
  if (h.protocol) e.session.protocol = *h.protocol;
  if (h.name) e.session.name = *h.name;
  hello_reply(e);
}

// ---- strings and keyspace (docs/RESP.md, "Across nodes": each is
// node-local atomic, a read of what this node holds and then one write).
// Those that change a value in place (INCR, APPEND, SETRANGE, ...) keep its
// expiry, as in Redis; RENAME moves it and COPY copies it. ----

// The value of `key` here, nullopt if absent; false (with an error reply set)
// if the store failed.
bool read_value(Exec& e, const std::string& key, std::optional<std::string>& out) {
  auto v = e.ctx.store.get(key);
  if (v) {
    out = std::move(*v);
    return true;
  }
  if (v.status().code() == Code::kNotFound) {
    out.reset();
    return true;
  }
  e.error(store_error(v.status()));
  return false;
}

// Redis's integer syntax: optional '-', digits, no leading zeros, no spaces.
std::optional<int64_t> parse_int(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  std::string_view digits = s[0] == '-' ? s.substr(1) : s;
  if (digits.empty() || (digits[0] == '0' && (digits.size() > 1 || s[0] == '-')))
    return std::nullopt;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

void incr_by(Exec& e, int64_t by) {
  const std::string& key = e.args[1];
  std::optional<Held> old = held_of(e, key);
  int64_t v = 0;
  if (old) {
    auto parsed = parse_int(old->value);
    if (!parsed) return e.error(kNotInteger);
    v = *parsed;
  }
  int64_t result = 0;
  if (__builtin_add_overflow(v, by, &result))
    return e.error("ERR increment or decrement would overflow");
  e.integer(result);
  WriteBatch b;
  b.put(key, std::to_string(result), old ? old->expires_ms : 0);
  e.out.write = std::move(b);
}

void cmd_incr(Exec& e) { incr_by(e, 1); }
void cmd_decr(Exec& e) { incr_by(e, -1); }
void cmd_incrby(Exec& e) {
  auto by = parse_int(e.args[2]);
  if (!by) return e.error(kNotInteger);
  incr_by(e, *by);
}
void cmd_decrby(Exec& e) {
  auto by = parse_int(e.args[2]);
  if (!by || *by == INT64_MIN) return e.error(kNotInteger);
  incr_by(e, -*by);
}

// A float as Redis reads one: the whole string, no spaces, finite.
std::optional<long double> parse_float(const std::string& s) {
  if (s.empty() || s.size() > 5000 || std::isspace(static_cast<unsigned char>(s[0])))
    return std::nullopt;
  char* end = nullptr;
  errno = 0;
  long double v = std::strtold(s.c_str(), &end);
  if (end != s.c_str() + s.size() || errno == ERANGE || std::isnan(v) || std::isinf(v))
    return std::nullopt;
  return v;
}

// As Redis prints INCRBYFLOAT's result: 17 decimals, trailing zeros cut.
std::string format_float(long double v) {
  char buf[5000];
  int n = std::snprintf(buf, sizeof buf, "%.17Lf", v);
  std::string s(buf, static_cast<size_t>(std::max(n, 0)));
  if (s.find('.') != std::string::npos) {
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return s;
}

void cmd_incrbyfloat(Exec& e) {
  const std::string& key = e.args[1];
  auto by = parse_float(e.args[2]);
  if (!by) return e.error("ERR value is not a valid float");
  std::optional<Held> old = held_of(e, key);
  long double v = 0;
  if (old) {
    auto parsed = parse_float(old->value);
    if (!parsed) return e.error("ERR value is not a valid float");
    v = *parsed;
  }
  long double result = v + *by;
  if (std::isnan(result) || std::isinf(result))
    return e.error("ERR increment would produce NaN or Infinity");
  std::string text = format_float(result);
  e.bulk(text);
  WriteBatch b;
  b.put(key, text, old ? old->expires_ms : 0);
  e.out.write = std::move(b);
}

// The largest string a command may build (APPEND, SETRANGE): what a client
// could send as one bulk string.
bool fits(Exec& e, uint64_t bytes) {
  if (bytes <= e.ctx.config.limits.max_bulk_bytes) return true;
  e.error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
  return false;
}

void cmd_append(Exec& e) {
  const std::string& key = e.args[1];
  std::optional<Held> old = held_of(e, key);
  std::string value = old ? std::move(old->value) : std::string();
  if (!fits(e, value.size() + e.args[2].size())) return;
  value += e.args[2];
  e.integer(static_cast<int64_t>(value.size()));
  WriteBatch b;
  b.put(key, value, old ? old->expires_ms : 0);
  e.out.write = std::move(b);
}

void cmd_strlen(Exec& e) {
  size_t n = 0;
  Status st = e.ctx.store.view(e.args[1], [&](std::string_view v) { n = v.size(); });
  if (!st.is_ok() && st.code() != Code::kNotFound) return e.error(store_error(st));
  e.integer(static_cast<int64_t>(n));
}

void cmd_getrange(Exec& e) {
  auto start = parse_int(e.args[2]), end = parse_int(e.args[3]);
  if (!start || !end) return e.error(kNotInteger);
  bool granted = true;
  Status st = e.ctx.store.view(e.args[1], [&](std::string_view v) {
    const auto len = static_cast<int64_t>(v.size());
    int64_t s = *start, t = *end;
    if (s < 0 && t < 0 && s > t) return e.bulk("");
    if (s < 0) s = std::max<int64_t>(len + s, 0);
    if (t < 0) t = std::max<int64_t>(len + t, 0);
    if (t >= len) t = len - 1;
    if (len == 0 || s > t) return e.bulk("");
    std::string_view part = v.substr(static_cast<size_t>(s), static_cast<size_t>(t - s + 1));
    granted = e.reserve(Exec::bulk_bytes(part.size()));
    if (granted) e.bulk(part);
  });
  if (!granted) return;
  if (st.code() == Code::kNotFound) return e.bulk("");
  if (!st.is_ok()) return e.error(store_error(st));
}

void cmd_setrange(Exec& e) {
  const std::string& key = e.args[1];
  auto offset = parse_int(e.args[2]);
  if (!offset) return e.error(kNotInteger);
  if (*offset < 0) return e.error("ERR offset is out of range");
  const std::string& part = e.args[3];
  std::optional<Held> old = held_of(e, key);
  std::string value = old ? std::move(old->value) : std::string();
  if (part.empty()) return e.integer(static_cast<int64_t>(value.size()));  // writes nothing
  const auto off = static_cast<uint64_t>(*offset);
  if (!fits(e, off + part.size())) return;
  if (value.size() < off + part.size()) value.resize(off + part.size(), '\0');
  value.replace(off, part.size(), part);
  e.integer(static_cast<int64_t>(value.size()));
  WriteBatch b;
  b.put(key, value, old ? old->expires_ms : 0);
  e.out.write = std::move(b);
}

// A bit offset of SETBIT and GETBIT: Redis's bound, 2^32 bits (512 MB).
std::optional<uint64_t> bit_offset(Exec& e, const std::string& arg) {
  auto v = parse_int(arg);
  if (!v || *v < 0 || *v >= (int64_t{1} << 32)) {
    e.error("ERR bit offset is not an integer or out of range");
    return std::nullopt;
  }
  return static_cast<uint64_t>(*v);
}

// Bit 0 is the most significant bit of the first byte, as in Redis.
int bit_at(std::string_view v, uint64_t offset) {
  const uint64_t byte = offset >> 3;
  if (byte >= v.size()) return 0;
  return (static_cast<unsigned char>(v[byte]) >> (7 - (offset & 7))) & 1;
}

void cmd_setbit(Exec& e) {
  const std::string& key = e.args[1];
  auto offset = bit_offset(e, e.args[2]);
  if (!offset) return;
  if (e.args[3] != "0" && e.args[3] != "1")
    return e.error("ERR bit is not an integer or out of range");
  const bool on = e.args[3] == "1";
  std::optional<Held> old = held_of(e, key);
  std::string value = old ? std::move(old->value) : std::string();
  const uint64_t byte = *offset >> 3;
  if (!fits(e, byte + 1)) return;
  if (value.size() <= byte) value.resize(byte + 1, '\0');
  e.integer(bit_at(value, *offset));
  const auto mask = static_cast<unsigned char>(1u << (7 - (*offset & 7)));
  auto& c = reinterpret_cast<unsigned char&>(value[byte]);
  c = on ? (c | mask) : (c & ~mask);
  WriteBatch b;
  b.put(key, value, old ? old->expires_ms : 0);
  e.out.write = std::move(b);
}

void cmd_getbit(Exec& e) {
  auto offset = bit_offset(e, e.args[2]);
  if (!offset) return;
  int bit = 0;
  Status st = e.ctx.store.view(e.args[1], [&](std::string_view v) { bit = bit_at(v, *offset); });
  if (!st.is_ok() && st.code() != Code::kNotFound) return e.error(store_error(st));
  e.integer(bit);
}

// BITCOUNT key [start end [BYTE|BIT]]: Redis's index rules (negative from
// the end, clamped), in bytes or in bits.
void cmd_bitcount(Exec& e) {
  if (e.args.size() == 3 || e.args.size() > 5) return e.syntax_error();
  std::optional<int64_t> start, end;
  bool bits = false;
  if (e.args.size() >= 4) {
    start = parse_int(e.args[2]), end = parse_int(e.args[3]);
    if (!start || !end) return e.error(kNotInteger);
    if (e.args.size() == 5) {
      std::string unit = upper(e.args[4]);
      if (unit == "BIT")
        bits = true;
      else if (unit != "BYTE")
        return e.syntax_error();
    }
  }
  int64_t count = 0;
  Status st = e.ctx.store.view(e.args[1], [&](std::string_view v) {
    const int64_t len = static_cast<int64_t>(v.size()) * (bits ? 8 : 1);
    int64_t s = start.value_or(0), t = end.value_or(len - 1);
    if (s < 0) s = std::max<int64_t>(len + s, 0);
    if (t < 0) t = std::max<int64_t>(len + t, 0);
    t = std::min(t, len - 1);
    for (int64_t i = s; i <= t; ++i) {
      if (bits) {
        count += bit_at(v, static_cast<uint64_t>(i));
      } else {
        count += std::popcount(static_cast<unsigned char>(v[static_cast<size_t>(i)]));
      }
    }
  });
  if (!st.is_ok() && st.code() != Code::kNotFound) return e.error(store_error(st));
  e.integer(count);
}

// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]: the longest
// common subsequence of two values (an absent key is the empty string), by
// Redis's table and walk, so ties resolve as Redis resolves them.
void cmd_lcs(Exec& e) {
  bool want_len = false, want_idx = false, with_match_len = false;
  int64_t min_match = 0;
  for (size_t i = 3; i < e.args.size(); ++i) {
    std::string opt = upper(e.args[i]);
    if (opt == "LEN") {
      want_len = true;
    } else if (opt == "IDX") {
      want_idx = true;
    } else if (opt == "WITHMATCHLEN") {
      with_match_len = true;
    } else if (opt == "MINMATCHLEN" && i + 1 < e.args.size()) {
      auto n = parse_int(e.args[++i]);
      if (!n) return e.error(kNotInteger);
      min_match = std::max<int64_t>(*n, 0);
    } else {
      return e.syntax_error();
    }
  }
  if (want_len && want_idx)
    return e.error("ERR If you want both the length and indexes, please just use IDX.");
  std::optional<std::string> a, b;
  if (!read_value(e, e.args[1], a) || !read_value(e, e.args[2], b)) return;
  const std::string x = a.value_or(""), y = b.value_or("");
  const uint64_t cols = y.size() + 1;
  const uint64_t cells = (x.size() + 1) * cols;
  if (cells / cols != x.size() + 1 || cells > e.ctx.config.limits.max_bulk_bytes / 4)
    return e.error("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
  // len[i * cols + j]: the LCS length of x's first i bytes and y's first j.
  std::vector<uint32_t> len(cells, 0);
  for (size_t i = 1; i <= x.size(); ++i)
    for (size_t j = 1; j <= y.size(); ++j)
      len[i * cols + j] = x[i - 1] == y[j - 1]
                              ? len[(i - 1) * cols + j - 1] + 1
                              : std::max(len[(i - 1) * cols + j], len[i * cols + j - 1]);
  const uint32_t total = len[x.size() * cols + y.size()];
  if (want_len) return e.integer(total);
  // Walk back from the end: the common string, and its runs of bytes that
  // are adjacent in both values (the matches, last first).
  struct Match {
    uint64_t a_start, a_end, b_start, b_end;
  };
  std::string common(total, '\0');
  std::vector<Match> matches;
  std::optional<Match> run;
  auto close_run = [&] {
    if (run && static_cast<int64_t>(run->a_end - run->a_start + 1) >= min_match)
      matches.push_back(*run);
    run.reset();
  };
  size_t i = x.size(), j = y.size(), k = total;
  while (i > 0 && j > 0) {
    if (x[i - 1] == y[j - 1]) {
      common[--k] = x[i - 1];
      if (run && run->a_start == i && run->b_start == j) {
        --run->a_start, --run->b_start;
      } else {
        close_run();
        run = Match{i - 1, i - 1, j - 1, j - 1};
      }
      --i, --j;
    } else if (len[(i - 1) * cols + j] > len[i * cols + j - 1]) {
      --i;
    } else {
      --j;
    }
  }
  close_run();
  if (!want_idx) {
    if (!e.reserve(Exec::bulk_bytes(common.size()))) return;
    return e.bulk(common);
  }
  if (!e.reserve(64 + matches.size() * 160)) return;
  write_map(e.out.reply, 2, e.proto());
  e.bulk("matches");
  write_array(e.out.reply, matches.size());
  for (const Match& m : matches) {
    write_array(e.out.reply, with_match_len ? 3 : 2);
    write_array(e.out.reply, 2);
    e.integer(static_cast<int64_t>(m.a_start));
    e.integer(static_cast<int64_t>(m.a_end));
    write_array(e.out.reply, 2);
    e.integer(static_cast<int64_t>(m.b_start));
    e.integer(static_cast<int64_t>(m.b_end));
    if (with_match_len) e.integer(static_cast<int64_t>(m.a_end - m.a_start + 1));
  }
  e.bulk("len");
  e.integer(total);
}

void cmd_getdel(Exec& e) {
  const std::string& key = e.args[1];
  std::optional<std::string> old;
  if (!read_value(e, key, old)) return;
  // The reply is this node's value; the tombstone is written whatever this
  // node holds, as DEL does: a value written elsewhere that has not arrived
  // yet is older than this delete and must lose to it on every node.
  if (old)
    e.bulk(*old);
  else
    e.null();
  WriteBatch b;
  b.del(key);
  e.out.write = std::move(b);
}

void cmd_getset(Exec& e) {
  std::optional<std::string> old;
  if (!read_value(e, e.args[1], old)) return;
  if (old)
    e.bulk(*old);
  else
    e.null();
  WriteBatch b;
  b.put(e.args[1], e.args[2]);
  e.out.write = std::move(b);
}

void cmd_setnx(Exec& e) {
  std::optional<std::string> old;
  if (!read_value(e, e.args[1], old)) return;
  if (old) return e.integer(0);
  e.integer(1);
  WriteBatch b;
  b.put(e.args[1], e.args[2]);
  e.out.write = std::move(b);
}

void cmd_msetnx(Exec& e) {
  if (e.args.size() % 2 != 1) return e.error("ERR wrong number of arguments for 'msetnx' command");
  for (size_t i = 1; i < e.args.size(); i += 2) {
    Status st = e.ctx.store.view(e.args[i], [](std::string_view) {});
    if (st.is_ok()) return e.integer(0);
    if (st.code() != Code::kNotFound) return e.error(store_error(st));
  }
  WriteBatch b;
  for (size_t i = 1; i + 1 < e.args.size(); i += 2) b.put(e.args[i], e.args[i + 1]);
  e.integer(1);
  e.out.write = std::move(b);
}

void cmd_type(Exec& e) {
  Status st = e.ctx.store.view(e.args[1], [](std::string_view) {});
  if (!st.is_ok() && st.code() != Code::kNotFound) return e.error(store_error(st));
  write_simple(e.out.reply, st.is_ok() ? "string" : "none");
}

// RENAME and RENAMENX: the value moves in one batch (a put of the new key
// and a tombstone for the old).
void rename(Exec& e, bool nx) {
  const std::string &from = e.args[1], &to = e.args[2];
  std::optional<Held> value = held_of(e, from);
  if (!value) return e.error("ERR no such key");
  if (from == to) return nx ? e.integer(0) : e.ok();
  if (nx) {
    Status st = e.ctx.store.view(to, [](std::string_view) {});
    if (st.is_ok()) return e.integer(0);
    if (st.code() != Code::kNotFound) return e.error(store_error(st));
    e.integer(1);
  } else {
    e.ok();
  }
  WriteBatch b;
  b.put(to, value->value, value->expires_ms);
  b.del(from);
  e.out.write = std::move(b);
}
void cmd_rename(Exec& e) { rename(e, false); }
void cmd_renamenx(Exec& e) { rename(e, true); }

void cmd_copy(Exec& e) {
  bool replace = false;
  for (size_t i = 3; i < e.args.size(); ++i) {
    std::string opt = upper(e.args[i]);
    if (opt == "REPLACE") {
      replace = true;
    } else if (opt == "DB" && i + 1 < e.args.size()) {
      auto db = parse_int(e.args[++i]);
      if (!db) return e.error(kNotInteger);
      if (*db != 0) return e.error("ERR DB index is out of range");
    } else {
      return e.syntax_error();
    }
  }
  const std::string &from = e.args[1], &to = e.args[2];
  std::optional<Held> value = held_of(e, from);
  if (!value) return e.integer(0);
  if (!replace) {
    Status st = e.ctx.store.view(to, [](std::string_view) {});
    if (st.is_ok()) return e.integer(0);
    if (st.code() != Code::kNotFound) return e.error(store_error(st));
  }
  e.integer(1);
  if (from == to) return;  // Redis: copying a key onto itself changes nothing
  WriteBatch b;
  b.put(to, value->value, value->expires_ms);
  e.out.write = std::move(b);
}

void cmd_time(Exec& e) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  write_array(e.out.reply, 2);
  e.bulk(std::to_string(us / 1000000));
  e.bulk(std::to_string(us % 1000000));
}

// When the newest checkpoint was written (or the store opened), in Unix seconds.
void cmd_lastsave(Exec& e) {
  e.integer(static_cast<int64_t>(e.ctx.store.status().last_checkpoint_ms / 1000));
}

// A key after a random point of the key space (wrapping around), so not
// uniform over keys, but any key may come up; null if there is none.
void cmd_randomkey(Exec& e) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t r = rng();
  std::string from(8, '\0');
  for (int i = 0; i < 8; ++i) from[static_cast<size_t>(i)] = static_cast<char>(r >> (56 - 8 * i));
  auto page = e.ctx.store.scan_range(from, "", 1);
  if (page.empty()) page = e.ctx.store.scan_range("", "", 1);
  if (page.empty()) return e.null();
  if (!e.reserve(Exec::bulk_bytes(page[0].key.size()))) return;
  e.bulk(page[0].key);
}

// OBJECT ENCODING: the encoding Redis would use for this string.
void cmd_object(Exec& e) {
  std::string sub = upper(e.args[1]);
  if (sub == "HELP")
    return e.bulk("OBJECT ENCODING <key> | FREQ <key> | IDLETIME <key> | REFCOUNT <key>");
  if (e.args.size() != 3)
    return e.error("ERR wrong number of arguments for 'object|" + lower(sub) + "' command");
  std::optional<std::string> encoding;
  Status st = e.ctx.store.view(e.args[2], [&](std::string_view v) {
    if (v.size() <= 20 && parse_int(v))
      encoding = "int";
    else
      encoding = v.size() <= 44 ? "embstr" : "raw";
  });
  if (!st.is_ok() && st.code() != Code::kNotFound) return e.error(store_error(st));
  if (!encoding) return e.null();
  if (sub == "ENCODING") return e.bulk(*encoding);
  if (sub == "REFCOUNT") return e.integer(1);
  if (sub == "IDLETIME" || sub == "FREQ") return e.integer(0);  // not tracked
  e.error("ERR unknown subcommand '" + e.args[1].substr(0, 64) + "'. Try OBJECT HELP.");
}

// MEMORY USAGE: key and value bytes plus a fixed per-key overhead (an
// estimate, as in Redis).
void cmd_memory(Exec& e) {
  std::string sub = upper(e.args[1]);
  if (sub != "USAGE" || e.args.size() < 3)
    return e.error("ERR unknown subcommand or wrong number of arguments for 'memory' command");
  size_t n = 0;
  bool found = false;
  Status st = e.ctx.store.view(e.args[2], [&](std::string_view v) {
    n = v.size();
    found = true;
  });
  if (!st.is_ok() && st.code() != Code::kNotFound) return e.error(store_error(st));
  if (!found) return e.null();
  e.integer(static_cast<int64_t>(e.args[2].size() + n + 64));
}

void cmd_multi(Exec& e);
void cmd_exec(Exec& e);

// ---- pub/sub (docs/RESP.md, "Pub/sub") ----

// What one subscription holds of the session's memory (its name in the
// registry's maps, twice, with their nodes).
uint64_t subscription_bytes(std::string_view name) { return 160 + 2 * name.size(); }

// Who the subscriber is, for the keyspace notifications it may see; null:
// every key (no users file).
std::shared_ptr<const auth::Identity> subscriber_identity(const Exec& e) {
  if (!e.ctx.auth_enabled || !e.session.identity) return nullptr;
  return std::make_shared<const auth::Identity>(*e.session.identity);
}

// One confirmation: [kind, name (null: none), subscriptions left].
void subscription_reply(Exec& e, std::string_view kind, const std::string* name) {
  write_push(e.out.reply, 3, e.proto());
  e.bulk(kind);
  if (name != nullptr)
    e.bulk(*name);
  else
    e.null();
  e.integer(static_cast<int64_t>(e.session.channels + e.session.patterns));
}

// Confirmations' reply bytes: each name and a little.
bool reserve_confirmations(Exec& e, const std::vector<std::string>& names) {
  uint64_t bytes = 0;
  for (const auto& n : names) bytes += 64 + Exec::bulk_bytes(n.size());
  return e.reserve(bytes);
}

void subscribe(Exec& e, PubSub::Kind kind) {
  if (e.ctx.pubsub == nullptr || !e.ctx.subscriber)
    return e.error("ERR pub/sub is not available here");
  std::vector<std::string> names(e.args.begin() + 1, e.args.end());
  uint64_t most = e.session.subscribed_bytes;
  for (const auto& n : names) most += subscription_bytes(n);
  if (most > e.ctx.config.limits.max_request_bytes)
    return e.error("ERR too many subscriptions (their names take more than max_request_bytes)");
  if (!reserve_confirmations(e, names)) return;
  auto identity = subscriber_identity(e);
  for (const auto& n : names) {
    auto counts = e.ctx.pubsub->subscribe(e.session.id, kind, n, e.ctx.subscriber, identity);
    if (counts.total() > e.session.channels + e.session.patterns)
      e.session.subscribed_bytes += subscription_bytes(n);
    e.session.channels = counts.channels;
    e.session.patterns = counts.patterns;
    subscription_reply(e, kind == PubSub::Kind::kChannel ? "subscribe" : "psubscribe", &n);
  }
}

void unsubscribe(Exec& e, PubSub::Kind kind) {
  const std::string_view what = kind == PubSub::Kind::kChannel ? "unsubscribe" : "punsubscribe";
  if (e.ctx.pubsub == nullptr) return e.error("ERR pub/sub is not available here");
  std::vector<std::string> names(e.args.begin() + 1, e.args.end());
  if (names.empty()) names = e.ctx.pubsub->subscriptions_of(e.session.id, kind);
  if (!reserve_confirmations(e, names)) return;
  if (names.empty()) return subscription_reply(e, what, nullptr);
  for (const auto& n : names) {
    auto counts = e.ctx.pubsub->unsubscribe(e.session.id, kind, n);
    if (counts.total() < e.session.channels + e.session.patterns)
      e.session.subscribed_bytes -= subscription_bytes(n);
    e.session.channels = counts.channels;
    e.session.patterns = counts.patterns;
    subscription_reply(e, what, &n);
  }
}

void cmd_subscribe(Exec& e) { subscribe(e, PubSub::Kind::kChannel); }
void cmd_psubscribe(Exec& e) { subscribe(e, PubSub::Kind::kPattern); }
void cmd_unsubscribe(Exec& e) { unsubscribe(e, PubSub::Kind::kChannel); }
void cmd_punsubscribe(Exec& e) { unsubscribe(e, PubSub::Kind::kPattern); }

void cmd_publish(Exec& e) {
  if (e.ctx.pubsub == nullptr) return e.error("ERR pub/sub is not available here");
  // Only the server speaks on its notification channels: a client's
  // message there would pass for a change of a key.
  if (is_server_channel(e.args[1]))
    return e.error(
        "ERR channels starting with __keyspace@ or __keyevent@ carry the server's keyspace "
        "notifications; PUBLISH may not use them");
  e.integer(static_cast<int64_t>(e.ctx.pubsub->publish(e.args[1], e.args[2])));
}

void cmd_pubsub(Exec& e) {
  if (e.ctx.pubsub == nullptr) return e.error("ERR pub/sub is not available here");
  const std::string sub = upper(e.args[1]);
  const auto n = e.args.size();
  auto arity_error = [&] {
    e.error("ERR wrong number of arguments for 'pubsub|" + lower(sub) + "' command");
  };
  if (sub == "CHANNELS" || sub == "SHARDCHANNELS") {
    if (n > 3) return arity_error();
    std::vector<std::string> names;
    if (sub == "CHANNELS")
      names = e.ctx.pubsub->channels(n == 3 ? std::optional<std::string_view>(e.args[2])
                                            : std::nullopt);
    uint64_t bytes = 0;
    for (const auto& c : names) bytes += Exec::bulk_bytes(c.size());
    if (!e.reserve(bytes)) return;
    write_array(e.out.reply, names.size());
    for (const auto& c : names) e.bulk(c);
    return;
  }
  if (sub == "NUMSUB" || sub == "SHARDNUMSUB") {
    std::vector<std::string> names(e.args.begin() + 2, e.args.end());
    if (!reserve_confirmations(e, names)) return;
    write_array(e.out.reply, 2 * names.size());
    for (const auto& c : names) {
      e.bulk(c);
      e.integer(sub == "NUMSUB" ? static_cast<int64_t>(e.ctx.pubsub->numsub(c)) : 0);
    }
    return;
  }
  if (sub == "NUMPAT") {
    if (n != 2) return arity_error();
    return e.integer(static_cast<int64_t>(e.ctx.pubsub->numpat()));
  }
  e.error("ERR unknown subcommand '" + e.args[1].substr(0, 64) +
          "'. WaveKV supports PUBSUB CHANNELS, NUMSUB, NUMPAT.");
}
void cmd_discard(Exec& e);
void cmd_watch(Exec& e);
void cmd_unwatch(Exec& e);

// ---- COMMAND ----

void cmd_command(Exec& e);

const std::vector<CommandSpec>& commands() {
  static const std::vector<CommandSpec> kCommands = {
      {"PING", -1, "fast", 0, 0, 0, "connection", "Returns PONG, or the argument", cmd_ping,
       Need::kNothing},
      {"ECHO", 2, "fast", 0, 0, 0, "connection", "Returns the argument", cmd_echo, Need::kNothing},
      {"QUIT", -1, "fast", 0, 0, 0, "connection", "Closes the connection", cmd_quit,
       Need::kNothing},
      {"HELLO", -1, "fast", 0, 0, 0, "connection", "Handshake: protocol 2 or 3", cmd_hello,
       Need::kNothing},
      {"AUTH", -2, "fast", 0, 0, 0, "connection", "Logs in as a user of the users file", cmd_auth,
       Need::kNothing},
      {"SELECT", 2, "fast", 0, 0, 0, "connection", "Selects database 0 (the only one)", cmd_select,
       Need::kNothing},
      {"CLIENT", -2, "", 0, 0, 0, "connection", "CLIENT ID, GETNAME, SETNAME, SETINFO", cmd_client,
       Need::kNothing},
      {"GET", 2, "readonly fast", 1, 1, 1, "string", "Gets the value of a key", cmd_get,
       Need::kRead},
      {"SET", -3, "write", 1, 1, 1, "string",
       "Sets a key (NX, XX, GET, EX, PX, EXAT, PXAT, KEEPTTL)", cmd_set, Need::kWrite},
      {"SETEX", 4, "write", 1, 1, 1, "string", "Sets a key that expires in seconds", cmd_setex,
       Need::kWrite},
      {"PSETEX", 4, "write", 1, 1, 1, "string", "Sets a key that expires in milliseconds",
       cmd_psetex, Need::kWrite},
      {"GETEX", -2, "write fast", 1, 1, 1, "string", "Gets a value and sets or clears its expiry",
       cmd_getex, Need::kWrite},
      {"EXPIRE", -3, "write fast", 1, 1, 1, "keyspace", "Sets a key's time to live in seconds",
       cmd_expire, Need::kWrite},
      {"PEXPIRE", -3, "write fast", 1, 1, 1, "keyspace",
       "Sets a key's time to live in milliseconds", cmd_pexpire, Need::kWrite},
      {"EXPIREAT", -3, "write fast", 1, 1, 1, "keyspace",
       "Sets a key's expiry as a Unix time in seconds", cmd_expireat, Need::kWrite},
      {"PEXPIREAT", -3, "write fast", 1, 1, 1, "keyspace",
       "Sets a key's expiry as a Unix time in milliseconds", cmd_pexpireat, Need::kWrite},
      {"TTL", 2, "readonly fast", 1, 1, 1, "keyspace", "A key's time to live in seconds", cmd_ttl,
       Need::kRead},
      {"PTTL", 2, "readonly fast", 1, 1, 1, "keyspace", "A key's time to live in milliseconds",
       cmd_pttl, Need::kRead},
      {"EXPIRETIME", 2, "readonly fast", 1, 1, 1, "keyspace",
       "A key's expiry as a Unix time in seconds", cmd_expiretime, Need::kRead},
      {"PEXPIRETIME", 2, "readonly fast", 1, 1, 1, "keyspace",
       "A key's expiry as a Unix time in milliseconds", cmd_pexpiretime, Need::kRead},
      {"PERSIST", 2, "write fast", 1, 1, 1, "keyspace", "Removes a key's expiry", cmd_persist,
       Need::kWrite},
      {"MGET", -2, "readonly fast", 1, -1, 1, "string", "Gets the values of keys", cmd_mget,
       Need::kRead},
      {"MSET", -3, "write", 1, -1, 2, "string", "Sets keys atomically on this node", cmd_mset,
       Need::kWrite},
      {"DEL", -2, "write", 1, -1, 1, "generic", "Deletes keys (a tombstone for each, held or not)",
       cmd_del, Need::kWrite},
      {"FLUSHDB", -1, "write", 0, 0, 0, "server",
       "Deletes every key this node holds (a tombstone for each)", cmd_flushdb, Need::kWriteAll},
      {"FLUSHALL", -1, "write", 0, 0, 0, "server", "Deletes every key, as FLUSHDB (one database)",
       cmd_flushdb, Need::kWriteAll},
      {"UNLINK", -2, "write fast", 1, -1, 1, "generic", "Deletes keys, as DEL", cmd_del,
       Need::kWrite},
      {"INCR", 2, "write fast", 1, 1, 1, "string", "Adds 1 to an integer value", cmd_incr,
       Need::kWrite},
      {"DECR", 2, "write fast", 1, 1, 1, "string", "Subtracts 1 from an integer value", cmd_decr,
       Need::kWrite},
      {"INCRBY", 3, "write fast", 1, 1, 1, "string", "Adds to an integer value", cmd_incrby,
       Need::kWrite},
      {"DECRBY", 3, "write fast", 1, 1, 1, "string", "Subtracts from an integer value", cmd_decrby,
       Need::kWrite},
      {"INCRBYFLOAT", 3, "write fast", 1, 1, 1, "string", "Adds to a float value", cmd_incrbyfloat,
       Need::kWrite},
      {"APPEND", 3, "write fast", 1, 1, 1, "string", "Appends to a value", cmd_append,
       Need::kWrite},
      {"STRLEN", 2, "readonly fast", 1, 1, 1, "string", "The length of a value", cmd_strlen,
       Need::kRead},
      {"GETRANGE", 4, "readonly", 1, 1, 1, "string", "A substring of a value", cmd_getrange,
       Need::kRead},
      {"SUBSTR", 4, "readonly", 1, 1, 1, "string", "A substring of a value, as GETRANGE",
       cmd_getrange, Need::kRead},
      {"SETRANGE", 4, "write", 1, 1, 1, "string", "Overwrites part of a value", cmd_setrange,
       Need::kWrite},
      {"SETBIT", 4, "write", 1, 1, 1, "bitmap", "Sets or clears one bit of a value", cmd_setbit,
       Need::kWrite},
      {"GETBIT", 3, "readonly fast", 1, 1, 1, "bitmap", "One bit of a value", cmd_getbit,
       Need::kRead},
      {"BITCOUNT", -2, "readonly", 1, 1, 1, "bitmap", "How many bits of a value are set",
       cmd_bitcount, Need::kRead},
      {"LCS", -3, "readonly", 1, 2, 1, "string", "The longest common subsequence of two values",
       cmd_lcs, Need::kRead},
      {"GETDEL", 2, "write fast", 1, 1, 1, "string", "Gets a value and deletes the key", cmd_getdel,
       Need::kWrite},
      {"GETSET", 3, "write fast", 1, 1, 1, "string", "Sets a key, returning the old value",
       cmd_getset, Need::kWrite},
      {"SETNX", 3, "write fast", 1, 1, 1, "string", "Sets a key this node does not hold", cmd_setnx,
       Need::kWrite},
      {"MSETNX", -3, "write", 1, -1, 2, "string", "Sets keys if this node holds none of them",
       cmd_msetnx, Need::kWrite},
      {"TYPE", 2, "readonly fast", 1, 1, 1, "generic", "string, or none", cmd_type, Need::kRead},
      {"TOUCH", -2, "readonly fast", 1, -1, 1, "generic", "Counts keys that exist", cmd_exists,
       Need::kRead},
      {"RENAME", 3, "write", 1, 2, 1, "generic", "Moves a value to another key", cmd_rename,
       Need::kWrite},
      {"RENAMENX", 3, "write fast", 1, 2, 1, "generic",
       "Moves a value to a key this node does not hold", cmd_renamenx, Need::kWrite},
      {"COPY", -3, "write", 1, 2, 1, "generic", "Copies a value to another key", cmd_copy,
       Need::kWrite},
      {"RANDOMKEY", 1, "readonly", 0, 0, 0, "generic", "Some key", cmd_randomkey, Need::kReadAll},
      {"OBJECT", -2, "readonly", 2, 2, 1, "generic", "OBJECT ENCODING of a key", cmd_object,
       Need::kRead},
      {"MEMORY", -2, "readonly", 2, 2, 1, "server", "MEMORY USAGE of a key", cmd_memory,
       Need::kRead},
      {"TIME", 1, "fast", 0, 0, 0, "server", "The server's clock", cmd_time, Need::kNothing},
      {"LASTSAVE", 1, "fast", 0, 0, 0, "server",
       "When the newest checkpoint was written (Unix seconds)", cmd_lastsave, Need::kNothing},
      {"MULTI", 1, "fast", 0, 0, 0, "transactions", "Starts a transaction", cmd_multi,
       Need::kNothing},
      {"EXEC", 1, "", 0, 0, 0, "transactions", "Runs the queued commands as one batch", cmd_exec,
       Need::kNothing},
      {"DISCARD", 1, "fast", 0, 0, 0, "transactions", "Drops the queued commands", cmd_discard,
       Need::kNothing},
      {"WATCH", -2, "fast", 1, -1, 1, "transactions",
       "EXEC aborts if these keys change on this node", cmd_watch, Need::kRead},
      {"UNWATCH", 1, "fast", 0, 0, 0, "transactions", "Forgets the watched keys", cmd_unwatch,
       Need::kNothing},
      {"EXISTS", -2, "readonly fast", 1, -1, 1, "generic", "Counts keys that exist", cmd_exists,
       Need::kRead},
      {"KEYS", 2, "readonly", 0, 0, 0, "generic", "Keys matching a glob pattern", cmd_keys,
       Need::kRead},
      {"SCAN", -2, "readonly", 0, 0, 0, "generic", "Iterates over keys in key order", cmd_scan,
       Need::kRead},
      {"DBSIZE", 1, "readonly fast", 0, 0, 0, "server", "The number of keys", cmd_dbsize,
       Need::kReadAll},
      {"INFO", -1, "", 0, 0, 0, "server", "Server, store and cluster figures", cmd_info,
       Need::kRead},
      {"SUBSCRIBE", -2, "pubsub noscript loading stale", 0, 0, 0, "pubsub",
       "Listens for messages on channels (node-local)", cmd_subscribe, Need::kRead},
      {"PSUBSCRIBE", -2, "pubsub noscript loading stale", 0, 0, 0, "pubsub",
       "Listens for messages on channels matching patterns", cmd_psubscribe, Need::kRead},
      {"UNSUBSCRIBE", -1, "pubsub noscript loading stale", 0, 0, 0, "pubsub",
       "Stops listening on channels", cmd_unsubscribe, Need::kNothing},
      {"PUNSUBSCRIBE", -1, "pubsub noscript loading stale", 0, 0, 0, "pubsub",
       "Stops listening on patterns", cmd_punsubscribe, Need::kNothing},
      {"PUBLISH", 3, "pubsub loading stale fast", 0, 0, 0, "pubsub",
       "Sends a message to the channel's subscribers on this node", cmd_publish, Need::kWrite},
      {"PUBSUB", -2, "", 0, 0, 0, "pubsub", "PUBSUB CHANNELS, NUMSUB, NUMPAT", cmd_pubsub,
       Need::kRead},
      {"CONFIG", -2, "", 0, 0, 0, "server",
       "CONFIG GET of a few parameters; CONFIG SET notify-keyspace-events", cmd_config,
       Need::kRead},
      {"ACL", -2, "", 0, 0, 0, "server", "ACL WHOAMI", cmd_acl, Need::kNothing},
      {"COMMAND", -1, "", 0, 0, 0, "server", "Describes the commands", cmd_command, Need::kNothing},
  };
  return kCommands;
}

const CommandSpec* find_command(std::string_view name) {
  std::string n = upper(name);
  for (const auto& c : commands())
    if (n == c.name) return &c;
  return nullptr;
}

void command_info(Exec& e, const CommandSpec& c) {
  // Redis 7's shape: name, arity, flags, first key, last key, step, ACL
  // categories, tips, key specs, subcommands.
  write_array(e.out.reply, 10);
  e.bulk(lower(c.name));
  e.integer(c.arity);
  std::vector<std::string> flags;
  std::string_view f = c.flags;
  while (!f.empty()) {
    size_t sp = f.find(' ');
    flags.emplace_back(f.substr(0, sp));
    f.remove_prefix(sp == std::string_view::npos ? f.size() : sp + 1);
  }
  write_array(e.out.reply, flags.size());
  for (const auto& fl : flags) write_simple(e.out.reply, fl);
  e.integer(c.first_key);
  e.integer(c.last_key);
  e.integer(c.step);
  for (int i = 0; i < 4; ++i) write_array(e.out.reply, 0);
}

void command_docs(Exec& e, const CommandSpec& c) {
  e.bulk(lower(c.name));
  write_map(e.out.reply, 3, e.proto());
  e.bulk("summary");
  e.bulk(c.summary);
  e.bulk("since");
  e.bulk("1.0.0");
  e.bulk("group");
  e.bulk(c.group);
}

void cmd_command(Exec& e) {
  const auto& all = commands();
  if (e.args.size() == 1) {
    write_array(e.out.reply, all.size());
    for (const auto& c : all) command_info(e, c);
    return;
  }
  std::string sub = upper(e.args[1]);
  if (sub == "COUNT") return e.integer(static_cast<int64_t>(all.size()));
  if (sub == "LIST") {
    write_array(e.out.reply, all.size());
    for (const auto& c : all) e.bulk(lower(c.name));
    return;
  }
  if (sub == "INFO") {
    write_array(e.out.reply, e.args.size() - 2);
    for (size_t i = 2; i < e.args.size(); ++i) {
      if (const auto* c = find_command(e.args[i]))
        command_info(e, *c);
      else if (e.proto() == Protocol::kResp3)
        e.null();
      else
        e.out.reply += "*-1\r\n";  // RESP2's null array
    }
    return;
  }
  if (sub == "DOCS") {
    std::vector<const CommandSpec*> docs;
    if (e.args.size() == 2) {
      for (const auto& c : all) docs.push_back(&c);
    } else {
      for (size_t i = 2; i < e.args.size(); ++i)
        if (const auto* c = find_command(e.args[i])) docs.push_back(c);
    }
    write_map(e.out.reply, docs.size(), e.proto());
    for (const auto* c : docs) command_docs(e, *c);
    return;
  }
  e.error("ERR unknown subcommand '" + e.args[1] +
          "'. WaveKV supports COMMAND, COMMAND COUNT, LIST, INFO, DOCS.");
}

}  // namespace

void ClientRegistry::add(const ClientRecord& record, std::function<void()> close) {
  std::lock_guard lock(mu_);
  clients_[record.id] = {record, std::move(close)};
}

void ClientRegistry::remove(uint64_t id) {
  std::lock_guard lock(mu_);
  clients_.erase(id);
}

void ClientRegistry::update(const Session& session, std::string_view command) {
  std::lock_guard lock(mu_);
  auto it = clients_.find(session.id);
  if (it == clients_.end()) return;
  ClientRecord& r = it->second.record;
  r.last_command = std::chrono::steady_clock::now();
  r.command = lower(command.substr(0, 64));
  if (r.name != session.name) r.name = session.name;
  if (session.identity && r.user != session.identity->name) r.user = session.identity->name;
  if (r.lib_name != session.lib_name) r.lib_name = session.lib_name;
  if (r.lib_ver != session.lib_ver) r.lib_ver = session.lib_ver;
  r.resp = session.protocol == Protocol::kResp3 ? 3 : 2;
  r.multi = session.tx ? static_cast<int>(session.tx->commands.size()) : -1;
  r.sub = session.channels;
  r.psub = session.patterns;
}

std::vector<ClientRecord> ClientRegistry::list() const {
  std::lock_guard lock(mu_);
  std::vector<ClientRecord> out;
  out.reserve(clients_.size());
  for (const auto& [id, c] : clients_) out.push_back(c.record);
  return out;
}

size_t ClientRegistry::kill(const std::function<bool(const ClientRecord&)>& match) {
  std::vector<std::function<void()>> closes;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, c] : clients_)
      if (match(c.record)) closes.push_back(c.close);
  }
  for (auto& close : closes) close();  // posts to the connection: not under our lock
  return closes.size();
}

uint64_t ScanCursors::open(std::string last_key) {
  std::lock_guard lock(mu_);
  uint64_t id = next_++;
  last_key_.emplace(id, std::move(last_key));
  order_.push_back(id);
  while (order_.size() > max_cursors_) {
    last_key_.erase(order_.front());
    order_.pop_front();
  }
  return id;
}

std::optional<std::string> ScanCursors::find(uint64_t cursor) const {
  std::lock_guard lock(mu_);
  auto it = last_key_.find(cursor);
  if (it == last_key_.end()) return std::nullopt;
  return it->second;
}

Ordering ordering_of(const std::vector<std::string>& args) {
  std::string name = upper(args[0]);
  if (name == "MSET" || name == "SETEX" || name == "PSETEX") return Ordering::kBlindWrite;
  // Read what this node holds, then write.
  static const std::set<std::string, std::less<>> kCheckThenWrite = {
      "INCR",   "DECR",   "INCRBY",  "DECRBY",   "INCRBYFLOAT", "APPEND",   "SETRANGE", "SETBIT",
      "GETDEL", "GETSET", "SETNX",   "MSETNX",   "RENAME",      "RENAMENX", "COPY",     "EXEC",
      "GETEX",  "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT",   "PERSIST",  "FLUSHDB",  "FLUSHALL"};
  if (kCheckThenWrite.count(name) != 0) return Ordering::kSerialized;
  if (name == "SET") {
    for (size_t i = 3; i < args.size(); ++i) {
      std::string opt = upper(args[i]);
      if (opt == "NX" || opt == "XX" || opt == "GET" || opt == "KEEPTTL")
        return Ordering::kSerialized;
    }
    return Ordering::kBlindWrite;
  }
  return Ordering::kAfterWrites;
}

auth::Identity default_identity() {
  return {std::string(auth::kDefaultUser), auth::Role::kAdmin, std::nullopt};
}

std::optional<Credentials> credentials_of(const std::vector<std::string>& args) {
  if (args.empty()) return std::nullopt;
  std::string name = upper(args[0]);
  if (name == "AUTH") {
    if (args.size() == 2) return Credentials{std::string(auth::kDefaultUser), args[1]};
    if (args.size() == 3) return Credentials{args[1], args[2]};
    return std::nullopt;
  }
  if (name == "HELLO") {
    auto parsed = parse_hello(args);
    if (auto* h = std::get_if<HelloArgs>(&parsed)) return h->credentials;
  }
  return std::nullopt;
}

namespace {

// A key or name inside an error line: bounded, printable.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 128)) out.push_back(c >= ' ' && c <= '~' ? c : '?');
  if (s.size() > 128) out += "...";
  return out;
}

// The NOPERM error for what the session may not do, or empty if it may.
std::string permission_error(const CommandSpec& c, const Session& session,
                             const std::vector<std::string>& args) {
  const auth::Identity& id = *session.identity;
  auto role_error = [&] {
    return "NOPERM User " + id.name + " has no permissions to run the '" + lower(c.name) +
           "' command";
  };
  auth::Action action = c.need == Need::kWrite || c.need == Need::kWriteAll ? auth::Action::kWrite
                                                                            : auth::Action::kRead;
  switch (c.need) {
    case Need::kNothing: return {};
    case Need::kReadAll:
    case Need::kWriteAll:
      if (!id.allows_range(action, "")) return role_error();
      return {};
    case Need::kRead:
    case Need::kWrite: break;
  }
  if (!id.allows(action)) return role_error();
  if (c.first_key <= 0) return {};
  const auto n = static_cast<int>(std::min<size_t>(args.size(), 1 << 30));
  const int last = c.last_key < 0 ? n + c.last_key : c.last_key;
  for (int i = c.first_key; i <= last && i < n; i += c.step) {
    if (!id.allows(action, args[static_cast<size_t>(i)]))
      return "NOPERM User " + id.name + " has no permissions to access the '" +
             printable(args[static_cast<size_t>(i)]) + "' key";
  }
  return {};
}

// ---- MULTI / EXEC (docs/RESP.md, "MULTI / EXEC") ----

// Commands that run at once inside MULTI rather than being queued.
bool runs_inside_multi(std::string_view upper_name) {
  return upper_name == "EXEC" || upper_name == "DISCARD" || upper_name == "MULTI" ||
         upper_name == "WATCH" || upper_name == "QUIT";
}
// Commands a transaction may not hold: they change who the session is.
// So are the pub/sub commands: subscribing changes what the connection
// may send, and a PUBLISH would reach its subscribers before the batch
// commits (or even when EXEC then aborts).
bool refused_inside_multi(std::string_view upper_name) {
  return upper_name == "AUTH" || upper_name == "HELLO" || upper_name == "SUBSCRIBE" ||
         upper_name == "PSUBSCRIBE" || upper_name == "UNSUBSCRIBE" ||
         upper_name == "PUNSUBSCRIBE" || upper_name == "PUBLISH";
}

// What a RESP2 connection with subscriptions may still send (its replies
// share the stream with messages).
bool allowed_when_subscribed(std::string_view upper_name) {
  return upper_name == "SUBSCRIBE" || upper_name == "PSUBSCRIBE" || upper_name == "UNSUBSCRIBE" ||
         upper_name == "PUNSUBSCRIBE" || upper_name == "PING" || upper_name == "QUIT" ||
         upper_name == "RESET";
}

uint64_t queued_bytes(const std::vector<std::string>& args) {
  uint64_t n = sizeof(std::vector<std::string>);
  for (const auto& a : args) n += sizeof(std::string) + a.size();
  return n;
}

// The version of `key` a WATCH compares: its entry's, tombstones included.
std::optional<Meta> version_of(Store& store, const std::string& key) {
  auto entry = store.get_entry(key);
  if (!entry) return std::nullopt;
  return entry->meta;
}

void cmd_multi(Exec& e) {
  if (e.session.tx) return e.error("ERR MULTI calls can not be nested");
  e.session.tx.emplace();
  e.ok();
}

void cmd_discard(Exec& e) {
  if (!e.session.tx) return e.error("ERR DISCARD without MULTI");
  e.session.tx.reset();
  e.session.watched.clear();
  e.session.watched_bytes = 0;
  e.ok();
}

void cmd_watch(Exec& e) {
  if (e.session.tx) return e.error("ERR WATCH inside MULTI is not allowed");
  uint64_t bytes = e.session.watched_bytes;
  for (size_t i = 1; i < e.args.size(); ++i) bytes += sizeof(WatchedKey) + e.args[i].size();
  if (bytes > e.ctx.config.limits.max_request_bytes)
    return e.error("ERR too many watched keys (more than max_request_bytes)");
  for (size_t i = 1; i < e.args.size(); ++i)
    e.session.watched.push_back({e.args[i], version_of(e.ctx.store, e.args[i])});
  e.session.watched_bytes = bytes;
  e.ok();
}

void cmd_unwatch(Exec& e) {
  e.session.watched.clear();
  e.session.watched_bytes = 0;
  e.ok();
}

// The reply budget of the commands inside one EXEC: their replies together
// may take up to the connection's output limit (max_output_bytes); beyond
// it, the transaction is refused whole, before anything is written.
class TxBudget final : public ReplyBudget {
 public:
  explicit TxBudget(uint64_t cap) : cap_(cap) {}
  // The next command starts, after `built` bytes of earlier replies.
  void next_command(uint64_t built) {
    built_ = built;
    parts_ = 0;
  }
  Grant reserve(uint64_t bytes) override {
    parts_ += bytes;
    return built_ + parts_ <= cap_ ? Grant::kYes : Grant::kNever;
  }

 private:
  const uint64_t cap_;
  uint64_t built_ = 0, parts_ = 0;
};

void cmd_exec(Exec& e) {
  if (!e.session.tx) return e.error("ERR EXEC without MULTI");
  Transaction tx = std::move(*e.session.tx);
  e.session.tx.reset();
  std::vector<WatchedKey> watched = std::move(e.session.watched);
  e.session.watched.clear();
  e.session.watched_bytes = 0;
  if (tx.failed) return e.error("EXECABORT Transaction discarded because of previous errors.");
  // A watched key that changed since WATCH (here, or by a replicated write
  // that arrived) aborts the transaction: a null reply, nothing written.
  for (const auto& w : watched) {
    if (version_of(e.ctx.store, w.key) != w.version) {
      if (e.proto() == Protocol::kResp3) return e.null();
      e.out.reply += "*-1\r\n";
      return;
    }
  }
  TxOverlay overlay(e.ctx.store);
  TxBudget budget(e.ctx.config.max_output_bytes);
  CommandContext inner{overlay,    e.ctx.config,       e.ctx.status, e.ctx.cursors, e.ctx.stats,
                       e.ctx.port, e.ctx.auth_enabled, &budget,      nullptr,       e.ctx.pubsub};
  std::string replies;
  for (const auto& args : tx.commands) {
    Outcome o;
    Exec ie{inner, e.session, args, o};
    budget.next_command(replies.size());
    find_command(args[0])->handler(ie);  // known, of the right arity and allowed: checked queuing
    const uint64_t cap = e.ctx.config.max_output_bytes;
    if (o.stopped != Outcome::Stopped::kNo || replies.size() + o.reply.size() > cap) {
      return e.error("EXECABORT the replies of the transaction exceed the client output limit (" +
                     std::to_string(cap) + " bytes, max_output_bytes); nothing was written");
    }
    if (o.write) overlay.apply(*o.write);
    replies += o.reply;
  }
  write_array(e.out.reply, tx.commands.size());
  e.out.reply += replies;
  WriteBatch b = overlay.batch();
  if (!b.empty()) e.out.write = std::move(b);
}

// Inside MULTI: a command that passed the checks is queued (+QUEUED); a
// refused one gets its error and makes EXEC abort, as in Redis.
void queue(Exec& e, const CommandSpec* c, std::string refusal) {
  Transaction& tx = *e.session.tx;
  if (refusal.empty() && refused_inside_multi(c->name))
    refusal = "ERR Command not allowed inside a transaction";
  const uint64_t bytes = queued_bytes(e.args);
  if (refusal.empty() && tx.bytes + bytes > e.ctx.config.limits.max_request_bytes)
    refusal = "ERR the transaction is larger than max_request_bytes (" +
              std::to_string(e.ctx.config.limits.max_request_bytes) + ")";
  if (!refusal.empty()) {
    tx.failed = true;
    return e.error(refusal);
  }
  tx.commands.push_back(e.args);
  tx.bytes += bytes;
  write_simple(e.out.reply, "QUEUED");
}

}  // namespace

namespace {
Outcome execute_command(CommandContext& ctx, Session& session,
                        const std::vector<std::string>& args);

bool confirms_subscription(std::string_view name) {
  std::string n = upper(name);
  return n == "SUBSCRIBE" || n == "PSUBSCRIBE" || n == "UNSUBSCRIBE" || n == "PUNSUBSCRIBE";
}
}  // namespace

Outcome execute(CommandContext& ctx, Session& session, const std::vector<std::string>& args) {
  const bool skipped = session.skip_next_reply;
  session.skip_next_reply = false;
  Outcome out = execute_command(ctx, session, args);
  if (out.stopped == Outcome::Stopped::kLater) {
    session.skip_next_reply = skipped;  // it runs again and is that command
    return out;
  }
  if ((skipped || session.reply_off) && !confirms_subscription(args[0])) out.silent = true;
  if (out.silent) out.reply.clear();
  return out;
}

namespace {
Outcome execute_command(CommandContext& ctx, Session& session,
                        const std::vector<std::string>& args) {
  Outcome out;
  Exec e{ctx, session, args, out};
  if (!ctx.auth_enabled && !session.identity) session.identity = default_identity();
  if (!session.identity) {
    // Not logged in: only what logs in, or leaves, may run.
    std::string name = upper(args[0]);
    if (name == "HELLO" && !credentials_of(args)) {
      auto parsed = parse_hello(args);
      if (auto* err = std::get_if<std::string>(&parsed)) {
        e.error(*err);
      } else {
        e.error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
            "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
            "select the RESP protocol version at the same time");
      }
      return out;
    }
    if (name != "AUTH" && name != "HELLO" && name != "QUIT") {
      e.error("NOAUTH Authentication required.");
      return out;
    }
  }
  const CommandSpec* c = find_command(args[0]);
  std::string refusal;
  auto n = static_cast<int>(std::min<size_t>(args.size(), 1 << 30));
  if (c == nullptr) {
    refusal = "ERR unknown command '" + args[0] + "', with args beginning with:";
    for (size_t i = 1; i < args.size() && i < 4; ++i) refusal += " '" + args[i].substr(0, 64) + "'";
    refusal.resize(std::min<size_t>(refusal.size(), 512));
  } else if ((c->arity > 0 && n != c->arity) || (c->arity < 0 && n < -c->arity)) {
    refusal = "ERR wrong number of arguments for '" + lower(c->name) + "' command";
  } else if (session.identity) {
    refusal = permission_error(*c, session, args);
  }
  if (refusal.empty() && c != nullptr && session.subscribed() &&
      session.protocol == Protocol::kResp2 && !allowed_when_subscribed(c->name))
    refusal = "ERR Can't execute '" + lower(c->name) +
              "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in "
              "this context";
  if (session.tx && (c == nullptr || !runs_inside_multi(c->name))) {
    queue(e, c, std::move(refusal));
    return out;
  }
  if (!refusal.empty()) {
    e.error(refusal);
    return out;
  }
  c->handler(e);
  return out;
}
}  // namespace

std::string too_large_reply(uint64_t bytes, uint64_t limit) {
  std::string out;
  write_error(out, "ERR reply of " + std::to_string(bytes) +
                       " bytes exceeds the client output limit of " + std::to_string(limit) +
                       " bytes (max_output_bytes); ask for less at a time");
  return out;
}

std::string write_error_reply(const Status& status) {
  std::string out;
  write_error(out, "ERR write failed: " + status.to_string());
  return out;
}

}  // namespace wavekv::resp
