#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "adapters/status.hpp"

struct ssl_ctx_st;
struct ssl_st;

namespace atlas {

/// Who a certificate says its holder is: the subject's CN (a node id, or an
/// operator's name) and OU (its role: master, worker or operator).
struct peer_identity {
  std::string name;
  std::string role;
  bool verified = false; ///< false: a plaintext loopback peer (cluster.tls: false)
};

/// The PEM files of one side of a mutual-TLS link.
struct tls_files {
  std::string ca_cert; ///< the cluster CA: the only issuer a peer may show
  std::string cert;    ///< this side's certificate, signed by that CA
  std::string key;     ///< its private key
};

/// An OpenSSL context for the cluster's links, both ways: TLS 1.3 only, the
/// peer's certificate required and verified against the cluster CA on both
/// sides. Immutable once made; shared by every session of a front.
class tls_context {
public:
  /// Loads `files`; fails with a message naming the file that is wrong.
  static std::shared_ptr<tls_context> make(const tls_files& files, std::string& error);
  ~tls_context();
  tls_context(const tls_context&) = delete;
  tls_context& operator=(const tls_context&) = delete;

  ssl_ctx_st* raw() const { return ctx_; }

private:
  explicit tls_context(ssl_ctx_st* ctx) : ctx_(ctx) {}
  ssl_ctx_st* ctx_;
};

/// One TLS connection over memory buffers: the caller moves bytes between
/// the socket and this object (no I/O in here). Not thread-safe; one per
/// connection, on the loop thread.
class tls_session {
public:
  /// `server`: this side accepted the connection.
  tls_session(std::shared_ptr<tls_context> ctx, bool server);
  ~tls_session();
  tls_session(const tls_session&) = delete;
  tls_session& operator=(const tls_session&) = delete;

  /// Client side: the first handshake bytes to send (empty on a server).
  status start(std::string& to_peer);

  /// Bytes from the peer: appends what they decrypt to `plain` and what
  /// must go back (handshake, alerts) to `to_peer`.
  status feed(std::string_view from_peer, std::string& plain, std::string& to_peer);

  /// Encrypts `plain` into `to_peer` (only once established()).
  status write(std::string_view plain, std::string& to_peer);

  /// The handshake completed and the peer's certificate verified.
  bool established() const { return established_; }

  /// The peer's identity (after established()).
  const peer_identity& peer() const { return peer_; }

private:
  status drain(std::string& to_peer);
  status failure(int rc, std::string_view during);

  std::shared_ptr<tls_context> ctx_;
  bool server_;
  ssl_st* ssl_ = nullptr;
  bool established_ = false;
  peer_identity peer_;
};

/// Creates the cluster CA (EC P-256, ten years) as two PEM files; the key
/// is written 0600. Never overwrites: fails when either file exists.
status make_cluster_ca(const std::string& key_path, const std::string& cert_path);

/// Issues a certificate for `name` in `role` (CN and OU), valid `seconds`,
/// signed by the CA in `ca`; writes the new key (0600) and certificate.
status issue_certificate(const tls_files& ca, const std::string& name, const std::string& role,
                         long seconds, const std::string& key_out, const std::string& cert_out);

/// The CN, OU and remaining validity (seconds) of a certificate file.
status read_certificate(const std::string& cert_path, peer_identity& who, long& seconds_left);

} // namespace atlas
