// JSON job submissions (POST /queued_jobs) and stored records: the JSON
// adapter, job_from_submission, and job_from_json. A record built from a
// submission must survive to_json -> job_from_json unchanged.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "adapters/json.hpp"
#include "fuzz_util.hpp"
#include "library/job_codec.hpp"

using namespace atlas;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text{reinterpret_cast<const char*>(data), size};
  std::string error;
  if (auto v = json::parse(text, error)) {
    // What we print we must read back, and printing is stable after one
    // round (the first may normalise: -0 is printed "-0" and read back as
    // the integer 0).
    std::string again_error;
    auto again = json::parse(v->dump(), again_error);
    if (!again)
      std::abort();
    auto dumped = again->dump();
    auto third = json::parse(dumped, again_error);
    if (!third || third->dump() != dumped)
      std::abort();
    (void)v->get_string("job_id");
    (void)v->get_int("priority");
  } else if (error.empty()) {
    std::abort(); // a refusal must say why
  }

  if (auto rec = job_from_submission(text)) {
    if (!valid_job_id(rec->job_id))
      std::abort();
    auto back = job_from_json(to_json(rec.value()));
    if (!back || to_json(back.value()) != to_json(rec.value()))
      std::abort();
  } else if (rec.error().empty()) {
    std::abort(); // a refusal must say why
  }

  if (auto rec = job_from_json(text)) {
    auto back = job_from_json(to_json(rec.value()));
    if (!back || to_json(back.value()) != to_json(rec.value()))
      std::abort();
  }
  return 0;
}
