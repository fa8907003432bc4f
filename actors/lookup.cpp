#include "actors/lookup.hpp"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/counted.hpp"
#include "actors/dashboard_store.hpp"
#include "adapters/redis_client.hpp"
#include "messages/errors.hpp"
#include "messages/redis_keys.hpp"
#include "runtime/job_codec.hpp"

namespace atlas {

namespace {

using cmd = std::vector<std::string>;

constexpr job_state all_states[] = {job_state::queued,    job_state::pending,
                                    job_state::running,   job_state::completed,
                                    job_state::failed,    job_state::cancelled,
                                    job_state::lost};

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

  std::optional<redis_reply> command(const cmd& c) {
    return with_retry([&](std::string& err) { return redis->command(c, &err); });
  }

  /// The commands that store a record and move it into its state's index.
  /// A record only ever enters the index of a state it was stored in, and
  /// every such state is in its history (queued included), so only those
  /// indexes are cleaned: 4-7 commands instead of 9 per write.
  static std::vector<cmd> store(const job_record& rec) {
    std::vector<cmd> cmds;
    cmds.push_back({"SET", keys::job(rec.job_id), to_json(rec)});
    cmds.push_back({"SADD", keys::all_jobs, rec.job_id});
    bool seen[std::size(all_states)] = {};
    auto clean = [&](job_state s) {
      auto i = static_cast<size_t>(std::find(std::begin(all_states), std::end(all_states), s)
                                   - std::begin(all_states));
      if (s == rec.state || i >= std::size(all_states) || seen[i])
        return;
      seen[i] = true;
      cmds.push_back({"SREM", keys::state_set(to_string(s)), rec.job_id});
    };
    clean(job_state::queued);
    for (auto& t : rec.history)
      clean(t.state);
    cmds.push_back({"SADD", keys::state_set(to_string(rec.state)), rec.job_id});
    return cmds;
  }

  caf::result<std::vector<job_record>> read_records(const std::vector<std::string>& ids) {
    std::vector<job_record> out;
    if (ids.empty())
      return out;
    cmd mget{"MGET"};
    for (auto& id : ids)
      mget.push_back(keys::job(id));
    auto reply = command(mget);
    if (!reply)
      return make_error(ec::unavailable, "Redis unavailable");
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

  caf::result<std::vector<job_record>> read_set(const std::string& key) {
    auto reply = command({"SMEMBERS", key});
    if (!reply)
      return make_error(ec::unavailable, "Redis unavailable");
    std::vector<std::string> ids;
    for (auto& e : reply->elements)
      ids.push_back(e.str);
    return read_records(ids);
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
      // The master is the only writer of new records, so check-then-write
      // cannot race with another submission of the same id.
      auto exists = self->state.command({"EXISTS", keys::job(rec.job_id)});
      if (!exists)
        return unavailable();
      if (exists->integer > 0)
        return make_error(ec::conflict, "job '" + rec.job_id + "' already exists");
      auto cmds = lookup_state::store(rec);
      if (!self->state.transaction(cmds))
        return unavailable();
      return true;
    },
    [=](put_atom, const job_record& rec) -> caf::result<bool> {
      if (!self->state.transaction(lookup_state::store(rec)))
        return unavailable();
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
      return self->state.read_set(keys::state_set(to_string(s)));
    },
    [=](delete_atom, const std::string& id) -> caf::result<bool> {
      std::vector<cmd> cmds;
      cmds.push_back({"DEL", keys::job(id)});
      cmds.push_back({"SREM", keys::all_jobs, id});
      for (auto s : all_states)
        cmds.push_back({"SREM", keys::state_set(to_string(s)), id});
      cmds.push_back({"HDEL", keys::routing_map, id});
      for (auto& key : dashboard::tracking_keys(id))
        cmds.push_back({"DEL", key});
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
    [=](route_atom, const std::string& id, const std::string& address) -> caf::result<bool> {
      if (!self->state.command({"HSET", keys::routing_map, id, address}))
        return unavailable();
      return true;
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
