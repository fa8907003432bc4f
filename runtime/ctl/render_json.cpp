// atlas-ctl's JSON output: one object per command, with stable keys, times
// in epoch seconds and ages in seconds (millisecond precision, null for
// never).

#include "runtime/ctl/render.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string_view>

#include "adapters/json.hpp"
#include "runtime/ctl/render_detail.hpp"
#include "library/job_codec.hpp"

namespace atlas::ctl {

using namespace detail;

namespace {

/// `key`: a number with millisecond precision (json::writer would write 17
/// digits), or null when absent (a time of 0 means "never").
void kv_number(json::writer& w, std::string_view key, double x, bool present = true) {
  w.key(key);
  if (!present || !std::isfinite(x)) {
    w.null();
    return;
  }
  auto text = printf_string("%.3f", x);
  while (text.back() == '0')
    text.pop_back();
  if (text.back() == '.')
    text.pop_back();
  w.raw(text == "-0" ? "0" : text);
}

void kv_time(json::writer& w, std::string_view key, double t) {
  kv_number(w, key, t, t > 0);
}

void kv_age(json::writer& w, std::string_view key, double now, double t) {
  kv_number(w, key, std::max(0.0, now - t), t > 0);
}

/// {"<key>": what `body` writes}
template <class F>
std::string wrapped(std::string_view key, F&& body) {
  json::writer w;
  w.begin_object().key(key);
  body(w);
  w.end_object();
  return w.take();
}

void string_array(json::writer& w, const std::vector<std::string>& xs) {
  w.begin_array();
  for (auto& x : xs)
    w.value(x);
  w.end_array();
}

void write_slot(json::writer& w, const slot_info& s, bool drained) {
  w.begin_object()
    .kv("key", s.key)
    .kv("node_id", s.node_id)
    .kv("host_address", s.host_address)
    .kv("index", static_cast<int64_t>(s.index))
    .kv("state", slot_state(s, drained))
    .kv("current_job", s.current_job)
    .key("gpus");
  string_array(w, s.gpus);
  w.kv("jobs_run", s.jobs_run).kv("last_error", s.last_error).kv("drained", drained);
  w.end_object();
}

void write_slots(json::writer& w, const std::vector<node_view>& nodes, const std::string& node) {
  w.begin_array();
  for (auto& n : nodes)
    if (node_matches(node, n.info.node_id))
      for (auto& s : n.slots)
        write_slot(w, s, n.drained);
  w.end_array();
}

void write_nodes(json::writer& w, const std::vector<node_view>& nodes, double now) {
  w.begin_array();
  for (auto& n : nodes) {
    auto t = totals(n);
    w.begin_object()
      .kv("node_id", n.info.node_id)
      .kv("role", n.role)
      .kv("host_address", n.info.host_address)
      .kv("slots", static_cast<uint64_t>(n.slots.size()))
      .kv("busy", static_cast<uint64_t>(t.busy))
      .kv("free", static_cast<uint64_t>(n.slots.size() - t.busy))
      .kv("declared_slots", static_cast<int64_t>(n.info.num_slots))
      .key("gpus");
    string_array(w, t.gpus);
    w.key("running_jobs");
    string_array(w, t.jobs);
    kv_age(w, "heartbeat_age_s", now, n.last_seen);
    kv_time(w, "last_seen", n.last_seen);
    w.kv("version", n.info.version);
    kv_age(w, "uptime_s", now, n.info.started);
    kv_time(w, "started", n.info.started);
    w.kv("drained", n.drained).end_object();
  }
  w.end_array();
}

void write_queue(json::writer& w, const std::vector<queue_entry>& queue) {
  w.begin_array();
  for (auto& q : queue) {
    w.begin_object()
      .kv("position", q.position)
      .kv("job_id", q.job.job_id)
      .kv("user", q.job.username)
      .kv("project_name", q.job.project_name)
      .kv("priority", q.job.priority)
      .kv("num_gpus", q.job.num_gpus);
    kv_time(w, "queued_time", q.job.queued_time);
    w.kv("retries", q.job.retries).kv("reason", q.reason).end_object();
  }
  w.end_array();
}

} // namespace

std::string nodes_json(const std::vector<node_view>& nodes, const render_options& o,
                       const masters_view& masters) {
  json::writer w;
  w.begin_object().key("nodes");
  write_nodes(w, nodes, o.now);
  if (masters.known) {
    w.key("masters").begin_array();
    if (!masters.active.node_id.empty())
      w.begin_object().kv("node", masters.active.node_id)
        .kv("address", masters.active.host_address).kv("role", "active")
        .kv("epoch", masters.active.epoch).end_object();
    for (auto& s : masters.standbys)
      w.begin_object().kv("node", s.node_id).kv("address", s.host_address)
        .kv("role", "standby").kv("epoch", masters.active.epoch).end_object();
    w.end_array();
  }
  w.end_object();
  return w.take();
}

std::string slots_json(const std::vector<node_view>& nodes, const std::string& node) {
  return wrapped("slots", [&](json::writer& w) { write_slots(w, nodes, node); });
}

std::string jobs_json(const std::vector<job_record>& jobs) {
  return wrapped("jobs", [&](json::writer& w) {
    w.begin_array();
    for (auto& j : jobs) { // the record as the codec writes it, history included
      write_job_fields(w.begin_object(), j);
      w.end_object();
    }
    w.end_array();
  });
}

std::string job_json(const job_record& j) {
  json::writer w;
  write_job_fields(w.begin_object(), j);
  w.end_object();
  return w.take();
}

std::string queue_json(const std::vector<queue_entry>& queue) {
  return wrapped("queue", [&](json::writer& w) { write_queue(w, queue); });
}

std::string actors_json(const std::vector<actor_stats>& actors, const std::string& node,
                        const render_options& o) {
  return wrapped("actors", [&](json::writer& w) {
    w.begin_array();
    for (auto& a : sorted_actors(actors, node)) {
      w.begin_object().kv("name", a.name).kv("id", a.id).kv("node", a.node);
      w.kv("mailbox", a.mailbox).kv("handled", a.handled);
      kv_time(w, "last_message", a.last_message);
      kv_age(w, "last_message_age_s", o.now, a.last_message);
      w.kv("summary", a.summary).end_object();
    }
    w.end_array();
  });
}

std::string watch_json(const std::vector<node_view>& nodes,
                       const std::vector<queue_entry>& queue, const render_options& o) {
  json::writer w;
  w.begin_object();
  kv_number(w, "time", o.now);
  w.key("nodes");
  write_nodes(w, nodes, o.now);
  w.key("slots");
  write_slots(w, nodes, "");
  w.key("queue");
  write_queue(w, queue);
  w.end_object();
  return w.take();
}

} // namespace atlas::ctl
