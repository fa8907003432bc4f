#include "actors/node.hpp"

#include <algorithm>
#include <charconv>
#include <string_view>
#include <chrono>
#include <random>
#include <set>

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/logger.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/cluster_link.hpp"
#include "actors/counted.hpp"
#include "actors/peer_check.hpp"
#include "adapters/caf_front.hpp"
#include "adapters/event_loop.hpp"
#include "adapters/process.hpp"
#include "messages/errors.hpp"
#include "library/job_codec.hpp"
#include "library/redis_server.hpp"

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
  // Worker nodes: the way to the master.
  lookup_actor lookup;
  std::string secret;
  http_gateway_actor gateway;
  tracking_actor tracking;
  master_actor master;
  int connect_attempts = 0;
  double started = 0;
  bool pinging = false; // a heartbeat timer is running
  int32_t next_index = 0; // of a slot added at run time (POST /workers); never reused
  std::minstd_rand jitter{std::random_device{}()}; // of the rejoin delays
};

using node_ptr = counted_pointer<node_actor, node_state>;

/// How often a node tells the master it is alive (for atlas-ctl's ages):
/// every other CAF heartbeat, at least a second apart. On the master each
/// costs about what a heartbeat does, and a thousand nodes' add up
/// (bench/RESULTS.md §7): a longer cluster.heartbeat_ms slows both.
std::chrono::milliseconds ping_interval(const node_config& cfg) {
  return std::chrono::milliseconds(std::max(1000, 2 * cfg.heartbeat_ms));
}

void check_drained(node_ptr self) {
  auto& st = self->state;
  if (st.draining && st.unanswered == 0 && st.busy.empty() && st.drained.pending())
    st.drained.deliver(true);
}

/// Starts the heartbeat timer chain once; rejoins reuse it.
void start_pings(node_ptr self) {
  if (self->state.pinging)
    return;
  self->state.pinging = true;
  self->send(self, ping_atom::value);
}

/// Asks every actor of this node for its own account; answers once all did.
caf::result<std::vector<actor_stats>> node_actor_stats(node_ptr self) {
  auto& st = self->state;
  auto g = std::make_shared<stats_gathering>();
  g->rp = self->make_response_promise<std::vector<actor_stats>>();
  g->node = st.ctx.config->node_id;
  g->stats.push_back(self->stats(g->node, std::to_string(st.slots.size()) + " slot(s)"));
  g->waiting = st.slots.size() + (st.gateway ? 1 : 0) + (st.tracking ? 1 : 0)
               + (st.lookup ? 1 : 0);
  if (g->waiting == 0) {
    g->rp.deliver(std::move(g->stats));
    return g->rp;
  }
  auto one = [=](actor_stats& s) {
    g->add(std::move(s));
    g->done_one();
  };
  auto skip = [=](caf::error&) { g->done_one(); };
  auto timeout = std::chrono::seconds(2);
  for (auto& slot : st.slots)
    self->request(slot, timeout, stats_atom::value).then(one, skip);
  if (st.gateway)
    self->request(st.gateway, timeout, stats_atom::value).then(one, skip);
  if (st.tracking)
    self->request(st.tracking, timeout, stats_atom::value).then(one, skip);
  if (st.lookup)
    self->request(st.lookup, timeout, stats_atom::value).then(one, skip);
  return g->rp;
}

/// Tries again later: after about 0.25 s, 0.5 s, then 1 s (each ±50 %).
void retry_connect(node_ptr self, const std::string& why) {
  auto& st = self->state;
  // At most 1.5 s apart: a standby that took over is joined soon after.
  // Jittered by half, so that a thousand nodes that lost the same master
  // do not all dial it again in the same instant.
  auto base = std::min(1000, 250 << std::min(st.connect_attempts, 2));
  auto spread = static_cast<int>(st.jitter() % static_cast<unsigned>(base));
  auto delay = std::chrono::milliseconds(base / 2 + spread);
  ++st.connect_attempts;
  spdlog::warn("cannot join the master ({}); retrying in {} ms", why, delay.count());
  self->delayed_send(self, delay, connect_atom::value);
}

