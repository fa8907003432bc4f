#pragma once

#include "adapters/status.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct redisContext; // hiredis stays out of this header

namespace atlas {

/// One reply from Redis, copied out of hiredis so it outlives the connection.
struct redis_reply {
  enum class kind : uint8_t { nil, string, integer, array, status, error };

  kind type = kind::nil;
  std::string str;                   // string, status and error text (binary-safe)
  long long integer = 0;             // integer replies
  std::vector<redis_reply> elements; // array replies (EXEC, HGETALL, ...)

  /// True for a Redis error reply such as "WRONGTYPE ..." or "ERR ...".
  bool is_error() const { return type == kind::error; }
  /// True for a nil bulk string or nil array (e.g. GET on a missing key).
  bool is_nil() const { return type == kind::nil; }
  /// True for the status reply `text` (e.g. is_status("OK") after SET).
  bool is_status(const std::string& text) const {
    return type == kind::status && str == text;
  }
};

/// Where Redis is: one address, or Redis Sentinels that name the current
/// primary of `master_name` (then host and port are what they last said).
struct redis_target {
  std::string host = "127.0.0.1";
  uint16_t port = 5556;
  std::vector<std::string> sentinels; // "host:port" each; empty: host and port
  std::string master_name = "atlas";
  /// "127.0.0.1:5556", or "primary 'atlas' of sentinels a:1, b:2".
  std::string describe() const;
};

/// A synchronous connection to one Redis server, built on hiredis.
///
/// Threads: not thread-safe. One thread at a time uses it (in Atlas, the
/// detached actor that owns it); every call blocks that thread for at most
/// about two timeouts (one try plus one retry).
///
/// Failure: no exception leaves this class. Transport failures (Redis
/// unreachable, connection lost, timeout) come back as a failed status or an
/// empty optional with a message naming host:port. A Redis error reply is not
/// a failure: it comes back as a reply of kind error.
///
/// Reconnecting: a call made while not connected connects first. When a
/// connection turns out to be broken, the call reconnects once and resends
/// once, immediately; backoff between calls is the caller's business.
/// A timed-out call is not resent, because Redis may still apply it; the
/// connection is dropped and the next call reconnects.
///
/// Sentinels: with a target that names them, every connect asks them (in
/// turn) for the current primary and checks its ROLE, so a lost connection
/// or a READONLY reply (the primary was demoted) leads to the new primary
/// on the next try. Sentinels close clients of a demoted primary
/// themselves, which is how a failover is noticed between calls. A command cut off by
/// a lost connection may have been applied before the loss, so a resent
/// non-idempotent command (INCR, RPUSH) can, rarely, apply twice.
class redis_client {
public:
  /// Does not connect; call connect() or just issue a command.
  /// `timeout` bounds the connect and every read and write.
  redis_client(std::string host, uint16_t port,
               std::chrono::milliseconds timeout = std::chrono::seconds(2));
  explicit redis_client(redis_target target,
                        std::chrono::milliseconds timeout = std::chrono::seconds(2));
  ~redis_client();

  redis_client(const redis_client&) = delete;
  redis_client& operator=(const redis_client&) = delete;
  redis_client(redis_client&&) noexcept;
  redis_client& operator=(redis_client&&) noexcept;

  /// (Re)connects, dropping any current connection. On failure the message
  /// reads e.g. "cannot reach Redis at 127.0.0.1:5556: Connection refused".
  status connect();

  /// True while a connection is held that has not failed yet. A server that
  /// went away is only noticed by the next command.
  bool connected() const;

  /// Closes the connection, if any. The next command reconnects.
  void disconnect();

  /// Runs one command; each argument is sent as-is (binary-safe), e.g.
  /// {"SET", key, value}. Returns the reply, or nullopt on a transport
  /// failure with the reason in `*error` when `error` is given.
  std::optional<redis_reply> command(const std::vector<std::string>& argv,
                                     std::string* error = nullptr);

  /// Sends all `cmds` in one round trip and reads their replies, in order.
  /// All or nothing: either every reply (some may be error replies) or
  /// nullopt. Commands are not atomic: after a lost connection some of them
  /// may have been applied; use transaction() when that matters.
  std::optional<std::vector<redis_reply>> pipeline(
      const std::vector<std::vector<std::string>>& cmds, std::string* error = nullptr);

  /// Runs `cmds` between MULTI and EXEC in one round trip, so they apply
  /// atomically, and returns EXEC's replies, one per command (a command that
  /// failed at run time, e.g. WRONGTYPE, gives an error reply there). When
  /// Redis refuses the whole transaction (EXECABORT: a command was rejected
  /// while queued) nothing is applied and the result is nullopt.
  std::optional<std::vector<redis_reply>> transaction(
      const std::vector<std::vector<std::string>>& cmds, std::string* error = nullptr);

  const std::string& host() const { return target_.host; }
  uint16_t port() const { return target_.port; }
  const redis_target& target() const { return target_; }

private:
  struct context_deleter {
    void operator()(redisContext* c) const;
  };
  using context_ptr = std::unique_ptr<redisContext, context_deleter>;

  // One try of a pipeline over the current connection; nullopt on a
  // transport failure, with `timed_out` telling whether it was a timeout.
  std::optional<std::vector<redis_reply>> try_pipeline(
      const std::vector<std::vector<std::string>>& cmds, std::string& error,
      bool& timed_out);
  std::string where() const;
  // Asks the sentinels for the primary; sets target_.host and port.
  status resolve_primary();

  redis_target target_;
  std::chrono::milliseconds timeout_;
  context_ptr ctx_;
};

} // namespace atlas
