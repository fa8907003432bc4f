// The scheduler of scheduled jobs (actors/scheduler.hpp): the original's
// /scheduled_jobs routes, and one timer for the next due run.

#include "actors/scheduler.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/counted.hpp"
#include "adapters/json.hpp"
#include "library/auth_rules.hpp"
#include "library/cron.hpp"
#include "library/http_answers.hpp"
#include "library/job_codec.hpp"
#include "library/job_files.hpp"
#include "library/schedules.hpp"
#include "messages/errors.hpp"
#include "messages/redis_keys.hpp"

namespace atlas {

namespace {

struct scheduler_state {
  static inline const char* name = "scheduler";
  std::shared_ptr<const node_config> cfg;
  std::unique_ptr<redis_writer> redis;
  master_actor master;
  std::map<std::string, scheduled_job> jobs;
  bool loaded = false;
  std::set<std::string> firing; // schedules whose run is being submitted
  uint64_t timer = 0;           // generation of the timer that counts
  uint64_t fired = 0;
};

using scheduler_ptr = counted_pointer<scheduler_actor, scheduler_state>;

double now_precise() {
  return now_seconds();
}

int64_t now_s() {
  return static_cast<int64_t>(std::floor(now_precise()));
}

/// Reads every schedule once Redis answers; false while it does not.
bool load(scheduler_state& st) {
  if (st.loaded)
    return true;
  auto reply = st.redis->command({"HGETALL", keys::schedules});
  if (!reply)
    return false;
  for (size_t i = 0; i + 1 < reply->elements.size(); i += 2) {
    auto s = scheduled_job_from_json(reply->elements[i + 1].str);
    if (!s) {
      spdlog::warn("scheduler: unreadable scheduled job {} skipped: {}", reply->elements[i].str,
                   s.error());
      continue;
    }
    st.jobs[s->id] = std::move(s.value());
  }
  st.loaded = true;
  spdlog::info("scheduler: {} scheduled jobs loaded", st.jobs.size());
  return true;
}

/// Writes one schedule (fenced by the lease); false when Redis refused.
bool persist(scheduler_state& st, const scheduled_job& s) {
  return st.redis->transaction({{"HSET", keys::schedules, s.id, to_json(s)}}).has_value();
}

void fire_due(scheduler_ptr self);

/// Sets the one timer to the earliest next due run (at most a minute away,
/// so a changed clock is noticed); `soon` caps it (a retry).
void arm(scheduler_ptr self, double soon = 60) {
  auto& st = self->state;
  auto now = now_precise();
  double wait = std::min(60.0, soon);
  for (auto& [id, s] : st.jobs)
    if (!st.firing.count(id))
      if (auto due = next_due(s, static_cast<int64_t>(std::floor(now))); due > 0)
        wait = std::min(wait, static_cast<double>(due) - now);
  wait = std::max(wait, 0.0) + 0.005; // past the second, not just before it
  self->delayed_send(self, std::chrono::microseconds(static_cast<int64_t>(wait * 1e6)),
                     tick_atom::value, ++st.timer);
}

/// The run is in (or was refused for good): the schedule's due time is
/// handled, persisted so that a restarted master does not fire it again.
void settle(scheduler_ptr self, const std::string& id, int64_t due, const std::string& job_id,
            bool created) {
  auto& st = self->state;
  st.firing.erase(id);
  auto it = st.jobs.find(id);
  if (it == st.jobs.end())
    return; // deleted meanwhile
  auto& s = it->second;
  s.after = std::max(s.after, due);
  if (created) {
    ++s.runs;
    s.last_job = job_id;
  }
  if (!persist(st, s))
    spdlog::warn("scheduler: could not record the run of {} due {} (a restart would submit it "
                 "again and be refused as existing)", id, due);
}

/// Submits the run of `s` due at `due` through the master.
void fire(scheduler_ptr self, scheduled_job& s, int64_t due) {
  auto& st = self->state;
  auto rec = run_of(s, due);
  if (!rec) {
    spdlog::warn("scheduler: scheduled job {} cannot make a run: {}", s.id, rec.error());
    settle(self, s.id, due, "", false);
    return;
  }
  auto paths = job_paths::of(*st.cfg, rec->job_id);
  if (auto ok = give_run_bundle(schedule_bundle_path(*st.cfg, s.id), paths, s.owner); !ok) {
    spdlog::warn("scheduler: scheduled job {}: {}", s.id, ok.error());
    settle(self, s.id, due, "", false);
    return;
  }
  st.firing.insert(s.id);
  auto id = s.id;
  auto job_id = rec->job_id;
  spdlog::info("scheduler: firing schedule={} job_id={} due={}", id, job_id, cron::stamp(due));
  self->request(st.master, std::chrono::seconds(30), submit_atom::value, rec.value())
    .then(
      [=](std::string&) {
        ++self->state.fired;
        settle(self, id, due, job_id, true);
        arm(self);
      },
      [=](caf::error& err) {
        auto code = http_status_of(err);
        if (code == 409) { // fired before a restart: the run exists
          spdlog::info("scheduler: run job_id={} exists already", job_id);
          settle(self, id, due, job_id, false);
        } else if (code == 503 || code == 500 || err == caf::sec::request_timeout) {
          spdlog::warn("scheduler: run job_id={} not submitted yet: {}", job_id,
                       error_message(err));
          self->state.firing.erase(id); // tried again shortly
          arm(self, 5);
          return;
        } else {
          spdlog::warn("scheduler: run job_id={} refused: {}", job_id, error_message(err));
          delete_job_files(job_paths::of(*self->state.cfg, job_id));
          settle(self, id, due, job_id, false);
        }
        arm(self);
      });
}

/// Fires every active schedule with a due time passed since it was last
/// handled: once, for the latest such time (a master that was down for
/// several runs fires one).
void fire_due(scheduler_ptr self) {
  auto& st = self->state;
  if (!load(st)) {
    arm(self, 5);
    return;
  }
  auto now = now_s();
  for (auto& [id, s] : st.jobs) {
    if (s.paused || s.cron.empty() || st.firing.count(id))
      continue;
    std::string error;
    auto parsed = cron::parse(s.cron, error);
    if (!parsed)
      continue;
    if (auto due = cron::latest_due(*parsed, s.after, now))
      fire(self, s, *due);
  }
  arm(self);
}

// --- the routes

struct asker {
  std::string user;
  bool checked = false; // -p mode: the auth gate set the user
  bool admin = false;
  bool may(const scheduled_job& s) const { return !checked || admin || s.owner == user; }
};

asker asker_of(const http_request& req) {
  asker a;
  if (auto u = req.headers.find(auth::user_header); u != req.headers.end()) {
    a.checked = true;
    a.user = u->second;
  }
  auto ad = req.headers.find(auth::admin_header);
  a.admin = ad != req.headers.end() && ad->second == "1";
  return a;
}

std::vector<std::string> groups_of(const http_request& req) {
  std::vector<std::string> out;
  auto g = req.headers.find(auth::groups_header);
  if (g == req.headers.end())
    return out;
  std::string_view list = g->second;
  while (!list.empty()) {
    auto comma = list.find(',');
    if (auto name = list.substr(0, comma); !name.empty())
      out.emplace_back(name);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  return out;
}

http_response unavailable() {
  return error_answer(503, "Redis is unavailable; nothing was changed");
}

http_response list(scheduler_state& st, const http_request& req, const asker& who) {
  auto q = parse_query(req.query);
  std::optional<std::string> project;
  if (auto p = q.find("project"); p != q.end())
    project = p->second;
  else if (!req.body.empty()) { // the original also read it from a JSON body
    std::string error;
    if (auto v = json::parse(req.body, error); v && v->is_object())
      if (auto p = v->get_string("project"))
        project = *p;
  }
  auto now = now_s();
  json::writer w;
  w.begin_object();
  for (auto& [id, s] : st.jobs)
    if (who.may(s) && (!project || s.project_name == *project))
      w.key(id).raw(answer_entry(s, now));
  w.end_object();
  return json_answer(200, w.take());
}

http_response create(scheduler_ptr self, const http_request& req, const asker& who) {
  auto& st = self->state;
  auto made = scheduled_job_from_request(req.body, who.user, groups_of(req), now_s());
  if (!made)
    return error_answer(400, made.error());
  auto& s = made.value();
  if (st.jobs.count(s.id))
    return error_answer(409, "Scheduled job '" + s.id + "' already exists");
  auto uploaded = job_paths::of(*st.cfg, s.id);
  auto bundle = read_bundle(uploaded);
  if (!bundle.exists)
    return error_answer(409, "Cannot schedule a job that has no uploaded bundle");
  if (bundle.owner != who.user)
    return error_answer(403, "job '" + s.id + "': its bundle was uploaded by another user; a "
                             "scheduled job can only use a bundle its creator uploaded");
  auto kept = schedule_bundle_path(*st.cfg, s.id);
  if (auto ok = keep_schedule_bundle(uploaded, kept); !ok)
    return error_answer(500, ok.error());
  if (!persist(st, s)) {
    return_schedule_bundle(kept, uploaded, bundle.owner);
    return unavailable();
  }
  spdlog::info("scheduler: created schedule={} cron=\"{}\" owner={} project={}", s.id, s.cron,
               s.owner, s.project_name);
  st.jobs[s.id] = s;
  arm(self);
  return json_answer(201, json::quote(s.id));
}

/// A change to one schedule, persisted; the old one is kept when Redis refuses.
template <class F>
http_response change(scheduler_ptr self, scheduled_job& s, F apply) {
  auto before = s;
  if (auto refused = apply(s))
    return *refused;
  if (!persist(self->state, s)) {
    s = before;
    return unavailable();
  }
  arm(self);
  return no_content();
}

http_response on_one(scheduler_ptr self, const http_request& req, const std::string& id,
                     const asker& who) {
  auto& st = self->state;
  auto it = st.jobs.find(id);
  if (it == st.jobs.end())
    return error_answer(404, "Scheduled job " + id + " not found");
  auto& s = it->second;
  if (!who.may(s)) {
    spdlog::warn("auth: refused user={} route=\"{} {}\" schedule={} owner={}", who.user,
                 req.method, req.path, id, s.owner);
    return error_answer(403, "user '" + who.user + "' may not act on scheduled job '" + id
                               + "' of user '" + s.owner + "'");
  }
  auto& m = req.method;
  if (m == "GET") {
    json::writer w;
    w.begin_object().key(id).raw(answer_entry(s, now_s())).end_object();
    return json_answer(200, w.take());
  }
  if (m == "DELETE") {
    if (!st.redis->transaction({{"HDEL", keys::schedules, id}}))
      return unavailable();
    std::error_code ec;
    std::filesystem::remove(schedule_bundle_path(*st.cfg, id), ec);
    spdlog::info("scheduler: deleted schedule={}", id);
    st.jobs.erase(it);
    return no_content();
  }
  if (m == "PUT") {
    std::string error;
    auto v = json::parse(req.body, error);
    auto status = v && v->is_object() ? v->get_string("status") : std::nullopt;
    if (!status)
      return error_answer(400, "Missing status key");
    if (*status != "paused" && *status != "active")
      return error_answer(400, "Invalid status: expected \"paused\" or \"active\"");
    return change(self, s, [&](scheduled_job& x) -> std::optional<http_response> {
      if (*status == "paused") {
        x.paused = true;
      } else {
        if (x.cron.empty())
          return error_answer(400, "Scheduled job " + id + " has no schedule; PATCH one first");
        if (x.paused) // runs missed while paused are not made up
          x.after = std::max(x.after, now_s());
        x.paused = false;
      }
      return std::nullopt;
    });
  }
  if (m == "PATCH") {
    auto expr = schedule_from_body(req.body);
    if (!expr)
      return error_answer(400, "Cannot process schedule update: " + expr.error());
    return change(self, s, [&](scheduled_job& x) -> std::optional<http_response> {
      if (x.cron.empty())
        x.paused = false; // created without a schedule: it starts now
      x.cron = expr.value();
      x.after = std::max(x.after, now_s()); // the new schedule starts now
      return std::nullopt;
    });
  }
  return error_answer(405, "use GET, PUT, PATCH or DELETE on " + req.path);
}

http_response route(scheduler_ptr self, const http_request& req) {
  auto& st = self->state;
  if (!load(st))
    return unavailable();
  auto parts = split_path(req.path);
  if (parts.size() >= 2 && parts[0] == "api" && parts[1] == "v1")
    parts.erase(parts.begin(), parts.begin() + 2);
  auto who = asker_of(req);
  if (parts.size() == 1) {
    if (req.method == "GET")
      return list(st, req, who);
    if (req.method == "POST")
      return create(self, req, who);
    return error_answer(405, "use GET or POST on " + req.path);
  }
  if (parts.size() == 2)
    return on_one(self, req, parts[1], who);
  return error_answer(404, "no route for " + req.method + " " + req.path);
}

scheduler_actor::behavior_type scheduler_impl(scheduler_ptr self,
                                              std::shared_ptr<const node_config> cfg,
                                              redis_target target, redis_write_options opts,
                                              master_actor master) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.master = std::move(master);
  st.redis = std::make_unique<redis_writer>(std::move(target), std::move(opts), "scheduler");
  if (auto ok = st.redis->connect(); !ok)
    spdlog::warn("scheduler: {} (will retry on first use)", ok.error());
  // First look at once: a run missed while no master was active fires now.
  self->send(self, tick_atom::value, uint64_t{0});
  return {
    [=](schedule_atom, const http_request& req) { return route(self, req); },
    [=](tick_atom, uint64_t generation) {
      if (generation == 0 || generation == self->state.timer)
        fire_due(self);
    },
    [=](stats_atom) {
      auto& s = self->state;
      return self->stats("", std::to_string(s.jobs.size()) + " scheduled jobs, "
                               + std::to_string(s.fired) + " runs fired");
    },
  };
}

} // namespace

scheduler_actor spawn_scheduler(caf::actor_system& sys, std::shared_ptr<const node_config> cfg,
                                const redis_target& target, redis_write_options opts,
                                master_actor master) {
  return sys.spawn<caf::detached>(scheduler_impl, std::move(cfg), target, std::move(opts),
                                  std::move(master));
}

} // namespace atlas
