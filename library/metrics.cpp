#include "library/metrics.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <sys/resource.h>
#include <unistd.h>

#include "adapters/wire_counters.hpp"

namespace atlas::metrics {

namespace {

using prometheus::Histogram;

const Histogram::BucketBoundaries latency_buckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,    0.25,  0.5,    1,     2.5,  5,    10};
const Histogram::BucketBoundaries wait_buckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                               0.5,   1,      2.5,   5,    10,    30,   60,  300,
                                               900,   3600};

/// The process's registry and its families, made on first use.
struct instruments {
  prometheus::Registry registry;
  prometheus::Family<prometheus::Counter>& http_requests =
    prometheus::BuildCounter().Name("atlas_http_requests_total")
      .Help("HTTP requests answered, by listener, route class and status code").Register(registry);
  prometheus::Family<Histogram>& http_latency =
    prometheus::BuildHistogram().Name("atlas_http_request_duration_seconds")
      .Help("Time from a request's arrival to its answer (first chunk of a stream)")
      .Register(registry);
  prometheus::Counter& submissions =
    prometheus::BuildCounter().Name("atlas_submissions_total")
      .Help("Jobs accepted by this master").Register(registry).Add({});
  prometheus::Counter& dispatches =
    prometheus::BuildCounter().Name("atlas_dispatches_total")
      .Help("Jobs handed to a slot by this master").Register(registry).Add({});
  prometheus::Family<prometheus::Counter>& outcomes =
    prometheus::BuildCounter().Name("atlas_job_outcomes_total")
      .Help("Jobs that ended, by final state and reason class").Register(registry);
  Histogram& wait =
    prometheus::BuildHistogram().Name("atlas_job_wait_seconds")
      .Help("Submission to start of a job").Register(registry).Add({}, wait_buckets);
  Histogram& dispatch_latency =
    prometheus::BuildHistogram().Name("atlas_dispatch_latency_seconds")
      .Help("The master's dispatch decision to the job running on its slot")
      .Register(registry).Add({}, latency_buckets);
  prometheus::Family<prometheus::Counter>& notifications =
    prometheus::BuildCounter().Name("atlas_notifications_total")
      .Help("Job notifications by sink and outcome: sent, failed (tries spent), dropped (queue full)")
      .Register(registry);
  prometheus::Counter& slot_starts =
    prometheus::BuildCounter().Name("atlas_slot_jobs_started_total")
      .Help("Jobs the slots of this node started").Register(registry).Add({});

  std::mutex actors_mtx;
  std::deque<std::pair<std::string, actor_counters>> actors; // stable addresses

  std::mutex identity_mtx;
  std::string node, role, version;
};

instruments& the() {
  static instruments i;
  return i;
}

const double process_start = std::chrono::duration<double>(
  std::chrono::system_clock::now().time_since_epoch()).count();

