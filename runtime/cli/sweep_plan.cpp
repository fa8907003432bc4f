#include "runtime/cli/sweep_plan.hpp"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <random>
#include <set>

#include "adapters/json.hpp"
#include "runtime/cli/yaml_json.hpp"

namespace atlas::cli {

namespace {

std::optional<double> number_field(const YAML::Node& n) {
  if (!n || !n.IsScalar() || n.Tag() == "!")
    return std::nullopt;
  return yaml_number(n.Scalar());
}

std::optional<bool> bool_field(const YAML::Node& n) {
  if (!n || !n.IsScalar())
    return std::nullopt;
  const auto& s = n.Scalar();
  if (s == "true" || s == "True" || s == "yes")
    return true;
  if (s == "false" || s == "False" || s == "no")
    return false;
  return std::nullopt;
}

/// A range {min, max, log, int, steps}; "" or the error.
std::string parse_range(const YAML::Node& n, sweep_axis& axis, const std::string& where) {
  const std::string at = where + ": parameters." + axis.name;
  static const std::set<std::string> known{"min", "max", "log", "int", "steps"};
  for (const auto& kv : n)
    if (!known.count(kv.first.Scalar()))
      return at + ": unknown key '" + kv.first.Scalar() + "' (a range has min, max, log, int, steps)";
  auto lo = number_field(n["min"]), hi = number_field(n["max"]);
  if (!lo || !hi)
    return at + ": a range needs numbers min and max";
  if (*lo > *hi)
    return at + ": min is greater than max";
  axis.range = true;
  axis.min = *lo;
  axis.max = *hi;
  for (auto [key, flag] : {std::pair{"log", &axis.log}, std::pair{"int", &axis.integer}}) {
    if (!n[key])
      continue;
    auto b = bool_field(n[key]);
    if (!b)
      return at + "." + key + ": expected true or false";
    *flag = *b;
  }
  if (axis.log && axis.min <= 0)
    return at + ": a log range needs min > 0";
  if (n["steps"]) {
    auto s = number_field(n["steps"]);
    if (!s || *s < 1 || *s != std::floor(*s) || *s > max_sweep_trials)
      return at + ".steps: expected a whole number from 1 to " + std::to_string(max_sweep_trials);
    axis.steps = static_cast<int64_t>(*s);
  }
  return {};
}

/// A whole number >= `lo` at top-level key `key`; sets `error` when it is not.
std::optional<int64_t> whole(const YAML::Node& n, const std::string& at, int64_t lo, int64_t hi,
                             std::string& error) {
  auto v = number_field(n);
  if (!v || *v != std::floor(*v) || *v < static_cast<double>(lo) || *v > static_cast<double>(hi)) {
    error = at + ": expected a whole number from " + std::to_string(lo) + " to " + std::to_string(hi);
    return std::nullopt;
  }
  return static_cast<int64_t>(*v);
}

/// The value of a range at fraction `t` in [0, 1].
double at_fraction(const sweep_axis& a, double t) {
  double v = t <= 0 ? a.min : t >= 1 ? a.max // the ends exactly as written
           : a.log ? std::exp(std::log(a.min) + t * (std::log(a.max) - std::log(a.min)))
                   : a.min + t * (a.max - a.min);
  if (a.integer)
    v = std::min(std::floor(a.max), std::max(std::ceil(a.min), std::round(v)));
  return v;
}

void write_number(json::writer& w, const sweep_axis& a, double v) {
  if (a.integer)
    w.value(static_cast<int64_t>(v));
  else
    w.value(v);
}

} // namespace

sweep_parse parse_sweep(const std::string& text, const std::string& where) {
  sweep_parse out;
  auto fail = [&](std::string why) {
    out.error = std::move(why);
    out.spec.reset();
    return out;
  };
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return fail(where + ": not valid YAML (line " + std::to_string(e.mark.line + 1) + "): " + e.msg);
  }
  if (!root.IsMap())
    return fail(where + ": expected a mapping with 'parameters' (and method, trials, seed, "
                        "max_concurrent, metric, goal)");
  static const std::set<std::string> known{"parameters", "method", "trials", "seed",
                                           "max_concurrent", "metric", "goal"};
  for (const auto& kv : root)
    if (!known.count(kv.first.Scalar()))
      return fail(where + ": unknown key '" + kv.first.Scalar()
                  + "' (known: parameters, method, trials, seed, max_concurrent, metric, goal)");
  sweep_spec spec;
  auto params = root["parameters"];
  if (!params || !params.IsMap() || params.size() == 0)
    return fail(where + ": parameters: expected a non-empty mapping of name to a list or {min, max}");
  for (const auto& kv : params) {
    sweep_axis axis;
    axis.name = kv.first.Scalar();
    if (axis.name.empty())
      return fail(where + ": parameters: a parameter has an empty name");
    const auto& v = kv.second;
    if (v.IsSequence()) {
      if (v.size() == 0)
        return fail(where + ": parameters." + axis.name + ": an empty list gives no trials");
      for (const auto& item : v) {
        axis.choices.push_back(yaml_json(item));
      }
    } else if (v.IsMap()) {
      if (auto why = parse_range(v, axis, where); !why.empty())
        return fail(why);
    } else {
      // One fixed value: a list of one.
      axis.choices.push_back(yaml_json(v));
    }
    spec.axes.push_back(std::move(axis));
  }
  if (auto m = root["method"]) {
    spec.method = m.IsScalar() ? m.Scalar() : "";
    if (spec.method != "grid" && spec.method != "random")
      return fail(where + ": method: expected grid or random");
  }
  std::string error;
  if (auto t = root["trials"]) {
    auto n = whole(t, where + ": trials", 1, max_sweep_trials, error);
    if (!n)
      return fail(error);
    spec.trials = *n;
  }
  if (auto s = root["seed"]) {
    auto n = whole(s, where + ": seed", 0, INT64_C(1) << 52, error);
    if (!n)
      return fail(error);
    spec.seed = static_cast<uint64_t>(*n);
    spec.has_seed = true;
  }
  if (auto c = root["max_concurrent"]) {
    auto n = whole(c, where + ": max_concurrent", 1, 100000, error);
    if (!n)
      return fail(error);
    spec.max_concurrent = *n;
  }
  if (auto m = root["metric"]) {
    if (!m.IsScalar() || m.Scalar().empty())
      return fail(where + ": metric: expected the name of a metric the jobs log");
    spec.metric = m.Scalar();
  }
  if (auto g = root["goal"]) {
    spec.goal = g.IsScalar() ? g.Scalar() : "";
    if (spec.goal != "minimize" && spec.goal != "maximize")
      return fail(where + ": goal: expected minimize or maximize");
  }
  if (spec.method == "grid") {
    if (root["trials"])
      return fail(where + ": trials: only for method: random (a grid runs every combination)");
    for (auto& a : spec.axes)
      if (a.range && a.steps == 0)
        return fail(where + ": parameters." + a.name
                    + ": a range in a grid needs steps: N (or use method: random)");
  } else if (spec.trials == 0) {
    return fail(where + ": trials: method random needs the number of trials to sample");
  }
  if (auto n = sweep_size(spec); n > max_sweep_trials)
    return fail(where + ": the sweep has more than " + std::to_string(max_sweep_trials)
                + " trials; narrow the grid or use method: random with trials");
  out.spec = std::move(spec);
  return out;
}

