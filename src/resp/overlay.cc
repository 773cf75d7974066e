#include "resp/overlay.h"

#include <algorithm>

namespace wavekv::resp {

void TxOverlay::apply(const WriteBatch& batch) {
  for (const auto& item : batch.items()) {
    if (item.tombstone)
      written_.insert_or_assign(item.key, std::nullopt);
    else
      written_.insert_or_assign(item.key, Written{item.value, item.expires_ms});
  }
}

WriteBatch TxOverlay::batch() const {
  WriteBatch b;
  for (const auto& [key, value] : written_) {
    if (value)
      b.put(key, value->value, value->expires_ms);
    else
      b.del(key);
  }
  return b;
}

Result<std::string> TxOverlay::get(std::string_view key) {
  auto it = written_.find(key);
  if (it == written_.end()) return base_.get(key);
  if (!live(it->second)) return Status::not_found("key not found");
  return it->second->value;
}

Status TxOverlay::view(std::string_view key, const std::function<void(std::string_view)>& fn) {
  auto it = written_.find(key);
  if (it == written_.end()) return base_.view(key, fn);
  if (!live(it->second)) return Status::not_found("key not found");
  fn(it->second->value);
  return Status::ok();
}

std::optional<Entry> TxOverlay::get_entry(std::string_view key) {
  auto it = written_.find(key);
  if (it == written_.end()) return base_.get_entry(key);
  Entry e;  // not written yet: no version (meta) of its own
  e.tombstone = !it->second;
  if (it->second) {
    e.value = it->second->value;
    e.expires_ms = it->second->expires_ms;
  }
  return e;
}

std::vector<KeyValue> TxOverlay::scan_prefix(std::string_view prefix, size_t limit) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (!end.empty()) end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return scan_range(prefix, end, limit);
}

// The base's first keys of the range, with the transaction's writes merged
// in. Each written key can hide at most one of the base's, so asking the
// base for `limit` more than the writes in range is enough.
std::vector<KeyValue> TxOverlay::scan_range(std::string_view start, std::string_view end,
                                            size_t limit) {
  auto first = written_.lower_bound(start);
  auto last = end.empty() ? written_.end() : written_.lower_bound(end);
  const auto in_range = static_cast<size_t>(std::distance(first, last));
  std::vector<KeyValue> base = base_.scan_range(start, end, limit == 0 ? 0 : limit + in_range);
  std::vector<KeyValue> out;
  out.reserve(base.size() + in_range);
  auto w = first;
  for (auto& kv : base) {
    for (; w != last && w->first < kv.key; ++w)
      if (live(w->second))
        out.push_back({w->first, w->second->value, Meta{}, w->second->expires_ms});
    if (w != last && w->first == kv.key) {
      if (live(w->second))
        out.push_back({w->first, w->second->value, Meta{}, w->second->expires_ms});
      ++w;
      continue;
    }
    out.push_back(std::move(kv));
  }
  // Past the base's last key: the remaining writes belong only if the base
  // was not cut short by its limit.
  const bool base_complete = limit == 0 || base.size() < limit + in_range;
  if (base_complete)
    for (; w != last; ++w)
      if (live(w->second))
        out.push_back({w->first, w->second->value, Meta{}, w->second->expires_ms});
  if (limit != 0 && out.size() > limit) out.resize(limit);
  return out;
}

}  // namespace wavekv::resp
