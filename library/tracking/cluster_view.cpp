#include "library/tracking/views.hpp"

#include <algorithm>

namespace atlas::dashboard {

std::string cluster_json(const std::vector<node_view>& nodes,
                         const std::vector<queue_entry>& queue, double now) {
  json::writer w;
  int64_t slots = 0, busy = 0, gpus = 0;
  w.begin_object().key("nodes").begin_array();
  for (auto& n : nodes) {
    int64_t node_busy = 0, node_gpus = 0;
    for (auto& s : n.slots) {
      node_busy += s.current_job.empty() ? 0 : 1;
      node_gpus += static_cast<int64_t>(s.gpus.size());
    }
    slots += static_cast<int64_t>(n.slots.size());
    busy += node_busy;
    gpus += node_gpus;
    w.begin_object().kv("node_id", n.info.node_id).kv("host_address", n.info.host_address)
      .kv("role", n.role).kv("version", n.info.version).kv("drained", n.drained);
    w.key("started");
    time_value(w, n.info.started);
    w.key("heartbeat_age_s");
    if (n.last_seen > 0)
      w.value(std::max(0.0, now - n.last_seen));
    else
      w.null();
    w.kv("busy", node_busy).kv("free", static_cast<int64_t>(n.slots.size()) - node_busy)
      .kv("gpus", node_gpus).key("slots").begin_array();
    for (auto& s : n.slots) {
      w.begin_object().kv("key", s.key).kv("index", s.index).kv("busy", !s.current_job.empty())
        .kv("current_job", s.current_job).kv("jobs_run", s.jobs_run)
        .kv("last_error", s.last_error).key("gpus").begin_array();
      for (auto& g : s.gpus)
        w.value(g);
      w.end_array().end_object();
    }
    w.end_array().end_object();
  }
  w.end_array().key("totals").begin_object().kv("nodes", static_cast<int64_t>(nodes.size()))
    .kv("slots", slots).kv("busy", busy).kv("free", slots - busy).kv("gpus", gpus)
    .kv("queue_depth", static_cast<int64_t>(queue.size())).end_object();
  w.key("queue").begin_array();
  for (auto& e : queue) {
    w.begin_object().kv("position", e.position).kv("job_id", e.job.job_id)
      .kv("project", e.job.project_name).kv("user", e.job.username)
      .kv("num_gpus", e.job.num_gpus).kv("priority", e.job.priority).kv("reason", e.reason)
      .key("creation_time");
    time_value(w, e.job.queued_time);
    w.end_object();
  }
  w.end_array().end_object();
  return w.take();
}

} // namespace atlas::dashboard
