// The gateway's route table: the scheduler API (DESIGN.md §6) first, each
// path and method mapped to an operation or answered here from one request
// to the master or to Redis; then the dashboard's routes.

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "actors/dashboard/routes.hpp"
#include "actors/gateway/gateway_state.hpp"
#include "adapters/json.hpp"
#include "library/http_answers.hpp"
#include "library/job_codec.hpp"
#include "library/worker_requests.hpp"

namespace atlas::gateway {

bool is_schedule_route(const std::vector<std::string>& parts) {
  auto n = parts.size();
  return (n >= 1 && n <= 2 && parts[0] == "scheduled_jobs")
         || (n >= 3 && n <= 4 && parts[0] == "api" && parts[1] == "v1"
             && parts[2] == "scheduled_jobs");
}

bool acts_through_master(const http_request& req) {
  auto parts = split_path(req.path);
  auto n = parts.size();
  auto is = [&](size_t i, std::string_view s) { return n > i && parts[i] == s; };
  return is_schedule_route(parts) || is(0, "queued_jobs") || is(0, "workers") || (is(0, "running_jobs") && req.method == "DELETE")
         || (is(0, "api") && is(2, "queued_jobs")) || (is(0, "api") && is(2, "local_runs"));
}

namespace {

/// GET /running_jobs/<id>/container_id, which the original client asks
/// while it streams: the container's name (the Docker API and CLI take it
/// wherever they take an id) for a running container job.
void container_id(gateway_ptr self, answer rp, const std::string& id) {
  auto runner = self->state.cfg->runner;
  with_record(self, rp, id, [=](job_record& rec) mutable {
    if (rec.state != job_state::running && rec.state != job_state::pending)
      return give(rp, error_answer(404, "job '" + id + "' is not running ("
                                          + std::string(to_string(rec.state)) + ")"));
    auto slash = rec.slot.rfind('/');
    if (runner != "docker" || slash == std::string::npos)
      return give(rp, error_answer(404, "job '" + id + "' runs as a process, not in a container "
                                          "(runner: " + runner + ")"));
    rp.deliver(json_answer(200, json::quote("atlas-" + id + "-slot" + rec.slot.substr(slash + 1))));
  });
}

/// The node a request came from: the worker that forwarded it to the
/// master's gateway (set from its certificate), else this one.
std::string answering_node(gateway_ptr self, const http_request& req) {
  auto fwd = req.headers.find(forwarded_header);
  return fwd != req.headers.end() && !fwd->second.empty() ? fwd->second
                                                          : self->state.cfg->node_id;
}

/// POST /workers adds a slot (201, its key as a JSON string, as the
/// original's worker id); DELETE /workers/<key> removes one: 204 when it
/// went at once, 202 when it goes once its running job ended.
void change_workers(gateway_ptr self, answer rp, const http_request& req,
                    const std::vector<std::string>& parts) {
  auto fail = [rp](caf::error& err) mutable { rp.deliver(from_error(err)); };
  auto here = answering_node(self, req);
  if (req.method == "POST" && parts.size() == 1) {
    std::string error;
    auto node = worker_node_of(req.body, here, error);
    if (!node)
      return give(rp, error_answer(400, error));
    self->request(self->state.master, std::chrono::seconds(30), slots_atom::value,
                  put_atom::value, *node)
      .then([=](std::string& key) mutable { rp.deliver(json_answer(201, json::quote(key))); },
            fail);
    return;
  }
  if (req.method != "DELETE" || parts.size() == 1)
    return give(rp, error_answer(405, "use POST /workers or DELETE /workers/<node>/<index>"));
  auto key = worker_key_of(parts, here);
  if (!key)
    return give(rp, error_answer(404, "Bad worker id " + req.path.substr(9)));
  self->request(self->state.master, std::chrono::seconds(30), slots_atom::value,
                delete_atom::value, *key)
    .then(
      [=](bool gone) mutable {
        if (gone)
          return give(rp, no_content());
        json::writer w;
        w.begin_object().kv("worker", *key).kv("status", "draining")
          .kv("detail", "removed once its running job ends").end_object();
        rp.deliver(json_answer(202, w.take()));
      },
      fail);
}

} // namespace

/// Routes one checked request. Every branch delivers exactly one answer.
void route_checked(gateway_ptr self, answer rp, const http_request& req) {
  auto parts = split_path(req.path);
  auto& m = req.method;
  auto n = parts.size();
  auto& st = self->state;
  auto is = [&](size_t i, std::string_view s) { return n > i && parts[i] == s; };
  // Copied into response handlers that run after route() returned.
  auto fail = [rp](caf::error& err) mutable { rp.deliver(from_error(err)); };

  bool metrics_route = (is(0, "metrics") && n == 1) || (is(0, "api") && is(1, "v1") && is(2, "metrics") && n == 3);
  if (metrics_route)
    return m == "GET" ? serve_metrics(self, rp) : give(rp, error_answer(405, "use GET " + req.path));
  // The dashboard's port serves its page's files; the dashboard's API routes
  // come after the scheduler's, which carry the traffic.
  bool page_file = req.listener == "dashboard" && !is(0, "api") && !is(0, "healthz");
  if (page_file && route_dashboard(self, rp, req))
    return;

  if (n == 0 && m == "GET")
    return give(rp, json_answer(200, json::quote("Welcome to Atlas scheduler")));
  if ((is(0, "healthz") && n == 1) || (is(0, "api") && is(1, "v1") && is(2, "healthz"))) {
    json::writer w;
    w.begin_object().kv("status", "ok").kv("node", st.cfg->node_id)
      .kv("role", st.cfg->is_master ? "master" : "worker").kv("auth", st.cfg->auth);
    if (st.cfg->is_master)
      w.kv("epoch", st.cfg->lease_epoch);
    w.end_object();
    return give(rp, json_answer(200, w.take()));
  }
  if (is(0, "job_bundle") && n == 1 && m == "POST")
    return upload_bundle(self, rp, req);
  if (is(0, "api") && is(1, "v1") && is(2, "bundles")) {
    if (n == 3 && m == "POST")
      return upload_content_bundle(self, rp, req);
    if (n == 4 && (m == "HEAD" || m == "GET"))
      return has_content_bundle(self, rp, req, parts[3]);
    return give(rp, error_answer(405, "use POST /api/v1/bundles or HEAD /api/v1/bundles/<sha256>"));
  }
  if (acts_through_master(req) && !st.master)
    return give(rp, error_answer(503, "this node has not joined a master yet"));
  if (is_schedule_route(parts)) { // actors/scheduler.cpp answers them
    if (!st.schedules)
      return give(rp, error_answer(503, "scheduled jobs are kept by the active master"));
    self->request(st.schedules, std::chrono::seconds(60), schedule_atom::value, req)
      .then([=](http_response& r) mutable { rp.deliver(std::move(r)); }, fail);
    return;
  }
  if (is(0, "job_bundle") && n == 2 && m == "GET")
    return download_artifacts(self, rp, req, parts[1]);
  if (is(0, "queued_jobs") && n == 1) {
    if (m == "POST")
      return submit(self, rp, req);
    if (m == "GET")
      return queued_jobs(self, rp, req);
  }
  if (is(0, "queued_jobs") && n == 2) {
    auto pos = parse_index(parts[1]);
    if (!pos)
      return give(rp, error_answer(404, "Bad queue position " + parts[1]));
    if (m == "GET") {
      self->request(st.master, caf::infinite, list_atom::value, *pos, uint64_t{1})
        .then([=](job_page& page) mutable {
                if (page.jobs.empty())
                  return give(rp, error_answer(404, "Bad queue position " + parts[1]));
                json::writer w;
                w.begin_object();
                write_job_fields(w, page.jobs[0]);
                w.kv("position", *pos).end_object();
                rp.deliver(json_answer(200, w.take()));
              }, fail);
      return;
    }
    if (m == "DELETE") {
      self->request(st.master, caf::infinite, dequeue_atom::value, *pos)
        .then([=](job_record&) mutable { rp.deliver(no_content()); }, fail);
      return;
    }
    if (m == "PATCH") {
      auto to = parse_index(req.body);
      if (!to)
        return give(rp, error_answer(400, "expected the new position as a JSON number"));
      self->request(st.master, caf::infinite, move_atom::value, *pos, *to)
        .then([=](bool) mutable { rp.deliver(no_content()); }, fail);
      return;
    }
  }
  if (n == 1 && m == "GET" && is(0, "running_jobs"))
    return list_states(self, rp, {job_state::running, job_state::pending});
  if (n == 1 && m == "GET" && is(0, "completed_jobs"))
    return finished_jobs(self, rp, req, job_state::completed);
  if (n == 1 && m == "GET" && is(0, "failed_jobs"))
    return finished_jobs(self, rp, req, job_state::failed);
  bool listing = is(0, "running_jobs") || is(0, "completed_jobs") || is(0, "failed_jobs")
                 || is(0, "queued_jobs");
  if (listing && n == 3 && is(2, "logs") && m == "GET")
    return get_logs(self, rp, req, parts[1], true);
  if (is(0, "running_jobs") && n == 2 && m == "DELETE")
    return stop_job(self, rp, parts[1]);
  if (is(0, "running_jobs") && n == 3 && is(2, "container_id") && m == "GET")
    return container_id(self, rp, parts[1]);
  if ((is(0, "completed_jobs") || is(0, "failed_jobs")) && n == 2 && m == "DELETE")
    return delete_job(self, rp, req, parts[1]);
  if (is(0, "jobs") && n == 2 && m == "GET")
    return get_job(self, rp, req, parts[1]);
  if (is(0, "workers") && n == 1 && m == "GET") {
    self->request(st.master, caf::infinite, get_atom::value, slots_atom::value)
      .then([=](std::vector<slot_info>& slots) mutable {
              json::writer w;
              w.begin_object();
              for (auto& s : slots) {
                w.key(s.key).begin_object().kv("id", s.key).kv("name", s.key)
                  .kv("node", s.node_id).kv("host_address", s.host_address)
                  .kv("pending", !s.current_job.empty()).kv("current_job", s.current_job)
                  .kv("jobs_run", s.jobs_run).key("gpus").begin_array();
                for (auto& g : s.gpus)
                  w.value(g);
                w.end_array().end_object();
              }
              w.end_object();
              rp.deliver(json_answer(200, w.take()));
            }, fail);
    return;
  }
  if (is(0, "workers") && n >= 1 && n <= 3 && (m == "POST" || m == "DELETE"))
    return change_workers(self, rp, req, parts);
  if (is(0, "api") && is(1, "v1")) {
    if (is(2, "local_runs") && n == 3 && m == "POST")
      return start_local_run(self, rp, req);
    if (is(2, "local_runs") && n == 5 && is(4, "end") && m == "POST")
      return end_local_run(self, rp, req, parts[3]);
    if (is(2, "queued_jobs") && n == 3 && m == "DELETE") {
      self->request(st.master, caf::infinite, clear_atom::value)
        .then([=](uint64_t removed) mutable {
                json::writer w;
                w.begin_object().kv("removed", removed).end_object();
                rp.deliver(json_answer(200, w.take()));
              }, fail);
      return;
    }
    if (is(2, "events") && n == 3 && m == "GET")
      return read_events(self, rp, req);
    if (is(2, "usage") && n == 3 && m == "GET")
      return read_usage(self, rp, req);
    if (is(2, "jobs") && n == 3 && m == "GET")
      return job_pages(self, rp, req);
    if (is(2, "jobs") && n == 4 && m == "GET") {
      return with_record(self, rp, parts[3], [=](job_record& rec) mutable {
        rp.deliver(json_answer(200, to_json(rec)));
      });
    }
    if (is(2, "jobs") && n == 5 && is(4, "logs") && m == "GET") {
      auto q = parse_query(req.query);
      if (q.count("follow") && q["follow"] != "0" && q["follow"] != "false")
        return follow_logs(self, rp, req, parts[3],
                           parse_index(q.count("offset") ? q["offset"] : "0").value_or(0));
      return get_logs(self, rp, req, parts[3], false);
    }
  }
  if (route_dashboard(self, rp, req)) // actors/dashboard/routes.cpp
    return;
  rp.deliver(error_answer(404, "no route for " + m + " " + req.path));
}

} // namespace atlas::gateway
