#include "actors/dashboard/tracking.hpp"

#include <memory>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/counted.hpp"
#include "library/events.hpp"
#include "library/tracking/store.hpp"
#include "library/usage.hpp"
#include "messages/errors.hpp"

namespace atlas {

namespace {

struct tracking_state {
  static inline const char* name = "tracking";
  std::unique_ptr<redis_writer> redis;
  uint64_t answered = 0; // operations answered 200, for atlas-ctl
  uint64_t refused = 0;  // and those answered with an error
};

using tracking_ptr = counted_pointer<tracking_actor, tracking_state>;

/// The store's HTTP status as an error value the gateway turns back into it.
caf::result<std::string> answer_of(tracking_state& st, dashboard::store_answer answer) {
  if (answer.status == 200) {
    ++st.answered;
    return std::move(answer.body);
  }
  ++st.refused;
  switch (answer.status) {
    case 400: return make_error(ec::invalid_argument, std::move(answer.body));
    case 403: return make_error(ec::forbidden, std::move(answer.body));
    case 404: return make_error(ec::not_found, std::move(answer.body));
    default: return make_error(ec::unavailable, std::move(answer.body));
  }
}

tracking_actor::behavior_type tracking_impl(tracking_ptr self, redis_target target,
                                            redis_write_options opts) {
  self->state.redis = std::make_unique<redis_writer>(std::move(target), std::move(opts),
                                                     "tracking");
  if (auto st = self->state.redis->connect(); !st)
    spdlog::warn("tracking: {} (will retry on first use)", st.error());
  return {
    [=](track_atom, const std::string& op,
        const std::vector<std::string>& args) -> caf::result<std::string> {
      auto& st = self->state;
      auto tx = [&st](const std::vector<dashboard::redis_cmd>& cmds) {
        return st.redis->transaction(cmds);
      };
      return answer_of(st, dashboard::run(tx, op, args));
    },
    [=](events_atom, const std::string& after, uint64_t max) -> caf::result<std::string> {
      if (!events::valid_id(after))
        return make_error(ec::invalid_argument, "'" + after + "' is not an event id");
      if (auto page = events::read_page(*self->state.redis, after, max))
        return std::move(*page);
      return make_error(ec::unavailable, "Redis is unavailable");
    },
    [=](usage_atom, double since, double until) -> caf::result<std::string> {
      if (auto rows = usage::read_rows(*self->state.redis, since, until))
        return std::move(*rows);
      return make_error(ec::unavailable, "Redis is unavailable");
    },
    [=](stats_atom) {
      auto& st = self->state;
      return self->stats("", st.redis->describe() + ", " + std::to_string(st.answered)
                               + " answered, " + std::to_string(st.refused)
                               + " refused");
    },
  };
}

} // namespace

tracking_actor spawn_tracking(caf::actor_system& sys, const redis_target& target,
                              redis_write_options opts) {
  return sys.spawn<caf::detached>(tracking_impl, target, std::move(opts));
}

} // namespace atlas
