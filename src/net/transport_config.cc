#include "net/framing.h"
#include "wavekv/transport.h"

namespace wavekv {

Status TransportConfig::validate() const {
  if (max_frame_bytes == 0 || max_frame_bytes > net::kMaxEncodableFrameBytes)
    return Status::invalid("max_frame_bytes must be between 1 and 4 GiB - 1 (a u32 length)");
  if (connect_timeout_ms == 0) return Status::invalid("connect_timeout_ms must be positive");
  if (io_timeout_ms == 0) return Status::invalid("io_timeout_ms must be positive");
  if (idle_timeout_ms == 0) return Status::invalid("idle_timeout_ms must be positive");
  if (backoff_initial_ms == 0) return Status::invalid("backoff_initial_ms must be positive");
  if (backoff_max_ms < backoff_initial_ms)
    return Status::invalid("backoff_max_ms must be at least backoff_initial_ms");
  if (max_queued_frames == 0) return Status::invalid("max_queued_frames must be positive");
  if (max_queued_bytes < max_frame_bytes)
    return Status::invalid("max_queued_bytes must be at least max_frame_bytes");
  if (max_inbound_buffer_bytes < max_frame_bytes)
    return Status::invalid("max_inbound_buffer_bytes must be at least max_frame_bytes");
  if (max_destinations == 0) return Status::invalid("max_destinations must be positive");
  if (max_incoming_connections == 0)
    return Status::invalid("max_incoming_connections must be positive");
  return Status::ok();
}

}  // namespace wavekv
