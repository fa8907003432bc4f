#include "actors/lookup.hpp"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/counted.hpp"
#include "actors/dashboard_store.hpp"
#include "actors/policy/lookup_writes.hpp"
#include "adapters/redis_client.hpp"
#include "messages/errors.hpp"
#include "messages/redis_keys.hpp"
#include "library/job_codec.hpp"

namespace atlas {

namespace {

using cmd = std::vector<std::string>;

// KEYS[1]: the lease; ARGV[1]: the lease value of this master, then each
// command as its argument count followed by its arguments. Runs them all
// (error replies kept in place) only while the lease is still this
// master's.
constexpr const char* fenced_script = R"lua(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED this master no longer holds the lease (' .. ARGV[1] .. ')')
end
local out, i = {}, 2
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  out[#out + 1] = redis.pcall(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return out
)lua";

/// A request waiting for the batch's round trip: its commands are
/// [first, first + count) of the batch's.
struct pending_op {
  enum class kind { enqueue, put, read } what;
  job_record rec;                 // enqueue, put: what is written
  std::string id;                 // read: the job
  std::optional<job_state> from;  // put: the state it was stored in before
  size_t first = 0;
  size_t count = 0;
  caf::typed_response_promise<bool> stored;     // enqueue, put
  caf::typed_response_promise<job_record> read; // read
};

struct lookup_state {
  static inline const char* name = "lookup";
  // Enough to amortise the round trip; few enough that nothing waits long.
  static constexpr size_t max_batch = 256;
  std::unique_ptr<redis_client> redis;
  lookup_options opts;
  std::vector<pending_op> batch;
  std::vector<cmd> batch_cmds;
  uint64_t batched = 0; // enqueues, puts and reads, for atlas-ctl
  uint64_t flushes = 0; // the round trips they took

  /// Runs `attempt` until it succeeds or the retry budget is spent. Blocking
  /// is fine here: this actor runs on its own thread.
  template <class F>
  auto with_retry(F attempt) -> decltype(attempt(std::declval<std::string&>())) {
    std::string err;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(opts.retry_s);
    auto backoff = std::chrono::milliseconds(50);
    for (;;) {
      if (auto res = attempt(err))
        return res;
      if (std::chrono::steady_clock::now() + backoff > deadline) {
        spdlog::error("lookup: Redis unavailable: {}", err);
        return {};
      }
      spdlog::warn("lookup: Redis call failed, retrying in {} ms: {}", backoff.count(), err);
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
    }
  }

  /// One try of `cmds` in one round trip. Fenced (the active master):
  /// inside one script that first checks the lease still names this master,
  /// so a master that lost it writes nothing, and the batch is atomic.
  /// Otherwise `atomic` wraps them in MULTI/EXEC. With replicas to wait
  /// for, WAIT follows in the same round trip and must see enough of them.
  std::optional<std::vector<redis_reply>> write_once(const std::vector<cmd>& cmds, bool atomic,
                                                     std::string& err) {
    const bool fenced = !opts.fence.empty();
    const bool wait = opts.min_replica_acks > 0;
    std::vector<cmd> wrapped;
    if (fenced) {
      cmd eval{"EVAL", fenced_script, "1", keys::master_lease, opts.fence};
      for (auto& c : cmds) {
        eval.push_back(std::to_string(c.size()));
        eval.insert(eval.end(), c.begin(), c.end());
      }
      wrapped.push_back(std::move(eval));
    } else if (atomic || wait) {
      if (atomic)
        wrapped.push_back({"MULTI"});
      wrapped.insert(wrapped.end(), cmds.begin(), cmds.end());
      if (atomic)
        wrapped.push_back({"EXEC"});
    }
    if (wait)
      wrapped.push_back({"WAIT", std::to_string(opts.min_replica_acks),
                         std::to_string(opts.wait_timeout_ms)});
    auto replies = redis->pipeline(wrapped.empty() ? cmds : wrapped, &err);
    if (!replies)
      return std::nullopt;
    if (wait) {
      auto acks = replies->back().integer;
      if (replies->back().type != redis_reply::kind::integer || acks < opts.min_replica_acks) {
        err = "only " + std::to_string(acks) + " of " + std::to_string(opts.min_replica_acks)
              + " Redis replica(s) confirmed the write within "
              + std::to_string(opts.wait_timeout_ms) + " ms";
        redis->disconnect(); // behind sentinels, the next try asks them where the primary is
        return std::nullopt;
      }
      replies->pop_back();
    }
    if (fenced || atomic) {
      auto& last = replies->back();
      if (last.type == redis_reply::kind::array)
        return std::move(last.elements);
      err = last.is_error() ? last.str : "Redis refused the transaction";
      return std::nullopt;
    }
    return replies;
  }

