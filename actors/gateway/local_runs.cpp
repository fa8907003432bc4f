// Local runs: a plain `python main.py` outside the cluster, recorded as a
// job when an execution config named default exists (as the original
// Atlas did). The SDK starts one with the submission's JSON (no bundle, no
// slot), tracks through the job's secret as any job does, and reports the
// end with that secret.
//
//   POST /api/v1/local_runs          {job_id, metadata, params?}: 201
//        {job_id, secret} (the run is running from now on)
//   POST /api/v1/local_runs/<id>/end {state: completed|failed, return_code?,
//        reason?} with x-atlas-job-secret: 200 true

#include <chrono>
#include <string>

#include "actors/gateway/gateway_state.hpp"
#include "adapters/json.hpp"
#include "library/tracking/store.hpp"

namespace atlas::gateway {

void start_local_run(gateway_ptr self, answer rp, const http_request& req) {
  auto rec = job_from_submission(req.body);
  if (!rec)
    return give(rp, error_answer(400, rec.error()));
  if (!rec->after.empty())
    return give(rp, error_answer(400, "Bad after: a local run is already running; it waits for "
                                      "nothing"));
  rec->local_run = true;
  rec->job_secret = dashboard::new_job_secret();
  auto secret = rec->job_secret;
  self->request(self->state.master, caf::infinite, submit_atom::value, std::move(rec.value()))
    .then(
      [=](std::string& id) mutable {
        json::writer w;
        w.begin_object().kv("job_id", id).kv("secret", secret).end_object();
        rp.deliver(json_answer(201, w.take()));
      },
      [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
}

void end_local_run(gateway_ptr self, answer rp, const http_request& req, const std::string& id) {
  if (!valid_job_id(id))
    return give(rp, error_answer(404, "job '" + id + "' not found"));
  auto h = req.headers.find("x-atlas-job-secret");
  if (h == req.headers.end() || h->second.empty())
    return give(rp, error_answer(401, "the x-atlas-job-secret header is missing"));
  std::string err;
  auto doc = json::parse(req.body, err);
  if (!doc || !doc->is_object())
    return give(rp, error_answer(400, "expected a JSON object {state, return_code?, reason?}"));
  job_report rep;
  rep.job_id = id;
  auto state = doc->get_string("state").value_or("");
  if (state == "completed")
    rep.state = job_state::completed;
  else if (state == "failed")
    rep.state = job_state::failed;
  else
    return give(rp, error_answer(400, "Bad state: a local run ends 'completed' or 'failed'"));
  if (auto code = doc->get_int("return_code")) {
    rep.return_code = *code;
    rep.has_return_code = true;
  }
  rep.reason = doc->get_string("reason").value_or("").substr(0, 1024);
  // The secret first: only the run itself ends it this way (its owner stops it).
  self->request(self->state.tracking, std::chrono::seconds(30), track_atom::value,
                std::string{"check_secret"}, std::vector<std::string>{id, h->second})
    .then(
      [=](std::string&) mutable {
        self->request(self->state.master, caf::infinite, local_run_atom::value, rep)
          .then([=](bool) mutable { rp.deliver(json_answer(200, "true")); },
                [=](caf::error& e) mutable { rp.deliver(from_error(e)); });
      },
      [=](caf::error& e) mutable { rp.deliver(from_error(e)); });
}

} // namespace atlas::gateway
