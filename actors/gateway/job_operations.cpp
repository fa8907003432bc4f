// The gateway's operations on jobs: logs, records, submission, bundles,
// artifacts, stop and delete. File work goes to the thread pool; a request
// for another node's job goes to that node's gateway.

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include "actors/gateway/gateway_state.hpp"
#include "adapters/event_loop.hpp"
#include "adapters/json.hpp"
#include "messages/errors.hpp"
#include "library/auth_rules.hpp"
#include "library/http_answers.hpp"
#include "library/bundle_store.hpp"
#include "library/job_codec.hpp"
#include "library/job_files.hpp"
#include "library/job_index.hpp"
#include "library/tracking/listing_page.hpp"

namespace atlas::gateway {

namespace {

/// Bytes of log sent per chunk of a followed stream.
constexpr uint64_t follow_chunk = 64 << 10;

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
                 std::vector<job_record> acc, bool as_list) {
  if (states.empty()) {
    rp.deliver(json_answer(200, as_list ? record_list(std::move(acc)) : records_by_id(acc)));
    return;
  }
  auto s = states.back();
  states.pop_back();
  self->request(self->state.lookup, caf::infinite, list_atom::value, s)
    .then(
      [=](std::vector<job_record>& recs) mutable {
        auto all = acc;
        all.insert(all.end(), recs.begin(), recs.end());
        list_states(self, rp, states, std::move(all), as_list);
      },
      [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
}

namespace {

/// A paged list's `limit=` (at most job_index::max_page, also without it)
/// and `cursor=`. Nullopt once a bad limit was answered 400.
struct page_ask {
  uint64_t limit = job_index::max_page;
  std::string cursor;
};
std::optional<page_ask> page_asked(answer& rp, std::map<std::string, std::string>& q) {
  page_ask out;
  out.cursor = q.count("cursor") ? q["cursor"] : std::string{};
  if (!q.count("limit"))
    return out;
  auto n = parse_index(q["limit"]);
  if (!n || *n == 0) {
    give(rp, error_answer(400, "limit must be a positive integer (at most "
                                 + std::to_string(job_index::max_page) + ")"));
    return std::nullopt;
  }
  out.limit = std::min<uint64_t>(*n, job_index::max_page);
  return out;
}

/// Adds the Link header to the next page of `path` (when there is one).
void link_next(http_response& r, const std::string& path, std::map<std::string, std::string> q,
               uint64_t limit, const std::string& next) {
  if (next.empty())
    return;
  q["limit"] = std::to_string(limit);
  r.headers["Link"] = "<" + path + "?" + dashboard::query_with_cursor(q, next) + ">; rel=\"next\"";
}

} // namespace

void finished_jobs(gateway_ptr self, answer rp, const http_request& req, job_state s) {
  auto q = parse_query(req.query);
  auto sort = q.count("sort") ? q["sort"] : std::string{};
  auto ask = page_asked(rp, q);
  if (!ask)
    return;
  auto [limit, cursor] = *ask;
  auto path = req.path;
  self->request(self->state.lookup, caf::infinite, list_atom::value, s, cursor, limit)
    .then(
      [=](job_page& page) mutable {
        auto states = s == job_state::completed ? std::vector<job_state>{job_state::completed}
                                                : std::vector<job_state>{job_state::cancelled, job_state::failed};
        if (!page.indexed) { // indexes being built: read them all, as before
          if (sort.empty())
            return list_states(self, rp, states);
          self->request(self->state.lookup, caf::infinite, list_atom::value, s)
            .then([=](std::vector<job_record>& recs) mutable {
                    std::string error;
                    auto sorted = records_sorted(recs, sort, error);
                    rp.deliver(sorted ? json_answer(200, std::move(*sorted)) : error_answer(400, error));
                  },
                  [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
          return;
        }
        std::string error;
        auto body = sort.empty() ? std::optional<std::string>{records_by_id(page.jobs)}
                                 : records_sorted(page.jobs, sort, error);
        if (!body)
          return give(rp, error_answer(400, error));
        auto r = json_answer(200, std::move(*body));
        r.headers["X-Total-Count"] = std::to_string(page.total);
        link_next(r, path, q, limit, page.next);
        rp.deliver(std::move(r));
      },
      [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
}

void queued_jobs(gateway_ptr self, answer rp, const http_request& req) {
  auto q = parse_query(req.query);
  auto ask = page_asked(rp, q);
  if (!ask)
    return;
  auto [limit, cursor] = *ask;
  auto from = cursor.empty() ? std::optional<uint64_t>{0} : parse_index(cursor);
  if (!from)
    return give(rp, error_answer(400, "cursor must be a queue position (the Link header's)"));
  auto path = req.path;
  self->request(self->state.master, caf::infinite, list_atom::value, *from, limit)
    .then(
      [=](job_page& page) mutable {
        auto r = json_answer(200, records_by_position(page.jobs, *from));
        r.headers["X-Total-Count"] = std::to_string(page.total);
        link_next(r, path, q, limit, page.next);
        rp.deliver(std::move(r));
      },
      [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
}

void job_pages(gateway_ptr self, answer rp, const http_request& req) {
  auto q = parse_query(req.query);
  if (auto u = q.find("unfinished"); u != q.end() && u->second != "false" && u->second != "0")
    return list_states(self, rp, {job_state::queued, job_state::pending, job_state::running,
                                  job_state::lost}, {}, true);
  bool unpaged = !q.count("limit") && !q.count("cursor");
  auto ask = page_asked(rp, q);
  if (!ask)
    return;
  auto [limit, cursor] = *ask;
  auto path = req.path;
  self->request(self->state.lookup, caf::infinite, list_atom::value, cursor, limit)
    .then(
      [=](job_page& page) mutable {
        if (!page.indexed && unpaged) { // indexes being built: every record, as before them
          self->request(self->state.lookup, caf::infinite, list_atom::value)
            .then([=](std::vector<job_record>& recs) mutable {
                    rp.deliver(json_answer(200, record_list(std::move(recs))));
                  },
                  [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
          return;
        }
        if (!page.indexed)
          return give(rp, error_answer(503, "the job indexes are being built; ask again shortly"));
        json::writer w;
        w.begin_object().key("jobs").begin_array();
        for (auto& rec : page.jobs) { // as the unpaged list writes them
          w.begin_object();
          write_job_fields(w, rec);
          w.end_object();
        }
        w.end_array().kv("total", page.total).key("next_cursor");
        if (page.next.empty())
          w.null();
        else
          w.value(page.next);
        w.end_object();
        auto r = json_answer(200, w.take());
        link_next(r, path, q, limit, page.next);
        rp.deliver(std::move(r));
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
  auto rec = job_from_submission(req.body);
  if (!rec) {
    rp.deliver(error_answer(400, rec.error()));
    return;
  }
  auto content = submission_bundle(req.body);
  if (!content) {
    rp.deliver(error_answer(400, content.error()));
    return;
  }
  if (auto g = req.headers.find(auth::groups_header); g != req.headers.end()) {
    // Quota groups come from the verified token only (-p), never the body.
    std::string_view list = g->second;
    while (!list.empty()) {
      auto comma = list.find(',');
      if (auto name = list.substr(0, comma); !name.empty())
        rec->groups.emplace_back(name);
      list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    }
  }
  auto paths = job_paths::of(*self->state.cfg, rec->job_id);
  auto user = submitter_of(req);
  auto owner = std::make_shared<std::string>(); // read on the thread pool, logged here
  auto store = bundle_store_dir(self->state.cfg->job_store_dir_root);
  offload(
    self,
    [paths, user, owner, id = rec->job_id, hash = content.value(), store] {
      if (!hash.empty()) { // a bundle of the content store becomes the job's
        auto st = use_content_bundle(store, hash, user, paths);
        if (!st.ok())
          return error_answer(st.why == bundle_refusal::taken ? 409
                              : st.why == bundle_refusal::io  ? 500
                                                              : 400,
                              st.message);
      }
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
    [self, rp, rec = rec.value(), user, owner](http_response&& check) mutable {
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

void upload_content_bundle(gateway_ptr self, answer rp, const http_request& req) {
  if (req.upload_path.empty() || req.upload_field != "job_bundle")
    return refuse_upload(self, rp, req.upload_path,
                         error_answer(400, "Job bundle not found in request (expected a "
                                           "multipart/form-data file field 'job_bundle')"));
  auto store = bundle_store_dir(self->state.cfg->job_store_dir_root);
  offload(
    self,
    [upload = req.upload_path, store, owner = submitter_of(req)] {
      auto b = store_content_bundle(upload, store, owner);
      if (!b.result.ok())
        return error_answer(b.result.why == bundle_refusal::io ? 500 : 400, b.result.message);
      json::writer w;
      w.begin_object().kv("bundle", b.hash).kv("size", b.size).kv("stored", b.stored).end_object();
      return json_answer(200, w.take());
    },
    [rp](http_response&& r) mutable { rp.deliver(std::move(r)); });
}

void has_content_bundle(gateway_ptr self, answer rp, const http_request& req,
                        const std::string& hash) {
  if (!valid_bundle_hash(hash))
    return give(rp, error_answer(400, "Bad bundle: expected a SHA-256 (64 lowercase hex digits)"));
  auto store = bundle_store_dir(self->state.cfg->job_store_dir_root);
  offload(
    self,
    [store, hash, owner = submitter_of(req)] {
      if (!atlas::has_content_bundle(store, hash, owner))
        return error_answer(404, "no bundle " + hash + " was uploaded"
                                   + (owner.empty() ? std::string{} : " by user '" + owner + "'"));
      json::writer w;
      w.begin_object().kv("bundle", hash).end_object();
      return json_answer(200, w.take());
    },
    [rp](http_response&& r) mutable { rp.deliver(std::move(r)); });
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
    // ?folder=atlas_tensorboard: only that folder (the page's TensorBoard download).
    auto folder = parse_query(req.query)["folder"];
    offload(
      self,
      [paths, id, temp, folder] {
        std::string bytes;
        auto st = pack_artifacts(paths, id, temp, bytes, folder);
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

caf::result<bundle_chunk> read_bundle_chunk(gateway_ptr self, const std::string& id,
                                            uint64_t offset) {
  if (!valid_job_id(id))
    return make_error(ec::not_found, "job '" + id + "' not found");
  auto ticket = self->state.next_ticket++;
  auto rp = self->make_response_promise<bundle_chunk>();
  self->state.fetches.emplace(ticket, rp);
  auto bundle = job_paths::of(*self->state.cfg, id).bundle;
  http_gateway_actor me = self;
  self->state.loop->post_work([me, ticket, bundle, offset] {
    bundle_chunk chunk;
    chunk.offset = offset;
    std::error_code ec;
    chunk.total = std::filesystem::file_size(bundle, ec);
    if (ec) {
      caf::anon_send(me, done_atom::value, ticket, chunk, std::string{"no bundle stored for this job"});
      return;
    }
    chunk.bytes = read_file_range(bundle, offset, bundle_chunk_bytes);
    caf::anon_send(me, done_atom::value, ticket, std::move(chunk), std::string{});
  });
  return rp;
}

} // namespace atlas::gateway
