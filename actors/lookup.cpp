#include "actors/lookup.hpp"

#include <algorithm>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/counted.hpp"
#include "actors/policy/lookup_writes.hpp"
#include "adapters/redis_client.hpp"
#include "messages/errors.hpp"
#include "messages/redis_keys.hpp"
#include "library/column_page.hpp"
#include "library/events.hpp"
#include "library/job_codec.hpp"
#include "library/job_index.hpp"
#include "library/usage.hpp"
#include "library/redis_writer.hpp"
#include "library/tracking/store.hpp"

namespace atlas {

namespace {

using cmd = std::vector<std::string>;

/// A request waiting for the batch's round trip: its commands are
/// [first, first + count) of the batch's.
struct pending_op {
  enum class kind { enqueue, put, read, event } what;
  job_record rec;                 // enqueue, put: what is written
  std::string id;                 // read: the job
  std::optional<job_state> from;  // put: the state it was stored in before
  size_t first = 0;
  size_t count = 0;
  size_t tail = 0;                // put: its events and usage, after the record's commands
  std::optional<uint64_t> was_published; // enqueue, put: the count before it
  caf::typed_response_promise<bool> stored;     // enqueue, put
  caf::typed_response_promise<job_record> read; // read
};

struct lookup_state {
  static inline const char* name = "lookup";
  // Enough to amortise the round trip; few enough that nothing waits long.
  static constexpr size_t max_batch = 256;
  std::unique_ptr<redis_writer> redis;
  std::vector<pending_op> batch;
  std::vector<cmd> batch_cmds;
  uint64_t batched = 0; // enqueues, puts and reads, for atlas-ctl
  uint64_t flushes = 0; // the round trips they took
  // Unfinished jobs: how many entries of their history are in the event
  // stream. A job missing here (a new master) starts from its record's
  // `published`, which every write stores.
  std::unordered_map<std::string, uint64_t> published;

  /// A write that did not happen: its job's count goes back.
  void unpublish(const pending_op& op) {
    if (op.was_published)
      published[op.rec.job_id] = *op.was_published;
    else
      published.erase(op.rec.job_id);
  }

  /// SET NX found a record. It is ours when it is byte for byte what we
  /// wrote: a write Redis applied but whose answer was lost, then sent again.
  /// Otherwise it is another job's, and the index entry the refused write
  /// added is taken back unless that job is in the same state.
  /// Nullopt when Redis is unavailable.
  std::optional<bool> is_own_record(const job_record& rec) {
    auto stored = redis->command({"GET", keys::job(rec.job_id)});
    if (!stored)
      return std::nullopt;
    if (stored->type == redis_reply::kind::string && stored->str == to_stored_json(rec))
      return true;
    auto other = stored->type == redis_reply::kind::string
                   ? job_from_json(stored->str) : result<job_record>{status::fail("not a string")};
    if (!other || other->state != rec.state)
      redis->pipeline({{"SREM", keys::state_set(to_string(rec.state)), rec.job_id}});
    return false;
  }

  /// Nullopt when Redis is unavailable.
  std::optional<std::vector<job_record>> read_records(const std::vector<std::string>& ids) {
    std::vector<job_record> out;
    if (ids.empty())
      return out;
    cmd mget{"MGET"};
    for (auto& id : ids)
      mget.push_back(keys::job(id));
    auto reply = redis->command(mget);
    if (!reply)
      return std::nullopt;
    for (auto& e : reply->elements) {
      if (e.type != redis_reply::kind::string)
        continue; // deleted meanwhile
      if (auto rec = job_from_json(e.str))
        out.push_back(std::move(rec.value()));
      else
        spdlog::warn("lookup: unreadable job record skipped: {}", rec.error());
    }
    return out;
  }

  /// The ids the replies of `reads` (SMEMBERS, ZRANGE, ...) name, each
  /// once. Nullopt when Redis is unavailable.
  std::optional<std::set<std::string>> ids_named(const std::vector<cmd>& reads) {
    auto replies = redis->reads(reads);
    if (!replies || replies->size() != reads.size())
      return std::nullopt;
    std::set<std::string> ids;
    for (auto& r : *replies)
      for (auto& e : r.elements)
        ids.insert(e.str);
    return ids;
  }

