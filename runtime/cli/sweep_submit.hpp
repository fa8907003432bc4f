#pragma once

// `foundations submit --sweep FILE`: reads the sweep file (sweep_plan.hpp),
// prints its trials for --dry-run, or uploads the packed bundle once and
// queues one job per trial with its params, a shared sweep id and the
// sweep's concurrency cap (which the master enforces).

#include <optional>
#include <string>

#include "adapters/json.hpp"
#include "runtime/cli/commands.hpp"
#include "runtime/cli/sweep_plan.hpp"

namespace atlas::cli {

/// The sweep file at `path`; prints the error and returns nullopt when it
/// cannot be read or used.
std::optional<sweep_spec> load_sweep(context& ctx, const std::string& path);

/// --dry-run: the trials, one JSON object a line, and what would be submitted.
int print_trials(context& ctx, const sweep_spec& spec);

/// Uploads `bundle_path` (packed under "job_source/") once, then submits
/// each trial: `job_fields` is an open JSON object with the job's fields
/// (spec, metadata, ...) that every trial shares. Prints the sweep id and
/// each trial's job id. A trial's params are `base_params` (a JSON object,
/// job.config.yaml's params; may be empty) with the trial's values over
/// them. Returns the exit code.
int submit_sweep(context& ctx, const submission_config& sc, const std::string& bundle_path,
                 const sweep_spec& spec, const json::writer& job_fields, const progress_fn& progress,
                 const std::string& base_params = {});

} // namespace atlas::cli
