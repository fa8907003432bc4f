#pragma once

// GPU placement as plain C++ (no actors), beside queue_policy: which GPUs of
// each node are held, which GPUs a job gets, which nodes are held back for a
// GPU job that has waited too long, and which jobs can never run.
//
// The model: a job asking for N GPUs takes one slot and N GPUs of that
// slot's node (the slot's own GPUs first). A slot's GPUs are the node's
// share it was given at start (`-g`: usually one each); a node's GPUs are
// the union of its slots'. A waiting GPU job does not block smaller jobs
// behind it (the queue hands each free slot the first job that fits), and
// once it has waited past a bound the node closest to fitting it takes no
// other job until it starts there.

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace atlas {

/// The GPUs of each node and which of them are held, built from the slot
/// registry at the start of a dispatch round.
class gpu_ledger {
public:
  /// One slot: its node, its own GPUs, and the GPUs its job holds (when busy).
  void add_slot(const std::string& node, const std::vector<std::string>& own,
                const std::vector<std::string>& held);

  int64_t total(const std::string& node) const;
  int64_t free(const std::string& node) const;
  /// The most GPUs any one node has (0 when none has any).
  int64_t largest() const;
  /// The nodes that have GPUs, by id.
  std::vector<std::string> nodes() const;

  /// Takes `n` free GPUs of `node`: those in `prefer` (the slot's own)
  /// first, then in the node's order. Returns fewer only when fewer are free.
  std::vector<std::string> take(const std::string& node, int64_t n,
                                const std::vector<std::string>& prefer);

private:
  struct node_gpus {
    std::vector<std::string> all; // in the order the slots list them
    std::set<std::string> held;
  };
  std::map<std::string, node_gpus> nodes_;
};

/// A GPU job that has waited past the bound.
struct starving_job {
  std::string job_id;
  int64_t num_gpus = 0;
};

/// Nodes held back for starving jobs, oldest first: each gets the eligible,
/// not yet held node that has enough GPUs in all and the most free now
/// (ties: node id). A held node's free count only grows (it takes no other
/// job), and a job moves only to a node with more free, so it starts in the
/// end. Returns node id -> job id.
std::map<std::string, std::string> plan_reservations(
  const std::vector<starving_job>& starving, const gpu_ledger& ledger,
  const std::function<bool(const std::string& node)>& eligible);

/// Why a job asking for `need` GPUs can never run in a cluster whose
/// largest node has `largest` GPUs; "" when it may (or when no slot is
/// known yet: `any_slot` false, nodes may still join).
std::string gpu_misfit(int64_t need, int64_t largest, bool any_slot);

} // namespace atlas
