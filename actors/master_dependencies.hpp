#pragma once

// Job dependencies on the master (master_dependencies.cpp): a queued job
// whose `after` conditions are not all met is persisted queued but held
// out of the queue policy, in master_state::held, until the jobs it waits
// on end. policy/dependencies.hpp decides; these functions act.

#include <functional>
#include <string>
#include <vector>

#include <caf/typed_response_promise.hpp>

#include "actors/master_state.hpp"

namespace atlas {

/// Before a submission is stored: every dependency must name a job (queued,
/// running or finished in Redis). Then `store`; else the promise gets a 400
/// naming the id. Dependencies already finished are evaluated now.
void check_dependencies(master_ptr self, const job_record& rec,
                        caf::typed_response_promise<std::string> rp, std::function<void()> store);

/// A stored queued record enters the queue policy (and dispatch runs), or is
/// held while it waits, or is cancelled when a dependency cannot be met.
void admit_queued(master_ptr self, job_record rec);

/// A job reached a final state: the jobs held on it are released or cancelled.
void dependency_ended(master_ptr self, const std::string& id, job_state state);

/// A job's lifecycle actor ended: its final state is read back when a held
/// job waits on it.
void dependency_done(master_ptr self, const std::string& id);

/// A submission was not stored: jobs that waited on it can never start.
void submission_dropped(master_ptr self, const std::string& id);

/// At recovery, before the queue is rebuilt: takes out of `recs` the queued
/// jobs whose dependencies are not all met (held, or cancelled when they
/// cannot be), judged against the records read back.
void hold_recovered(master_ptr self, std::vector<job_record>& recs);

/// Held jobs in submission order.
std::vector<const job_record*> held_in_order(const master_state& st);

/// Why a held job waits: "waiting for <id> (<when>)".
std::string held_reason(const master_state& st, const std::string& id);

} // namespace atlas
