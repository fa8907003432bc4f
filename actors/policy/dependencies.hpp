#pragma once

// Job dependencies as plain C++ (no actors): which held jobs a job's end
// releases or dooms. The master (actors/master_dependencies.cpp) keeps the
// records; this keeps only ids, conditions and verdicts.
//
// Conditions: `ok` needs the dependency `completed`; `failed` needs it
// `failed` (a job lost for good ends failed, so it counts; a cancelled one
// does not); `any` takes every final state.

#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "messages/job.hpp"

namespace atlas {

enum class dependency_verdict { waiting, satisfied, impossible };

/// How one condition stands once its job is in `state`; not-final states wait.
dependency_verdict judge_dependency(const std::string& when, job_state state);

/// "waiting for <id> (<when>)": why a held job waits.
std::string waiting_reason(const job_dependency& d);

/// "dependency <id> ended <state> (needed <when>)": why a held job is cancelled.
std::string doomed_reason(const job_dependency& d, job_state state);

/// Jobs held until their dependencies end, and the ids they wait on.
class dependency_graph {
public:
  struct outcome {
    std::vector<std::string> released;                        // every condition met
    std::vector<std::pair<std::string, std::string>> doomed;  // job, reason
  };

  /// Starts holding `job` until every dependency in `after` ends as needed.
  void hold(const std::string& job, const std::vector<job_dependency>& after);

  /// `dep` ended in `state` (a final one): updates the jobs holding on it.
  /// Their verdicts change in place; returns those that changed.
  outcome ended(const std::string& dep, job_state state);

  /// `dep` will never exist (its submission failed): its dependents are doomed.
  outcome vanished(const std::string& dep);

  /// Forgets a job (released, cancelled or never stored).
  void drop(const std::string& job);

  bool holds(const std::string& job) const { return jobs_.count(job) > 0; }
  /// Whether some held job waits on `dep`.
  bool awaited(const std::string& dep) const { return waiters_.count(dep) > 0; }
  /// Satisfied when every condition is met (or the job is not held),
  /// impossible when one cannot be, else waiting.
  dependency_verdict verdict(const std::string& job) const;
  /// Why a waiting job waits, or why a doomed job is doomed.
  std::string reason(const std::string& job) const;
  size_t size() const { return jobs_.size(); }

private:
  struct entry {
    std::vector<job_dependency> after;
    std::vector<bool> met;
    std::string doomed; // reason; empty while it can still be satisfied
  };
  outcome settle(const std::string& dep, std::optional<job_state> state);

  std::unordered_map<std::string, entry> jobs_;
  std::multimap<std::string, std::string> waiters_; // dependency id -> held job
};

} // namespace atlas