  std::optional<std::vector<redis_reply>> transaction(const std::vector<cmd>& cmds) {
    return with_retry([&](std::string& err) { return write_once(cmds, true, err); });
  }

  /// One round trip, not atomic unless fenced (see actors/lookup_writes.hpp
  /// for why the order of `cmds` is enough). Error replies (a key of the
  /// wrong type) are logged: the write is not repeated for them.
  std::optional<std::vector<redis_reply>> pipeline(const std::vector<cmd>& cmds) {
    auto replies =
      with_retry([&](std::string& err) { return write_once(cmds, false, err); });
    if (replies)
      for (size_t i = 0; i < replies->size() && i < cmds.size(); ++i)
        if ((*replies)[i].is_error())
          spdlog::error("lookup: Redis refused {} {}: {}", cmds[i][0],
                        cmds[i].size() > 1 ? cmds[i][1] : "", (*replies)[i].str);
    return replies;
  }

  /// Reads only: writes go through pipeline() or transaction(), fenced.
  std::optional<redis_reply> command(const cmd& c) {
    return with_retry([&](std::string& err) { return redis->command(c, &err); });
  }

  /// SET NX found a record. It is ours when it is byte for byte what we
  /// wrote: a write Redis applied but whose answer was lost, then sent again.
  /// Otherwise it is another job's, and the index entry the refused write
  /// added is taken back unless that job is in the same state.
  /// Nullopt when Redis is unavailable.
  std::optional<bool> is_own_record(const job_record& rec) {
    auto stored = command({"GET", keys::job(rec.job_id)});
    if (!stored)
      return std::nullopt;
    if (stored->type == redis_reply::kind::string && stored->str == to_json(rec))
      return true;
    std::string err;
    auto other = stored->type == redis_reply::kind::string
                   ? job_from_json(stored->str, err) : std::nullopt;
    if (!other || other->state != rec.state)
      pipeline({{"SREM", keys::state_set(to_string(rec.state)), rec.job_id}});
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
    auto reply = command(mget);
    if (!reply)
      return std::nullopt;
    for (auto& e : reply->elements) {
      if (e.type != redis_reply::kind::string)
        continue; // deleted meanwhile
      std::string err;
      if (auto rec = job_from_json(e.str, err))
        out.push_back(std::move(*rec));
      else
        spdlog::warn("lookup: unreadable job record skipped: {}", err);
    }
    return out;
  }

