#include "actors/policy/lookup_writes.hpp"

#include "library/events.hpp"
#include "library/job_index.hpp"
#include "library/redis_writer.hpp"
#include "library/tracking/store.hpp"
#include "library/usage.hpp"
#include "messages/redis_keys.hpp"
#include "library/job_codec.hpp"

namespace atlas::lookup_writes {

namespace {

std::string index_of(job_state s) {
  return keys::state_set(to_string(s));
}

/// SADD to `s`'s set when it has one.
void add_to_set(std::vector<cmd>& cmds, job_state s, const std::string& id) {
  if (has_state_set(s))
    cmds.push_back({"SADD", index_of(s), id});
}

bool is_dispatch(const job_record& rec) {
  return rec.state == job_state::pending;
}

/// A write that ends the job's current dispatch: it ended, or it was lost
/// and requeued.
bool ends_dispatch(const job_record& rec) {
  return is_terminal(rec.state) || (rec.state == job_state::queued && rec.retries > 0);
}

/// A write that ends a job known to be unfinished in its stored state.
bool ends_from(const job_record& rec, std::optional<job_state> from) {
  return from && *from != rec.state && is_terminal(rec.state) && !is_terminal(*from);
}

/// Runs only when the command before it succeeded (library/redis_writer.hpp).
cmd only_if_ok(cmd c) {
  c.insert(c.begin(), redis_writer::if_ok);
  return c;
}

} // namespace

bool has_state_set(job_state s) {
  return s != job_state::completed && s != job_state::failed;
}

std::vector<cmd> enqueue(const job_record& rec) {
  std::vector<cmd> cmds{{"SADD", index_of(rec.state), rec.job_id},
                        {"SET", keys::job(rec.job_id), to_stored_json(rec), "NX"}};
  // Indexed only when the record is ours (the write is atomic with these).
  for (auto& c : job_index::added(rec))
    cmds.push_back(only_if_ok(std::move(c)));
  cmds.push_back(only_if_ok(job_index::bump_version()));
  if (!rec.job_secret.empty()) // a local run starts running: its tracking credential
    cmds.push_back(only_if_ok({"SET", keys::job_secret(rec.job_id),
                               dashboard::secret_digest(rec.job_secret)}));
  for (auto& e : events::publish_job(rec, 0))
    cmds.push_back(only_if_ok(std::move(e)));
  return cmds;
}

bool enqueue_created(std::span<const redis_reply> replies) {
  return replies.size() >= 2 && replies[1].is_status("OK");
}

std::vector<cmd> published(const job_record& rec, size_t from) {
  auto events = events::publish_job(rec, from);
  if (!is_terminal(rec.state))
    return events;
  // Once per job: the marker outlives any resend of the final write.
  std::vector<cmd> cmds{{"SET", keys::job_ended(rec.job_id), "1", "NX", "EX", "86400"}};
  for (auto& c : usage::record(rec))
    cmds.push_back(only_if_ok(std::move(c)));
  for (auto& e : events)
    cmds.push_back(only_if_ok(std::move(e)));
  return cmds;
}

std::optional<job_state> last_stored_state(const job_record& rec) {
  if (rec.history.size() < 2)
    return std::nullopt;
  for (auto t = rec.history.rbegin() + 1; t != rec.history.rend(); ++t)
    if (t->state != job_state::lost)
      return t->state;
  return std::nullopt;
}

std::vector<cmd> transition(const job_record& rec, std::optional<job_state> from) {
  std::vector<cmd> cmds = job_index::ended(rec); // listed as finished; no-op otherwise
  cmds.push_back(job_index::bump_version());
  if (is_dispatch(rec)) {
    // Before the record: the slot is only told to run the job once the
    // whole write is answered, and the record is what says it is pending.
    if (!rec.job_secret.empty())
      cmds.push_back({"SET", keys::job_secret(rec.job_id),
                      dashboard::secret_digest(rec.job_secret)});
    if (!rec.host_address.empty())
      cmds.push_back({"HSET", keys::routing_map, rec.job_id, rec.host_address});
  }
  // A tracking secret lives as long as its dispatch: once the job ended (or
  // was requeued, to be dispatched with a new one) it stores nothing more.
  // Before the record, so a write cut off half way never leaves an ended job
  // whose secret still works. (The SMOVE stays next to last.)
  if (ends_dispatch(rec))
    cmds.push_back({"DEL", keys::job_secret(rec.job_id)});
  for (auto& c : job_index::moved(rec, from))
    cmds.push_back(std::move(c));
  if (ends_from(rec, from)) {
    // Out of the unfinished set only after the record says it ended.
    add_to_set(cmds, rec.state, rec.job_id);
    cmds.push_back({"SET", keys::job(rec.job_id), to_stored_json(rec)});
    cmds.push_back({"SREM", index_of(*from), rec.job_id});
    return cmds;
  }
  if (from && *from != rec.state && has_state_set(rec.state))
    cmds.push_back({"SMOVE", index_of(*from), index_of(rec.state), rec.job_id});
  else if (from && *from != rec.state)
    cmds.push_back({"SREM", index_of(*from), rec.job_id});
  else
    add_to_set(cmds, rec.state, rec.job_id);
  cmds.push_back({"SET", keys::job(rec.job_id), to_stored_json(rec)});
  return cmds;
}

bool transition_indexed(const job_record& rec, std::optional<job_state> from,
                        std::span<const redis_reply> replies) {
  if (!from || *from == rec.state)
    return true; // SADD: the id is in its state's set now
  if (replies.size() < 2)
    return false;
  const auto& moved = ends_from(rec, from) ? replies.back() : replies[replies.size() - 2];
  return moved.type == redis_reply::kind::integer && moved.integer == 1;
}

std::vector<cmd> reindex(const job_record& rec) {
  std::vector<cmd> cmds = job_index::restatus(rec);
  for (auto& c : job_index::ended(rec)) // a finished job's list is its index
    cmds.push_back(std::move(c));
  add_to_set(cmds, rec.state, rec.job_id);
  for (auto s : all_job_states)
    if (s != rec.state)
      cmds.push_back({"SREM", index_of(s), rec.job_id});
  return cmds;
}

std::vector<cmd> remove(const job_record& rec, const std::vector<std::string>& extra_keys) {
  const auto& id = rec.job_id;
  std::vector<cmd> cmds;
  cmds.push_back({"DEL", keys::job(id)});
  cmds.push_back({"SREM", keys::all_jobs, id}); // a store's from before the listing indexes
  for (auto s : all_job_states)
    cmds.push_back({"SREM", index_of(s), id});
  cmds.push_back({"HDEL", keys::routing_map, id});
  cmds.push_back({"DEL", keys::job_ended(id)});
  for (const auto& key : extra_keys)
    cmds.push_back({"DEL", key});
  for (auto& c : job_index::removed(rec))
    cmds.push_back(std::move(c));
  return cmds;
}

} // namespace atlas::lookup_writes
