#include "actors/node.hpp"

#include <chrono>
#include <set>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "adapters/process.hpp"
#include "runtime/redis_server.hpp"

namespace atlas {

namespace {

struct node_state {
  static inline const char* name = "node";
  node_context ctx;
  std::vector<worker_slot_actor> slots;
  std::set<std::string> busy;           // slot keys with a job, while draining
  bool draining = false;
  size_t unanswered = 0;                // slots not yet asked whether busy
  int redis_restarts = 0;
  caf::typed_response_promise<bool> drained;
};

using node_ptr = node_actor::stateful_pointer<node_state>;

void check_drained(node_ptr self) {
  auto& st = self->state;
  if (st.draining && st.unanswered == 0 && st.busy.empty() && st.drained.pending())
    st.drained.deliver(true);
}

node_actor::behavior_type node_impl(node_ptr self, node_context ctx) {
  self->state.ctx = std::move(ctx);
  return {
    [=](redis_atom) {
      auto& st = self->state;
      if (st.draining)
        return;
      node_actor me = self;
      st.ctx.processes->spawn(
        redis_process(*st.ctx.config),
        [pid_out = st.ctx.redis_pid](int pid) {
          spdlog::info("redis-server started pid={}", pid);
          if (pid_out != nullptr)
            *pid_out = pid;
        },
        [me, pid_out = st.ctx.redis_pid](process_exit ex) {
          if (pid_out != nullptr)
            *pid_out = 0;
          if (!ex.error.empty())
            spdlog::error("redis-server could not start: {}", ex.error);
          caf::anon_send(me, redis_atom::value, ex.exit_status);
        });
    },
    [=](redis_atom, int64_t status) {
      auto& st = self->state;
      if (st.draining)
        return;
      // Back off 0.1 s, 0.2 s, ... up to 5 s between restarts.
      auto delay = std::chrono::milliseconds(std::min(5000, 100 << std::min(st.redis_restarts, 6)));
      ++st.redis_restarts;
      spdlog::warn("redis-server exited with status {}; restarting in {} ms", status,
                   delay.count());
      self->delayed_send(self, delay, redis_atom::value);
    },
    [=](drain_atom, int32_t drain_s) -> caf::result<bool> {
      auto& st = self->state;
      st.draining = true;
      st.drained = self->make_response_promise<bool>();
      auto rp = st.drained;
      st.unanswered = st.slots.size();
      for (auto& slot : st.slots) {
        self->send(slot, drain_atom::value, false);
        self->request(slot, std::chrono::seconds(5), get_atom::value)
          .then(
            [=](slot_info& info) {
              if (!info.current_job.empty())
                self->state.busy.insert(info.key);
              --self->state.unanswered;
              check_drained(self);
            },
            [=](caf::error&) {
              --self->state.unanswered;
              check_drained(self);
            });
      }
      check_drained(self);
      self->delayed_send(self, std::chrono::seconds(drain_s), kill_atom::value);
      return rp;
    },
    [=](kill_atom) {
      auto& st = self->state;
      if (st.busy.empty())
        return;
      spdlog::warn("drain period over: stopping {} running jobs (they will be requeued)",
                   st.busy.size());
      for (auto& slot : st.slots)
        self->send(slot, drain_atom::value, true);
    },
    [=](register_atom, worker_slot_actor& slot) { self->state.slots.push_back(slot); },
    [=](idle_atom, const std::string& key) {
      self->state.busy.erase(key);
      check_drained(self);
    },
  };
}

} // namespace

node_actor spawn_node(caf::actor_system& sys, node_context ctx) {
  return sys.spawn(node_impl, std::move(ctx));
}

} // namespace atlas
