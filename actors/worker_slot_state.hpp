#pragma once

// The worker slot's insides, shared by its behaviour (worker_slot.cpp) and
// the steps of a job's run on it (worker_slot_steps.cpp): prepare, fetch,
// start, report, archive. Private to those two files.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/counted.hpp"
#include "actors/policy/job_runtime.hpp"
#include "actors/worker_slot.hpp"
#include "messages/actors.hpp"

namespace atlas {

class job_runner;

namespace slot {

struct slot_state {
  static inline const char* name = "worker-slot";
  node_context ctx;
  slot_info info;
  master_actor master;
  node_actor node;
  // The job in hand, if any.
  job_record job;
  job_actor job_handle;
  bool busy = false;
  job_runner* runner = nullptr; // what runs the job in hand
  bool started = false; // the runner has it running
  int32_t pid = 0;      // its local process group, 0 when not a local process
  bool exited = false;
  bool time_warned = false; // the time limit's warning signal was sent
  uint64_t runs = 0; // jobs started on this slot: tells a time limit's timers from an earlier job's
  bool stop_requested = false;
  bool draining = false;
  stop_cause cause = stop_cause::none; // why it stops, once a stop began
  bool discarded = false; // the master gave the job to someone else: no report
  bool exit_held = false; // ended while the master was away: files untouched until it confirms
  // Questions to the job's lifecycle actor wait for their answer until a
  // deadline that a once-a-second tick checks: CAF's own request timeout
  // wakes its timer thread twice per request (set and cancel), twice per job.
  std::map<uint64_t, std::pair<std::chrono::steady_clock::time_point,
                               std::function<void()>>> waiting; // by token: deadline, on timeout
  uint64_t next_token = 1;
  bool ticking = false;
};

using slot_ptr = counted_pointer<worker_slot_actor, slot_state>;

/// Names the job's run on this slot for the runner: one slot runs one job at
/// a time, yet the same job may be ending here while it runs on another slot.
inline std::string run_id(const slot_state& st) {
  return st.job.job_id + "-slot" + std::to_string(st.info.index);
}

inline void tick_if_waiting(slot_ptr self) {
  auto& st = self->state;
  if (st.ticking || st.waiting.empty())
    return;
  st.ticking = true;
  self->delayed_send(self, std::chrono::seconds(1), tick_atom::value);
}

/// Asks the job's lifecycle actor something answered with a bool. Exactly
/// one of `answered` and `failed` runs: `failed` on an error, or once
/// `timeout` has passed without an answer (checked by the tick, so up to a
/// second late). With `late_answers`, an answer that comes after the
/// timeout runs `answered` too (it still says what the lifecycle did).
template <class Answered, class Failed, class... Ts>
void ask_job(slot_ptr self, std::chrono::seconds timeout, bool late_answers, Answered answered,
             Failed failed, Ts&&... xs) {
  auto& st = self->state;
  auto token = st.next_token++;
  st.waiting.emplace(token, std::make_pair(std::chrono::steady_clock::now() + timeout, [=] {
                       auto err = caf::make_error(caf::sec::request_timeout);
                       failed(err);
                     }));
  tick_if_waiting(self);
  self->request(st.job_handle, caf::infinite, std::forward<Ts>(xs)...)
    .then(
      [=](bool b) {
        if (self->state.waiting.erase(token) > 0 || late_answers)
          answered(b);
      },
      [=](caf::error& err) {
        if (self->state.waiting.erase(token) > 0)
          failed(err);
      });
}

/// Tells the job's lifecycle actor what happened. When the master's side
/// cannot be reached, the slot holds on to the news (and to the job) and
/// hands it over when it registers with a master again.
void report(slot_ptr self, job_state state, std::string reason = {},
            std::optional<int64_t> rc = std::nullopt);

/// The job is over on this slot: free it and ask for more work, unless the
/// master freed it already (`master_freed`: it accepted the job's end).
void finish(slot_ptr self, bool master_freed = false);

/// Extracts the bundle on the thread pool, then reports back. `fetched`:
/// the bundle was just fetched from the master into this node's job store.
void prepare(slot_ptr self, bool fetched = false);

/// Asks the master for the next chunk of the bundle and stores it on the
/// thread pool; the last chunk puts the bundle in place.
void fetch_bundle(slot_ptr self, uint64_t offset);

/// Archives the job's working directory once its lifecycle confirms the job
/// is still placed here; without a master, holds the outcome until one does.
void confirm_then_archive(slot_ptr self);

/// Moves the working directory into the archive on the thread pool.
void archive_work_dir(slot_ptr self);

/// Sends itself the time limit's warning and stop for the job that just
/// started (run number `runs`): the warning time_warning_s before the limit.
void schedule_time_limit(slot_ptr self);

/// Hands the prepared job to the runner this node uses for it.
void start_job(slot_ptr self, const std::string& cwd);

} // namespace slot

} // namespace atlas
