#pragma once

// What a job runs, from its spec: one rule for both runners, the process
// runner's argv (actors/policy/job_runtime) and a container's Entrypoint and
// Cmd (docker_spec). It is the original worker image's: `python3
// <command...>` unless the spec names an entrypoint, then `<entrypoint...>
// <command...>`.

#include <optional>
#include <string>
#include <vector>

#include "adapters/json.hpp"

namespace atlas {

struct job_argv {
  std::vector<std::string> entrypoint; ///< the spec's, else [python]
  std::vector<std::string> command;    ///< the spec's, possibly empty

  /// entrypoint then command: a process's whole command line.
  std::vector<std::string> argv() const;
};

/// From spec.entrypoint and spec.command (each a list of strings or one
/// string split on spaces; see json::spec_words), `python` standing in for
/// an entrypoint the spec does not name. nullopt with `error` when either
/// field is malformed or the spec has neither.
std::optional<job_argv> spec_argv(const json::value& spec, const std::string& python,
                                  std::string& error);

} // namespace atlas
