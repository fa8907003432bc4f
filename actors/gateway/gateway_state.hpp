#pragma once

// The gateway's insides, shared by the actor with its operations
// (gateway.cpp) and its route table (routes.cpp). Private to
// those two files.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/counted.hpp"
#include "actors/scheduler.hpp"
#include "messages/actors.hpp"
#include "library/config.hpp"
#include "library/http_answers.hpp"
#include "library/job_codec.hpp"

namespace atlas {

class event_loop;
class oidc_client;

namespace gateway {

/// The node a request came from, when another node's gateway forwarded it:
/// set from the sender's certificate, never taken from a client.
constexpr const char* forwarded_header = "x-atlas-forwarded-by";

using answer = caf::typed_response_promise<http_response>;
using continuation = std::function<void(http_response&&)>;

struct gateway_state {
  static inline const char* name = "http-gateway";
  std::shared_ptr<const node_config> cfg;
  event_loop* loop = nullptr;
  lookup_actor lookup;
  tracking_actor tracking; // the dashboard's data (actors/dashboard/tracking.hpp)
  master_actor master;
  scheduler_actor schedules; // the active master's only (actors/scheduler.hpp)
  uint64_t next_ticket = 1;
  std::unordered_map<uint64_t, continuation> parked; // waiting for the thread pool
  std::unordered_map<uint64_t, caf::typed_response_promise<bundle_chunk>> fetches; // likewise
  // Other nodes' gateways, as the master named them: forwarded requests
  // skip asking it again. An entry goes when its gateway goes down (it is
  // monitored) or a request through it fails.
  std::unordered_map<std::string, http_gateway_actor> owners;
  std::shared_ptr<oidc_client> oidc; // -p mode: Keycloak's keys (actors/gateway/auth_check.cpp)
};

using gateway_ptr = counted_pointer<http_gateway_actor, gateway_state>;

/// Runs `work` on the thread pool; `then` gets its answer on this actor.
void offload(gateway_ptr self, std::function<http_response()> work, continuation then);

/// Delivers an answer; returns void so that routes can `return give(...)`.
void give(answer& rp, http_response r);

/// An actor error as an HTTP answer.
http_response from_error(const caf::error& err);

/// Reads a record, then continues; unknown ids become 404.
template <class F>
void with_record(gateway_ptr self, answer rp, const std::string& id, F then) {
  if (!valid_job_id(id)) {
    rp.deliver(error_answer(404, "job '" + id + "' not found"));
    return;
  }
  self->request(self->state.lookup, caf::infinite, get_atom::value, id)
    .then([=](job_record& rec) mutable { then(rec); },
          [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
}

// --- operations (gateway.cpp): each delivers exactly one answer

/// Whether a request acts through the master (the queue, the slots, stopping
/// a job): a worker forwards those to the master's gateway, which checks
/// them as its own (routes.cpp).
bool acts_through_master(const http_request& req);
/// Whether the path is /scheduled_jobs[/<id>] or its /api/v1/ twin.
bool is_schedule_route(const std::vector<std::string>& parts);
/// Sends the request to the master's gateway and answers what it answers.
void forward_to_master(gateway_ptr self, answer rp, const http_request& req);

/// The job's log (capped) as a JSON string, or as plain text.
void get_logs(gateway_ptr self, answer rp, const http_request& req, const std::string& id,
              bool as_json);
/// The next chunk of a followed log from `offset`.
void follow_logs(gateway_ptr self, answer rp, const http_request& req, const std::string& id,
                 uint64_t offset);
/// The job's record with its log.
void get_job(gateway_ptr self, answer rp, const http_request& req, const std::string& id);
/// The records in `states`, one state after another, added to `acc`.
/// GET /completed_jobs or /failed_jobs (`s` completed or failed): one page,
/// newest first, from the ended index (`limit`, at most 1000, also the cap
/// when none is asked; `cursor` from the Link header of the page before;
/// X-Total-Count says how many there are). `sort` as the original's.
void finished_jobs(gateway_ptr self, answer rp, const http_request& req, job_state s);

/// GET /api/v1/jobs[?limit=&cursor=]: {"jobs": [one page, newest first],
/// "total", "next_cursor"} with a Link header; without a limit, the newest
/// job_index::max_page. ?unfinished=true: {"jobs": [every job not ended]}
/// (read from the unfinished states' sets, whatever the history's size).
void job_pages(gateway_ptr self, answer rp, const http_request& req);

/// GET /queued_jobs[?limit=&cursor=]: the queue from a position (the
/// cursor), at most limit (job_index::max_page, also without one) entries,
/// in the original's shape, with X-Total-Count and a Link to the rest.
void queued_jobs(gateway_ptr self, answer rp, const http_request& req);

/// The records in `states`, as {"<id>": record, ...} (the scheduler lists'
/// shape), or as {"jobs": [...]} newest first with `as_list`.
void list_states(gateway_ptr self, answer rp, std::vector<job_state> states,
                 std::vector<job_record> acc = {}, bool as_list = false);
/// Queues a submitted job whose bundle has been uploaded.
void submit(gateway_ptr self, answer rp, const http_request& req);
/// Stores an uploaded <job_id>.tgz bundle.
void upload_bundle(gateway_ptr self, answer rp, const http_request& req);
/// POST /api/v1/bundles: stores a bundle by content, once (bundle_store.hpp).
void upload_content_bundle(gateway_ptr self, answer rp, const http_request& req);
/// HEAD|GET /api/v1/bundles/<sha256>: 200 when the caller uploaded it, else 404.
void has_content_bundle(gateway_ptr self, answer rp, const http_request& req,
                        const std::string& hash);
/// POST /api/v1/local_runs: records a local run as running (local_runs.cpp).
void start_local_run(gateway_ptr self, answer rp, const http_request& req);
/// POST /api/v1/local_runs/<id>/end: the run, by its secret, reports its end.
void end_local_run(gateway_ptr self, answer rp, const http_request& req, const std::string& id);
/// Deletes a finished job's files, then its record.
void delete_job(gateway_ptr self, answer rp, const http_request& req, const std::string& id);
/// Stops an active job; 409 when it has already finished.
void stop_job(gateway_ptr self, answer rp, const std::string& id);
/// The job's artifacts as a .tgz.
void download_artifacts(gateway_ptr self, answer rp, const http_request& req,
                        const std::string& id);
/// A chunk of a stored bundle, read on the thread pool, for a node without
/// the shared file system (asked through the master).
caf::result<bundle_chunk> read_bundle_chunk(gateway_ptr self, const std::string& id,
                                            uint64_t offset);

// --- observability (observability.cpp)

/// GET /metrics: this process's counters, and on the active master its
/// view of the cluster.
void serve_metrics(gateway_ptr self, answer rp);
/// GET /api/v1/events: a page of events after `after` (or Last-Event-ID),
/// or with follow=1 (or Accept: text/event-stream) server-sent events.
void read_events(gateway_ptr self, answer rp, const http_request& req);
/// GET /api/v1/usage?by=user|project|day&since=&until=.
void read_usage(gateway_ptr self, answer rp, const http_request& req);

/// Checks who asks (auth_check.cpp: the bearer token in -p mode, the owner
/// of the job acted on), then routes through route_checked. Every branch
/// delivers exactly one answer.
void route(gateway_ptr self, answer rp, const http_request& req);

/// This node's Keycloak client (keys and grants), made on first use.
std::shared_ptr<oidc_client> client_of(gateway_ptr self);
/// 401 with the WWW-Authenticate header a bearer-token client expects.
http_response unauthorized(std::string_view why);

/// POST /api/v2beta/auth/login (JSON) and cli_login (`basic`: HTTP Basic).
void login(gateway_ptr self, answer rp, const http_request& req, bool basic);
/// /api/v2beta/auth/logout: revokes the refresh token.
void logout(gateway_ptr self, answer rp, const http_request& req);

/// Routes one request whose identity has been checked (routes.cpp).
/// Every branch delivers exactly one answer.
void route_checked(gateway_ptr self, answer rp, const http_request& req);

} // namespace gateway

} // namespace atlas
