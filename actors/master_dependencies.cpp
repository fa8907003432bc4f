// The master's side of job dependencies: holding, releasing and cancelling
// queued jobs as the jobs they wait on end (see master_dependencies.hpp).

#include "actors/master_dependencies.hpp"

#include <algorithm>
#include <memory>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "library/job_codec.hpp"
#include "messages/errors.hpp"

namespace atlas {

namespace {

/// Known to this master and not final: it will end here and say so.
bool unfinished_here(const master_state& st, const std::string& id) {
  return st.queued.count(id) || st.held.count(id) || st.jobs.count(id)
         || st.submitting.count(id);
}

bool is_not_found(const caf::error& err) {
  return err.category() == caf::atom("atlas") && static_cast<ec>(err.code()) == ec::not_found;
}

/// Carries out what the graph decided for held jobs. Jobs still being
/// submitted are not held yet: admit_queued reads their verdict.
void act_on(master_ptr self, const dependency_graph::outcome& out) {
  auto& st = self->state;
  bool released = false;
  for (auto& id : out.released) {
    auto h = st.held.find(id);
    if (h == st.held.end())
      continue;
    auto rec = std::move(h->second);
    st.held.erase(h);
    st.deps.drop(id);
    spdlog::info("job released job_id={}: its dependencies ended as needed", id);
    enqueue_local(self, std::move(rec));
    released = true;
  }
  for (auto& [id, why] : out.doomed)
    if (st.held.count(id))
      cancel_queued(self, id, [] {}, why); // it logs the end with its reason
  if (released)
    try_dispatch(self);
}

} // namespace

void check_dependencies(master_ptr self, const job_record& rec,
                        caf::typed_response_promise<std::string> rp, std::function<void()> store) {
  auto& st = self->state;
  auto id = rec.job_id;
  if (rec.after.empty())
    return store();
  auto refuse = [=](caf::error err) mutable {
    self->state.submitting.erase(id);
    self->state.deps.drop(id);
    submission_dropped(self, id);
    rp.deliver(std::move(err));
  };
  std::vector<std::string> ask; // ids that may have finished: Redis knows
  for (auto& d : rec.after) {
    if (d.job_id == id)
      return refuse(make_error(ec::invalid_argument, "Bad after: job '" + id
                                                       + "' cannot wait for itself"));
    if (!unfinished_here(st, d.job_id) && std::find(ask.begin(), ask.end(), d.job_id) == ask.end())
      ask.push_back(d.job_id);
  }
  // Held from now on: an end seen while Redis answers counts already.
  st.deps.hold(id, rec.after);
  if (ask.empty())
    return store();
  auto left = std::make_shared<size_t>(ask.size());
  auto refusal = std::make_shared<std::optional<caf::error>>();
  auto one_done = [=]() mutable {
    if (--*left > 0)
      return;
    if (*refusal)
      refuse(std::move(**refusal));
    else
      store();
  };
  for (auto& dep : ask)
    self->request(st.lookup, caf::infinite, get_atom::value, dep)
      .then(
        [=](job_record& found) mutable {
          // Not final in Redis nor here: recovery is still reading it back.
          if (is_terminal(found.state))
            act_on(self, self->state.deps.ended(dep, found.state));
          one_done();
        },
        [=](caf::error& err) mutable {
          if (!*refusal)
            *refusal = is_not_found(err)
                         ? make_error(ec::invalid_argument,
                                      "Bad after: no job '" + dep + "' to wait for")
                         : err;
          one_done();
        });
}

void admit_queued(master_ptr self, job_record rec) {
  auto& st = self->state;
  auto id = rec.job_id;
  auto verdict = st.deps.verdict(id);
  if (verdict == dependency_verdict::satisfied) {
    st.deps.drop(id);
    enqueue_local(self, std::move(rec));
    try_dispatch(self);
    return;
  }
  auto why = st.deps.reason(id);
  st.held[id] = std::move(rec);
  if (verdict == dependency_verdict::impossible) {
    cancel_queued(self, id, [] {}, why);
    return;
  }
  spdlog::info("job held job_id={}: {}", id, why);
}

void dependency_ended(master_ptr self, const std::string& id, job_state state) {
  auto& st = self->state;
  st.deps.drop(id); // its own wait, if any, is over
  act_on(self, st.deps.ended(id, state));
}

void dependency_done(master_ptr self, const std::string& id) {
  if (!self->state.deps.awaited(id))
    return;
  // The lifecycle actor persisted the end before it said done.
  self->request(self->state.lookup, caf::infinite, get_atom::value, id)
    .then(
      [=](job_record& rec) {
        if (is_terminal(rec.state))
          dependency_ended(self, id, rec.state);
      },
      [=](caf::error& err) {
        if (is_not_found(err)) { // deleted meanwhile: nothing can wait on it
          submission_dropped(self, id);
          return;
        }
        spdlog::warn("reading the end of a dependency failed, retrying job_id={}: {}", id,
                     error_message(err));
        dependency_done(self, id);
      });
}

void submission_dropped(master_ptr self, const std::string& id) {
  auto& st = self->state;
  st.deps.drop(id);
  act_on(self, st.deps.vanished(id));
}

void hold_recovered(master_ptr self, std::vector<job_record>& recs) {
  auto& st = self->state;
  std::unordered_map<std::string, job_state> states;
  for (auto& r : recs)
    states[r.job_id] = r.state;
  std::unordered_set<std::string> waiting;
  for (auto& r : recs) {
    if (r.state != job_state::queued || r.after.empty() || unfinished_here(st, r.job_id))
      continue;
    st.deps.hold(r.job_id, r.after);
    waiting.insert(r.job_id);
  }
  // Dependencies that ended, here or under another master, count now; the
  // others end under this master (recovered below) and say so.
  for (auto& r : recs)
    if (r.state == job_state::queued && !r.after.empty())
      for (auto& d : r.after) {
        auto s = states.find(d.job_id);
        if (s == states.end())
          st.deps.vanished(d.job_id);
        else if (is_terminal(s->second))
          st.deps.ended(d.job_id, s->second);
      }
  std::vector<std::pair<std::string, std::string>> doomed;
  std::erase_if(recs, [&](job_record& r) {
    if (!waiting.count(r.job_id))
      return false;
    auto verdict = st.deps.verdict(r.job_id);
    if (verdict == dependency_verdict::satisfied) {
      st.deps.drop(r.job_id);
      return false; // queued like any recovered job
    }
    st.last_seq = std::max(st.last_seq, r.seq);
    if (verdict == dependency_verdict::impossible)
      doomed.emplace_back(r.job_id, st.deps.reason(r.job_id));
    st.held[r.job_id] = std::move(r);
    return true;
  });
  if (!st.held.empty())
    spdlog::info("master recovered {} jobs waiting for their dependencies", st.held.size());
  for (auto& [id, why] : doomed)
    cancel_queued(self, id, [] {}, why);
}

std::vector<const job_record*> held_in_order(const master_state& st) {
  std::vector<const job_record*> out;
  for (auto& [id, rec] : st.held)
    out.push_back(&rec);
  std::sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->seq < b->seq; });
  return out;
}

std::string held_reason(const master_state& st, const std::string& id) {
  return st.deps.reason(id);
}

} // namespace atlas
