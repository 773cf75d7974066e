#include "net/framing.h"
#include "wavekv/transport.h"

namespace wavekv {

Status PeerSecurity::validate() const {
  switch (mode) {
    case Mode::kNone:
      if (!cluster_key_file.empty() || !ca_file.empty() || !cert_file.empty() || !key_file.empty())
        return Status::invalid("peer security: files given but the mode is none");
      return Status::ok();
    case Mode::kClusterKey:
      if (cluster_key_file.empty())
        return Status::invalid("peer security: the cluster key mode needs a cluster key file");
      if (!ca_file.empty() || !cert_file.empty() || !key_file.empty())
        return Status::invalid(
            "peer security: a cluster key and certificates exclude each other; give one");
      return Status::ok();
    case Mode::kMutualTls:
      if (ca_file.empty() || cert_file.empty() || key_file.empty())
        return Status::invalid(
            "peer security: mutual TLS needs the CA file, the node's certificate file and its key "
            "file");
      if (!cluster_key_file.empty())
        return Status::invalid(
            "peer security: a cluster key and certificates exclude each other; give one");
      return Status::ok();
  }
  return Status::invalid("peer security: unknown mode");
}

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
  WAVEKV_RETURN_IF_ERROR(security.validate());
  if (security.authenticates()) {
    if (handshake_timeout_ms == 0) return Status::invalid("handshake_timeout_ms must be positive");
    if (max_unauthenticated == 0) return Status::invalid("max_unauthenticated must be positive");
    if (max_unauthenticated > max_incoming_connections)
      return Status::invalid("max_unauthenticated must be at most max_incoming_connections");
  }
  return Status::ok();
}

}  // namespace wavekv
