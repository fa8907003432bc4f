#include "actors/policy/gpu_placement.hpp"

#include <algorithm>

namespace atlas {

void gpu_ledger::add_slot(const std::string& node, const std::vector<std::string>& own,
                          const std::vector<std::string>& held) {
  auto& n = nodes_[node];
  for (auto& g : own)
    if (std::find(n.all.begin(), n.all.end(), g) == n.all.end())
      n.all.push_back(g);
  for (auto& g : held)
    n.held.insert(g);
}

int64_t gpu_ledger::total(const std::string& node) const {
  auto n = nodes_.find(node);
  return n == nodes_.end() ? 0 : static_cast<int64_t>(n->second.all.size());
}

int64_t gpu_ledger::free(const std::string& node) const {
  auto n = nodes_.find(node);
  if (n == nodes_.end())
    return 0;
  int64_t out = 0;
  for (auto& g : n->second.all)
    out += n->second.held.count(g) ? 0 : 1;
  return out;
}

int64_t gpu_ledger::largest() const {
  int64_t out = 0;
  for (auto& [id, n] : nodes_)
    out = std::max(out, static_cast<int64_t>(n.all.size()));
  return out;
}

std::vector<std::string> gpu_ledger::take(const std::string& node, int64_t n,
                                          const std::vector<std::string>& prefer) {
  std::vector<std::string> out;
  auto it = nodes_.find(node);
  if (it == nodes_.end() || n <= 0)
    return out;
  auto& gpus = it->second;
  auto grab = [&](const std::string& g) {
    if (static_cast<int64_t>(out.size()) >= n || gpus.held.count(g)
        || std::find(gpus.all.begin(), gpus.all.end(), g) == gpus.all.end())
      return;
    gpus.held.insert(g);
    out.push_back(g);
  };
  for (auto& g : prefer)
    grab(g);
  for (auto& g : gpus.all)
    grab(g);
  return out;
}

std::vector<std::string> gpu_ledger::nodes() const {
  std::vector<std::string> out;
  for (auto& [id, n] : nodes_)
    if (!n.all.empty())
      out.push_back(id);
  return out;
}

std::map<std::string, std::string> plan_reservations(
  const std::vector<starving_job>& starving, const gpu_ledger& ledger,
  const std::function<bool(const std::string& node)>& eligible) {
  std::map<std::string, std::string> held;
  auto nodes = ledger.nodes(); // sorted by id: ties go to the first
  for (auto& job : starving) {
    const std::string* best = nullptr;
    for (auto& n : nodes) {
      if (held.count(n) || ledger.total(n) < job.num_gpus || !eligible(n))
        continue;
      if (best == nullptr || ledger.free(n) > ledger.free(*best))
        best = &n;
    }
    if (best != nullptr)
      held[*best] = job.job_id;
  }
  return held;
}

std::string gpu_misfit(int64_t need, int64_t largest, bool any_slot) {
  if (need <= 0 || !any_slot || need <= largest)
    return {};
  auto asks = "asks for " + std::to_string(need) + " GPU" + (need == 1 ? "" : "s");
  if (largest == 0)
    return asks + ", but no node of the cluster has GPUs (start GPU nodes with atlas-server start -g)";
  return asks + ", but the largest node of the cluster has " + std::to_string(largest);
}

} // namespace atlas
