#include "adapters/basp_guard.hpp"

#include "adapters/basp_framer.hpp"

namespace atlas {

namespace {

// caf/io/basp/message_type.hpp and header.hpp (0.17.6).
enum op : uint8_t {
  server_handshake = 0,
  client_handshake = 1,
  direct_message = 2,
  routed_message = 3,
  monitor_message = 4,
  down_message = 5,
  heartbeat = 6,
};
constexpr uint8_t named_receiver_flag = 0x01;
// caf/message_id.hpp: a response, and the bits of the request id.
constexpr uint64_t response_flag = 0x8000000000000000ull;
constexpr uint64_t request_id_mask = 0x0FFFFFFFFFFFFFFFull;
// Unanswered requests remembered per connection (those that timed out are
// never answered); past this the oldest knowledge is dropped.
constexpr size_t max_asked = 1 << 20;

uint64_t u64_at(std::string_view s, size_t at) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i)
    v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

} // namespace

std::string basp_guard::check(std::string_view messages, std::string& out) {
  std::string why;
  while (!messages.empty()) {
    if (messages.size() < basp_framer::header_size)
      return "a cut BASP message";
    auto size = basp_framer::header_size + basp_framer::payload_len(messages.data());
    if (messages.size() < size)
      return "a cut BASP message";
    auto v = check_one(messages.substr(0, basp_framer::header_size),
                       messages.substr(basp_framer::header_size, size - basp_framer::header_size),
                       why);
    if (v == verdict::refuse)
      return why;
    if (v == verdict::pass)
      out.append(messages.data(), size);
    messages.remove_prefix(size);
  }
  return {};
}

void basp_guard::sent(std::string_view messages) {
  while (messages.size() >= basp_framer::header_size) {
    auto size = basp_framer::header_size + basp_framer::payload_len(messages.data());
    if (static_cast<uint8_t>(messages[0]) == direct_message) {
      auto id = u64_at(messages, 8);
      if ((id & response_flag) == 0 && (id & request_id_mask) != 0) {
        if (asked_.size() >= max_asked)
          asked_.clear();
        asked_.emplace(u64_at(messages, 16), id & request_id_mask);
      }
    }
    if (messages.size() < size)
      break;
    messages.remove_prefix(size);
  }
}

/// The node id serialized at `offset`: as long as this node's own, and of
/// the same kind (its first 8 bytes name the implementation).
std::string basp_guard::node_at(std::string_view payload, size_t offset, size_t& used) const {
  auto local = dir_.local();
  used = local.size();
  if (local.size() < 8 || payload.size() < offset + local.size()
      || payload.substr(offset, 8) != std::string_view{local}.substr(0, 8))
    return {};
  return std::string{payload.substr(offset, local.size())};
}

basp_guard::verdict basp_guard::check_one(std::string_view header, std::string_view payload,
                                          std::string& why) {
  auto refuse = [&](std::string text) {
    why = std::move(text);
    return verdict::refuse;
  };
  auto operation = static_cast<uint8_t>(header[0]);
  auto flags = static_cast<uint8_t>(header[3]);
  const uint8_t handshake = peer_is_client_ ? client_handshake : server_handshake;
  size_t used = 0;
  if (node_.empty()) { // the handshake comes first and names the peer
    if (operation != handshake)
      return refuse("its first message was not a BASP handshake (operation "
             + std::to_string(operation) + ")");
    auto node = node_at(payload, 0, used);
    if (node.empty() || (peer_is_client_ && payload.size() != used))
      return refuse("its handshake does not carry a node id");
    if (!dir_.bind(node, who_))
      return refuse("its handshake claims a node id that belongs to another node");
    node_ = std::move(node);
    return verdict::pass;
  }
  switch (operation) {
    case client_handshake: // repeated with the connection-select flag
      if (peer_is_client_ && node_at(payload, 0, used) == node_ && payload.size() == used)
        return verdict::pass;
      return refuse("a second handshake with another node id");
    case heartbeat:
      return verdict::pass;
    case direct_message:
      if ((flags & named_receiver_flag) != 0)
        return verdict::drop;
      if (payload.empty() || payload[0] != 0)
        return refuse("a message with forwarding stages");
      if (auto id = u64_at(header, 8); (id & response_flag) != 0) {
        // Only an answer to what we asked this peer reaches the asker.
        return asked_.erase({u64_at(header, 24), id & request_id_mask}) > 0 ? verdict::pass
                                                                             : verdict::drop;
      }
      if (u64_at(header, 16) == 0)
        return refuse("an anonymous message");
      return verdict::pass;
    case monitor_message:
    case down_message: {
      auto src = node_at(payload, 0, used);
      auto dst = node_at(payload, used, used);
      if (src != node_ || !dir_.is_local(dst))
        return refuse("a monitor or down message between other nodes");
      return verdict::pass;
    }
    case routed_message:
      return refuse("a routed message (claims another node as its source)");
    default:
      return refuse("BASP operation " + std::to_string(operation) + " is not allowed from a peer");
  }
}

} // namespace atlas
