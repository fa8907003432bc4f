#include "library/job_codec.hpp"

#include <algorithm>
#include <chrono>

#include "adapters/byte_size.hpp"
#include "library/bundle_store.hpp"

namespace atlas {

namespace {

void time_field(json::writer& w, std::string_view key, double t) {
  w.key(key);
  if (t > 0)
    w.value(t);
  else
    w.null();
}

double number_or_zero(const json::value& v, std::string_view key) {
  auto x = v.find(key);
  return x != nullptr && x->is_number() ? x->number : 0.0;
}

std::string object_text(const json::value* v) {
  return v != nullptr && v->is_object() ? v->dump() : std::string{"{}"};
}

} // namespace

namespace {

/// {"project_name": p, "username": u}: what the original's clients send as
/// metadata, rebuilt from the record when a stored one leaves it out.
std::string plain_metadata(const job_record& rec) {
  json::writer w;
  w.begin_object().kv("project_name", rec.project_name).kv("username", rec.username).end_object();
  return w.take();
}

/// The fields of a record; `stored`: as Redis keeps it, without what
/// job_from_json rebuilds (the status, a default, the plain metadata, a
/// history entry's slot when it is the job's), so that a finished record
/// stays small.
void write_fields(json::writer& w, const job_record& rec, bool stored) {
  auto put = [&](std::string_view key, auto value, auto fallback) {
    if (!stored || value != fallback)
      w.kv(key, value);
  };
  w.kv("job_id", rec.job_id);
  if (!stored)
    w.kv("status", api_status(rec.state));
  w.kv("state", to_string(rec.state));
  w.key("spec").raw(rec.spec.empty() ? "{}" : rec.spec);
  if (!stored || rec.metadata != plain_metadata(rec))
    w.key("metadata").raw(rec.metadata.empty() ? "{}" : rec.metadata);
  w.kv("project_name", rec.project_name);
  w.kv("username", rec.username);
  if (!stored || rec.num_gpus != 0)
    w.key("gpu_spec").begin_object().kv("num_gpus", rec.num_gpus).end_object();
  put("priority", rec.priority, 0);
  time_field(w, "queued_time", rec.queued_time);
  if (!stored || rec.start_time > 0)
    time_field(w, "start_time", rec.start_time);
  if (!stored || rec.end_time > 0)
    time_field(w, "end_time", rec.end_time);
  if (rec.has_return_code)
    w.kv("return_code", rec.return_code);
  else if (!stored)
    w.key("return_code").null();
  put("reason", std::string_view(rec.reason), std::string_view());
  w.kv("node", rec.node);
  w.kv("host_address", rec.host_address);
  w.kv("slot", rec.slot);
  put("retries", rec.retries, 0);
  put("max_retries", rec.max_retries, -1);
  put("pin", rec.pin, 0);
  w.kv("seq", rec.seq);
  w.key("history").begin_array();
  for (auto& t : rec.history) {
    w.begin_object().kv("state", to_string(t.state)).kv("time", t.time);
    if (!stored || t.slot != rec.slot)
      w.kv("slot", t.slot);
    w.end_object();
  }
  w.end_array();
  if (!stored || !rec.gpus.empty()) {
    w.key("gpus").begin_array();
    for (auto& g : rec.gpus)
      w.value(g);
    w.end_array();
  }
  put("gpu_model", std::string_view(rec.gpu_model), std::string_view());
  w.kv("cpu_seconds", rec.cpu_seconds);
  w.kv("peak_memory_bytes", rec.peak_memory_bytes);
  put("published", rec.published, uint64_t{0});
  if (rec.time_limit_s > 0)
    w.kv("time_limit", rec.time_limit_s);
  else if (!stored)
    w.key("time_limit").null();
  put("cpus", rec.cpus, 0.0);
  put("memory_bytes", rec.memory_bytes, uint64_t{0});
  if (!stored || !rec.after.empty()) {
    w.key("after").begin_array();
    for (auto& d : rec.after)
      w.value(d.job_id + ":" + d.when);
    w.end_array();
  }
  if (!stored || !rec.groups.empty()) {
    w.key("groups").begin_array();
    for (auto& g : rec.groups)
      w.value(g);
    w.end_array();
  }
  put("preemptions", rec.preemptions, 0);
  put("preempted_by", rec.preempted_by, 0);
  // Written only when set: most jobs have none, and finished records stay small.
  if (!rec.params.empty())
    w.key("params").raw(rec.params);
  if (!rec.sweep_id.empty())
    w.kv("sweep_id", rec.sweep_id);
  if (!rec.schedule_id.empty())
    w.kv("schedule_id", rec.schedule_id);
  if (rec.sweep_limit > 0)
    w.kv("sweep_limit", rec.sweep_limit);
  if (rec.local_run)
    w.kv("local_run", true);
}

std::string record_json(const job_record& rec, bool stored) {
  json::writer w;
  w.begin_object();
  write_fields(w, rec, stored);
  w.end_object();
  return w.take();
}

} // namespace

void write_job_fields(json::writer& w, const job_record& rec) {
  write_fields(w, rec, false);
}

std::string to_json(const job_record& rec) {
  return record_json(rec, false);
}

std::string to_stored_json(const job_record& rec) {
  return record_json(rec, true);
}

result<job_record> job_from_json(std::string_view text) {
  std::string error;
  auto v = json::parse(text, error);
  if (!v)
    return status::fail(error);
  if (!v->is_object())
    return status::fail("job record is not a JSON object");
  job_record rec;
  rec.job_id = v->get_string("job_id").value_or("");
  auto state = parse_job_state(v->get_string("state").value_or(""));
  if (rec.job_id.empty() || !state)
    return status::fail("job record lacks job_id or state");
  rec.state = *state;
  rec.spec = object_text(v->find("spec"));
  rec.project_name = v->get_string("project_name").value_or("");
  rec.username = v->get_string("username").value_or("");
  auto meta = v->find("metadata");
  rec.metadata = meta != nullptr ? object_text(meta) : plain_metadata(rec);
  if (auto g = v->find("gpu_spec"))
    rec.num_gpus = g->get_int("num_gpus").value_or(0);
  rec.priority = v->get_int("priority").value_or(0);
  rec.queued_time = number_or_zero(*v, "queued_time");
  rec.start_time = number_or_zero(*v, "start_time");
  rec.end_time = number_or_zero(*v, "end_time");
  if (auto rc = v->get_int("return_code")) {
    rec.return_code = *rc;
    rec.has_return_code = true;
  }
  rec.reason = v->get_string("reason").value_or("");
  rec.node = v->get_string("node").value_or("");
  rec.host_address = v->get_string("host_address").value_or("");
  rec.slot = v->get_string("slot").value_or("");
  rec.retries = v->get_int("retries").value_or(0);
  rec.max_retries = v->get_int("max_retries").value_or(-1);
  rec.pin = v->get_int("pin").value_or(0);
  rec.seq = static_cast<uint64_t>(std::max<int64_t>(0, v->get_int("seq").value_or(0))); // no wrap-around
  if (auto h = v->find("history"); h != nullptr && h->is_array()) {
    for (auto& t : h->array) {
      auto s = parse_job_state(t.get_string("state").value_or(""));
      if (!s)
        continue;
      job_transition step{*s, number_or_zero(t, "time"), t.get_string("slot").value_or(rec.slot)};
      rec.history.push_back(std::move(step));
    }
  }
  if (auto g = v->find("gpus"); g != nullptr && g->is_array())
    for (auto& id : g->array)
      if (id.is_string())
        rec.gpus.push_back(id.string);
  rec.gpu_model = v->get_string("gpu_model").value_or("");
  rec.cpu_seconds = std::max(0.0, number_or_zero(*v, "cpu_seconds"));
  rec.peak_memory_bytes = static_cast<uint64_t>(std::max<int64_t>(0, v->get_int("peak_memory_bytes").value_or(0)));
  rec.published = static_cast<uint64_t>(std::max<int64_t>(0, v->get_int("published").value_or(0)));
  rec.time_limit_s = std::max(0.0, number_or_zero(*v, "time_limit"));
  rec.cpus = std::max(0.0, number_or_zero(*v, "cpus"));
  rec.memory_bytes = static_cast<uint64_t>(std::max<int64_t>(0, v->get_int("memory_bytes").value_or(0)));
  if (auto a = v->find("after"); a != nullptr && a->is_array())
    for (auto& d : a->array)
      if (d.is_string())
        if (auto dep = parse_dependency(d.string))
          rec.after.push_back(std::move(*dep));
  if (auto g = v->find("groups"); g != nullptr && g->is_array())
    for (auto& name : g->array)
      if (name.is_string())
        rec.groups.push_back(name.string);
  rec.preemptions = std::max<int64_t>(0, v->get_int("preemptions").value_or(0));
  rec.preempted_by = v->get_int("preempted_by").value_or(0);
  if (auto p = v->find("params"); p != nullptr && p->is_object())
    rec.params = p->dump();
  rec.sweep_id = v->get_string("sweep_id").value_or("");
  rec.schedule_id = v->get_string("schedule_id").value_or("");
  rec.sweep_limit = std::max<int64_t>(0, v->get_int("sweep_limit").value_or(0));
  auto local = v->find("local_run");
  rec.local_run = local != nullptr && local->type == json::value::kind::boolean && local->boolean;
  return rec;
}

result<job_record> job_from_submission(std::string_view body) {
  std::string error;
  auto v = json::parse(body, error);
  if (!v)
    return status::fail(error);
  if (!v->is_object())
    return status::fail("Job must contain json payload");
  auto spec = v->find("spec");
  if (spec == nullptr || !spec->is_object())
    return status::fail("Bad job spec: 'spec' must be a JSON object");
  job_record rec;
  auto id = v->find("job_id");
  if (id == nullptr || !id->is_string() || !valid_job_id(id->string))
    return status::fail("Bad job id: 'job_id' must be a UUID or 1-64 of [A-Za-z0-9_-]");
  rec.job_id = id->string;
  rec.spec = spec->dump();
  auto meta = v->find("metadata");
  if (meta != nullptr && !meta->is_null() && !meta->is_object())
    return status::fail("Bad metadata: expected a JSON object");
  rec.metadata = object_text(meta);
  if (meta != nullptr) {
    rec.project_name = meta->get_string("project_name").value_or("");
    rec.username = meta->get_string("username").value_or("");
  }
  if (auto g = v->find("gpu_spec"); g != nullptr && g->is_object()) {
    auto n = g->find("num_gpus");
    if (n != nullptr && !n->is_null()) {
      auto num = g->get_int("num_gpus");
      if (!num || *num < 0)
        return status::fail("Bad gpu_spec: num_gpus must be a whole number >= 0");
      rec.num_gpus = *num;
    }
  }
  if (auto p = v->find("priority"); p != nullptr && !p->is_null()) {
    auto prio = v->get_int("priority");
    if (!prio)
      return status::fail("Bad priority: expected a whole number");
    rec.priority = *prio;
  }
  if (auto r = v->find("max_retries"); r != nullptr && !r->is_null()) {
    auto n = v->get_int("max_retries");
    if (!n || *n < 0)
      return status::fail("Bad max_retries: expected a whole number >= 0");
    rec.max_retries = *n;
  }
  if (auto t = v->find("time_limit"); t != nullptr && !t->is_null()) {
    if (!t->is_number() || !(t->number > 0) || t->number > 1e9)
      return status::fail("Bad time_limit: expected a number of seconds > 0");
    rec.time_limit_s = t->number;
  }
  if (auto a = v->find("after"); a != nullptr && !a->is_null()) {
    if (!a->is_array() || a->array.size() > max_dependencies)
      return status::fail("Bad after: expected a list of up to 64 \"<job_id>[:ok|:any|:failed]\"");
    for (auto& d : a->array) {
      auto dep = d.is_string() ? parse_dependency(d.string) : std::nullopt;
      if (!dep)
        return status::fail("Bad after: expected \"<job_id>[:ok|:any|:failed]\", got "
                            + d.dump());
      rec.after.push_back(std::move(*dep));
    }
  }
  if (auto c = spec->find("cpus"); c != nullptr && !c->is_null()) {
    if (!c->is_number() || !(c->number > 0) || c->number > 1e6)
      return status::fail("Bad spec.cpus: expected a number of CPUs > 0");
    rec.cpus = c->number;
  }
  if (auto m = spec->find("mem_limit"); m != nullptr && !m->is_null()) {
    // A number reads as the Docker runner reads it (adapters/docker_spec):
    // small is GB, as the original client's `--ram 2` sends `mem_limit: 2`.
    std::string err;
    auto bytes = m->is_string() ? parse_memory(m->string, err)
                 : m->is_number() && m->number >= 0 ? parse_memory(m->dump(), err)
                 : std::nullopt;
    if (!bytes)
      return status::fail(err.empty() ? "Bad spec.mem_limit: expected a size such as 4g or 512m" : err);
    rec.memory_bytes = *bytes;
  }
  if (auto p = v->find("params"); p != nullptr && !p->is_null()) {
    if (!p->is_object())
      return status::fail("Bad params: expected a JSON object (what load_parameters() returns)");
    rec.params = p->dump();
    if (rec.params.size() > max_params_bytes)
      return status::fail("Bad params: " + std::to_string(rec.params.size())
                          + " bytes of JSON, at most " + std::to_string(max_params_bytes));
  }
  if (auto s = v->find("sweep_id"); s != nullptr && !s->is_null()) {
    if (!s->is_string() || !valid_job_id(s->string))
      return status::fail("Bad sweep_id: expected 1-64 of [A-Za-z0-9_-]");
    rec.sweep_id = s->string;
  }
  if (auto l = v->find("sweep_limit"); l != nullptr && !l->is_null()) {
    auto n = v->get_int("sweep_limit");
    if (!n || *n < 1 || *n > 100000)
      return status::fail("Bad sweep_limit: expected a whole number of trials >= 1");
    if (rec.sweep_id.empty())
      return status::fail("Bad sweep_limit: it caps a sweep; give sweep_id too");
    rec.sweep_limit = *n;
  }
  rec.state = job_state::queued;
  return rec;
}

result<std::string> submission_bundle(std::string_view body) {
  std::string error;
  auto v = json::parse(body, error);
  auto b = v && v->is_object() ? v->find("bundle") : nullptr;
  if (b == nullptr || b->is_null())
    return std::string{};
  if (!b->is_string() || !valid_bundle_hash(b->string))
    return status::fail("Bad bundle: expected the SHA-256 (64 lowercase hex digits) that "
                        "POST /api/v1/bundles answered");
  return b->string;
}

std::optional<job_dependency> parse_dependency(std::string_view text) {
  job_dependency dep;
  auto colon = text.rfind(':');
  dep.job_id = std::string(text.substr(0, colon));
  if (colon != std::string_view::npos)
    dep.when = std::string(text.substr(colon + 1));
  if (!valid_job_id(dep.job_id) || (dep.when != "ok" && dep.when != "any" && dep.when != "failed"))
    return std::nullopt;
  return dep;
}

bool valid_job_id(std::string_view id) {
  if (id.empty() || id.size() > 64)
    return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '-' || c == '_';
    if (!ok)
      return false;
  }
  return true;
}

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

} // namespace atlas
