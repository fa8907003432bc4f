#include "library/tracking/sweep_view.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "messages/job_state.hpp"

namespace atlas::dashboard {

namespace {

/// metadata's sweep_metric / sweep_goal (the CLI writes them from the sweep file).
std::pair<std::string, std::string> metric_goal(const job_record& r) {
  std::string err;
  auto meta = json::parse(r.metadata.empty() ? "{}" : r.metadata, err);
  if (!meta || !meta->is_object())
    return {};
  return {meta->get_string("sweep_metric").value_or(""), meta->get_string("sweep_goal").value_or("minimize")};
}

const char* bucket(job_state s) {
  switch (s) {
    case job_state::queued:
    case job_state::pending: return "queued";
    case job_state::running: return "running";
    case job_state::completed: return "completed";
    default: return is_terminal(s) ? "failed" : "running";
  }
}

struct counts {
  std::map<std::string, int64_t> by_bucket;
  void add(const job_record& r) { ++by_bucket[bucket(r.state)]; }
  void write(json::writer& w) const {
    for (const char* b : {"queued", "running", "completed", "failed"}) {
      auto i = by_bucket.find(b);
      w.kv(b, i == by_bucket.end() ? int64_t{0} : i->second);
    }
  }
};

} // namespace

std::string sweeps_json(const std::vector<job_record>& recs) {
  struct sweep {
    const job_record* first = nullptr;
    int64_t trials = 0;
    counts c;
  };
  std::map<std::string, sweep> by_id;
  for (auto& r : recs) {
    if (r.sweep_id.empty())
      continue;
    auto& s = by_id[r.sweep_id];
    if (s.first == nullptr || r.queued_time < s.first->queued_time)
      s.first = &r;
    ++s.trials;
    s.c.add(r);
  }
  std::vector<std::pair<std::string, const sweep*>> order;
  for (auto& [id, s] : by_id)
    order.emplace_back(id, &s);
  std::sort(order.begin(), order.end(), [](auto& a, auto& b) {
    return a.second->first->queued_time > b.second->first->queued_time;
  });
  json::writer w;
  w.begin_array();
  for (auto& [id, s] : order) {
    auto [metric, goal] = metric_goal(*s->first);
    w.begin_object().kv("sweep_id", id).kv("trials", s->trials);
    s->c.write(w);
    w.kv("max_concurrent", s->first->sweep_limit).kv("metric", metric).kv("goal", goal);
    w.kv("user", s->first->username).kv("created", s->first->queued_time).end_object();
  }
  w.end_array();
  return w.take();
}

std::string sweep_json(const std::string& sweep_id, const std::vector<job_record>& recs,
                       const json::value& summary, double now) {
  std::vector<const job_record*> trials;
  for (auto& r : recs)
    if (r.sweep_id == sweep_id)
      trials.push_back(&r);
  std::sort(trials.begin(), trials.end(), [](auto* a, auto* b) {
    return a->seq != b->seq ? a->seq < b->seq : a->queued_time < b->queued_time;
  });
  std::string metric, goal = "minimize", project;
  int64_t cap = 0;
  if (!trials.empty()) {
    std::tie(metric, goal) = metric_goal(*trials.front());
    project = trials.front()->project_name;
    cap = trials.front()->sweep_limit;
  }
  // Columns: every param and metric name, in first-seen order.
  std::vector<std::string> param_names, metric_names;
  std::set<std::string> seen_p, seen_m;
  std::vector<std::optional<json::value>> params(trials.size());
  std::string best;
  double best_value = 0;
  counts c;
  for (size_t i = 0; i < trials.size(); ++i) {
    auto& r = *trials[i];
    c.add(r);
    std::string err;
    if (!r.params.empty())
      params[i] = json::parse(r.params, err);
    if (params[i] && params[i]->is_object())
      for (auto& [k, v] : params[i]->object)
        if (seen_p.insert(k).second)
          param_names.push_back(k);
    auto track = summary.find(r.job_id);
    auto metrics = track ? track->find("metrics") : nullptr;
    if (metrics && metrics->is_object())
      for (auto& [k, v] : metrics->object) {
        if (seen_m.insert(k).second)
          metric_names.push_back(k);
        auto value = v.find("value");
        if (k == metric && value && value->is_number()) {
          bool better = goal == "maximize" ? value->number > best_value : value->number < best_value;
          if (best.empty() || better) {
            best = r.job_id;
            best_value = value->number;
          }
        }
      }
  }
  json::writer w;
  w.begin_object().kv("sweep_id", sweep_id).kv("project", project).kv("metric", metric).kv("goal", goal);
  w.kv("max_concurrent", cap).kv("trial_count", static_cast<int64_t>(trials.size()));
  c.write(w);
  w.key("param_names").begin_array();
  for (auto& p : param_names)
    w.value(p);
  w.end_array().key("metric_names").begin_array();
  for (auto& m : metric_names)
    w.value(m);
  w.end_array().key("best");
  if (best.empty())
    w.null();
  else
    w.value(best);
  w.key("trials").begin_array();
  for (size_t i = 0; i < trials.size(); ++i) {
    auto& r = *trials[i];
    w.begin_object().kv("job_id", r.job_id).kv("status", api_status(r.state)).kv("state", to_string(r.state));
    w.key("params").raw(params[i] && params[i]->is_object() ? params[i]->dump() : "{}");
    w.key("metrics").begin_object();
    auto track = summary.find(r.job_id);
    auto metrics = track ? track->find("metrics") : nullptr;
    if (metrics && metrics->is_object())
      for (auto& [k, v] : metrics->object) {
        auto value = v.find("value");
        w.key(k).raw(value ? value->dump() : "null");
      }
    w.end_object();
    double d = r.start_time > 0 ? std::max(0.0, (r.end_time > 0 ? r.end_time : now) - r.start_time) : 0;
    w.kv("start_ts", r.start_time).kv("completed_ts", r.end_time).kv("duration_s", d);
    w.kv("best", !best.empty() && r.job_id == best).end_object();
  }
  w.end_array().end_object();
  return w.take();
}

} // namespace atlas::dashboard
