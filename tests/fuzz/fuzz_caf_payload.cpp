// What a remote node can send: CAF's binary_deserializer on any bytes, into
// each registered message type and into a whole caf::message (the type
// names chosen by the sender, as BASP reads them). CAF stays in this one
// harness. The first byte picks the target; a value that deserializes must
// serialize again.
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <memory>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/message.hpp>

#include "messages/actors.hpp"
#include "messages/introspection.hpp"
#include "messages/types.hpp"

using namespace atlas;

namespace {

struct system_holder {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  system_holder() {
    register_message_types(cfg);
    cfg.set("scheduler.max-threads", 1);
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

caf::actor_system& sys() {
  // Never destroyed: tearing an actor system down from exit() handlers
  // crashes inside CAF, and the fuzzer ends with exit().
  static auto* h = new system_holder;
  return *h->sys;
}

template <class T>
void read(const char* data, size_t size) {
  T x;
  caf::binary_deserializer source{sys(), data, size};
  if (source(x))
    return; // refused: fine
  std::vector<char> buf;
  caf::binary_serializer sink{sys(), buf};
  if (sink(x))
    std::abort(); // what we read we must be able to write back
}

template <class T>
void write_seed(const std::string& dir, char selector, const std::string& name, T x) {
  std::vector<char> buf{selector};
  caf::binary_serializer sink{sys(), buf};
  if (sink(x))
    std::abort();
  std::ofstream{dir + "/" + name, std::ios::binary}.write(buf.data(), static_cast<std::streamsize>(buf.size()));
}

} // namespace

/// With ATLAS_FUZZ_WRITE_SEEDS=<dir>, writes one serialized value of each
/// target into <dir> (how corpus/caf_payload was made) and exits.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* dir = std::getenv("ATLAS_FUZZ_WRITE_SEEDS");
  if (dir == nullptr)
    return 0;
  job_record rec;
  rec.job_id = "j-1";
  rec.spec = R"({"command":["main.py"]})";
  rec.state = job_state::running;
  rec.history.push_back(job_transition{job_state::queued, 1.5, ""});
  rec.node = "n1";
  write_seed(dir, 0, "job_record", rec);
  write_seed(dir, 1, "job_report", job_report{});
  slot_info slot;
  slot.key = "n1/0";
  slot.gpus = {"0", "1"};
  write_seed(dir, 2, "slot_info", slot);
  write_seed(dir, 3, "node_info", node_info{});
  http_request req;
  req.method = "GET";
  req.path = "/jobs/j-1";
  req.headers = {{"host", "a"}, {"x-atlas-user", "u"}};
  write_seed(dir, 4, "http_request", req);
  write_seed(dir, 5, "http_response", http_response{});
  write_seed(dir, 6, "queue_entry", queue_entry{});
  write_seed(dir, 7, "node_view", node_view{});
  write_seed(dir, 8, "job_records", std::vector<job_record>{rec, rec});
  write_seed(dir, 9, "message", caf::make_message(rec, req, std::string{"x"}));
  std::_Exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  auto* rest = reinterpret_cast<const char*>(data + 1);
  const size_t n = size - 1;
  switch (data[0] % 10) {
    case 0: read<job_record>(rest, n); break;
    case 1: read<job_report>(rest, n); break;
    case 2: read<slot_info>(rest, n); break;
    case 3: read<node_info>(rest, n); break;
    case 4: read<http_request>(rest, n); break;
    case 5: read<http_response>(rest, n); break;
    case 6: read<queue_entry>(rest, n); break;
    case 7: read<node_view>(rest, n); break;
    case 8: read<std::vector<job_record>>(rest, n); break;
    default: read<caf::message>(rest, n); break;
  }
  return 0;
}