std::string label_value(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"')
      out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

/// "# HELP" and "# TYPE" lines of one family.
void family(std::ostringstream& out, const char* name, const char* type, const char* help) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

void process_text(std::ostringstream& out) {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto secs = [](timeval t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  family(out, "process_cpu_seconds_total", "counter", "User and system CPU time of this process");
  out << "process_cpu_seconds_total " << secs(ru.ru_utime) + secs(ru.ru_stime) << '\n';
  long pages = 0, resident = 0;
  if (std::ifstream statm{"/proc/self/statm"}; statm >> pages >> resident) {
    family(out, "process_resident_memory_bytes", "gauge", "Resident memory of this process");
    out << "process_resident_memory_bytes " << resident * ::sysconf(_SC_PAGESIZE) << '\n';
  }
  std::error_code ec;
  size_t fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++fds;
  family(out, "process_open_fds", "gauge", "Open file descriptors of this process");
  out << "process_open_fds " << fds << '\n';
  family(out, "process_start_time_seconds", "gauge", "Start of this process, epoch seconds");
  out << std::fixed << "process_start_time_seconds " << process_start << '\n';
  out << std::defaultfloat;
}

void wire_text(std::ostringstream& out) {
  using namespace wire_counters;
  family(out, "atlas_redis_round_trips_total", "counter", "Round trips to Redis (a command or a pipeline)");
  out << "atlas_redis_round_trips_total " << redis_round_trips.load() << '\n';
  family(out, "atlas_redis_errors_total", "counter", "Round trips to Redis that failed");
  out << "atlas_redis_errors_total " << redis_errors.load() << '\n';
  family(out, "atlas_cluster_frames_total", "counter", "BASP messages relayed over the cluster port");
  out << "atlas_cluster_frames_total{direction=\"in\"} " << cluster_frames_in.load() << '\n'
      << "atlas_cluster_frames_total{direction=\"out\"} " << cluster_frames_out.load() << '\n';
  family(out, "atlas_cluster_bytes_total", "counter", "Bytes of BASP messages relayed over the cluster port");
  out << "atlas_cluster_bytes_total{direction=\"in\"} " << cluster_bytes_in.load() << '\n'
      << "atlas_cluster_bytes_total{direction=\"out\"} " << cluster_bytes_out.load() << '\n';
  family(out, "atlas_http_refused_total", "counter",
         "HTTP requests the server refused before routing (malformed, too large, timed out)");
  out << "atlas_http_refused_total{class=\"4xx\"} " << http_refused_4xx.load() << '\n'
      << "atlas_http_refused_total{class=\"5xx\"} " << http_refused_5xx.load() << '\n';
}

void actors_text(std::ostringstream& out) {
  auto& i = the();
  std::lock_guard<std::mutex> guard{i.actors_mtx};
  family(out, "atlas_actor_messages_handled_total", "counter", "Messages handled by the actors of a kind");
  for (auto& [name, c] : i.actors)
    out << "atlas_actor_messages_handled_total{actor=\"" << name << "\"} " << c.handled.load() << '\n';
  family(out, "atlas_actor_mailbox_messages", "gauge",
         "Messages waiting in the mailbox of an actor of a kind, as last seen");
  for (auto& [name, c] : i.actors)
    out << "atlas_actor_mailbox_messages{actor=\"" << name << "\"} " << c.mailbox.load() << '\n';
  family(out, "atlas_actors", "gauge", "Live actors of a kind");
  for (auto& [name, c] : i.actors)
    out << "atlas_actors{actor=\"" << name << "\"} " << std::max<int64_t>(0, c.live.load()) << '\n';
}

} // namespace

void set_identity(const std::string& node, const std::string& role, const std::string& version) {
  auto& i = the();
  std::lock_guard<std::mutex> guard{i.identity_mtx};
  i.node = node;
  i.role = role;
  i.version = version;
}

std::string_view route_class(std::string_view path, std::string_view listener) {
  auto trimmed = path.substr(path.find_first_not_of('/') == std::string_view::npos
                               ? path.size() : path.find_first_not_of('/'));
  auto first = trimmed.substr(0, trimmed.find('/'));
  if (first.empty())
    return listener == "dashboard" ? "page" : "root";
  for (std::string_view known : {"healthz", "metrics", "queued_jobs", "running_jobs",
                                 "completed_jobs", "failed_jobs", "jobs", "job_bundle", "workers"})
    if (first == known)
      return known;
  if (first == "api") {
    auto rest = trimmed.substr(first.size());
    if (rest.rfind("/v2beta/auth", 0) == 0)
      return "auth";
    if (rest.rfind("/v2beta/", 0) == 0)
      return "dashboard_api";
    static const std::map<std::string_view, std::string_view> v1{
      {"jobs", "api_v1_jobs"},   {"events", "api_v1_events"}, {"usage", "api_v1_usage"},
      {"metrics", "metrics"},    {"healthz", "healthz"},      {"queued_jobs", "api_v1_queued_jobs"},
      {"nodes", "api_v1_nodes"}, {"submit", "api_v1_submit"}};
    if (rest.rfind("/v1/", 0) == 0)
      if (auto k = v1.find(rest.substr(4, rest.find('/', 4) - 4)); k != v1.end())
        return k->second;
    return "other";
  }
  return listener == "dashboard" ? "page" : "other";
}

void http_answered(std::string_view listener, std::string_view path, int status, double seconds) {
  auto& i = the();
  std::string l{listener}, route{route_class(path, listener)};
  i.http_requests.Add({{"listener", l}, {"route", route}, {"code", std::to_string(status)}})
    .Increment();
  i.http_latency.Add({{"listener", l}, {"route", route}}, latency_buckets).Observe(seconds);
}

void notification(std::string_view sink, std::string_view outcome) {
  the().notifications.Add({{"sink", std::string{sink}}, {"outcome", std::string{outcome}}})
    .Increment();
}

void submitted() { the().submissions.Increment(); }
void dispatched() { the().dispatches.Increment(); }
void slot_started() { the().slot_starts.Increment(); }

void started(double wait_seconds, double since_dispatch_seconds) {
  the().wait.Observe(std::max(0.0, wait_seconds));
  the().dispatch_latency.Observe(std::max(0.0, since_dispatch_seconds));
}

std::string_view reason_class(job_state state, std::string_view reason) {
  auto has = [&](std::string_view s) { return reason.find(s) != std::string_view::npos; };
  if (state == job_state::completed)
    return "ok";
  if (has("out of memory"))
    return "out_of_memory";
  if (has("time limit"))
    return "time_limit";
  if (reason.rfind("lost", 0) == 0)
    return "lost";
  if (state == job_state::cancelled || has("stopped"))
    return "stopped";
  if (has("cannot start") || has("could not start") || has("bundle"))
    return "start_error";
  if (state == job_state::failed && (reason.empty() || has("exit")))
    return "exit_code";
  return "other";
}

void ended(job_state state, std::string_view reason) {
  the().outcomes.Add({{"state", std::string(to_string(state))},
                      {"reason", std::string(reason_class(state, reason))}}).Increment();
}

actor_counters& actor(const char* name) {
  auto& i = the();
  std::lock_guard<std::mutex> guard{i.actors_mtx};
  for (auto& [n, c] : i.actors)
    if (n == name)
      return c;
  i.actors.emplace_back(std::piecewise_construct, std::forward_as_tuple(name),
                        std::forward_as_tuple());
  return i.actors.back().second;
}

std::string cluster_text(const cluster_snapshot& s) {
  std::ostringstream out;
  family(out, "atlas_master_active", "gauge", "1 on the active master, 0 on a standby");
  out << "atlas_master_active " << (s.active ? 1 : 0) << '\n';
  if (!s.active)
    return out.str();
  family(out, "atlas_jobs", "gauge", "Job records in each state (Redis)");
  for (size_t k = 0; k < s.jobs_by_state.size(); ++k)
    out << "atlas_jobs{state=\"" << to_string(static_cast<job_state>(k)) << "\"} "
        << s.jobs_by_state[k] << '\n';
  // Priorities beyond the first max_priority_labels (highest first) add up
  // in "other", with the oldest age among them.
  std::vector<cluster_snapshot::queue_row> rows = s.queue;
  std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.priority > b.priority; });
  std::vector<std::pair<std::string, cluster_snapshot::queue_row>> named;
  for (size_t k = 0; k < rows.size(); ++k) {
    if (k < max_priority_labels) {
      named.emplace_back(std::to_string(rows[k].priority), rows[k]);
      continue;
    }
    if (named.size() == max_priority_labels)
      named.emplace_back("other", cluster_snapshot::queue_row{});
    named.back().second.depth += rows[k].depth;
    named.back().second.oldest_age = std::max(named.back().second.oldest_age, rows[k].oldest_age);
  }
  family(out, "atlas_queue_depth", "gauge", "Queued jobs per priority");
  for (auto& [p, r] : named)
    out << "atlas_queue_depth{priority=\"" << p << "\"} " << r.depth << '\n';
  family(out, "atlas_queue_oldest_age_seconds", "gauge", "Age of the oldest queued job per priority");
  for (auto& [p, r] : named)
    out << "atlas_queue_oldest_age_seconds{priority=\"" << p << "\"} " << r.oldest_age << '\n';
  family(out, "atlas_slots", "gauge", "Slots per node and state");
  for (auto& n : s.nodes) {
    auto node = label_value(n.node);
    out << "atlas_slots{node=\"" << node << "\",state=\"busy\"} " << n.busy << '\n'
        << "atlas_slots{node=\"" << node << "\",state=\"free\"} " << n.free << '\n'
        << "atlas_slots{node=\"" << node << "\",state=\"draining\"} " << n.draining << '\n';
  }
  family(out, "atlas_gpus", "gauge", "GPUs of the slots per node, busy or free");
  for (auto& n : s.nodes) {
    auto node = label_value(n.node);
    out << "atlas_gpus{node=\"" << node << "\",state=\"busy\"} " << n.gpus_busy << '\n'
        << "atlas_gpus{node=\"" << node << "\",state=\"free\"} " << n.gpus_free << '\n';
  }
  family(out, "atlas_node_heartbeat_age_seconds", "gauge", "Seconds since a node's last heartbeat");
  for (auto& n : s.nodes)
    out << "atlas_node_heartbeat_age_seconds{node=\"" << label_value(n.node) << "\"} "
        << n.heartbeat_age << '\n';
  return out.str();
}

std::string exposition() {
  auto& i = the();
  std::ostringstream out;
  {
    std::lock_guard<std::mutex> guard{i.identity_mtx};
    family(out, "atlas_build_info", "gauge", "This node: its id, role and version");
    out << "atlas_build_info{node=\"" << label_value(i.node) << "\",role=\"" << label_value(i.role)
        << "\",version=\"" << label_value(i.version) << "\"} 1\n";
  }
  prometheus::TextSerializer{}.Serialize(out, i.registry.Collect());
  wire_text(out);
  actors_text(out);
  process_text(out);
  return out.str();
}

} // namespace atlas::metrics
