// Request targets and routing helpers: split_target (what the connection
// does with every request line), then the gateway's split_path, parse_query
// and parse_index, and the writers that echo request data back (json_error,
// response_head with client-chosen header text).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "adapters/http_wire.hpp"
#include "adapters/json.hpp"
#include "fuzz_util.hpp"
#include "library/http_answers.hpp"

using namespace atlas;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::input in{data, size};
  const std::string target{in.take(in.byte() * 4u + in.byte())};
  const std::string extra{in.rest()};

  http_request req;
  if (http_wire::split_target(target, req)) {
    // A routed path never holds a NUL and always starts at '/'.
    if (req.path.empty() || req.path[0] != '/' || req.path.find('\0') != std::string::npos)
      std::abort();
    for (const auto& part : split_path(req.path))
      if (part.empty() || part.find('/') != std::string::npos)
        std::abort();
  }
  for (const auto& [key, value] : parse_query(req.query))
    (void)key, (void)value;
  (void)parse_index(extra);
  (void)split_path(extra);

  // Anything a client sends may end up in an error message: it must stay
  // one valid JSON object.
  std::string err;
  const auto body = http_wire::json_error(extra);
  if (!json::parse(body, err))
    std::abort();
  if (!json::parse(json::quote(extra), err)) // how answers quote job output
    std::abort();

  // Header names and values from the client never split the head.
  http_response r;
  r.status = static_cast<uint16_t>(size % 700);
  r.content_type = target;
  r.headers[target] = extra;
  r.headers["x-echo"] = extra;
  const auto head = http_wire::response_head(r, size % 2, static_cast<int64_t>(size) - 5);
  size_t lines = 0;
  for (size_t i = 0; i < head.size(); ++i) {
    if (head[i] == '\n' && (i == 0 || head[i - 1] != '\r'))
      std::abort(); // a bare LF: header injection
    if (head[i] == '\r' && (i + 1 >= head.size() || head[i + 1] != '\n'))
      std::abort(); // a bare CR
    lines += head[i] == '\n';
  }
  if (head.size() < 4 || head.compare(head.size() - 4, 4, "\r\n\r\n") != 0)
    std::abort();
  (void)http_wire::chunk(extra);
  (void)lines;
  return 0;
}
