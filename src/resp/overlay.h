// What the commands of a MULTI/EXEC transaction read: the store as it is,
// with the writes of the transaction's earlier commands on top, so that
// `SET k 1` then `GET k` inside one EXEC sees 1 before anything is written.
// The transaction's writes are collected here and leave as one WriteBatch
// (docs/RESP.md, "MULTI / EXEC"). Reads only: the commands never write to a
// store themselves (they return what to write), and the write calls fail.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "wavekv/store.h"

namespace wavekv::resp {

class TxOverlay final : public Store {
 public:
  explicit TxOverlay(Store& base) : base_(base) {}

  // Lays a command's write over the store (later writes of a key win).
  void apply(const WriteBatch& batch);
  // The transaction's writes: one item per key written, its last value.
  WriteBatch batch() const;

  Result<std::string> get(std::string_view key) override;
  Status view(std::string_view key, const std::function<void(std::string_view)>& fn) override;
  std::optional<Entry> get_entry(std::string_view key) override;
  std::vector<KeyValue> scan_prefix(std::string_view prefix, size_t limit) override;
  std::vector<KeyValue> scan_range(std::string_view start, std::string_view end,
                                   size_t limit) override;
  uint64_t now_ms() override { return base_.now_ms(); }
  StoreStatus status() override { return base_.status(); }
  NodeId node_id() const override { return base_.node_id(); }

  Status put(std::string_view, std::string_view) override { return refused(); }
  Status del(std::string_view) override { return refused(); }
  Status write(const WriteBatch&) override { return refused(); }
  void write_async(WriteBatch, WriteCallback done) override { done(refused()); }
  WatchId watch(std::string_view, WatchCallback) override { return 0; }
  void unwatch(WatchId) override {}
  Status checkpoint() override { return refused(); }
  Status close() override { return Status::ok(); }

 private:
  static Status refused() {
    return Status::invalid("a transaction's commands do not write directly");
  }

  Store& base_;
  struct Written {
    std::string value;
    uint64_t expires_ms = 0;
  };
  // Key -> its value after the transaction so far; nullopt: deleted.
  std::map<std::string, std::optional<Written>, std::less<>> written_;
  // Whether a written key reads as present now (an expiry may pass).
  bool live(const std::optional<Written>& w) {
    return w && (w->expires_ms == 0 || base_.now_ms() <= w->expires_ms);
  }
};

}  // namespace wavekv::resp
