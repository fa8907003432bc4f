// What a cluster peer sends, once its TLS is up: any bytes through the
// framer and the guard (adapters/basp_framer, adapters/basp_guard), split
// where the first byte says, with the requests this node "sent" taken from
// the input too. Whatever the guard lets pass must be whole messages, each
// passing the guard again on a fresh connection bound the same way.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "adapters/basp_framer.hpp"
#include "adapters/basp_guard.hpp"
#include "adapters/peer_directory.hpp"

using namespace atlas;

namespace {

const std::string local = std::string("\x1c\x2e\x0d\x3a\0\0\0\0", 8) + std::string(24, 'L');

void check_whole(std::string_view out) {
  while (!out.empty()) {
    if (out.size() < basp_framer::header_size)
      std::abort();
    auto size = basp_framer::header_size + basp_framer::payload_len(out.data());
    if (out.size() < size)
      std::abort();
    out.remove_prefix(size);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2)
    return 0;
  std::string_view in{reinterpret_cast<const char*>(data) + 2, size - 2};
  size_t cut = std::min<size_t>(in.size(), data[0] * 16u);
  bool client = (data[1] & 1) != 0;
  peer_directory dir;
  dir.add_local(local);
  basp_framer::limits lim;
  lim.first_payload = 4096;
  lim.payload = 1 << 16;
  basp_framer framer{lim};
  basp_guard guard{dir, {"fuzz", "worker", true}, client};
  guard.sent(in.substr(0, cut)); // what this node asked, as bytes it wrote
  std::string whole, passed;
  for (auto part : {in.substr(0, cut), in.substr(cut)}) {
    if (framer.feed(part, whole) == basp_framer::verdict::too_large)
      break;
    if (!guard.check(whole, passed).empty())
      break;
    whole.clear();
  }
  check_whole(passed);
  return 0;
}
