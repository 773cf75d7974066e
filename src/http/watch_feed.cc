#include "http/watch_feed.h"

#include <charconv>
#include <cstdio>

namespace wavekv::http {
namespace {

size_t cost_bytes(const WatchEvent& e) { return e.key.size() + e.value.size() + 64; }

// "<16 hex digits>-<decimal id>"
bool parse_cursor(std::string_view text, uint64_t& epoch, uint64_t& id) {
  size_t dash = text.find('-');
  if (dash != 16) return false;
  auto [e1, ec1] = std::from_chars(text.data(), text.data() + 16, epoch, 16);
  if (ec1 != std::errc() || e1 != text.data() + 16) return false;
  std::string_view rest = text.substr(17);
  if (rest.empty()) return false;
  auto [e2, ec2] = std::from_chars(rest.data(), rest.data() + rest.size(), id);
  return ec2 == std::errc() && e2 == rest.data() + rest.size();
}

}  // namespace

Subscription::Batch Subscription::take() {
  std::lock_guard lock(mu_);
  Batch b;
  b.events.assign(queue_.begin(), queue_.end());
  queue_.clear();
  queued_bytes_ = 0;
  b.reset = reset_;
  notified_ = false;
  return b;
}

bool Subscription::push(const FeedEventPtr& e) {
  bool wake = false, alive = true;
  {
    std::lock_guard lock(mu_);
    if (reset_) return false;
    if (queue_.size() + 1 > max_events_ || queued_bytes_ + e->cost_bytes() > max_bytes_) {
      // Fell behind: drop what is queued (the client re-lists anyway).
      queue_.clear();
      queued_bytes_ = 0;
      reset_ = true;
      alive = false;
    } else {
      queue_.push_back(e);
      queued_bytes_ += e->cost_bytes();
    }
    wake = !notified_;
    notified_ = true;
  }
  if (wake && notify_) notify_();
  return alive;
}

void Subscription::reset() {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    queue_.clear();
    queued_bytes_ = 0;
    reset_ = true;
    wake = !notified_;
    notified_ = true;
  }
  if (wake && notify_) notify_();
}

WatchFeed::WatchFeed(uint64_t epoch, WatchFeedLimits limits) : epoch_(epoch), limits_(limits) {}

bool WatchFeed::offer(const WatchEvent& event) {
  std::lock_guard lock(inbox_mu_);
  bool fits = inbox_.size() < limits_.max_inbox_events &&
              inbox_bytes_ + cost_bytes(event) <= limits_.max_inbox_bytes;
  if (fits) {
    inbox_.push_back({event});
    inbox_bytes_ += cost_bytes(event);
  } else if (inbox_.empty() || inbox_.back().event.has_value()) {
    // One gap stands for every event dropped until the inbox drains: the one
    // item allowed past the bound.
    inbox_.push_back({std::nullopt});
  }
  bool schedule = !drain_scheduled_;
  drain_scheduled_ = true;
  return schedule;
}

void WatchFeed::drain() {
  std::vector<InboxItem> items;
  {
    std::lock_guard lock(inbox_mu_);
    items.swap(inbox_);
    inbox_bytes_ = 0;
    // Anything offered from now on schedules a new drain.
    drain_scheduled_ = false;
  }
  for (auto& item : items) {
    if (item.event)
      publish(std::move(*item.event));
    else
      publish_gap();
  }
}

void WatchFeed::publish(WatchEvent&& e) {
  std::lock_guard lock(mu_);
  auto ev = std::make_shared<FeedEvent>();
  ev->id = ++head_id_;
  ev->key = std::move(e.key);
  ev->value = std::move(e.value);
  ev->deleted = e.deleted;
  ev->meta = e.meta;
  ev->expires_ms = e.expires_ms;
  ev->expired = e.expired;
  FeedEventPtr p = ev;
  ring_.push_back(p);
  ring_bytes_ += p->cost_bytes();
  while (!ring_.empty() &&
         (ring_.size() > limits_.max_ring_events || ring_bytes_ > limits_.max_ring_bytes)) {
    floor_id_ = ring_.front()->id;
    ring_bytes_ -= ring_.front()->cost_bytes();
    ring_.pop_front();
  }
  for (size_t i = 0; i < subs_.size();) {
    auto& s = subs_[i];
    if (p->key.starts_with(s->prefix()) && !s->push(p)) {
      ++resets_;
      subs_.erase(subs_.begin() + static_cast<std::ptrdiff_t>(i));
      continue;
    }
    ++i;
  }
}

void WatchFeed::publish_gap() {
  std::lock_guard lock(mu_);
  ++gaps_;
  // The gap takes an id of its own: no cursor at or before it can be resumed.
  floor_id_ = ++head_id_;
  ring_.clear();
  ring_bytes_ = 0;
  for (auto& s : subs_) s->reset();
  resets_ += subs_.size();
  subs_.clear();
}

WatchFeed::Start WatchFeed::subscribe(std::string prefix, std::optional<std::string_view> cursor,
                                      size_t max_queue_events, size_t max_queue_bytes,
                                      std::function<void()> notify) {
  Start start;
  std::lock_guard lock(mu_);
  if (cursor) {
    uint64_t epoch = 0, id = 0;
    bool ours = parse_cursor(*cursor, epoch, id) && epoch == epoch_;
    if (!ours || id < floor_id_ || id > head_id_) {
      start.reset = true;
    } else {
      for (const auto& e : ring_)
        if (e->id > id && e->key.starts_with(prefix)) start.backlog.push_back(e);
    }
  }
  start.head_cursor = WatchFeed::cursor(head_id_);
  start.subscription = std::shared_ptr<Subscription>(
      new Subscription(std::move(prefix), max_queue_events, max_queue_bytes, std::move(notify)));
  subs_.push_back(start.subscription);
  return start;
}

void WatchFeed::unsubscribe(const std::shared_ptr<Subscription>& s) {
  std::lock_guard lock(mu_);
  std::erase(subs_, s);
}

std::string WatchFeed::cursor(uint64_t id) const {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%016llx-%llu", static_cast<unsigned long long>(epoch_),
                static_cast<unsigned long long>(id));
  return buf;
}

bool WatchFeed::well_formed_cursor(std::string_view text) {
  uint64_t epoch = 0, id = 0;
  return parse_cursor(text, epoch, id);
}

size_t WatchFeed::subscribers() const {
  std::lock_guard lock(mu_);
  return subs_.size();
}

uint64_t WatchFeed::head_id() const {
  std::lock_guard lock(mu_);
  return head_id_;
}

uint64_t WatchFeed::resets() const {
  std::lock_guard lock(mu_);
  return resets_;
}

uint64_t WatchFeed::gaps() const {
  std::lock_guard lock(mu_);
  return gaps_;
}

}  // namespace wavekv::http
