// The change feed behind GET /v1/watch: every change of the store gets an
// increasing id and is kept in a bounded ring, so a client that reconnects with
// the cursor of the last event it saw gets exactly the events it missed.
//
// Three bounded queues, so that the store's commit thread never waits for a
// network client:
//   inbox  commit thread -> feed: offer() only copies the event; when full, the
//          events that do not fit are replaced by one gap (everyone must re-list)
//   ring   the recent events, for resuming
//   one queue per subscriber: a subscriber that falls behind is reset
//
// Cursors are "<epoch>-<id>": the epoch is chosen per server start, so a cursor
// from an earlier run (whose ids mean something else) is recognized as foreign.
// No asio here; the server schedules drain() and reacts to notify().
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wavekv/store.h"

namespace wavekv::http {

struct FeedEvent {
  uint64_t id = 0;
  std::string key;
  std::string value;  // empty for deletes
  bool deleted = false;
  Meta meta;
  uint64_t expires_ms = 0;  // of a value; 0: never
  bool expired = false;     // a delete because the value's expiry passed
  // What the event costs to keep: its bytes plus a fixed overhead.
  size_t cost_bytes() const { return key.size() + value.size() + 64; }
};
using FeedEventPtr = std::shared_ptr<const FeedEvent>;

struct WatchFeedLimits {
  size_t max_inbox_events = 10000;
  size_t max_inbox_bytes = 64ull * 1024 * 1024;
  size_t max_ring_events = 10000;
  size_t max_ring_bytes = 64ull * 1024 * 1024;
};

// One subscriber: a bounded queue the feed fills and the connection drains.
class Subscription {
 public:
  struct Batch {
    std::vector<FeedEventPtr> events;
    // The subscriber fell behind (or events were lost before the feed): it got
    // no more events and must re-list. Comes after `events`.
    bool reset = false;
  };
  // Takes everything queued so far.
  Batch take();
  const std::string& prefix() const { return prefix_; }

 private:
  friend class WatchFeed;
  Subscription(std::string prefix, size_t max_events, size_t max_bytes,
               std::function<void()> notify)
      : prefix_(std::move(prefix)),
        max_events_(max_events),
        max_bytes_(max_bytes),
        notify_(std::move(notify)) {}
  // Queues `e`, or resets the subscriber if it does not fit. Returns false once
  // the subscriber is reset (the feed then drops it).
  bool push(const FeedEventPtr& e);
  void reset();

  const std::string prefix_;
  const size_t max_events_;
  const size_t max_bytes_;
  const std::function<void()> notify_;  // quick and thread-safe: the server posts a wake-up

  std::mutex mu_;
  std::deque<FeedEventPtr> queue_;
  size_t queued_bytes_ = 0;
  bool reset_ = false;
  bool notified_ = false;  // a wake-up is outstanding: take() has not run since
};

class WatchFeed {
 public:
  WatchFeed(uint64_t epoch, WatchFeedLimits limits);
  WatchFeed(const WatchFeed&) = delete;
  WatchFeed& operator=(const WatchFeed&) = delete;

  // Commit thread: queues a copy of `event`. Returns true when the caller must
  // schedule drain() (none is scheduled yet). Never blocks on a subscriber.
  bool offer(const WatchEvent& event);
  // Moves the inbox into the ring and the subscribers' queues, in order.
  void drain();

  // A subscription to changes of keys starting with `prefix`, plus the events
  // after `cursor` (if given and resumable) that it missed. Atomic with respect
  // to drain(): nothing is missed or seen twice between backlog and queue.
  struct Start {
    std::shared_ptr<Subscription> subscription;
    std::vector<FeedEventPtr> backlog;
    // The cursor is foreign (another run), from the future, or older than the
    // ring: the client must re-list. The subscription is live all the same.
    bool reset = false;
    std::string head_cursor;  // the cursor of the newest event so far
  };
  Start subscribe(std::string prefix, std::optional<std::string_view> cursor,
                  size_t max_queue_events, size_t max_queue_bytes, std::function<void()> notify);
  void unsubscribe(const std::shared_ptr<Subscription>& s);

  std::string cursor(uint64_t id) const;
  // Whether `text` has the form of a cursor (any epoch).
  static bool well_formed_cursor(std::string_view text);

  size_t subscribers() const;
  uint64_t head_id() const;
  uint64_t resets() const;  // subscribers reset for falling behind or lost events
  uint64_t gaps() const;    // times the inbox overflowed

 private:
  struct InboxItem {
    std::optional<WatchEvent> event;  // nullopt: a gap
  };
  void publish(WatchEvent&& e);
  void publish_gap();

  const uint64_t epoch_;
  const WatchFeedLimits limits_;

  std::mutex inbox_mu_;
  std::vector<InboxItem> inbox_;
  size_t inbox_bytes_ = 0;
  bool drain_scheduled_ = false;

  mutable std::mutex mu_;  // ring, ids, subscribers; taken before a Subscription's mu_
  std::deque<FeedEventPtr> ring_;
  size_t ring_bytes_ = 0;
  uint64_t head_id_ = 0;   // the newest id given out
  uint64_t floor_id_ = 0;  // cursors below this can no longer be resumed
  std::vector<std::shared_ptr<Subscription>> subs_;
  uint64_t resets_ = 0;
  uint64_t gaps_ = 0;
};

}  // namespace wavekv::http
