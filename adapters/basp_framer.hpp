#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace atlas {

/// Cuts the byte stream a peer sends to CAF 0.17's BASP into whole messages,
/// holding each one until all of its payload has arrived (store-and-forward),
/// so that what is held follows the bytes received, never a length a header
/// announces. No CAF in here: the layout is CAF 0.17.6's
/// `caf/io/basp/header.hpp` as its binary serializer writes it (32 bytes,
/// integers big-endian):
///
///   operation u8 | padding u8 u8 | flags u8 | payload_len u32 |
///   operation_data u64 | source_actor u64 | dest_actor u64
///
/// followed by payload_len bytes of payload.
///
/// Not thread-safe; one per connection.
class basp_framer {
public:
  static constexpr size_t header_size = 32;
  static constexpr size_t payload_len_offset = 4;

  /// What one message may announce: the first message on a connection (the
  /// client's handshake), and every later one.
  struct limits {
    uint32_t first_payload = 64u << 10;
    uint32_t payload = 512u << 20;
  };

  enum class verdict {
    ok,       ///< everything fed was taken; whole messages were appended
    too_large ///< a header announced more than its limit; the stream is refused
  };

  explicit basp_framer(limits l) : limits_(l) {}

  /// Takes `data`; appends every message it completes (header and payload,
  /// bytes unchanged) to `out`, keeps the incomplete rest. After too_large,
  /// every further call answers too_large and takes nothing.
  verdict feed(std::string_view data, std::string& out);

  /// Bytes held for the message not yet complete.
  size_t held() const { return hold_.size(); }

  /// Whole messages passed so far.
  uint64_t messages() const { return messages_; }

  /// The refused header's operation and announced length (after too_large).
  uint8_t refused_operation() const { return refused_op_; }
  uint32_t refused_payload() const { return refused_len_; }

  /// The payload length a 32-byte header announces (big-endian u32 at 4).
  static uint32_t payload_len(const char* header);

private:
  limits limits_;
  std::string hold_;  // the incomplete message: header (or part), then payload
  size_t need_ = header_size; // bytes the held message has in all, once its header is known
  uint64_t messages_ = 0;
  bool refused_ = false;
  uint8_t refused_op_ = 0;
  uint32_t refused_len_ = 0;
};

} // namespace atlas
