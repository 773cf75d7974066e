// Pub/sub of the RESP port (docs/RESP.md, "Pub/sub"): the channels and glob
// patterns connections subscribe to, PUBLISH between the clients of one node,
// and Redis's keyspace notifications (`__keyspace@0__:<key>`,
// `__keyevent@0__:<event>`) made from the store's watch, so replicated
// changes are announced like local ones.
//
// No asio here. A Subscriber's deliver() is called with the registry's lock
// held, so every subscriber sees messages in one order (the order PUBLISH
// calls and store changes took the lock); it must be quick and must not call
// back into the registry (a connection copies the message and posts it to its
// own strand). Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "auth/users.h"
#include "wavekv/store.h"

namespace wavekv::resp {

class Subscriber {
 public:
  // One message: `pattern` is the pattern it matched, empty for a channel
  // subscription.
  virtual void deliver(std::string_view pattern, std::string_view channel,
                       std::string_view message) = 0;

 protected:
  ~Subscriber() = default;
};

// Which keyspace notifications are published: Redis's
// notify-keyspace-events letters. K: on __keyspace@0__:<key>; E: on
// __keyevent@0__:<event>; the event classes WaveKV announces are n (new),
// $ (set), g (expire, persist, del) and x (expired); the other classes are
// accepted and kept (nothing of theirs happens here). Neither K nor E:
// nothing is published.
class NotifyFlags {
 public:
  // nullopt: a letter Redis does not know.
  static std::optional<NotifyFlags> parse(std::string_view letters);
  std::string to_string() const;  // Redis's spelling ("AKE" rather than "KEA")
  uint32_t bits() const { return bits_; }
  static NotifyFlags from_bits(uint32_t b) { return NotifyFlags(b); }

  static constexpr uint32_t kKeyspace = 1u << 0, kKeyevent = 1u << 1, kGeneric = 1u << 2,
                            kString = 1u << 3, kList = 1u << 4, kSet = 1u << 5, kHash = 1u << 6,
                            kZset = 1u << 7, kExpired = 1u << 8, kEvicted = 1u << 9,
                            kStream = 1u << 10, kKeyMiss = 1u << 11, kModule = 1u << 12,
                            kNew = 1u << 13;
  // 'A': every class but key-miss and new.
  static constexpr uint32_t kAll =
      kGeneric | kString | kList | kSet | kHash | kZset | kExpired | kEvicted | kStream | kModule;

 private:
  explicit NotifyFlags(uint32_t b = 0) : bits_(b) {}
  uint32_t bits_ = 0;
};

// The channels keyspace notifications go to; PUBLISH may not use them.
inline constexpr std::string_view kKeyspacePrefix = "__keyspace@0__:";
inline constexpr std::string_view kKeyeventPrefix = "__keyevent@0__:";
bool is_server_channel(std::string_view channel);

class PubSub {
 public:
  enum class Kind { kChannel, kPattern };

  // `store` (may be null: no keyspace notifications) is watched while the
  // flags ask for notifications, so a node that publishes none pays nothing
  // per write. It must outlive the PubSub or detach() must be called first.
  PubSub(Store* store, NotifyFlags flags);
  ~PubSub() { detach(); }
  PubSub(const PubSub&) = delete;
  PubSub& operator=(const PubSub&) = delete;
  // Stops watching the store, for good.
  void detach();

  // A client's subscriptions.
  struct Counts {
    size_t channels = 0, patterns = 0;
    size_t total() const { return channels + patterns; }
  };

  // Subscribes client `client` (whose messages go to `sink`) to a channel or
  // pattern. `identity` is who the client is now (null: may read every key):
  // a keyspace notification reaches it only for keys it may read. Returns
  // the client's subscriptions after the call.
  Counts subscribe(uint64_t client, Kind kind, const std::string& name,
                   const std::shared_ptr<Subscriber>& sink,
                   std::shared_ptr<const auth::Identity> identity);
  Counts unsubscribe(uint64_t client, Kind kind, std::string_view name);
  // The client's channels or patterns, in order.
  std::vector<std::string> subscriptions_of(uint64_t client, Kind kind) const;
  // The client logged in again: keyspace notifications follow its new rights.
  void update_identity(uint64_t client, std::shared_ptr<const auth::Identity> identity);
  // The client is gone: every subscription of it ends.
  void remove(uint64_t client);

  // Sends `message` to the subscribers of `channel` and of every pattern
  // matching it; how many received it (a client matching twice counts twice).
  size_t publish(std::string_view channel, std::string_view message);
  // A change of the store (the watch's callback): its keyspace
  // notifications, as the flags say. Cheap when nobody is subscribed.
  void notify(const WatchEvent& event);

  // PUBSUB CHANNELS / NUMSUB / NUMPAT.
  std::vector<std::string> channels(std::optional<std::string_view> pattern) const;
  size_t numsub(std::string_view channel) const;
  size_t numpat() const;

  NotifyFlags flags() const { return NotifyFlags::from_bits(flags_.load()); }
  void set_flags(NotifyFlags f);

 private:
  struct Client {
    std::shared_ptr<Subscriber> sink;
    std::shared_ptr<const auth::Identity> identity;
    std::set<std::string, std::less<>> channels, patterns;
  };
  using Index = std::map<std::string, std::set<uint64_t>, std::less<>>;

  // `key`: a keyspace notification about `key`, for readers of it only.
  size_t publish_locked(std::string_view channel, std::string_view message, const std::string* key);

  static Counts counts_of(const Client& c) { return {c.channels.size(), c.patterns.size()}; }

  // Guards watching: never held by the watch's callback (which takes mu_
  // under the store's own lock), so watch() and unwatch() cannot deadlock.
  std::mutex watch_mu_;
  Store* store_ = nullptr;
  std::optional<WatchId> watch_;
  std::atomic<uint32_t> flags_;
  std::atomic<size_t> subscriptions_{0};  // of every client: lets notify() return at once
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Client> clients_;
  Index channels_, patterns_;  // name -> the clients subscribed to it
};

}  // namespace wavekv::resp
