// The peer transport: moves opaque byte strings ("frames") between nodes
// addressed as "host:port". It knows nothing of what a frame means; the
// replication protocol encodes and decodes them (docs/FORMAT.md gives the
// framing on the wire, "Peer transport framing").
//
// Delivery is best effort: a frame may be dropped (destination down, queue
// full, connection broken) and the protocol above recovers by anti-entropy.
// Frames sent to one destination that do arrive, arrive in the order sent.
//
// Peer security (docs/SECURITY.md, "Peers"): with a cluster key or with
// mutual TLS every connection, both ways, runs TLS 1.3 and the handshake
// authenticates the other side before a single frame is read or written; a
// connection whose handshake fails carries nothing. Inside TLS the framing is
// the same as on plain TCP.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "wavekv/status.h"
#include "wavekv/types.h"

namespace wavekv {

// How peers prove they are members.
struct PeerSecurity {
  enum class Mode {
    kNone,        // plain TCP: anyone who reaches the port is a member
    kClusterKey,  // TLS 1.3 with a shared key (wavekv keygen): any holder is a member
    kMutualTls,   // TLS 1.3, node certificates of one cluster CA (wavekv cert): ids are bound
  };
  Mode mode = Mode::kNone;
  std::string cluster_key_file;  // kClusterKey
  std::string ca_file;           // kMutualTls: the cluster CA, the only trust anchor
  std::string cert_file;         // kMutualTls: this node's certificate
  std::string key_file;          // kMutualTls: its private key
  // Frames are authenticated (every mode but kNone).
  bool authenticates() const { return mode != Mode::kNone; }
  // Says what is missing for the mode, if anything.
  Status validate() const;
};

// Who sent a frame, as the transport knows it.
struct PeerIdentity {
  // Mutual TLS: the node id the sender's certificate binds. Else none.
  std::optional<NodeId> node_id;
  // The connection proved membership (a cluster key or a certificate).
  bool authenticated = false;
};

struct TransportConfig {
  // Larger frames are refused both ways: send() returns false, and a peer that
  // announces one has its connection closed.
  uint64_t max_frame_bytes = 128ull << 20;
  uint64_t connect_timeout_ms = 2000;
  // A read or write that makes no progress this long closes the connection.
  uint64_t io_timeout_ms = 10000;
  // An outgoing connection with nothing to send this long is closed. An
  // incoming connection with no frame this long (plus io_timeout_ms) too.
  uint64_t idle_timeout_ms = 60000;
  // After a failed connect, frames to that destination are dropped until the
  // backoff passes; it starts here and doubles per failure up to the maximum.
  uint64_t backoff_initial_ms = 50;
  uint64_t backoff_max_ms = 5000;
  // Per destination: beyond either bound, send() drops the frame and counts it.
  size_t max_queued_frames = 1024;
  uint64_t max_queued_bytes = 256ull << 20;
  // How many destinations may have state (queue, connection, backoff) at once;
  // a frame to one more is dropped. Bounds memory under a flood of addresses.
  size_t max_destinations = 1024;
  // Accepted connections beyond this are closed at once.
  size_t max_incoming_connections = 1024;
  // The buffers of frames being received, over all incoming connections: a
  // frame's buffer grows only as its bytes arrive, and a connection whose
  // frame would take the total past this is closed (frames_refused). At
  // least max_frame_bytes.
  uint64_t max_inbound_buffer_bytes = 256ull << 20;

  PeerSecurity security;
  // With security on: an accepted connection whose TLS handshake has not
  // completed this long after the accept is closed, and so is a dial whose
  // handshake has not within connect_timeout_ms. Connections not yet
  // through the handshake are bounded in all and per source address, so
  // strangers holding half-open connections cannot take the slots members
  // need (members, once authenticated, count only against
  // max_incoming_connections).
  uint64_t handshake_timeout_ms = 5000;
  size_t max_unauthenticated = 64;
  size_t max_unauthenticated_per_source = 8;

  // Says what is wrong with the fields, if anything.
  Status validate() const;
};

struct TransportStats {
  uint64_t frames_sent = 0;      // written to a connection (or handed to a link)
  uint64_t frames_received = 0;  // handed to the handler
  uint64_t bytes_sent = 0;       // frame bytes, without framing
  uint64_t bytes_received = 0;
  uint64_t frames_dropped = 0;    // accepted by send() or refused by a full queue, never sent
  uint64_t frames_refused = 0;    // too large: by send(), or announced by a peer
  uint64_t protocol_errors = 0;   // a peer sent a wrong preface; its connection was closed
  uint64_t connect_failures = 0;  // connects that failed or timed out (handshakes included)
  // Security on: TLS handshakes that failed or timed out, on accepted
  // connections (a stranger, a wrong key or CA) and on our dials (the other
  // side is not a member: nothing was sent to it).
  uint64_t handshake_failures = 0;
  uint64_t dial_handshake_failures = 0;
  uint64_t auth_timeouts = 0;        // accepted connections closed before their handshake ended
  uint64_t connections_refused = 0;  // accepted and closed at once: over a connection bound
  uint64_t connections_open = 0;     // outgoing + incoming, now
  uint64_t frames_queued = 0;        // waiting to be sent, now, over all destinations
  uint64_t bytes_queued = 0;
  uint64_t inbound_buffered_bytes = 0;  // buffers of frames being received, now
};

class Transport {
 public:
  // Called on a transport thread with one whole frame and who sent it. It
  // must hand the frame off quickly and not block; it may call send() (never
  // stop()). With security on, only authenticated connections get this far.
  using Handler = std::function<void(std::string frame, PeerIdentity from)>;

  virtual ~Transport() = default;
  // Listens on "host:port" (port 0 picks a free one) and starts the transport
  // thread. Fails with kInvalidArgument on a bad address or config, kIOError if
  // the address cannot be bound. Once only: a stopped transport stays stopped.
  virtual Status start(const std::string& listen_address, Handler handler) = 0;
  // The real "host:port" once started; empty before.
  virtual std::string local_address() const = 0;
  // Queues a frame for `address`. Never blocks. Returns false if the frame was
  // dropped right away (too large, queue full, destination in backoff, not
  // started or stopped); true does not promise delivery.
  virtual bool send(const std::string& address, std::string frame) = 0;
  // Closes every connection and stops the thread. Idempotent. After it returns
  // the handler is never called again. Must not be called from the handler.
  virtual void stop() = 0;
  virtual TransportStats stats() const = 0;
  // Reads the credentials (key file, certificates) again: new connections
  // use the new ones, open connections keep what they started with. On
  // failure the old credentials stay and the error says why. Without
  // security there is nothing to read: ok.
  virtual Status reload_credentials() { return Status::ok(); }
};

// The real transport: TCP (TLS with security on), one thread of its own.
std::unique_ptr<Transport> make_tcp_transport(TransportConfig config = {});

}  // namespace wavekv
