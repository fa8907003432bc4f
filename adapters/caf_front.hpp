#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "adapters/basp_framer.hpp"
#include "adapters/event_loop.hpp"
#include "adapters/peer_directory.hpp"
#include "adapters/status.hpp"
#include "adapters/tls.hpp"

namespace atlas {

/// Hands CAF its end of a checked connection (a connected AF_UNIX stream
/// socket, which the callee then owns). Called on the loop thread.
using caf_attach = std::function<void(int caf_fd, const peer_identity& peer)>;

struct caf_front_options {
  /// Where peers connect: an IP address, or empty for every interface (IPv6
  /// and IPv4 where the system has both, as CAF's publish() without an
  /// address did).
  std::string host;
  uint16_t port = 0; ///< 0: the system picks one (see port())
  /// Mutual TLS with the cluster's certificates: where the context comes
  /// from, asked (on the loop thread) for each new connection, so that a
  /// worker may start before the master made the cluster CA and a renewed
  /// certificate is used. Empty: plaintext, which only loopback peers may
  /// use (cluster.tls: false).
  std::function<std::shared_ptr<tls_context>(std::string& error)> tls;
  /// Roles (certificate OU) that may connect to this node's listener.
  std::set<std::string> roles = {"master", "worker", "operator"};
  /// Where each accepted connection goes once its peer is known.
  caf_attach attach;
  /// Bindings of peers' CAF node ids to their identities (basp_guard).
  peer_directory* peers = &cluster_peers();
  /// What one BASP message may announce (see basp_framer).
  basp_framer::limits limits;
  /// Past this many bytes queued towards one side, the other side is not
  /// read until the queue has drained below half of it.
  size_t high_water = 8 << 20;
  /// A peer has this long to complete the TLS handshake.
  uint64_t handshake_ms = 10000;
};

/// The cluster port of a node, both ways: it accepts peers (listen()) and
/// dials the master (dial()). Each connection is TLS 1.3 with a certificate
/// of the cluster CA on both sides, terminated here; CAF gets the plaintext
/// through a socketpair, so CAF listens on no port at all and nobody reaches
/// it without a certificate. Towards CAF only whole BASP messages pass
/// (basp_framer: nothing is reserved for a length a header merely
/// announces), and each is checked against the peer's identity first
/// (basp_guard). A refused message closes the connection with one warning
/// naming the peer. Closing either side closes the other.
///
/// Lives on `loop`; listen(), dial() and close() may be called from any
/// thread (listen() and close() wait for the loop, at most 10 s). No CAF in
/// here.
class caf_front {
public:
  caf_front(event_loop& loop, caf_front_options opts);
  ~caf_front(); // close()
  caf_front(const caf_front&) = delete;
  caf_front& operator=(const caf_front&) = delete;

  /// Binds and listens; fails with a message naming the address.
  status listen();

  /// Connects to a master at `host`:`port`. Once its certificate shows
  /// `role` (with TLS) and the link is up, `ready` gets CAF's end; else
  /// `failed` gets why. Exactly one of them is called, on the loop thread.
  void dial(std::string host, uint16_t port, std::string role,
            std::function<void(int caf_fd, const peer_identity& peer)> ready,
            std::function<void(const std::string& error)> failed);

  /// The port bound (after a successful listen()).
  uint16_t port() const;

  /// Connections open now (for tests).
  size_t connections() const;

  /// Stops listening and closes every relayed connection.
  void close();

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace atlas