  /// What a master's recovery needs (messages/actors.hpp): the unfinished
  /// states' sets hold every unfinished job (lookup_writes.hpp), so a
  /// store of a million finished jobs is not read.
  std::optional<std::vector<job_record>> read_unfinished() {
    std::vector<cmd> reads;
    for (auto s : all_job_states)
      if (!is_terminal(s))
        reads.push_back({"SMEMBERS", keys::state_set(to_string(s))});
    reads.push_back({"ZREVRANGE", keys::jobs_by_order, "0", "0"});
    auto named = ids_named(reads);
    if (!named)
      return std::nullopt;
    auto& ids = *named;
    auto recs = read_records(std::vector<std::string>(ids.begin(), ids.end()));
    if (!recs)
      return std::nullopt;
    std::vector<std::string> awaited; // finished jobs an unfinished one waits for
    for (auto& r : *recs)
      if (!is_terminal(r.state))
        for (auto& d : r.after)
          if (ids.insert(d.job_id).second)
            awaited.push_back(d.job_id);
    auto deps = read_records(awaited);
    if (!deps)
      return std::nullopt;
    std::move(deps->begin(), deps->end(), std::back_inserter(*recs));
    return recs;
  }

  /// The trials of a project's sweep `sweep`, or of its newest `limit`
  /// sweeps (messages/actors.hpp), at most max_sweep_trials per sweep.
  std::optional<std::vector<job_record>> read_sweeps(const std::string& project,
                                                     const std::string& sweep, uint64_t limit) {
    constexpr int64_t max_sweep_trials = 10'000;
    limit = std::clamp<uint64_t>(limit, 1, job_index::max_page);
    auto head = redis->reads({{"GET", keys::indexes_built},
                              {"ZREVRANGE", keys::project_sweeps(project), "0",
                               std::to_string(limit - 1)}});
    if (!head || head->size() != 2)
      return std::nullopt;
    std::set<std::string> sweeps;
    std::vector<std::string> ids;
    if ((*head)[0].str != job_index::generation) { // being built: every record
      auto all = read_ids(std::nullopt);
      if (!all)
        return std::nullopt;
      ids = std::move(*all);
    } else {
      if (!sweep.empty())
        sweeps.insert(sweep);
      else
        for (auto& e : (*head)[1].elements)
          sweeps.insert(e.str);
      std::vector<cmd> reads;
      for (auto& s : sweeps)
        reads.push_back({"ZRANGE", keys::sweep_trials(project, s), "0",
                         std::to_string(max_sweep_trials - 1)});
      auto trials = reads.empty() ? std::optional<std::vector<redis_reply>>{std::vector<redis_reply>{}}
                                  : redis->reads(reads);
      if (!trials || trials->size() != reads.size())
        return std::nullopt;
      for (auto& t : *trials)
        for (auto& e : t.elements)
          ids.push_back(e.str);
    }
    auto recs = read_records(ids);
    if (!recs)
      return std::nullopt;
    std::erase_if(*recs, [&](const job_record& r) { // records are the truth, not the indexes
      bool wanted = sweep.empty() ? sweeps.empty() || sweeps.count(r.sweep_id) : r.sweep_id == sweep;
      return r.project_name != project || r.sweep_id.empty() || !wanted;
    });
    return recs;
  }

  /// The ids of every job, or of the jobs in state `state`: the sets and
  /// sorted sets that hold them (lookup_writes.hpp), since a store from
  /// before the listing indexes holds some in sets only. Nullopt when Redis
  /// is unavailable.
  std::optional<std::vector<std::string>> read_ids(std::optional<job_state> state) {
    std::vector<cmd> reads;
    if (!state) {
      reads.push_back({"SMEMBERS", keys::all_jobs});
      reads.push_back({"ZRANGE", keys::jobs_by_order, "0", "-1"});
    } else {
      reads.push_back({"SMEMBERS", keys::state_set(to_string(*state))});
      if (!lookup_writes::has_state_set(*state))
        reads.push_back({"ZRANGE", keys::ended_list(job_index::list_of(*state)), "0", "-1"});
    }
    auto ids = ids_named(reads);
    if (!ids)
      return std::nullopt;
    return std::vector<std::string>(ids->begin(), ids->end());
  }