int64_t sweep_size(const sweep_spec& spec) {
  if (spec.method == "random")
    return spec.trials;
  int64_t n = 1;
  for (auto& a : spec.axes) {
    int64_t k = a.range ? a.steps : static_cast<int64_t>(a.choices.size());
    n *= std::max<int64_t>(k, 1);
    if (n > max_sweep_trials)
      return max_sweep_trials + 1;
  }
  return n;
}

std::vector<std::string> expand_sweep(const sweep_spec& spec) {
  std::vector<std::string> out;
  if (spec.method == "random") {
    // Our own mapping from the 64-bit engine (whose sequence the standard
    // fixes) to numbers, so a seed gives the same trials with any library.
    std::mt19937_64 rng(spec.seed);
    auto unit = [&] { return static_cast<double>(rng() >> 11) * 0x1.0p-53; };
    for (int64_t i = 0; i < spec.trials; ++i) {
      json::writer w;
      w.begin_object();
      for (auto& a : spec.axes) {
        w.key(a.name);
        if (a.range)
          write_number(w, a, at_fraction(a, unit()));
        else
          w.raw(a.choices[rng() % a.choices.size()]);
      }
      w.end_object();
      out.push_back(w.take());
    }
    return out;
  }
  // Grid: the last parameter varies fastest, like nested loops in file order.
  const auto total = sweep_size(spec);
  for (int64_t i = 0; i < total; ++i) {
    std::vector<int64_t> pick(spec.axes.size());
    int64_t rest = i;
    for (size_t k = spec.axes.size(); k-- > 0;) {
      auto& a = spec.axes[k];
      int64_t n = a.range ? a.steps : static_cast<int64_t>(a.choices.size());
      pick[k] = rest % n;
      rest /= n;
    }
    json::writer w;
    w.begin_object();
    for (size_t k = 0; k < spec.axes.size(); ++k) {
      auto& a = spec.axes[k];
      w.key(a.name);
      if (a.range) {
        double t = a.steps == 1 ? 0.0 : static_cast<double>(pick[k]) / static_cast<double>(a.steps - 1);
        write_number(w, a, at_fraction(a, t));
      } else {
        w.raw(a.choices[static_cast<size_t>(pick[k])]);
      }
    }
    w.end_object();
    out.push_back(w.take());
  }
  return out;
}

std::optional<std::vector<std::string>> active_trials(const std::string& jobs_json,
                                                      const std::string& sweep_id,
                                                      std::string& error) {
  auto v = json::parse(jobs_json, error);
  if (!v)
    return std::nullopt;
  const json::value* jobs = v->find("jobs");
  if (jobs == nullptr || !jobs->is_array()) {
    error = "the scheduler's job list has no \"jobs\" array";
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (const auto& j : jobs->array) {
    if (!j.is_object() || j.get_string("sweep_id").value_or("") != sweep_id)
      continue;
    auto status = j.get_string("status").value_or("");
    auto id = j.get_string("job_id");
    if (id && (status == "queued" || status == "pending" || status == "running"))
      out.push_back(*id);
  }
  return out;
}

} // namespace atlas::cli
