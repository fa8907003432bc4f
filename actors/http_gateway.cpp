// The HTTP gateway actor and its operations on jobs: file work goes to the
// thread pool, requests for another node's job go to that node's gateway.
// Which request reaches which operation: http_routes.cpp.

#include "actors/http_gateway.hpp"

#include <filesystem>
#include <functional>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/http_gateway_impl.hpp"
#include "actors/peer_check.hpp"
#include "adapters/event_loop.hpp"
#include "adapters/json.hpp"
#include "messages/errors.hpp"
#include "library/auth_rules.hpp"
#include "library/http_answers.hpp"
#include "library/job_codec.hpp"
#include "library/job_files.hpp"

namespace atlas {

namespace gateway {

namespace {

/// The node a request came from, when another node's gateway forwarded it:
/// set here from the sender's certificate, never taken from a client.
constexpr const char* forwarded_header = "x-atlas-forwarded-by";

/// Bytes of log sent per chunk of a followed stream.
constexpr uint64_t follow_chunk = 64 << 10;

/// Bytes of an uploaded bundle per chunk handed to a node without the
/// shared file system.
constexpr uint64_t bundle_chunk_bytes = 1 << 20;

/// Forwards the request unchanged to the gateway of the node that ran the
/// job and answers what it answers. A gateway known from an earlier request
/// is asked directly; if that fails (the node restarted), the master is
/// asked for the current one.
template <class F>
void forward(gateway_ptr self, answer rp, const http_request& req, job_record rec, F local) {
  auto& st = self->state;
  auto fwd = req;
  fwd.headers[forwarded_header] = st.cfg->node_id;
  auto node = rec.node;
  auto via = [=](http_gateway_actor gateway, bool cached) mutable {
    self->request(gateway, std::chrono::seconds(60), fwd)
      .then([=](http_response& r) mutable { rp.deliver(std::move(r)); },
            [=](caf::error&) mutable {
              self->state.owners.erase(node);
              if (cached)
                forward(self, rp, req, rec, local);
              else
                local(rec); // unreachable now: answer from the shared file system
            });
  };
  if (auto known = st.owners.find(node); known != st.owners.end()) {
    via(known->second, true);
    return;
  }
  self->request(st.master, std::chrono::seconds(10), get_atom::value, node_atom::value, node)
    .then(
      [=](caf::actor& gateway) mutable {
        auto handle = caf::actor_cast<http_gateway_actor>(gateway);
        if (auto& known = self->state.owners[node]; known != handle) {
          known = handle;
          self->monitor(handle); // a request to a dead node's gateway would wait
        }
        via(handle, false);
      },
      // The node is gone: its files may still be on the shared file system.
      [=](caf::error&) mutable { local(rec); });
}

/// Reads the record, then answers here when this node ran the job, else
/// forwards it towards the node that ran it. A worker forwards through the
/// master, which forwards it on; a request the master forwarded is
/// answered where it arrives (from the shared file system when needed).
template <class F>
void at_owner(gateway_ptr self, answer rp, const http_request& req, const std::string& id,
              F local) {
  with_record(self, rp, id, [=](job_record& rec) mutable {
    auto& st = self->state;
    auto via = req.headers.find(forwarded_header);
    bool forwarded = via != req.headers.end();
    if (rec.node.empty() || rec.node == st.cfg->node_id || !st.master
        || (forwarded && (!st.cfg->is_master || via->second == rec.node))) {
      local(rec);
      return;
    }
    forward(self, rp, req, std::move(rec), local);
  });
}

} // namespace

/// Runs `work` on the thread pool; `then` gets its answer on this actor.
void offload(gateway_ptr self, std::function<http_response()> work, continuation then) {
  auto ticket = self->state.next_ticket++;
  self->state.parked.emplace(ticket, std::move(then));
  http_gateway_actor me = self;
  self->state.loop->post_work([me, ticket, work = std::move(work)] {
    caf::anon_send(me, done_atom::value, ticket, work());
  });
}

/// Delivers an answer; returns void so that routes can `return give(...)`.
void give(answer& rp, http_response r) {
  rp.deliver(std::move(r));
}

/// An actor error as an HTTP answer.
http_response from_error(const caf::error& err) {
  return error_answer(http_status_of(err), error_message(err));
}

void forward_to_master(gateway_ptr self, answer rp, const http_request& req) {
  auto& st = self->state;
  if (!st.master)
    return give(rp, error_answer(503, "this node has not joined a master yet"));
  // Asked by a worker, the master names its own gateway.
  self->request(st.master, std::chrono::seconds(10), get_atom::value, node_atom::value,
                std::string{})
    .then(
      [=](caf::actor& gateway) mutable {
        auto fwd = req;
        fwd.headers[forwarded_header] = self->state.cfg->node_id;
        self->request(caf::actor_cast<http_gateway_actor>(gateway), std::chrono::seconds(60), fwd)
          .then([=](http_response& r) mutable { rp.deliver(std::move(r)); },
                [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
      },
      [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
}

void get_logs(gateway_ptr self, answer rp, const http_request& req, const std::string& id,
              bool as_json) {
  at_owner(self, rp, req, id, [=](job_record& rec) mutable {
    auto log = job_paths::of(*self->state.cfg, rec.job_id).log;
    auto cap = self->state.cfg->log_cap_bytes + 4096;
    offload(
      self,
      [log, cap, as_json] {
        auto text = read_file_range(log, 0, cap);
        if (as_json)
          return json_answer(200, json::quote(text));
        auto r = json_answer(200, std::move(text));
        r.content_type = "text/plain; charset=utf-8";
        return r;
      },
      [rp](http_response&& r) mutable { rp.deliver(std::move(r)); });
  });
}

void follow_logs(gateway_ptr self, answer rp, const http_request& req, const std::string& id,
                 uint64_t offset) {
  at_owner(self, rp, req, id, [=](job_record& rec) mutable {
    auto log = job_paths::of(*self->state.cfg, rec.job_id).log;
    bool finished = is_terminal(rec.state);
    offload(
      self,
      [log, offset, finished] {
        http_response r;
        r.content_type = "text/plain; charset=utf-8";
        r.stream = true;
        r.body = read_file_range(log, offset, follow_chunk);
        r.stream_offset = offset + r.body.size();
        // Done once the job ended and everything it wrote has been sent.
        r.stream_done = finished && r.body.size() < follow_chunk;
        return r;
      },
      [rp](http_response&& r) mutable { rp.deliver(std::move(r)); });
  });
}

void get_job(gateway_ptr self, answer rp, const http_request& req, const std::string& id) {
  at_owner(self, rp, req, id, [=](job_record& rec) mutable {
    auto log = job_paths::of(*self->state.cfg, rec.job_id).log;
    auto cap = self->state.cfg->log_cap_bytes + 4096;
    offload(
      self, [rec, log, cap] { return json_answer(200, job_with_logs(rec, read_file_range(log, 0, cap))); },
      [rp](http_response&& r) mutable { rp.deliver(std::move(r)); });
  });
}

void list_states(gateway_ptr self, answer rp, std::vector<job_state> states,
                 std::vector<job_record> acc) {
  if (states.empty()) {
    rp.deliver(json_answer(200, records_by_id(acc)));
    return;
  }
  auto s = states.back();
  states.pop_back();
  self->request(self->state.lookup, caf::infinite, list_atom::value, s)
    .then(
      [=](std::vector<job_record>& recs) mutable {
        auto all = acc;
        all.insert(all.end(), recs.begin(), recs.end());
        list_states(self, rp, states, std::move(all));
      },
      [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
}

namespace {

/// The submitter as the auth gate set it: the token's user in -p mode,
/// empty without -p (and the client can never set it, route() drops it).
std::string submitter_of(const http_request& req) {
  auto h = req.headers.find(auth::user_header);
  return h == req.headers.end() ? std::string{} : h->second;
}

/// Removes a spooled upload that is not stored, then answers `r`.
void refuse_upload(gateway_ptr self, answer rp, std::string spooled, http_response r) {
  offload(self, [spooled] {
            std::error_code ec;
            if (!spooled.empty())
              std::filesystem::remove(spooled, ec);
            return no_content();
          },
          [rp, r](http_response&&) mutable { rp.deliver(std::move(r)); });
}

} // namespace

void submit(gateway_ptr self, answer rp, const http_request& req) {
  std::string error;
  auto rec = job_from_submission(req.body, error);
  if (!rec) {
    rp.deliver(error_answer(400, error));
    return;
  }
  auto paths = job_paths::of(*self->state.cfg, rec->job_id);
  auto user = submitter_of(req);
  auto owner = std::make_shared<std::string>(); // read on the thread pool, logged here
  offload(
    self,
    [paths, user, owner, id = rec->job_id] {
      auto bundle = read_bundle(paths);
      if (!bundle.exists)
        return error_answer(400, "Cannot queue a job that has no uploaded bundle");
      *owner = bundle.owner;
      // A job runs only code its submitter uploaded: with another user's
      // bundle it would run that user's code as the submitter, or the reverse.
      if (bundle.owner == user)
        return json_answer(200, "");
      return error_answer(403, "job '" + id + "': its bundle was uploaded by "
                                 + (bundle.owner.empty() ? std::string{"no signed-in user"}
                                                         : "user '" + bundle.owner + "'")
                                 + "; a job can only use a bundle its submitter uploaded");
    },
    [self, rp, rec = *rec, user, owner](http_response&& check) mutable {
      if (check.status == 403)
        spdlog::warn("auth: refused user={} route=\"POST /queued_jobs\" job_id={} owner={} "
                     "node={} reason=\"bundle of another user\"",
                     user, rec.job_id, *owner, self->state.cfg->node_id);
      if (check.status != 200) {
        rp.deliver(std::move(check));
        return;
      }
      self->request(self->state.master, caf::infinite, submit_atom::value, rec)
        .then([=](std::string& id) mutable { rp.deliver(json_answer(201, json::quote(id))); },
              [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
    });
}

void upload_bundle(gateway_ptr self, answer rp, const http_request& req) {
  if (req.upload_path.empty() || req.upload_field != "job_bundle") // maybe a file under another name
    return refuse_upload(self, rp, req.upload_path,
                         error_answer(400, "Job bundle not found in request"));
  auto name = req.upload_filename;
  auto id = name.size() > 4 && name.ends_with(".tgz") ? name.substr(0, name.size() - 4) : "";
  auto upload = req.upload_path;
  if (!valid_job_id(id))
    return refuse_upload(self, rp, upload,
                         error_answer(400, "Bad bundle name '" + name
                                             + "': expected <job_id>.tgz"));
  auto paths = job_paths::of(*self->state.cfg, id);
  auto owner = submitter_of(req); // the bundle is the uploader's (job_files.hpp)
  // A job that exists keeps its bundle, even once the file is gone.
  self->request(self->state.lookup, caf::infinite, get_atom::value, id)
    .then(
      [=](job_record&) mutable {
        refuse_upload(self, rp, upload,
                      error_answer(409, "job '" + id + "' already exists; a job's bundle cannot "
                                        "be replaced (submit under a new job id)"));
      },
      [=](caf::error& err) mutable {
        if (http_status_of(err) != 404)
          return refuse_upload(self, rp, upload, from_error(err));
        offload(
          self,
          [upload, paths, owner] {
            auto st = store_bundle(upload, paths, owner);
            if (st.ok())
              return json_answer(200, json::quote("Job bundle uploaded"));
            return error_answer(st.why == bundle_refusal::taken ? 409
                                : st.why == bundle_refusal::io  ? 500
                                                                : 400,
                                st.message);
          },
          [rp](http_response&& r) mutable { rp.deliver(std::move(r)); });
      });
}

void delete_job(gateway_ptr self, answer rp, const http_request& req, const std::string& id) {
  at_owner(self, rp, req, id, [=](job_record& rec) mutable {
    if (!is_terminal(rec.state)) {
      rp.deliver(error_answer(409, "job '" + id + "' is " + std::string(to_string(rec.state))
                                     + "; stop it before deleting it"));
      return;
    }
    auto paths = job_paths::of(*self->state.cfg, id);
    offload(
      self, [paths] { delete_job_files(paths); return no_content(); },
      [=](http_response&&) mutable {
        self->request(self->state.lookup, caf::infinite, delete_atom::value, id)
          .then([=](bool) mutable { rp.deliver(no_content()); },
                [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
      });
  });
}

void stop_job(gateway_ptr self, answer rp, const std::string& id) {
  self->request(self->state.master, caf::infinite, stop_atom::value, id)
    .then([=](bool) mutable { rp.deliver(no_content()); },
          [=](caf::error& err) mutable {
            if (http_status_of(err) != 404) {
              rp.deliver(from_error(err));
              return;
            }
            // Not active: finished (409) or unknown (404).
            with_record(self, rp, id, [=](job_record& rec) mutable {
              rp.deliver(error_answer(409, "job '" + id + "' has already finished ("
                                             + std::string(to_string(rec.state)) + ")"));
            });
          });
}

void download_artifacts(gateway_ptr self, answer rp, const http_request& req,
                        const std::string& id) {
  at_owner(self, rp, req, id, [=](job_record&) mutable {
    auto paths = job_paths::of(*self->state.cfg, id);
    auto temp = self->state.cfg->node_dir + "/tmp";
    offload(
      self,
      [paths, id, temp] {
        std::string bytes;
        auto st = pack_artifacts(paths, id, temp, bytes);
        if (!st)
          return error_answer(404, st.error());
        auto r = json_answer(200, std::move(bytes));
        r.content_type = "application/gzip";
        r.headers["Content-Disposition"] = "attachment; filename=\"" + id + ".tgz\"";
        return r;
      },
      [rp](http_response&& r) mutable { rp.deliver(std::move(r)); });
  });
}

void bundle_chunk(gateway_ptr self, answer rp, const std::string& id, uint64_t offset) {
  if (!valid_job_id(id))
    return give(rp, error_answer(404, "job '" + id + "' not found"));
  auto bundle = job_paths::of(*self->state.cfg, id).bundle;
  offload(
    self,
    [bundle, offset] {
      std::error_code ec;
      auto size = std::filesystem::file_size(bundle, ec);
      if (ec)
        return error_answer(404, "no bundle stored for this job");
      auto r = json_answer(200, read_file_range(bundle, offset, bundle_chunk_bytes));
      r.content_type = "application/gzip";
      r.headers["X-Atlas-Total-Size"] = std::to_string(size);
      return r;
    },
    [rp](http_response&& r) mutable { rp.deliver(std::move(r)); });
}

} // namespace gateway

namespace {

using namespace gateway;

http_gateway_actor::behavior_type gateway_impl(gateway_ptr self,
                                               std::shared_ptr<const node_config> cfg,
                                               event_loop* loop, lookup_actor lookup,
                                               tracking_actor tracking, master_actor master) {
  self->state.cfg = std::move(cfg);
  self->state.loop = loop;
  self->state.lookup = std::move(lookup);
  self->state.tracking = std::move(tracking);
  self->state.master = std::move(master);
  self->set_down_handler([=](caf::down_msg& dm) {
    std::erase_if(self->state.owners,
                  [&](const auto& o) { return o.second.address() == dm.source; });
  });
  return {
    [=](http_request& req) -> caf::result<http_response> {
      // The master's gateway takes requests other nodes forward; a worker's
      // only those the master forwards.
      auto who = sender_of(self);
      bool from_node = self->state.cfg->is_master ? who.is("worker") || who.is("master")
                                                  : who.is("master");
      if (!who.local && !from_node)
        return refuse(self, who, "an HTTP request");
      if (who.local) {
        req.headers.erase(forwarded_header); // a client's, not a node's
      } else {
        // Forwarded by a node: what only this node may set never comes from
        // the wire. The bearer token travels along and is verified again.
        req.upload_path.clear();
        req.upload_filename.clear();
        req.upload_field.clear();
        req.listener = "forwarded";
        req.headers[forwarded_header] = who.peer.name;
      }
      auto rp = self->make_response_promise<http_response>();
      if (!self->state.cfg->is_master && acts_through_master(req))
        forward_to_master(self, rp, req);
      else
        route(self, rp, req);
      return rp;
    },
    [=](register_atom, master_actor& master) {
      if (!local_only(self, "register"))
        return;
      self->state.master = master;
      self->state.owners.clear(); // a new master: ask it again
    },
    [=](stats_atom) -> caf::result<actor_stats> {
      if (auto who = sender_of(self); !who.local_or("master"))
        return refuse(self, who, "stats");
      auto& st = self->state;
      return self->stats(st.cfg->node_id, std::to_string(st.parked.size()) + " file task(s) in flight"
                                            + (st.master ? "" : ", no master"));
    },
    [=](done_atom, uint64_t ticket, http_response& r) {
      if (!local_only(self, "done"))
        return;
      auto i = self->state.parked.find(ticket);
      if (i == self->state.parked.end())
        return;
      auto then = std::move(i->second);
      self->state.parked.erase(i);
      then(std::move(r));
    },
  };
}

} // namespace

http_gateway_actor spawn_http_gateway(caf::actor_system& sys,
                                      std::shared_ptr<const node_config> cfg,
                                      event_loop* loop, lookup_actor lookup,
                                      tracking_actor tracking, master_actor master) {
  return sys.spawn(gateway_impl, std::move(cfg), loop, std::move(lookup), std::move(tracking),
                   std::move(master));
}

} // namespace atlas
