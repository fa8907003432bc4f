// The gateway's door: in -p mode every request (on every listener of every
// node) shows a valid Keycloak token before it reaches the route table, and
// users act only on their own jobs. Without -p nothing is checked. The
// login routes are in login_routes.cpp.
//
// Verification runs on this actor (a few tens of microseconds, no I/O).
// Fetching keys blocks, so it goes to the libuv thread pool through
// offload() and comes back as a message.

#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "actors/gateway/gateway_state.hpp"
#include "adapters/json.hpp"
#include "adapters/oidc.hpp"
#include "library/auth_rules.hpp"
#include "library/header_auth.hpp"
#include "library/http_answers.hpp"

namespace atlas::gateway {

http_response unauthorized(std::string_view why) {
  auto r = error_answer(401, why);
  r.headers["WWW-Authenticate"] = "Bearer realm=\"Atlas\", error=\"invalid_token\"";
  return r;
}

std::shared_ptr<oidc_client> client_of(gateway_ptr self) {
  auto& st = self->state;
  if (!st.oidc) // shared with the servers' header check: one key cache per node
    st.oidc = node_oidc_client(*st.cfg);
  return st.oidc;
}

namespace {

int64_t unix_now() {
  return static_cast<int64_t>(std::time(nullptr));
}

http_response forbidden(gateway_ptr self, const http_request& req, const std::string& user,
                        const std::string& owner, const std::string& job_id) {
  spdlog::warn("auth: refused user={} route=\"{} {}\" job_id={} owner={} node={}", user,
               req.method, req.path, job_id, owner, self->state.cfg->node_id);
  return error_answer(403, "user '" + user + "' may not act on job '" + job_id + "' of user '"
                             + owner + "'");
}

/// Answers here, or lets the route table answer once the user may act.
void check_owner_then_route(gateway_ptr self, answer rp, http_request req);

/// Verifies the bearer token (fetching keys first when its kid is unknown
/// and a fetch is allowed), then continues with the identity set.
void authenticate(gateway_ptr self, answer rp, http_request req, const std::string& what,
                  bool fetched) {
  auto oidc = client_of(self);
  auto token = auth::bearer_token(req.headers);
  auto now = unix_now();
  auto v = oidc->verify(token, now);
  if (v.why == jwt::refusal::unknown_key && !fetched && oidc->claim_refresh(now)) {
    offload(
      self,
      [oidc] {
        auto st = oidc->fetch_keys();
        if (!st)
          spdlog::warn("auth: {}", st.error());
        return st ? json_answer(200, "") : error_answer(503, st.error());
      },
      [self, rp, req = std::move(req), what](http_response&&) mutable {
        authenticate(self, rp, std::move(req), what, true);
      });
    return;
  }
  if (!v.ok() && !req.upload_path.empty()) { // a refused upload leaves no file behind
    auto spooled = req.upload_path;
    offload(self, [spooled] {
      std::error_code ec;
      std::filesystem::remove(spooled, ec);
      return no_content();
    }, [](http_response&&) {});
  }
  if (v.why == jwt::refusal::unknown_key && !oidc->keys()) {
    // No keys yet (the first fetch is under way, or the provider cannot be
    // reached; the node's log says which): not the token's fault.
    auto r = error_answer(503, "the identity provider's signing keys are not loaded yet; "
                               "retry shortly");
    r.headers["Retry-After"] = "1";
    return give(rp, std::move(r));
  }
  if (!v.ok()) {
    spdlog::info("auth: 401 route=\"{} {}\" listener={} reason=\"{}\" node={}", req.method,
                 req.path, req.listener, jwt::to_string(v.why), self->state.cfg->node_id);
    return give(rp, unauthorized(jwt::to_string(v.why)));
  }
  req.headers[auth::user_header] = v.who.username;
  std::string groups;
  for (auto* list : {&v.who.groups, &v.who.roles})
    for (auto& g : *list)
      if (g.find(',') == std::string::npos)
        groups += (groups.empty() ? "" : ",") + g;
  req.headers[auth::groups_header] = groups;
  req.headers[auth::admin_header] = v.who.has_role(self->state.cfg->auth_admin_role) ? "1" : "0";
  if (what == "verify")
    return give(rp, json_answer(200, v.who.json));
  if (what == "logout")
    return logout(self, rp, req);
  if (!what.empty())
    return give(rp, error_answer(404, "no route for " + req.method + " " + req.path));
  check_owner_then_route(self, rp, std::move(req));
}

/// Non-admins clear only their own queued jobs (each cancelled by id).
void clear_own_queue(gateway_ptr self, answer rp, const std::string& user) {
  auto& st = self->state;
  self->request(st.master, caf::infinite, list_atom::value)
    .then(
      [=](std::vector<job_record>& recs) mutable {
        auto left = std::make_shared<uint64_t>(0);
        auto removed = std::make_shared<uint64_t>(0);
        for (auto& r : recs)
          if (r.username == user)
            ++*left;
        auto finish = [rp, removed]() mutable {
          json::writer w;
          w.begin_object().kv("removed", *removed).end_object();
          rp.deliver(json_answer(200, w.take()));
        };
        if (*left == 0)
          return finish();
        for (auto& r : recs) {
          if (r.username != user)
            continue;
          self->request(self->state.master, caf::infinite, stop_atom::value, r.job_id)
            .then([=](bool) mutable { ++*removed; if (--*left == 0) finish(); },
                  [=](caf::error&) mutable { if (--*left == 0) finish(); });
        }
      },
      [rp](caf::error& err) mutable { rp.deliver(from_error(err)); });
}

/// Routes a request on job `id` once its owner is `user` (admins are let
/// through before); an unknown id goes to the route, which says 404.
void owner_then_route(gateway_ptr self, answer rp, http_request req, const std::string& id,
                      const std::string& user) {
  if (!valid_job_id(id))
    return route_checked(self, rp, req);
  self->request(self->state.lookup, caf::infinite, get_atom::value, id)
    .then(
      [=](job_record& rec) mutable {
        if (!auth::may_act_on(rec.username, user, false))
          return give(rp, forbidden(self, req, user, rec.username, id));
        route_checked(self, rp, req);
      },
      [=](caf::error&) mutable { route_checked(self, rp, req); });
}

void check_owner_then_route(gateway_ptr self, answer rp, http_request req) {
  auto& st = self->state;
  auto parts = split_path(req.path);
  auto n = parts.size();
  auto& m = req.method;
  auto is = [&](size_t i, std::string_view s) { return n > i && parts[i] == s; };
  const std::string user = req.headers[auth::user_header];
  const bool admin = req.headers[auth::admin_header] == "1";

  // A scheduled job's runs are submitted as its creator's, as a job is.
  bool new_schedule = is_schedule_route(parts) && (n == 1 || n == 3) && m == "POST";
  bool local_run = is(0, "api") && is(1, "v1") && is(2, "local_runs") && n == 3 && m == "POST";
  if ((is(0, "queued_jobs") && n == 1 && m == "POST") || new_schedule || local_run) {
    req.body = auth::owned_submission(req.body, user);
    return route_checked(self, rp, req);
  }
  if (admin)
    return route_checked(self, rp, req);
  if (is(0, "workers") && (m == "POST" || m == "DELETE")) {
    spdlog::warn("auth: refused user={} route=\"{} {}\" (admins only) node={}", user, m,
                 req.path, st.cfg->node_id);
    return give(rp, error_answer(403, "only an administrator (role '" + st.cfg->auth_admin_role
                                        + "') may add or remove workers"));
  }

  bool by_id = n == 2 && m == "DELETE"
               && (is(0, "running_jobs") || is(0, "completed_jobs") || is(0, "failed_jobs"));
  if (by_id)
    return owner_then_route(self, rp, std::move(req), parts[1], user);
  // The dashboard's tags change a job as stop and delete do: the same rule.
  bool tags = is(0, "api") && is(1, "v2beta") && is(2, "projects") && is(4, "job_listing")
              && is(6, "tags") && ((n == 7 && m == "POST") || (n == 8 && m == "DELETE"));
  if (tags)
    return owner_then_route(self, rp, std::move(req), parts[5], user);
  bool by_position = is(0, "queued_jobs") && n == 2 && (m == "DELETE" || m == "PATCH");
  if (by_position && st.master) {
    auto pos = parse_index(parts[1]);
    if (!pos)
      return route_checked(self, rp, req);
    self->request(st.master, caf::infinite, list_atom::value, *pos, uint64_t{1})
      .then(
        [=](job_page& page) mutable {
          if (page.jobs.empty())
            return route_checked(self, rp, req); // the route says 404
          auto& rec = page.jobs[0];
          if (!auth::may_act_on(rec.username, user, false))
            return give(rp, forbidden(self, req, user, rec.username, rec.job_id));
          if (m == "PATCH") // moved by position: a queue change in between can shift it
            return route_checked(self, rp, req);
          // Removed by the id that was checked, not by a position that may
          // have shifted since (stop cancels a queued job as dequeue does).
          self->request(self->state.master, caf::infinite, stop_atom::value, rec.job_id)
            .then([=](bool) mutable { rp.deliver(no_content()); },
                  [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
        },
        [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
    return;
  }
  if (is(0, "api") && is(1, "v1") && is(2, "queued_jobs") && n == 3 && m == "DELETE"
      && st.master)
    return clear_own_queue(self, rp, user);
  route_checked(self, rp, req);
}

} // namespace

void route(gateway_ptr self, answer rp, const http_request& in) {
  auto& st = self->state;
  http_request req = in;
  // Identity comes from a verified token only, never from the client.
  req.headers.erase(auth::user_header);
  req.headers.erase(auth::admin_header);
  req.headers.erase(auth::groups_header);
  auto parts = split_path(req.path);
  std::string what;
  bool auth_route = auth::is_auth_route(parts, what);
  if (!st.cfg->auth) {
    if (auth_route && what == "verify")
      return give(rp, json_answer(200, R"({"auth":false})"));
    if (auth_route)
      return give(rp, error_answer(404, "authentication is off on this server (start it with "
                                        "`atlas-server start -p`)"));
    return route_checked(self, rp, req);
  }
  if (auth_route && (what == "login" || what == "cli_login")) {
    if (what == "login" && req.method != "POST")
      return give(rp, error_answer(405, "use POST /api/v2beta/auth/login"));
    return login(self, rp, req, what == "cli_login");
  }
  if (!auth_route && auth::exempt(req, parts))
    return route_checked(self, rp, req);
  if (auth::is_scrape(parts, auth::bearer_token(req.headers), st.cfg->metrics_token))
    return route_checked(self, rp, req); // a scraper with the metrics token
  authenticate(self, rp, std::move(req), auth_route ? what : std::string{}, false);
}

} // namespace atlas::gateway
