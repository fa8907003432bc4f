#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "adapters/basp_framer.hpp"
#include "adapters/event_loop.hpp"
#include "adapters/status.hpp"

namespace atlas {

struct caf_front_options {
  /// Where peers connect: an IP address, or empty for every interface (IPv6
  /// and IPv4 where the system has both, as CAF's publish() without an
  /// address did).
  std::string host;
  uint16_t port = 0; ///< 0: the system picks one (see port())
  /// CAF's own listener, on 127.0.0.1.
  uint16_t target_port = 0;
  /// What one BASP message may announce (see basp_framer).
  basp_framer::limits limits;
  /// Past this many bytes queued towards one side, the other side is not
  /// read until the queue has drained below half of it.
  size_t high_water = 8 << 20;
};

/// The public door of the cluster port: listens where peers connect and
/// relays each connection to CAF's listener on loopback. Towards CAF it
/// passes only whole BASP messages (basp_framer): a peer must send the bytes
/// of a message before any of it reaches CAF, which would otherwise reserve
/// whatever length a header announces before anything is checked (CAF 0.17
/// has no limit of its own). A message announcing more than the limits
/// closes the connection with one warning naming the peer. CAF's bytes go
/// to the peer unchanged. Closing either side closes the other.
///
/// Lives on `loop`; listen() and close() may be called from any thread
/// (they wait for the loop, at most 10 s). No CAF in here.
class caf_front {
public:
  caf_front(event_loop& loop, caf_front_options opts);
  ~caf_front(); // close()
  caf_front(const caf_front&) = delete;
  caf_front& operator=(const caf_front&) = delete;

  /// Binds and listens; fails with a message naming the address.
  status listen();

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
