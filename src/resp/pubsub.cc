#include "resp/pubsub.h"

#include "resp/glob.h"

namespace wavekv::resp {

namespace {

struct Letter {
  char c;
  uint32_t bit;
};
// Redis's letters, in the order it spells them.
constexpr Letter kClassLetters[] = {
    {'g', NotifyFlags::kGeneric}, {'$', NotifyFlags::kString},  {'l', NotifyFlags::kList},
    {'s', NotifyFlags::kSet},     {'h', NotifyFlags::kHash},    {'z', NotifyFlags::kZset},
    {'x', NotifyFlags::kExpired}, {'e', NotifyFlags::kEvicted}, {'t', NotifyFlags::kStream},
    {'d', NotifyFlags::kModule},
};
constexpr Letter kOtherLetters[] = {
    {'K', NotifyFlags::kKeyspace},
    {'E', NotifyFlags::kKeyevent},
    {'m', NotifyFlags::kKeyMiss},
    {'n', NotifyFlags::kNew},
};

}  // namespace

std::optional<NotifyFlags> NotifyFlags::parse(std::string_view letters) {
  uint32_t bits = 0;
  for (char c : letters) {
    if (c == 'A') {
      bits |= kAll;
      continue;
    }
    bool known = false;
    for (const auto& l : kClassLetters)
      if (l.c == c) bits |= l.bit, known = true;
    for (const auto& l : kOtherLetters)
      if (l.c == c) bits |= l.bit, known = true;
    if (!known) return std::nullopt;
  }
  return NotifyFlags(bits);
}

std::string NotifyFlags::to_string() const {
  std::string out;
  if ((bits_ & kAll) == kAll) {
    out += 'A';
  } else {
    for (const auto& l : kClassLetters)
      if (bits_ & l.bit) out += l.c;
  }
  for (const auto& l : kOtherLetters)
    if (bits_ & l.bit) out += l.c;
  return out;
}

bool is_server_channel(std::string_view channel) {
  // Any database's: a pattern such as __keyspace@*__:* would match them all.
  return channel.starts_with("__keyspace@") || channel.starts_with("__keyevent@");
}

PubSub::PubSub(Store* store, NotifyFlags flags) : store_(store), flags_(0) { set_flags(flags); }

void PubSub::detach() {
  std::lock_guard lock(watch_mu_);
  if (watch_) store_->unwatch(*watch_);
  watch_.reset();
  store_ = nullptr;
}

void PubSub::set_flags(NotifyFlags f) {
  std::lock_guard lock(watch_mu_);
  flags_.store(f.bits());
  const uint32_t b = f.bits();
  const bool wanted = (b & (NotifyFlags::kKeyspace | NotifyFlags::kKeyevent)) != 0 &&
                      (b & (NotifyFlags::kString | NotifyFlags::kGeneric | NotifyFlags::kExpired |
                            NotifyFlags::kNew)) != 0;
  if (wanted && !watch_ && store_ != nullptr) {
    watch_ = store_->watch("", [this](const WatchEvent& e) { notify(e); });
  } else if (!wanted && watch_) {
    store_->unwatch(*watch_);
    watch_.reset();
  }
}

PubSub::Counts PubSub::subscribe(uint64_t client, Kind kind, const std::string& name,
                                 const std::shared_ptr<Subscriber>& sink,
                                 std::shared_ptr<const auth::Identity> identity) {
  std::lock_guard lock(mu_);
  Client& c = clients_[client];
  c.sink = sink;
  c.identity = std::move(identity);
  auto& mine = kind == Kind::kChannel ? c.channels : c.patterns;
  if (mine.insert(name).second) {
    (kind == Kind::kChannel ? channels_ : patterns_)[name].insert(client);
    ++subscriptions_;
  }
  return counts_of(c);
}

PubSub::Counts PubSub::unsubscribe(uint64_t client, Kind kind, std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = clients_.find(client);
  if (it == clients_.end()) return {};
  Client& c = it->second;
  auto& mine = kind == Kind::kChannel ? c.channels : c.patterns;
  if (auto m = mine.find(name); m != mine.end()) {
    Index& index = kind == Kind::kChannel ? channels_ : patterns_;
    auto i = index.find(name);
    i->second.erase(client);
    if (i->second.empty()) index.erase(i);
    mine.erase(m);
    --subscriptions_;
  }
  Counts left = counts_of(c);
  if (left.total() == 0) clients_.erase(it);
  return left;
}

std::vector<std::string> PubSub::subscriptions_of(uint64_t client, Kind kind) const {
  std::lock_guard lock(mu_);
  auto it = clients_.find(client);
  if (it == clients_.end()) return {};
  const auto& mine = kind == Kind::kChannel ? it->second.channels : it->second.patterns;
  return {mine.begin(), mine.end()};
}

void PubSub::update_identity(uint64_t client, std::shared_ptr<const auth::Identity> identity) {
  std::lock_guard lock(mu_);
  if (auto it = clients_.find(client); it != clients_.end())
    it->second.identity = std::move(identity);
}

void PubSub::remove(uint64_t client) {
  std::shared_ptr<Subscriber> sink;  // released after the lock
  std::lock_guard lock(mu_);
  auto it = clients_.find(client);
  if (it == clients_.end()) return;
  for (auto* mine : {&it->second.channels, &it->second.patterns}) {
    Index& index = mine == &it->second.channels ? channels_ : patterns_;
    for (const auto& name : *mine) {
      auto i = index.find(name);
      i->second.erase(client);
      if (i->second.empty()) index.erase(i);
      --subscriptions_;
    }
  }
  sink = std::move(it->second.sink);
  clients_.erase(it);
}

size_t PubSub::publish_locked(std::string_view channel, std::string_view message,
                              const std::string* key) {
  size_t n = 0;
  auto send = [&](uint64_t id, std::string_view pattern) {
    auto it = clients_.find(id);
    const Client& c = it->second;
    if (key != nullptr && c.identity && !c.identity->allows(auth::Action::kRead, *key)) return;
    c.sink->deliver(pattern, channel, message);
    ++n;
  };
  if (auto it = channels_.find(channel); it != channels_.end())
    for (uint64_t id : it->second) send(id, {});
  for (const auto& [pattern, ids] : patterns_) {
    if (!glob_match(pattern, channel)) continue;
    for (uint64_t id : ids) send(id, pattern);
  }
  return n;
}

size_t PubSub::publish(std::string_view channel, std::string_view message) {
  std::lock_guard lock(mu_);
  return publish_locked(channel, message, nullptr);
}

void PubSub::notify(const WatchEvent& e) {
  if (subscriptions_.load(std::memory_order_relaxed) == 0) return;
  const uint32_t f = flags_.load(std::memory_order_relaxed);
  struct Event {
    std::string_view name;
    uint32_t event_class;
  };
  // What the data did, in Redis's order (a key is added, then set, then
  // given its expiry).
  Event events[3];
  size_t n = 0;
  if (e.deleted) {
    events[n++] =
        e.expired ? Event{"expired", NotifyFlags::kExpired} : Event{"del", NotifyFlags::kGeneric};
  } else {
    const bool expiry_changed = !e.was_live || e.expires_ms != e.previous_expires_ms;
    if (!e.was_live) events[n++] = {"new", NotifyFlags::kNew};
    if (!e.was_live || e.value_changed || !expiry_changed)
      events[n++] = {"set", NotifyFlags::kString};
    if (expiry_changed && e.expires_ms != 0)
      events[n++] = {"expire", NotifyFlags::kGeneric};
    else if (expiry_changed && e.was_live && !e.value_changed)
      events[n++] = {"persist", NotifyFlags::kGeneric};
  }
  bool any = false;
  for (size_t i = 0; i < n; ++i) any = any || (f & events[i].event_class) != 0;
  if (!any) return;  // none of these classes asked for: no lock taken
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < n; ++i) {
    const Event& ev = events[i];
    if ((f & ev.event_class) == 0) continue;
    if (f & NotifyFlags::kKeyspace) {
      std::string channel(kKeyspacePrefix);
      channel += e.key;
      publish_locked(channel, ev.name, &e.key);
    }
    if (f & NotifyFlags::kKeyevent) {
      std::string channel(kKeyeventPrefix);
      channel += ev.name;
      publish_locked(channel, e.key, &e.key);
    }
  }
}

std::vector<std::string> PubSub::channels(std::optional<std::string_view> pattern) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, ids] : channels_)
    if (!pattern || glob_match(*pattern, name)) out.push_back(name);
  return out;
}

size_t PubSub::numsub(std::string_view channel) const {
  std::lock_guard lock(mu_);
  auto it = channels_.find(channel);
  return it == channels_.end() ? 0 : it->second.size();
}

size_t PubSub::numpat() const {
  std::lock_guard lock(mu_);
  return patterns_.size();
}

}  // namespace wavekv::resp
