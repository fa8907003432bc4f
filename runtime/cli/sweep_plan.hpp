#pragma once

// A hyperparameter sweep file (`foundations submit --sweep sweep.yaml`) and
// its expansion into trials, in plain C++ with no I/O besides reading the
// text, so it can be unit-tested. The file:
//
//   parameters:
//     lr: [0.1, 0.01]                 # a list: one of these values
//     layers: [[64, 32], [128]]       # values may be lists or maps
//     dropout: {min: 0, max: 0.5}     # a range: sampled (random) ...
//     wd: {min: 1e-5, max: 1e-2, log: true, steps: 4}  # ... or `steps` points (grid)
//     batch: {min: 16, max: 128, int: true}
//   method: grid          # grid (cartesian product, default) | random
//   trials: 20            # random: how many trials to sample
//   seed: 7               # random: same seed, same trials
//   max_concurrent: 4     # most trials running at once (enforced by the master)
//   metric: loss          # what "best" means in the dashboard ...
//   goal: minimize        # ... minimize (default) | maximize
//
// Each trial is a JSON object (the job's params, read with load_parameters()).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace atlas::cli {

/// The most trials one sweep may have.
constexpr int64_t max_sweep_trials = 10000;

/// One parameter: a list of values (JSON texts) or a numeric range.
struct sweep_axis {
  std::string name;
  std::vector<std::string> choices; // JSON text of each value; empty for a range
  bool range = false;
  double min = 0, max = 0;
  bool log = false;     // range sampled/stepped on a log scale (min > 0)
  bool integer = false; // range of whole numbers
  int64_t steps = 0;    // grid: points from min to max inclusive (0: not given)
};

struct sweep_spec {
  std::vector<sweep_axis> axes; // in file order
  std::string method = "grid";
  int64_t trials = 0;           // random only
  uint64_t seed = 0;
  bool has_seed = false;
  int64_t max_concurrent = 0;   // 0: no cap
  std::string metric;           // "" = none
  std::string goal = "minimize";
};

/// The parsed file, or the one-line error naming the key at fault.
struct sweep_parse {
  std::optional<sweep_spec> spec;
  std::string error;
};

/// Parses sweep YAML text (`where` names it in errors). Checks everything
/// that makes the file unusable, the trial count included.
sweep_parse parse_sweep(const std::string& text, const std::string& where);

/// How many trials the spec gives (grid: the product of the axes, saturating
/// past max_sweep_trials; random: `trials`).
int64_t sweep_size(const sweep_spec& spec);

/// The trials' params, each a JSON object text with the axes in file order.
/// Random sampling is deterministic for a given seed.
std::vector<std::string> expand_sweep(const sweep_spec& spec);

/// `foundations stop --sweep`: the ids of the sweep's trials that are still
/// queued, pending or running, in the order of `jobs_json` (the body of
/// GET /api/v1/jobs). nullopt with `error` set when it is not that body.
std::optional<std::vector<std::string>> active_trials(const std::string& jobs_json,
                                                      const std::string& sweep_id,
                                                      std::string& error);

} // namespace atlas::cli
