#include "adapters/job_argv.hpp"

namespace atlas {

std::vector<std::string> job_argv::argv() const {
  std::vector<std::string> out = entrypoint;
  out.insert(out.end(), command.begin(), command.end());
  return out;
}

std::optional<job_argv> spec_argv(const json::value& spec, const std::string& python,
                                  std::string& error) {
  auto command = json::spec_words(spec.find("command"), "command", error);
  auto entrypoint = json::spec_words(spec.find("entrypoint"), "entrypoint", error);
  if (!command || !entrypoint)
    return std::nullopt;
  if (entrypoint->empty()) {
    if (command->empty()) {
      error = "spec has neither command nor entrypoint";
      return std::nullopt;
    }
    entrypoint->push_back(python);
  }
  return job_argv{std::move(*entrypoint), std::move(*command)};
}

} // namespace atlas
