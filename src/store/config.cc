#include "wavekv/config.h"

#include <chrono>

namespace wavekv {
namespace {

class SystemClock final : public Clock {
 public:
  uint64_t now_ms() override {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  }
};

}  // namespace

std::shared_ptr<Clock> system_clock() {
  static std::shared_ptr<Clock> clock = std::make_shared<SystemClock>();
  return clock;
}

const char* durability_name(Durability d) {
  switch (d) {
    case Durability::kAlways: return "always";
    case Durability::kInterval: return "interval";
    case Durability::kNone: return "none";
  }
  return "?";
}

Result<Durability> parse_durability(const std::string& s) {
  if (s == "always") return Durability::kAlways;
  if (s == "interval") return Durability::kInterval;
  if (s == "none") return Durability::kNone;
  return Status::invalid("durability must be always, interval or none, not '" + s + "'");
}

Status Config::validate() const {
  if (data_dir.empty()) return Status::invalid("data_dir is required");
  if (max_key_bytes == 0 || max_key_bytes > UINT32_MAX / 2)
    return Status::invalid("max_key_bytes must be between 1 and 2 GiB");
  if (max_value_bytes > UINT32_MAX / 2)
    return Status::invalid("max_value_bytes must be at most 2 GiB");
  if (wal_segment_bytes < 4096) return Status::invalid("wal_segment_bytes must be at least 4096");
  if (durability == Durability::kInterval && sync_interval_ms == 0)
    return Status::invalid("sync_interval_ms must be positive with interval durability");
  if (max_group_bytes == 0) return Status::invalid("max_group_bytes must be positive");
  if (expire_batch == 0) return Status::invalid("expire_batch must be positive");
  return Status::ok();
}

}  // namespace wavekv
