// YAML configuration: any text in any of the files a node or the CLI reads
// (atlas.config.yaml, the original installer's files, a submission config)
// loads to a config or one error line; nothing throws or crashes.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "fuzz_util.hpp"
#include "library/config.hpp"

using namespace atlas;

namespace {

const char* const files[] = {
  "config/atlas.config.yaml",
  "config/local_docker_scheduler/tracker_client_plugins.yaml",
  "config/local_docker_scheduler/worker_config/execution/default.config.yaml",
  "config/local_docker_scheduler/database.config.yaml",
  "config/local_docker_scheduler/worker_config/submission/scheduler.config.yaml",
  "config/submission/fuzz.config.yaml",
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::input in{data, size};
  const std::string home = fuzz::temp_dir() + "/home";
  const std::string file = home + "/" + files[in.byte() % std::size(files)];
  const auto text = in.rest();
  std::filesystem::create_directories(std::filesystem::path{file}.parent_path());
  {
    std::ofstream out{file, std::ios::binary | std::ios::trunc};
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  std::map<std::string, std::string> env{{"FOUNDATIONS_HOME", home}, {"HOME", home}};
  auto node = load_node_config(env, start_flags{});
  if (!node.ok() && node.error.find('\n') != std::string::npos)
    std::abort(); // one error line
  auto sub = load_submission_config(home, "fuzz");
  if (!sub.ok() && sub.error.find('\n') != std::string::npos)
    std::abort();
  for (const auto* w : {&node.warnings, &sub.warnings})
    for (const auto& line : *w)
      if (line.find('\n') != std::string::npos)
        std::abort();
  std::filesystem::remove(file);
  return 0;
}
