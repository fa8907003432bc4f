#include "actors/dashboard/routes.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "library/tracking/sweep_view.hpp"
#include "library/tracking/views.hpp"
#include "adapters/http_client.hpp"
#include "adapters/json.hpp"
#include "library/dashboard_static.hpp"
#include "library/job_index.hpp"
#include "library/job_paths.hpp"

namespace atlas::gateway {

namespace {

constexpr const char* forwarded_header = "x-atlas-forwarded-by";

/// Runs a dashboard store operation in the tracking actor; `then` gets its JSON.
template <class F>
void store(gateway_ptr self, answer rp, std::string op, std::vector<std::string> args, F then) {
  self->request(self->state.tracking, std::chrono::seconds(30), track_atom::value, std::move(op),
                std::move(args))
    .then([=](std::string& body) mutable { then(body); },
          [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
}

/// Parses a store answer; an unreadable one becomes a 500.
std::optional<json::value> parse_or_fail(answer& rp, const std::string& body) {
  std::string err;
  auto v = json::parse(body, err);
  if (!v)
    rp.deliver(error_answer(500, "unreadable tracking data: " + err));
  return v;
}

/// The records of a project's newest jobs (job_index::max_scan at most;
/// every record while the indexes are being built), then
/// `then(records, the project's number of jobs)`.
template <class F>
void project_records(gateway_ptr self, answer rp, std::string project, F then) {
  auto fail = [=](caf::error& err) mutable { rp.deliver(from_error(err)); };
  auto none = [=]() mutable { give(rp, error_answer(404, "project '" + project + "' not found")); };
  self->request(self->state.lookup, std::chrono::seconds(30), list_atom::value, jobs_atom::value,
                project, job_index::max_scan)
    .then(
      [=](job_page& page) mutable {
        if (page.indexed)
          return page.jobs.empty() ? none() : then(page.jobs, page.total);
        self->request(self->state.lookup, std::chrono::seconds(30), list_atom::value)
          .then(
            [=](std::vector<job_record>& all) mutable {
              std::vector<job_record> recs;
              for (auto& r : all)
                if (r.project_name == project)
                  recs.push_back(std::move(r));
              if (recs.empty())
                return none();
              uint64_t total = recs.size();
              then(recs, total);
            },
            fail);
      },
      fail);
}

/// The trials of a project's sweep (`sweep` "": of its newest 50 sweeps),
/// from the sweep indexes, then `then(records)`.
template <class F>
void sweep_trials(gateway_ptr self, answer rp, std::string project, std::string sweep, F then) {
  self->request(self->state.lookup, std::chrono::seconds(30), list_atom::value, sweep_atom::value,
                project, sweep, uint64_t{50})
    .then([=](std::vector<job_record>& recs) mutable { then(recs); },
          [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
}

/// project_records' records with their tracking summary, then
/// `then(records, summary, the project's number of jobs)`.
template <class F>
void project_summary(gateway_ptr self, answer rp, std::string project, F then) {
  project_records(self, rp, project, [=](std::vector<job_record>& recs, uint64_t total) mutable {
    std::vector<std::string> ids;
    for (auto& r : recs)
      ids.push_back(r.job_id);
    store(self, rp, "summary", ids, [=](std::string& body) mutable {
      if (auto summary = parse_or_fail(rp, body))
        then(recs, *summary, total);
    });
  });
}

/// The newest `limit` records of a project (from its index) with their
/// tracking summary; every record while the indexes are being built.
template <class F>
void newest_summary(gateway_ptr self, answer rp, std::string project, uint64_t limit, F then) {
  self->request(self->state.lookup, std::chrono::seconds(30), list_atom::value, project,
                std::string{}, std::string{}, limit)
    .then(
      [=](job_page& page) mutable {
        if (!page.indexed)
          return project_summary(self, rp, project,
                                 [then](std::vector<job_record>& recs, json::value& summary,
                                        uint64_t) mutable { then(recs, summary); });
        std::vector<std::string> ids;
        for (auto& r : page.jobs)
          ids.push_back(r.job_id);
        auto recs = std::move(page.jobs);
        store(self, rp, "summary", ids, [=](std::string& body) mutable {
          if (auto summary = parse_or_fail(rp, body))
            then(recs, *summary);
        });
      },
      [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
}

/// The record of a job, checked to belong to `project`.
template <class F>
void job_of_project(gateway_ptr self, answer rp, std::string project, std::string id, F then) {
  with_record(self, rp, id, [=](job_record& rec) mutable {
    if (rec.project_name != project)
      return give(rp, error_answer(404, "job '" + id + "' is not in project '" + project + "'"));
    then(rec);
  });
}

/// The original's answer to a change: 200 with a JSON string saying what was done.
http_response message_answer(const std::string& text) {
  json::writer w;
  w.value(text);
  return json_answer(200, w.take());
}

std::string body_string(const json::value& doc, std::string_view key) {
  auto v = doc.find(key);
  if (v == nullptr || v->is_null())
    return {};
  return v->is_string() ? v->string : v->dump();
}

void tracking(gateway_ptr self, answer rp, const http_request& req, const std::string& id) {
  if (!valid_job_id(id))
    return give(rp, error_answer(404, "job '" + id + "' not found"));
  auto h = req.headers.find("x-atlas-job-secret");
  if (h == req.headers.end() || h->second.empty())
    return give(rp, error_answer(401, "the x-atlas-job-secret header is missing"));
  store(self, rp, "track", {id, h->second, req.body},
        [=](std::string& body) mutable { rp.deliver(json_answer(200, body)); });
}

/// An artifact's file, read on the node that ran the job (forwarded there
/// when it is another node, as the logs are), else from the shared archive.
void artifact(gateway_ptr self, answer rp, const http_request& req, job_record rec,
              const std::string& key) {
  store(self, rp, "detail", {rec.job_id}, [=](std::string& body) mutable {
    auto doc = parse_or_fail(rp, body);
    if (!doc)
      return;
    auto a = doc->find("artifacts");
    auto entry = a ? a->find(key) : nullptr;
    if (entry == nullptr)
      return give(rp, error_answer(404, "job has no artifact '" + key + "'"));
    auto rel = entry->get_string("path").value_or("");
    auto& st = self->state;
    auto local = [=]() mutable {
      auto p = job_paths::of(*self->state.cfg, rec.job_id);
      std::vector<std::string> bases{p.work_dir + "/job_source", p.work_dir,
                                     p.artifacts + "/job_source", p.artifacts};
      offload(self, [bases, rel] { return serve_artifact(bases, rel); },
              [rp](http_response&& r) mutable { rp.deliver(std::move(r)); });
    };
    if (rec.node.empty() || rec.node == st.cfg->node_id || req.headers.count(forwarded_header)
        || !st.master)
      return local();
    self->request(st.master, std::chrono::seconds(10), get_atom::value, node_atom::value, rec.node)
      .then(
        [=](caf::actor& gw) mutable {
          auto fwd = req;
          fwd.headers[forwarded_header] = self->state.cfg->node_id;
          self->request(caf::actor_cast<http_gateway_actor>(gw), std::chrono::seconds(60), fwd)
            .then([=](http_response& r) mutable { rp.deliver(std::move(r)); },
                  [=](caf::error&) mutable { local(); });
        },
        [=](caf::error&) mutable { local(); });
  });
}

void cluster(gateway_ptr self, answer rp) {
  auto& st = self->state;
  if (!st.master)
    return give(rp, error_answer(503, "this node has not joined a master yet"));
  auto master = st.master;
  self->request(master, std::chrono::seconds(10), nodes_atom::value)
    .then(
      [=](std::vector<node_view>& nodes) mutable {
        self->request(master, std::chrono::seconds(10), queue_atom::value)
          .then(
            [=](std::vector<queue_entry>& queue) mutable {
              rp.deliver(json_answer(200, dashboard::cluster_json(nodes, queue, now_seconds())));
            },
            [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
      },
      [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
}

/// A listing answer, with a Link header to its next page when there is one.
http_response listing_answer(const std::string& project, const std::map<std::string, std::string>& query,
                             const dashboard::listing_page& page, std::string body) {
  auto r = json_answer(200, std::move(body));
  if (!page.next.empty())
    r.headers["Link"] = "</api/v2beta/projects/" + http_client::escape(project) + "/job_listing?"
                        + dashboard::query_with_cursor(query, page.next) + ">; rel=\"next\"";
  return r;
}

/// The project's job listing for `query`, one page of it
/// (library/tracking/listing_page.hpp); a bad query is answered `bad_status`.
/// The index's first read also gives the listing version, so an unchanged
/// listing costs one small read whatever the order asked.
void job_listing(gateway_ptr self, answer rp, const std::string& project,
                 std::map<std::string, std::string> query, uint16_t bad_status) {
  std::string err;
  auto req = dashboard::parse_listing_page(query, err);
  if (!req)
    return give(rp, error_answer(bad_status, err));
  auto cursor = req->by_index ? req->cursor : std::string{};
  auto limit = req->by_index ? req->limit : uint64_t{1};
  auto& lookup = self->state.lookup;
  auto asked = req->column.empty()
                 ? self->request(lookup, std::chrono::seconds(30), list_atom::value, project,
                                 req->status, cursor, limit)
                 : self->request(lookup, std::chrono::seconds(30), list_atom::value, project,
                                 req->column, req->descending, cursor, limit);
  asked
    .then(
      [=](job_page& found) mutable {
        if (req->since && *req->since == found.version) {
          rp.deliver(json_answer(200, dashboard::unchanged_json(found.version)));
          return;
        }
        dashboard::listing_page page;
        page.version = found.version;
        page.limit = req->limit;
        page.offset = req->offset;
        if (!found.indexed || !req->by_index) { // read the project whole, answer a page
          project_summary(self, rp, project, [=](std::vector<job_record>& recs,
                                                  json::value& summary, uint64_t total) mutable {
            std::string err;
            auto p = page;
            p.scanned = recs.size();
            p.project_jobs = total;
            auto out = dashboard::job_listing_json(project, recs, summary, req->rest, now_seconds(), err, &p);
            rp.deliver(err.empty() ? listing_answer(project, query, p, std::move(out))
                                   : error_answer(bad_status, err));
          });
          return;
        }
        page.indexed = true;
        page.total = found.total;
        page.next = found.next;
        std::vector<std::string> ids;
        for (auto& r : found.jobs)
          ids.push_back(r.job_id);
        auto recs = std::move(found.jobs);
        store(self, rp, "summary", ids, [=](std::string& body) mutable {
          auto summary = parse_or_fail(rp, body);
          if (!summary)
            return;
          std::string err;
          auto p = page;
          auto out = dashboard::job_listing_json(project, recs, *summary, req->rest, now_seconds(), err, &p);
          rp.deliver(err.empty() ? listing_answer(project, query, p, std::move(out))
                                 : error_answer(bad_status, err));
        });
      },
      [=](caf::error& e) mutable { rp.deliver(from_error(e)); });
}

/// /api/v2beta/projects/<p>/... (parts[3] is the project).
void project_route(gateway_ptr self, answer rp, const http_request& req,
                   const std::vector<std::string>& parts) {
  auto n = parts.size();
  auto& m = req.method;
  auto project = parts[3];
  auto is = [&](size_t i, std::string_view s) { return n > i && parts[i] == s; };
  if (n == 5 && is(4, "job_listing") && m == "GET")
    return job_listing(self, rp, project, parse_query(req.query), 400);
  if (n == 5 && is(4, "sweeps") && m == "GET") // the newest sweeps (a page's worth)
    return sweep_trials(self, rp, project, "", [=](std::vector<job_record>& recs) mutable {
      rp.deliver(json_answer(200, dashboard::sweeps_json(recs)));
    });
  if (n == 6 && is(4, "sweeps") && m == "GET") {
    auto sweep_id = parts[5];
    return sweep_trials(self, rp, project, sweep_id, [=](std::vector<job_record>& trials) mutable {
      std::vector<std::string> ids;
      for (auto& r : trials)
        ids.push_back(r.job_id);
      if (trials.empty())
        return give(rp, error_answer(404, "sweep '" + sweep_id + "' not found in project '" + project + "'"));
      store(self, rp, "summary", ids, [=](std::string& body) mutable {
        if (auto summary = parse_or_fail(rp, body))
          rp.deliver(json_answer(200, dashboard::sweep_json(sweep_id, trials, *summary, now_seconds())));
      });
    });
  }
  if (n == 5 && is(4, "overview_metrics") && m == "GET") {
    std::vector<std::string> only; // the original's ?metric_name=a|b
    if (auto q = parse_query(req.query); q.count("metric_name"))
      for (size_t at = 0; at <= q["metric_name"].size();) {
        auto bar = std::min(q["metric_name"].find('|', at), q["metric_name"].size());
        if (bar > at)
          only.push_back(q["metric_name"].substr(at, bar - at));
        at = bar + 1;
      }
    // The project's newest jobs (as many as a page holds): a chart across a
    // million jobs would be unreadable, and reading them all is what grows.
    return newest_summary(self, rp, project, job_index::max_page,
                          [=](std::vector<job_record>& recs, json::value& summary) mutable {
                            rp.deliver(json_answer(200, dashboard::overview_json(recs, summary, only)));
                          });
  }
  if (n == 5 && (is(4, "description") || is(4, "note_listing")) && m == "GET")
    return store(self, rp, "project", {project}, [=](std::string& body) mutable {
      auto doc = parse_or_fail(rp, body);
      if (!doc)
        return;
      if (parts[4] == "note_listing")
        return give(rp, json_answer(200, dashboard::notes_json(*doc->find("notes"))));
      json::writer w;
      w.begin_object().kv("project_description", body_string(*doc, "description")).end_object();
      rp.deliver(json_answer(200, w.take()));
    });
  if (n == 5 && (is(4, "description") || is(4, "note_listing")) && (m == "PUT" || m == "POST")) {
    std::string err;
    auto doc = json::parse(req.body, err);
    if (!doc || !doc->is_object())
      return give(rp, error_answer(400, "expected a JSON object"));
    // The signed-in user; without sign-in, the original's "author" field.
    auto who = req.headers.count("x-atlas-user") ? req.headers.at("x-atlas-user")
                                                 : body_string(*doc, "author");
    if (who.empty())
      who = "anonymous";
    if (parts[4] == "description") {
      if (!doc->find("project_description"))
        return give(rp, error_answer(400, "expected {\"project_description\": \"...\"}"));
      return store(self, rp, "describe", {project, body_string(*doc, "project_description")},
                   [=](std::string&) mutable {
                     rp.deliver(message_answer("Updated description for " + project));
                   });
    }
    auto message = body_string(*doc, "message");
    if (message.empty())
      return give(rp, error_answer(400, "expected {\"message\": \"...\"}"));
    json::writer t;
    t.value(now_seconds());
    return store(self, rp, "note", {project, who, message, t.take()}, [=](std::string&) mutable {
      rp.deliver(message_answer("Note with author: " + who + " created with message: " + message));
    });
  }
  if (n == 7 && is(4, "job_listing") && m == "GET" && !is(6, "logs") && !is(6, "tensorboard")) {
    // The original's job_listing/<sort_by>/<asc|desc>: input_params:<name>
    // and output_metrics:<name> are our param: and metric: columns.
    auto by = parts[5];
    for (auto [from, to] : {std::pair{"input_params:", "param:"}, std::pair{"output_metrics:", "metric:"}})
      if (by.rfind(from, 0) == 0)
        by = to + by.substr(std::string_view(from).size());
    static const std::set<std::string> plain{"job_id", "user", "status", "start_time",
                                             "completed_time", "duration"};
    bool known = plain.count(by) || ((by.rfind("param:", 0) == 0 || by.rfind("metric:", 0) == 0)
                                     && by.find(':') + 1 < by.size());
    if (!known || (parts[6] != "asc" && parts[6] != "desc"))
      return give(rp, error_answer(404, "This project or sort detail was not found"));
    return job_listing(self, rp, project, {{"sort", (parts[6] == "desc" ? "-" : "") + by}}, 404);
  }
  if (n == 6 && is(4, "job_listing") && m == "DELETE")
    return job_of_project(self, rp, project, parts[5], [=](job_record&) mutable {
      delete_job(self, rp, req, parts[5]); // the scheduler's DELETE /completed_jobs/<id>
    });
  if (n >= 6 && is(4, "job_listing")) {
    auto id = parts[5];
    if (n == 6 && m == "GET")
      return job_of_project(self, rp, project, id, [=](job_record& rec) mutable {
        store(self, rp, "detail", {id}, [=](std::string& body) mutable {
          if (auto doc = parse_or_fail(rp, body))
            rp.deliver(json_answer(200, dashboard::job_detail_json(rec, *doc, now_seconds())));
        });
      });
    if (n == 7 && is(6, "logs") && m == "GET")
      return job_of_project(self, rp, project, id, [=](job_record&) mutable {
        auto logs = req;
        logs.path = "/api/v1/jobs/" + id + "/logs";
        logs.query.clear();
        http_gateway_actor me = self;
        self->request(me, std::chrono::seconds(60), logs)
          .then(
            [=](http_response& r) mutable {
              if (r.status != 200)
                return give(rp, std::move(r));
              json::writer w;
              w.begin_object().kv("log", r.body).end_object();
              rp.deliver(json_answer(200, w.take()));
            },
            [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
      });
    if (n == 7 && is(6, "tags") && m == "POST") {
      std::string err;
      auto doc = json::parse(req.body, err);
      const json::value* tag = doc ? doc->find("tag") : nullptr;
      if (tag == nullptr && doc)
        tag = &*doc;
      auto key = tag && tag->is_object() ? tag->get_string("key") : std::nullopt;
      if (!key || key->empty())
        return give(rp, error_answer(400, "expected {\"tag\": {\"key\": \"...\", \"value\": \"...\"}}"));
      auto value = body_string(*tag, "value");
      return job_of_project(self, rp, project, id, [=](job_record&) mutable {
        store(self, rp, "tag", {id, *key, value}, [=](std::string&) mutable {
          rp.deliver(message_answer("Tag key: " + *key + ", value: " + value
                                    + " created for job " + id));
        });
      });
    }
    if (n == 8 && is(6, "tags") && m == "DELETE")
      return job_of_project(self, rp, project, id, [=](job_record&) mutable {
        store(self, rp, "untag", {id, parts[7]}, [=](std::string&) mutable {
          rp.deliver(message_answer("Tag key: " + parts[7] + " deleted from job " + id));
        });
      });
    // The job's TensorBoard event files as a tgz ("<id>/..."), packed on the
    // node that ran it; the page joins several jobs' into one download.
    if (n == 7 && is(6, "tensorboard") && m == "GET")
      return job_of_project(self, rp, project, id, [=](job_record&) mutable {
        auto files = req;
        files.query = "folder=atlas_tensorboard";
        download_artifacts(self, rp, files, id);
      });
    if (n == 8 && is(6, "artifacts") && m == "GET")
      return job_of_project(self, rp, project, id, [=](job_record& rec) mutable {
        artifact(self, rp, req, rec, parts[7]);
      });
  }
  rp.deliver(error_answer(404, "no route for " + m + " " + req.path));
}

} // namespace

bool route_dashboard(gateway_ptr self, answer& rp, const http_request& req) {
  auto parts = split_path(req.path);
  auto n = parts.size();
  auto& m = req.method;
  auto is = [&](size_t i, std::string_view s) { return n > i && parts[i] == s; };
  if (is(0, "api") && is(1, "v1") && is(2, "jobs") && n == 5 && is(4, "tracking")) {
    if (m != "POST")
      give(rp, error_answer(405, "tracking takes POST"));
    else
      tracking(self, rp, req, parts[3]);
    return true;
  }
  if (is(0, "api") && is(1, "v2beta")) {
    if (n == 3 && is(2, "projects") && m == "GET") {
      // From the indexes: its cost grows with the projects, not their jobs.
      self->request(self->state.lookup, std::chrono::seconds(30), list_atom::value, projects_atom::value)
        .then(
          [=](project_views& views) mutable {
            if (views.indexed) {
              rp.deliver(json_answer(200, dashboard::projects_json(std::move(views.projects))));
              return;
            }
            self->request(self->state.lookup, std::chrono::seconds(30), list_atom::value)
              .then([=](std::vector<job_record>& recs) mutable {
                      rp.deliver(json_answer(200, dashboard::projects_json(recs)));
                    },
                    [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
          },
          [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
      return true;
    }
    if (n >= 5 && is(2, "projects")) {
      auto form = req; // the original took form fields as well as JSON
      form.body = body_as_json(req.headers, req.body);
      project_route(self, rp, form, parts);
      return true;
    }
    if (n == 3 && is(2, "cluster") && m == "GET") {
      cluster(self, rp);
      return true;
    }
    return false;
  }
  if (req.listener == "dashboard" && !is(0, "api") && !is(0, "healthz")) {
    if (m != "GET" && m != "HEAD") {
      give(rp, error_answer(405, "the dashboard's files take GET"));
      return true;
    }
    auto web = self->state.cfg->web_dir;
    auto path = req.path;
    offload(self, [web, path] { return serve_static(web, path); },
            [rp](http_response&& r) mutable { rp.deliver(std::move(r)); });
    return true;
  }
  return false;
}

} // namespace atlas::gateway