  /// The newest `max` jobs of a project (its listing index) and its count.
  caf::result<job_page> read_newest(const std::string& project, uint64_t max) {
    max = std::clamp<uint64_t>(max, 1, job_index::max_scan);
    auto key = keys::project_jobs(project);
    auto head = redis->reads({{"ZREVRANGE", key, "0", std::to_string(max - 1)},
                              {"ZCARD", key},
                              {"GET", keys::indexes_built}});
    if (!head || head->size() != 3)
      return make_error(ec::unavailable, "Redis unavailable");
    job_page page;
    if ((*head)[2].str != job_index::generation) {
      page.indexed = false;
      return page;
    }
    std::vector<std::string> ids;
    for (auto& e : (*head)[0].elements)
      ids.push_back(e.str);
    auto recs = read_records(ids);
    if (!recs)
      return make_error(ec::unavailable, "Redis unavailable");
    std::erase_if(*recs, [&](const job_record& r) { return r.project_name != project; });
    page.jobs = std::move(*recs);
    page.total = static_cast<uint64_t>(std::max<int64_t>(0, (*head)[1].integer));
    return page;
  }

  /// The records of every job, or with `state` of those actually in it (an
  /// index entry may be stale, the record is not).
  caf::result<std::vector<job_record>> read_all(std::optional<job_state> state = {}) {
    auto ids = read_ids(state);
    if (!ids)
      return make_error(ec::unavailable, "Redis unavailable");
    auto recs = read_records(*ids);
    if (!recs)
      return make_error(ec::unavailable, "Redis unavailable");
    if (state)
      std::erase_if(*recs, [&](const job_record& r) { return r.state != *state; });
    return std::move(*recs);
  }

  /// One page of the sorted index `key` after `cursor`, the records `keep`
  /// accepts (an index entry may be stale, the record is not). Not indexed
  /// while the indexes are still being built (actors/retention.cpp).
  /// Nullopt with `err` set when the cursor is bad or Redis failed.
  template <class Keep>
  std::optional<job_page> read_page(const std::string& key, const std::string& cursor,
                                    uint64_t limit, Keep keep, caf::error& err) {
    std::optional<job_index::cursor> from;
    if (!cursor.empty() && (!(from = job_index::parse_cursor(cursor)) || from->tail)) {
      err = make_error(ec::invalid_argument, "'" + cursor + "' is not a listing cursor");
      return std::nullopt;
    }
    limit = std::clamp<uint64_t>(limit, 1, job_index::max_page);
    auto cmds = job_index::page_reads(key, from, limit);
    cmds.push_back({"GET", keys::listing_version});
    cmds.push_back({"GET", keys::indexes_built});
    auto replies = redis->reads(cmds);
    if (!replies || replies->size() != 4) {
      err = make_error(ec::unavailable, "Redis unavailable");
      return std::nullopt;
    }
    job_page page;
    page.version = std::strtoull((*replies)[2].str.c_str(), nullptr, 10);
    if ((*replies)[3].str != job_index::generation) {
      page.indexed = false;
      return page;
    }
    auto ids = job_index::take_page((*replies)[0], from, limit);
    auto recs = read_records(ids.ids);
    if (!recs) {
      err = make_error(ec::unavailable, "Redis unavailable");
      return std::nullopt;
    }
    for (auto& r : *recs)
      if (keep(r))
        page.jobs.push_back(std::move(r));
    page.total = static_cast<uint64_t>(std::max<int64_t>(0, (*replies)[1].integer));
    if (ids.next)
      page.next = job_index::to_string(*ids.next);
    return page;
  }

