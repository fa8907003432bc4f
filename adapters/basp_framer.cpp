#include "adapters/basp_framer.hpp"

#include <algorithm>

namespace atlas {

namespace {

constexpr size_t keep_capacity = 64 << 10; // a bigger hold is given back once passed on

} // namespace

uint32_t basp_framer::payload_len(const char* header) {
  const auto* p = reinterpret_cast<const unsigned char*>(header) + payload_len_offset;
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

basp_framer::verdict basp_framer::feed(std::string_view data, std::string& out) {
  if (refused_)
    return verdict::too_large;
  while (!data.empty()) {
    if (hold_.size() < header_size) {
      const size_t take = std::min(header_size - hold_.size(), data.size());
      if (hold_.empty() && take == header_size) {
        // The common case: the header is whole in `data`; read it in place
        // and, when the payload is there too, pass it on without holding.
        const uint32_t len = payload_len(data.data());
        const uint32_t cap = messages_ == 0 ? limits_.first_payload : limits_.payload;
        if (len > cap) {
          refused_ = true;
          refused_op_ = static_cast<uint8_t>(data[0]);
          refused_len_ = len;
          return verdict::too_large;
        }
        const size_t whole = header_size + size_t{len};
        if (data.size() >= whole) {
          out.append(data.data(), whole);
          data.remove_prefix(whole);
          ++messages_;
          continue;
        }
      }
      hold_.append(data.data(), take);
      data.remove_prefix(take);
      if (hold_.size() < header_size)
        break;
      const uint32_t len = payload_len(hold_.data());
      const uint32_t cap = messages_ == 0 ? limits_.first_payload : limits_.payload;
      if (len > cap) {
        refused_ = true;
        refused_op_ = static_cast<uint8_t>(hold_[0]);
        refused_len_ = len;
        std::string{}.swap(hold_);
        return verdict::too_large;
      }
      need_ = header_size + size_t{len};
    }
    // Deliberately no reserve(need_): memory grows with what arrives.
    const size_t take = std::min(need_ - hold_.size(), data.size());
    hold_.append(data.data(), take);
    data.remove_prefix(take);
    if (hold_.size() < need_)
      break;
    if (out.empty())
      out.swap(hold_);
    else
      out += hold_;
    if (hold_.capacity() > keep_capacity)
      std::string{}.swap(hold_);
    hold_.clear();
    need_ = header_size;
    ++messages_;
  }
  return verdict::ok;
}

} // namespace atlas
