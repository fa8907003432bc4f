// multipart/form-data bodies: the Content-Type's boundary, the incremental
// parser fed in slices of fuzzed sizes (the same body cut differently must
// give the same parts), and the upload spool writing into a temporary
// directory (its file must be gone once the spool is dropped).
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "adapters/multipart.hpp"
#include "fuzz_util.hpp"

using namespace atlas;

namespace {

struct parsed {
  std::vector<std::string> events; // "begin name|filename|type", data, "end"
  bool ok = true;
  bool done = false;
};

parsed parse(std::string_view boundary, std::string_view body, uint8_t slice) {
  parsed out;
  multipart_parser p{boundary, {
    [&](const multipart_part& part) {
      out.events.push_back("begin " + part.name + "|" + part.filename + "|" + part.content_type);
      return true;
    },
    [&](std::string_view d) {
      if (out.events.empty() || out.events.back().rfind("data ", 0) != 0)
        out.events.emplace_back("data ");
      out.events.back() += d;
      return true;
    },
    [&] {
      out.events.emplace_back("end");
      return true;
    }}};
  const size_t step = slice == 0 ? body.size() + 1 : slice;
  for (size_t at = 0; at < body.size() && out.ok; at += step)
    out.ok = p.feed(body.substr(at, step)).ok();
  out.done = p.done();
  return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::input in{data, size};
  const uint8_t slice = in.byte();
  const std::string content_type{in.take(in.byte())};
  const std::string body{in.rest()};

  auto boundary = multipart_boundary(content_type);
  const std::string b = boundary ? *boundary : std::string{"XyZ"};
  if (boundary && (boundary->empty() || boundary->size() > 200))
    std::abort(); // RFC 2046: 1 to 70 characters; anything usable is short

  auto whole = parse(b, body, 0);
  auto sliced = parse(b, body, slice);
  // Slicing must not change what was read, up to the first failure.
  if (whole.ok && sliced.ok && (whole.events != sliced.events || whole.done != sliced.done))
    std::abort();
  if (whole.ok != sliced.ok)
    std::abort();

  const std::string dir = fuzz::temp_dir() + "/spool";
  {
    upload_spool spool{dir, b};
    const size_t step = slice == 0 ? body.size() + 1 : slice;
    for (size_t at = 0; at < body.size(); at += step)
      if (!spool.feed(std::string_view{body}.substr(at, step)).ok())
        break;
    if (!spool.path().empty() && spool.path().rfind(dir + "/", 0) != 0)
      std::abort(); // the client's file name chose where the file went
  }
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_empty(dir, ec))
    std::abort(); // a dropped spool left its file behind
  return 0;
}
