#include "actors/lookup.hpp"

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/counted.hpp"
#include "actors/dashboard_store.hpp"
#include "actors/lookup_writes.hpp"
#include "adapters/redis_client.hpp"
#include "messages/errors.hpp"
#include "messages/redis_keys.hpp"
#include "runtime/job_codec.hpp"

namespace atlas {

namespace {

using cmd = std::vector<std::string>;

struct lookup_state {
  static inline const char* name = "lookup";
  std::unique_ptr<redis_client> redis;
  int retry_s = 10;

  /// Runs `attempt` until it succeeds or the retry budget is spent. Blocking
  /// is fine here: this actor runs on its own thread.
  template <class F>
  auto with_retry(F attempt) -> decltype(attempt(std::declval<std::string&>())) {
    std::string err;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(retry_s);
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

  std::optional<std::vector<redis_reply>> transaction(const std::vector<cmd>& cmds) {
    return with_retry([&](std::string& err) { return redis->transaction(cmds, &err); });
  }

  /// One round trip, not atomic (see actors/lookup_writes.hpp for why the
  /// order of `cmds` is enough). Error replies (a key of the wrong type) are
  /// logged: the write is not repeated for them.
  std::optional<std::vector<redis_reply>> pipeline(const std::vector<cmd>& cmds) {
    auto replies =
      with_retry([&](std::string& err) { return redis->pipeline(cmds, &err); });
    if (replies)
      for (size_t i = 0; i < replies->size(); ++i)
        if ((*replies)[i].is_error())
          spdlog::error("lookup: Redis refused {} {}: {}", cmds[i][0],
                        cmds[i].size() > 1 ? cmds[i][1] : "", (*replies)[i].str);
    return replies;
  }

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
      command({"SREM", keys::state_set(to_string(rec.state)), rec.job_id});
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

lookup_actor::behavior_type lookup_impl(lookup_ptr self, std::string host, uint16_t port,
                                        int retry_s) {
  self->state.redis = std::make_unique<redis_client>(host, port);
  self->state.retry_s = retry_s;
  if (auto st = self->state.redis->connect(); !st)
    spdlog::warn("lookup: {} (will retry on first use)", st.error());
  return {
    [=](enqueue_atom, const job_record& rec) -> caf::result<bool> {
      auto replies = self->state.pipeline(lookup_writes::enqueue(rec));
      if (!replies)
        return unavailable();
      if (lookup_writes::enqueue_created(*replies))
        return true;
      auto own = self->state.is_own_record(rec);
      if (!own)
        return unavailable();
      if (*own)
        return true;
      return make_error(ec::conflict, "job '" + rec.job_id + "' already exists");
    },
    [=](put_atom, const job_record& rec) -> caf::result<bool> {
      auto from = lookup_writes::last_stored_state(rec);
      auto replies = self->state.pipeline(lookup_writes::transition(rec, from));
      if (!replies)
        return unavailable();
      if (!lookup_writes::transition_indexed(rec, from, *replies)) {
        // Not in the set its history names: a write cut off and sent again,
        // or a transition that was never stored on its own. Rare.
        spdlog::debug("lookup: reindexing job_id={} state={}", rec.job_id,
                      to_string(rec.state));
        if (!self->state.pipeline(lookup_writes::reindex(rec)))
          return unavailable();
      }
      return true;
    },
    [=](get_atom, const std::string& id) -> caf::result<job_record> {
      auto reply = self->state.command({"GET", keys::job(id)});
      if (!reply)
        return unavailable();
      if (reply->type != redis_reply::kind::string)
        return make_error(ec::not_found, "job '" + id + "' not found");
      std::string err;
      auto rec = job_from_json(reply->str, err);
      if (!rec)
        return make_error(ec::unspecified, "job '" + id + "' has a broken record: " + err);
      return std::move(*rec);
    },
    [=](list_atom) -> caf::result<std::vector<job_record>> {
      return self->state.read_set(keys::all_jobs);
    },
    [=](list_atom, job_state s) -> caf::result<std::vector<job_record>> {
      return self->state.read_set(keys::state_set(to_string(s)), s);
    },
    [=](delete_atom, const std::string& id) -> caf::result<bool> {
      // Atomic: not on a job's path, and a half-deleted job would show.
      auto cmds = lookup_writes::remove(id, dashboard::tracking_keys(id));
      auto replies = self->state.transaction(cmds);
      if (!replies)
        return unavailable();
      return !replies->empty() && (*replies)[0].integer > 0;
    },
    [=](endpoint_atom, const std::string& endpoint) -> caf::result<bool> {
      if (!self->state.command({"SET", keys::master_endpoint, endpoint}))
        return unavailable();
      return true;
    },
    [=](endpoint_atom) -> caf::result<std::string> {
      auto reply = self->state.command({"GET", keys::master_endpoint});
      if (!reply)
        return unavailable();
      if (reply->type != redis_reply::kind::string)
        return make_error(ec::not_found, "no master has recorded its endpoint yet");
      return reply->str;
    },
    [=](stats_atom) {
      auto& redis = *self->state.redis;
      return self->stats("", "Redis " + redis.host() + ":" + std::to_string(redis.port())
                               + (redis.connected() ? " connected" : " not connected"));
    },
    [=](track_atom, const std::string& op,
        const std::vector<std::string>& args) -> caf::result<std::string> {
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

lookup_actor spawn_lookup(caf::actor_system& sys, std::string host, uint16_t port,
                          int retry_s) {
  return sys.spawn<caf::detached>(lookup_impl, std::move(host), port, retry_s);
}

} // namespace atlas