  /// Every project from the indexes: counts from the sorted sets' sizes,
  /// owner and times from its oldest and newest records and its last end.
  caf::result<project_views> read_projects() {
    auto names = redis->reads({{"SMEMBERS", keys::projects}, {"GET", keys::indexes_built}});
    if (!names || names->size() != 2)
      return make_error(ec::unavailable, "Redis unavailable");
    project_views out;
    if ((*names)[1].str != job_index::generation) {
      out.indexed = false;
      return out;
    }
    std::vector<cmd> reads;
    for (auto& n : (*names)[0].elements) {
      reads.push_back({"ZCARD", keys::project_jobs(n.str)});
      reads.push_back({"ZCARD", keys::project_ended(n.str)});
      reads.push_back({"ZRANGE", keys::project_jobs(n.str), "0", "0"});
      reads.push_back({"ZREVRANGE", keys::project_jobs(n.str), "0", "0"});
      reads.push_back({"ZREVRANGE", keys::project_ended(n.str), "0", "0", "WITHSCORES"});
    }
    auto replies = reads.empty() ? std::optional<std::vector<redis_reply>>{std::vector<redis_reply>{}}
                                 : redis->reads(reads);
    if (!replies || replies->size() != reads.size())
      return make_error(ec::unavailable, "Redis unavailable");
    std::vector<std::string> ends; // oldest, newest of each project
    for (size_t i = 0; i < (*names)[0].elements.size(); ++i) {
      auto r = replies->begin() + static_cast<ptrdiff_t>(5 * i);
      project_view v;
      v.name = (*names)[0].elements[i].str;
      v.jobs = static_cast<uint64_t>(std::max<int64_t>(0, r[0].integer));
      if (v.jobs == 0)
        continue; // every job of it was removed
      auto ended = static_cast<uint64_t>(std::max<int64_t>(0, r[1].integer));
      v.active_jobs = v.jobs > ended ? v.jobs - ended : 0;
      if (r[4].elements.size() == 2)
        v.last_activity = std::strtod(r[4].elements[1].str.c_str(), nullptr) / 1e6;
      ends.push_back(r[2].elements.empty() ? "" : r[2].elements[0].str);
      ends.push_back(r[3].elements.empty() ? "" : r[3].elements[0].str);
      out.projects.push_back(std::move(v));
    }
    auto recs = read_records(ends);
    if (!recs)
      return make_error(ec::unavailable, "Redis unavailable");
    std::unordered_map<std::string, const job_record*> by_id;
    for (auto& r : *recs)
      by_id[r.job_id] = &r;
    for (size_t i = 0; i < out.projects.size(); ++i) {
      auto& v = out.projects[i];
      if (auto first = by_id.find(ends[2 * i]); first != by_id.end()) {
        v.owner = first->second->username;
        v.created_at = first->second->queued_time;
      }
      if (auto last = by_id.find(ends[2 * i + 1]); last != by_id.end())
        v.last_activity = std::max({v.last_activity, last->second->queued_time,
                                    last->second->start_time, last->second->end_time});
    }
    return out;
  }
};

using lookup_ptr = counted_pointer<lookup_actor, lookup_state>;

caf::error unavailable() {
  return make_error(ec::unavailable, "Redis is unavailable; nothing was changed");
}

/// A new job's answer once its batch is back: created, or the record found
/// is its own (a write sent again), or another job's (conflict).
void answer_enqueue(lookup_state& st, pending_op& op, std::span<const redis_reply> replies) {
  if (lookup_writes::enqueue_created(replies)) {
    op.stored.deliver(true);
    return;
  }
  auto own = st.is_own_record(op.rec);
  if (own && *own) {
    op.stored.deliver(true);
    return;
  }
  st.unpublish(op);
  if (!own)
    op.stored.deliver(unavailable());
  else
    op.stored.deliver(make_error(ec::conflict, "job '" + op.rec.job_id + "' already exists"));
}

void answer_read(pending_op& op, const redis_reply& reply) {
  if (reply.type != redis_reply::kind::string) {
    op.read.deliver(make_error(ec::not_found, "job '" + op.id + "' not found"));
    return;
  }
  if (auto rec = job_from_json(reply.str))
    op.read.deliver(std::move(rec.value()));
  else
    op.read.deliver(make_error(ec::unspecified, "job '" + op.id + "' has a broken record: " + rec.error()));
}

/// Sends every batched request in one pipelined round trip and answers
/// each; a read sees the writes before it. A transition whose id was not in
/// the set its history names (a write cut off and sent again, or one never
/// stored on its own; rare) has its index repaired from the job's last
/// record in the batch, since a later write of the same job already ran.
void flush(lookup_ptr self) {
  auto& st = self->state;
  if (st.batch.empty())
    return;
  auto batch = std::move(st.batch);
  auto cmds = std::move(st.batch_cmds);
  st.batch.clear();
  st.batch_cmds.clear();
  st.batched += batch.size();
  ++st.flushes;
  // Not atomic: policy/lookup_writes.hpp says why the commands' order is enough.
  auto replies = st.redis->pipeline(cmds);
  if (!replies) {
    for (auto op = batch.rbegin(); op != batch.rend(); ++op)
      if (op->what == pending_op::kind::enqueue || op->what == pending_op::kind::put)
        st.unpublish(*op);
    for (auto& op : batch)
      if (op.what == pending_op::kind::read)
        op.read.deliver(make_error(ec::unavailable, "Redis is unavailable"));
      else if (op.what != pending_op::kind::event)
        op.stored.deliver(unavailable());
    return;
  }
  std::map<std::string, const job_record*> last;  // each job's last transition
  std::set<std::string> repair;                    // jobs whose index needs it
  for (auto& op : batch) {
    auto mine = std::span<const redis_reply>(*replies).subspan(op.first, op.count);
    if (op.what == pending_op::kind::enqueue) {
      answer_enqueue(st, op, mine);
    } else if (op.what == pending_op::kind::read) {
      answer_read(op, mine.front());
    } else if (op.what == pending_op::kind::put) {
      last[op.rec.job_id] = &op.rec;
      if (!lookup_writes::transition_indexed(op.rec, op.from, mine.first(op.count - op.tail)))
        repair.insert(op.rec.job_id);
    }
  }
  std::set<std::string> failed;
  for (auto& id : repair) {
    spdlog::debug("lookup: reindexing job_id={} state={}", id, to_string(last[id]->state));
    if (!st.redis->pipeline(lookup_writes::reindex(*last[id])))
      failed.insert(id);
  }
  for (auto& op : batch) {
    if (op.what != pending_op::kind::put)
      continue;
    if (failed.count(op.rec.job_id))
      op.stored.deliver(unavailable());
    else
      op.stored.deliver(true);
  }
}

/// Adds a request to the batch. The first one asks this actor to flush:
/// that message queues behind the requests already in the mailbox, which
/// join the batch.
void add_to_batch(lookup_ptr self, pending_op op, std::vector<cmd> cmds) {
  auto& st = self->state;
  op.first = st.batch_cmds.size();
  op.count = cmds.size();
  std::move(cmds.begin(), cmds.end(), std::back_inserter(st.batch_cmds));
  st.batch.push_back(std::move(op));
  if (st.batch.size() == 1)
    self->send(self, flush_atom::value);
  else if (st.batch.size() >= lookup_state::max_batch)
    flush(self);
}

caf::result<bool> batch_write(lookup_ptr self, bool is_new, job_record& rec) {
  auto& st = self->state;
  pending_op op;
  op.what = is_new ? pending_op::kind::enqueue : pending_op::kind::put;
  // The history entries not yet in the event stream go with this write.
  auto known = st.published.find(rec.job_id);
  if (known != st.published.end())
    op.was_published = known->second;
  auto from = std::min<uint64_t>(is_new ? 0 : op.was_published.value_or(rec.published),
                                 rec.history.size());
  rec.published = rec.history.size();
  if (is_terminal(rec.state))
    st.published.erase(rec.job_id);
  else
    st.published[rec.job_id] = rec.published;
  std::vector<cmd> cmds;
  if (is_new) {
    cmds = lookup_writes::enqueue(rec);
  } else {
    op.from = lookup_writes::last_stored_state(rec);
    cmds = lookup_writes::transition(rec, op.from);
    auto tail = lookup_writes::published(rec, from);
    op.tail = tail.size();
    std::move(tail.begin(), tail.end(), std::back_inserter(cmds));
  }
  op.rec = std::move(rec);
  op.stored = self->make_response_promise<bool>();
  auto answer = op.stored;
  add_to_batch(self, std::move(op), std::move(cmds));
  return answer;
}

caf::result<job_record> batch_read(lookup_ptr self, const std::string& id) {
  pending_op op;
  op.what = pending_op::kind::read;
  op.id = id;
  op.read = self->make_response_promise<job_record>();
  auto answer = op.read;
  add_to_batch(self, std::move(op), {{"GET", keys::job(id)}});
  return answer;
}

lookup_actor::behavior_type lookup_impl(lookup_ptr self, redis_target target,
                                        lookup_options opts) {
  self->state.redis = std::make_unique<redis_writer>(std::move(target), std::move(opts), "lookup");
  if (auto st = self->state.redis->connect(); !st)
    spdlog::warn("lookup: {} (will retry on first use)", st.error());
  return {
    [=](enqueue_atom, job_record& rec) { return batch_write(self, true, rec); },
    [=](put_atom, job_record& rec) { return batch_write(self, false, rec); },
    [=](flush_atom) { flush(self); },
    [=](get_atom, const std::string& id) { return batch_read(self, id); },
    [=](list_atom) -> caf::result<std::vector<job_record>> {
      flush(self);
      return self->state.read_all();
    },
    [=](recover_atom) -> caf::result<std::vector<job_record>> {
      flush(self);
      auto recs = self->state.read_unfinished();
      if (!recs)
        return make_error(ec::unavailable, "Redis unavailable");
      return std::move(*recs);
    },
    [=](list_atom, job_state s) -> caf::result<std::vector<job_record>> {
      flush(self);
      return self->state.read_all(s);
    },
    [=](list_atom, const std::string& project, const std::string& status,
        const std::string& cursor, uint64_t limit) -> caf::result<job_page> {
      flush(self);
      if (!status.empty() && !job_index::indexed_status(status))
        return make_error(ec::invalid_argument, "'" + status + "' is no status a page is kept for");
      auto key = status.empty() ? keys::project_jobs(project) : keys::project_status(project, status);
      caf::error err;
      auto page = self->state.read_page(key, cursor, limit, [&](const job_record& r) {
        return r.project_name == project && (status.empty() || api_status(r.state) == status);
      }, err);
      if (!page)
        return err;
      if (page->indexed && page->total == 0) { // none of that status, or no such project?
        auto all = self->state.redis->command({"ZCARD", keys::project_jobs(project)});
        if (!all)
          return unavailable();
        if (all->integer == 0)
          return make_error(ec::not_found, "project '" + project + "' not found");
      }
      return std::move(*page);
    },
    [=](list_atom, const std::string& project, const std::string& column, bool descending,
        const std::string& cursor, uint64_t limit) -> caf::result<job_page> {
      flush(self);
      auto& st = self->state;
      auto reads = [&](const std::vector<cmd>& cmds) { return st.redis->reads(cmds); };
      auto found = job_index::read_column_page(reads, project, column, descending, cursor, limit);
      using outcome = job_index::column_page::outcome;
      if (found.result == outcome::bad_cursor)
        return make_error(ec::invalid_argument, "'" + cursor + "' is not a cursor of this sort");
      if (found.result == outcome::unavailable)
        return make_error(ec::unavailable, "Redis unavailable");
      job_page page;
      page.version = found.version;
      page.indexed = found.result == outcome::page;
      if (!page.indexed)
        return page;
      if (found.total == 0)
        return make_error(ec::not_found, "project '" + project + "' not found");
      auto recs = st.read_records(found.ids);
      if (!recs)
        return make_error(ec::unavailable, "Redis unavailable");
      for (auto& r : *recs)
        if (r.project_name == project)
          page.jobs.push_back(std::move(r));
      page.total = found.total;
      page.next = found.next;
      return page;
    },
    [=](list_atom, job_state s, const std::string& cursor, uint64_t limit) -> caf::result<job_page> {
      flush(self);
      auto list = job_index::list_of(s);
      if (list.empty())
        return make_error(ec::invalid_argument, "only finished jobs are listed by pages");
      caf::error err;
      auto page = self->state.read_page(keys::ended_list(list), cursor, limit, [&](const job_record& r) {
        return job_index::list_of(r.state) == list;
      }, err);
      if (!page)
        return err;
      return std::move(*page);
    },
    [=](list_atom, const std::string& cursor, uint64_t limit) -> caf::result<job_page> {
      flush(self);
      caf::error err;
      auto page = self->state.read_page(keys::jobs_by_order, cursor, limit,
                                        [](const job_record&) { return true; }, err);
      if (!page)
        return err;
      return std::move(*page);
    },
    [=](list_atom, jobs_atom, const std::string& project, uint64_t max) -> caf::result<job_page> {
      flush(self);
      return self->state.read_newest(project, max);
    },
    [=](list_atom, sweep_atom, const std::string& project, const std::string& sweep,
        uint64_t limit) -> caf::result<std::vector<job_record>> {
      flush(self);
      auto recs = self->state.read_sweeps(project, sweep, limit);
      if (!recs)
        return make_error(ec::unavailable, "Redis unavailable");
      return std::move(*recs);
    },
    [=](list_atom, projects_atom) -> caf::result<project_views> {
      flush(self);
      return self->state.read_projects();
    },
    [=](delete_atom, const std::string& id) -> caf::result<bool> {
      flush(self);
      self->state.published.erase(id);
      // Its indexes are its project's, list's and columns': read them first.
      job_record rec;
      rec.job_id = id;
      auto reads = job_index::column_reads(id);
      reads.insert(reads.begin(), {"GET", keys::job(id)});
      auto stored = self->state.redis->reads(reads);
      if (!stored || stored->size() != 3)
        return unavailable();
      if ((*stored)[0].type == redis_reply::kind::string)
        if (auto r = job_from_json((*stored)[0].str))
          rec = std::move(r.value());
      // Atomic: not on a job's path, and a half-deleted job would show.
      auto cmds = lookup_writes::remove(rec, dashboard::tracking_keys(id));
      for (auto& c : job_index::columns_removed(rec.project_name, id, (*stored)[1], (*stored)[2]))
        cmds.push_back(std::move(c));
      auto replies = self->state.redis->transaction(cmds);
      if (!replies)
        return unavailable();
      return !replies->empty() && (*replies)[0].integer > 0;
    },
    [=](endpoint_atom, const std::string& endpoint) -> caf::result<bool> {
      flush(self);
      if (!self->state.redis->pipeline({{"SET", keys::master_endpoint, endpoint}}))
        return unavailable();
      return true;
    },
    [=](endpoint_atom) -> caf::result<std::string> {
      flush(self);
      auto reply = self->state.redis->command({"GET", keys::master_endpoint});
      if (!reply)
        return unavailable();
      if (reply->type != redis_reply::kind::string)
        return make_error(ec::not_found, "no master has recorded its endpoint yet");
      return reply->str;
    },
    [=](publish_atom, const std::string& event) {
      pending_op op;
      op.what = pending_op::kind::event;
      add_to_batch(self, std::move(op), {events::publish(event)});
    },
    [=](events_atom, const std::string& after, uint64_t max) -> caf::result<std::string> {
      flush(self);
      if (!events::valid_id(after))
        return make_error(ec::invalid_argument, "'" + after + "' is not an event id");
      if (auto page = events::read_page(*self->state.redis, after, max))
        return std::move(*page);
      return unavailable();
    },
    [=](usage_atom, double since, double until) -> caf::result<std::string> {
      flush(self);
      if (auto rows = usage::read_rows(*self->state.redis, since, until))
        return std::move(*rows);
      return unavailable();
    },
    [=](metrics_atom) -> caf::result<std::vector<uint64_t>> {
      flush(self);
      // A state without a set is counted from its list: completed jobs are
      // the completed list; failed ones share theirs with cancelled ones.
      std::vector<cmd> counts;
      for (auto s : all_job_states)
        counts.push_back(lookup_writes::has_state_set(s)
                           ? cmd{"SCARD", keys::state_set(to_string(s))}
                           : cmd{"ZCARD", keys::ended_list(job_index::list_of(s))});
      auto replies = self->state.redis->reads(counts);
      if (!replies || replies->size() != counts.size())
        return unavailable();
      std::vector<uint64_t> out;
      for (auto& r : *replies)
        out.push_back(r.type == redis_reply::kind::integer ? static_cast<uint64_t>(r.integer) : 0);
      auto& failed = out[static_cast<size_t>(job_state::failed)];
      failed -= std::min(failed, out[static_cast<size_t>(job_state::cancelled)]);
      return out;
    },
    [=](stats_atom) {
      auto& st = self->state;
      return self->stats("", st.redis->describe() + ", " + std::to_string(st.batched)
                               + " reads and writes in " + std::to_string(st.flushes)
                               + " round trips");
    },
  };
}

} // namespace

lookup_actor spawn_lookup(caf::actor_system& sys, const redis_target& target,
                          lookup_options opts) {
  return sys.spawn<caf::detached>(lookup_impl, target, std::move(opts));
}

lookup_actor spawn_lookup(caf::actor_system& sys, std::string host, uint16_t port,
                          int retry_s) {
  lookup_options opts;
  opts.retry_s = retry_s;
  return spawn_lookup(sys, redis_target{std::move(host), port, {}, {}}, std::move(opts));
}

} // namespace atlas