node_actor::behavior_type node_impl(node_ptr self, node_context ctx, lookup_actor lookup,
                                    std::string secret) {
  self->state.ctx = std::move(ctx);
  self->state.lookup = std::move(lookup);
  self->state.secret = std::move(secret);
  self->state.started = now_seconds();
  self->state.next_index = self->state.ctx.config->num_workers; // bring-up made 0..n-1
  // Slots added at run time are the node's alone to stop: they go with it.
  self->set_exit_handler([=](caf::exit_msg& em) {
    for (auto& slot : self->state.slots)
      self->send_exit(slot, em.reason);
    self->quit(em.reason);
  });
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (st.master && dm.source == st.master.address()) {
      spdlog::error("lost the master: {}", caf::to_string(dm.reason));
      st.master = nullptr;
      if (!st.draining)
        self->send(self, connect_atom::value);
    }
  });
  return {
    [=](redis_atom) {
      if (!local_only(self, "redis"))
        return;
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
      if (!local_only(self, "redis"))
        return;
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
      if (auto who = sender_of(self); !who.local)
        return refuse(self, who, "drain");
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
      if (!local_only(self, "kill"))
        return;
      auto& st = self->state;
      if (st.busy.empty())
        return;
      spdlog::warn("drain period over: stopping {} running jobs (they will be requeued)",
                   st.busy.size());
      for (auto& slot : st.slots)
        self->send(slot, drain_atom::value, true);
    },
    [=](register_atom, worker_slot_actor& slot) {
      if (local_only(self, "register"))
        self->state.slots.push_back(slot);
    },
    [=](register_atom, http_gateway_actor& gateway) {
      if (local_only(self, "register"))
        self->state.gateway = gateway;
    },
    [=](register_atom, tracking_actor& tracking) {
      if (local_only(self, "register"))
        self->state.tracking = tracking;
    },
    [=](connect_atom) {
      if (!local_only(self, "connect"))
        return;
      auto& st = self->state;
      if (st.draining || st.master || !st.lookup)
        return;
      self->request(st.lookup, caf::infinite, endpoint_atom::value)
        .then(
          [=](const std::string& endpoint) {
            // Read from Redis: a malformed value is retried, never thrown.
            auto colon = endpoint.rfind(':');
            unsigned parsed = 0;
            auto digits = std::string_view{endpoint}.substr(
              colon == std::string::npos ? endpoint.size() : colon + 1);
            auto [end, bad] = std::from_chars(digits.data(), digits.data() + digits.size(), parsed);
            if (colon == std::string::npos || colon == 0 || bad != std::errc{}
                || end != digits.data() + digits.size() || parsed == 0 || parsed > 65535) {
              retry_connect(self, "the master's endpoint in Redis is not host:port: '" + endpoint + "'");
              return;
            }
            auto host = endpoint.substr(0, colon);
            auto port = static_cast<uint16_t>(parsed);
            // Through the cluster port (TLS, checked); CAF's handshake over
            // the new link blocks, so it runs on the thread pool.
            auto* sys = &self->system();
            auto* loop = self->state.ctx.loop;
            node_actor me = self;
            self->state.ctx.front->dial(
              host, port, "master",
              [sys, loop, me, port, endpoint](int fd, const peer_identity&) {
                loop->post_work([sys, me, fd, port, endpoint] {
                  auto door = attach_outbound(*sys, fd, port, std::chrono::seconds(10));
                  // The scoped actor left a reference to CAF's logger in this
                  // pool thread's thread-local; ~actor_system waits for it.
                  caf::logger::set_current_actor_system(nullptr);
                  if (door)
                    caf::anon_send(me, connect_atom::value, *door);
                  else
                    caf::anon_send(me, connect_atom::value,
                                   "master at " + endpoint + ": " + sys->render(door.error()));
                });
              },
              [me, endpoint](const std::string& error) {
                caf::anon_send(me, connect_atom::value, "master at " + endpoint + ": " + error);
              });
          },
          [=](caf::error& err) { retry_connect(self, error_message(err)); });
    },
    [=](connect_atom, cluster_actor& door) {
      if (!local_only(self, "connect"))
        return;
      auto& st = self->state;
      node_info me;
      me.node_id = st.ctx.config->node_id;
      me.host_address = st.ctx.config->host_address;
      me.version = "0.1.0";
      me.num_slots = static_cast<int32_t>(st.slots.size());
      me.started = st.started;
      me.gpus = st.ctx.config->gpu_details;
      self->request(door, std::chrono::seconds(10), join_atom::value, st.secret, me, st.gateway,
                    caf::actor_cast<caf::actor>(self))
        .then(
          [=](master_actor& master) {
            auto& st = self->state;
            spdlog::info("joined the master node={} slots={}", st.ctx.config->node_id,
                         st.slots.size());
            st.master = master;
            st.connect_attempts = 0;
            self->monitor(master);
            if (st.gateway)
              self->send(st.gateway, register_atom::value, master);
            for (auto& slot : st.slots)
              self->send(slot, register_atom::value, caf::actor_cast<caf::actor>(master));
            start_pings(self);
          },
          [=](caf::error& err) { retry_connect(self, error_message(err)); });
    },
    [=](connect_atom, const std::string& error) {
      if (local_only(self, "connect"))
        retry_connect(self, error);
    },
    [=](register_atom, master_actor& master) {
      if (!local_only(self, "register"))
        return;
      self->state.master = master; // the master node's own master: heartbeats only
      start_pings(self);
    },
    [=](ping_atom) {
      if (!local_only(self, "ping"))
        return;
      auto& st = self->state;
      if (st.master)
        self->send(st.master, ping_atom::value, st.ctx.config->node_id);
      self->delayed_send(self, ping_interval(*st.ctx.config), ping_atom::value);
    },
    // The master gathers every node's actors for atlas-ctl.
    [=](actors_atom) -> caf::result<std::vector<actor_stats>> {
      if (auto who = sender_of(self); !who.local_or("master"))
        return refuse(self, who, "actors");
      return node_actor_stats(self);
    },
    [=](stats_atom) -> caf::result<actor_stats> {
      if (auto who = sender_of(self); !who.local_or("master"))
        return refuse(self, who, "stats");
      auto& st = self->state;
      return self->stats(st.ctx.config->node_id,
                         std::string(st.ctx.config->is_master ? "master" : "worker") + " node, "
                           + std::to_string(st.slots.size()) + " slot(s)"
                           + (st.master ? "" : ", no master") + (st.draining ? ", draining" : ""));
    },
    [=](idle_atom, const std::string& key) {
      if (!local_only(self, "idle"))
        return;
      self->state.busy.erase(key);
      check_drained(self);
    },
    // POST /workers, through the master: one more slot, registered with the
    // master as the others (it does so itself when the master is known).
    [=](slots_atom, put_atom) -> caf::result<std::string> {
      if (auto who = sender_of(self); !who.local_or("master"))
        return refuse(self, who, "adding a slot");
      auto& st = self->state;
      if (st.draining)
        return make_error(ec::conflict, "node '" + st.ctx.config->node_id + "' is shutting down");
      auto index = st.next_index++;
      // Registers itself with this node (the slot list) and with the master.
      spawn_worker_slot(self->system(), st.ctx, index, {}, st.master, self);
      auto key = st.ctx.config->node_id + "/" + std::to_string(index);
      spdlog::info("slot added node={} slot={}", st.ctx.config->node_id, key);
      return key;
    },
    // DELETE /workers/<key>: the master removes an idle slot (a busy one
    // once its job ended): its registry entry went first, then the actor.
    [=](slots_atom, delete_atom, worker_slot_actor& slot) {
      if (auto who = sender_of(self); !who.local_or("master")) {
        refuse(self, who, "removing a slot");
        return;
      }
      auto& slots = self->state.slots;
      auto it = std::find(slots.begin(), slots.end(), slot);
      if (it == slots.end())
        return;
      slots.erase(it);
      self->send_exit(slot, caf::exit_reason::user_shutdown);
      spdlog::info("slot removed node={} slots={}", self->state.ctx.config->node_id, slots.size());
    },
  };
}

} // namespace

node_actor spawn_node(caf::actor_system& sys, node_context ctx, lookup_actor lookup,
                      std::string secret) {
  return sys.spawn(node_impl, std::move(ctx), std::move(lookup), std::move(secret));
}

} // namespace atlas