  /// The records whose ids are in the set `key`; with `state`, only those
  /// actually in it (an index entry may be stale, the record is not).
  caf::result<std::vector<job_record>> read_set(const std::string& key,
                                                std::optional<job_state> state = {}) {
    auto reply = command({"SMEMBERS", key});
    if (!reply)
      return make_error(ec::unavailable, "Redis unavailable");
    std::vector<std::string> ids;
    for (auto& e : reply->elements)
      ids.push_back(e.str);
    auto recs = read_records(ids);
    if (!recs)
      return make_error(ec::unavailable, "Redis unavailable");
    if (state)
      std::erase_if(*recs, [&](const job_record& r) { return r.state != *state; });
    return std::move(*recs);
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
  if (!own)
    op.stored.deliver(unavailable());
  else if (*own)
    op.stored.deliver(true);
  else
    op.stored.deliver(make_error(ec::conflict, "job '" + op.rec.job_id + "' already exists"));
}

void answer_read(pending_op& op, const redis_reply& reply) {
  if (reply.type != redis_reply::kind::string) {
    op.read.deliver(make_error(ec::not_found, "job '" + op.id + "' not found"));
    return;
  }
  std::string err;
  if (auto rec = job_from_json(reply.str, err))
    op.read.deliver(std::move(*rec));
  else
    op.read.deliver(make_error(ec::unspecified, "job '" + op.id + "' has a broken record: " + err));
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
  auto replies = st.pipeline(cmds);
  if (!replies) {
    for (auto& op : batch)
      if (op.what == pending_op::kind::read)
        op.read.deliver(make_error(ec::unavailable, "Redis is unavailable"));
      else
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
    } else {
      last[op.rec.job_id] = &op.rec;
      if (!lookup_writes::transition_indexed(op.rec, op.from, mine))
        repair.insert(op.rec.job_id);
    }
  }
  std::set<std::string> failed;
  for (auto& id : repair) {
    spdlog::debug("lookup: reindexing job_id={} state={}", id, to_string(last[id]->state));
    if (!st.pipeline(lookup_writes::reindex(*last[id])))
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
  pending_op op;
  op.what = is_new ? pending_op::kind::enqueue : pending_op::kind::put;
  if (!is_new)
    op.from = lookup_writes::last_stored_state(rec);
  auto cmds = is_new ? lookup_writes::enqueue(rec) : lookup_writes::transition(rec, op.from);
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
  self->state.redis = std::make_unique<redis_client>(std::move(target));
  self->state.opts = std::move(opts);
  if (auto st = self->state.redis->connect(); !st)
    spdlog::warn("lookup: {} (will retry on first use)", st.error());
  return {
    [=](enqueue_atom, job_record& rec) { return batch_write(self, true, rec); },
    [=](put_atom, job_record& rec) { return batch_write(self, false, rec); },
    [=](flush_atom) { flush(self); },
    [=](get_atom, const std::string& id) { return batch_read(self, id); },
    [=](list_atom) -> caf::result<std::vector<job_record>> {
      flush(self);
      return self->state.read_set(keys::all_jobs);
    },
    [=](list_atom, job_state s) -> caf::result<std::vector<job_record>> {
      flush(self);
      return self->state.read_set(keys::state_set(to_string(s)), s);
    },
    [=](delete_atom, const std::string& id) -> caf::result<bool> {
      flush(self);
      // Atomic: not on a job's path, and a half-deleted job would show.
      auto cmds = lookup_writes::remove(id, dashboard::tracking_keys(id));
      auto replies = self->state.transaction(cmds);
      if (!replies)
        return unavailable();
      return !replies->empty() && (*replies)[0].integer > 0;
    },
    [=](endpoint_atom, const std::string& endpoint) -> caf::result<bool> {
      flush(self);
      if (!self->state.pipeline({{"SET", keys::master_endpoint, endpoint}}))
        return unavailable();
      return true;
    },
    [=](endpoint_atom) -> caf::result<std::string> {
      flush(self);
      auto reply = self->state.command({"GET", keys::master_endpoint});
      if (!reply)
        return unavailable();
      if (reply->type != redis_reply::kind::string)
        return make_error(ec::not_found, "no master has recorded its endpoint yet");
      return reply->str;
    },
    [=](stats_atom) {
      auto& redis = *self->state.redis;
      auto& st = self->state;
      return self->stats("", "Redis " + redis.host() + ":" + std::to_string(redis.port())
                               + (redis.connected() ? " connected, " : " not connected, ")
                               + (st.opts.fence.empty() ? "" : "fenced by lease epoch "
                                  + st.opts.fence.substr(0, st.opts.fence.find(' ')) + ", ")
                               + std::to_string(st.batched) + " reads and writes in "
                               + std::to_string(st.flushes) + " round trips");
    },
    [=](track_atom, const std::string& op,
        const std::vector<std::string>& args) -> caf::result<std::string> {
      flush(self);
      auto tx = [=](const std::vector<cmd>& cmds) { return self->state.transaction(cmds); };
      auto answer = dashboard::run(tx, op, args);
      switch (answer.status) {
        case 200: return std::move(answer.body);
        case 400: return make_error(ec::invalid_argument, std::move(answer.body));
        case 403: return make_error(ec::forbidden, std::move(answer.body));
        case 404: return make_error(ec::not_found, std::move(answer.body));
        default: return make_error(ec::unavailable, std::move(answer.body));
      }
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
