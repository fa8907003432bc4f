#include "actors/policy/dependencies.hpp"

#include <algorithm>

namespace atlas {

dependency_verdict judge_dependency(const std::string& when, job_state state) {
  if (!is_terminal(state))
    return dependency_verdict::waiting;
  bool met = when == "any" || (when == "ok" && state == job_state::completed)
             || (when == "failed" && state == job_state::failed);
  return met ? dependency_verdict::satisfied : dependency_verdict::impossible;
}

std::string waiting_reason(const job_dependency& d) {
  return "waiting for " + d.job_id + " (" + d.when + ")";
}

std::string doomed_reason(const job_dependency& d, job_state state) {
  return "dependency " + d.job_id + " ended " + std::string(to_string(state)) + " (needed "
         + d.when + ")";
}

void dependency_graph::hold(const std::string& job, const std::vector<job_dependency>& after) {
  drop(job);
  auto& e = jobs_[job];
  e.after = after;
  e.met.assign(after.size(), false);
  for (auto& d : after)
    waiters_.emplace(d.job_id, job);
}

dependency_graph::outcome dependency_graph::ended(const std::string& dep, job_state state) {
  return settle(dep, state);
}

dependency_graph::outcome dependency_graph::vanished(const std::string& dep) {
  return settle(dep, std::nullopt);
}

dependency_graph::outcome dependency_graph::settle(const std::string& dep,
                                                   std::optional<job_state> state) {
  outcome out;
  auto [first, last] = waiters_.equal_range(dep);
  std::vector<std::string> held;
  for (auto w = first; w != last; ++w)
    if (std::find(held.begin(), held.end(), w->second) == held.end())
      held.push_back(w->second);
  waiters_.erase(first, last);
  for (auto& job : held) {
    auto& e = jobs_.at(job);
    if (!e.doomed.empty())
      continue;
    for (size_t i = 0; i < e.after.size() && e.doomed.empty(); ++i) {
      if (e.after[i].job_id != dep)
        continue;
      auto v = state ? judge_dependency(e.after[i].when, *state) : dependency_verdict::impossible;
      if (v == dependency_verdict::satisfied)
        e.met[i] = true;
      else if (v == dependency_verdict::impossible)
        e.doomed = state ? doomed_reason(e.after[i], *state)
                         : "dependency " + dep + " does not exist";
    }
    if (!e.doomed.empty())
      out.doomed.emplace_back(job, e.doomed);
    else if (std::all_of(e.met.begin(), e.met.end(), [](bool m) { return m; }))
      out.released.push_back(job);
  }
  return out;
}

void dependency_graph::drop(const std::string& job) {
  auto j = jobs_.find(job);
  if (j == jobs_.end())
    return;
  for (auto& d : j->second.after) {
    auto [first, last] = waiters_.equal_range(d.job_id);
    for (auto w = first; w != last;)
      w = w->second == job ? waiters_.erase(w) : std::next(w);
  }
  jobs_.erase(j);
}

dependency_verdict dependency_graph::verdict(const std::string& job) const {
  auto j = jobs_.find(job);
  if (j == jobs_.end())
    return dependency_verdict::satisfied;
  if (!j->second.doomed.empty())
    return dependency_verdict::impossible;
  auto& met = j->second.met;
  return std::all_of(met.begin(), met.end(), [](bool m) { return m; })
           ? dependency_verdict::satisfied
           : dependency_verdict::waiting;
}

std::string dependency_graph::reason(const std::string& job) const {
  auto j = jobs_.find(job);
  if (j == jobs_.end())
    return {};
  if (!j->second.doomed.empty())
    return j->second.doomed;
  for (size_t i = 0; i < j->second.after.size(); ++i)
    if (!j->second.met[i])
      return waiting_reason(j->second.after[i]);
  return {};
}

} // namespace atlas
