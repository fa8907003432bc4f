#include "runtime/ctl/render.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <tuple>

#include "runtime/ctl/render_detail.hpp"
#include "library/job_codec.hpp"

namespace atlas::ctl {

// --- shared with the JSON output (render_detail.hpp)

namespace detail {

std::string printf_string(const char* fmt, double x) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, x);
  return buf;
}

bool node_matches(const std::string& filter, const std::string& node_id) {
  return filter.empty() || filter == node_id;
}

node_totals totals(const node_view& n) {
  node_totals t;
  for (auto& s : n.slots) {
    if (!s.current_job.empty()) {
      ++t.busy;
      t.jobs.push_back(s.current_job);
    }
    for (auto& g : s.gpus)
      if (std::find(t.gpus.begin(), t.gpus.end(), g) == t.gpus.end())
        t.gpus.push_back(g);
  }
  return t;
}

std::vector<actor_stats> sorted_actors(std::vector<actor_stats> xs, const std::string& node) {
  std::erase_if(xs, [&](const actor_stats& a) { return !node_matches(node, a.node); });
  std::stable_sort(xs.begin(), xs.end(), [](const actor_stats& a, const actor_stats& b) {
    return std::tie(a.node, a.name, a.id) < std::tie(b.node, b.name, b.id);
  });
  return xs;
}

} // namespace detail

using namespace detail;

namespace {

constexpr const char* green = "32";
constexpr const char* red = "31";
constexpr const char* yellow = "33";
constexpr const char* blue = "34";
constexpr const char* magenta = "35";
constexpr const char* dim = "2";

std::string join(const std::vector<std::string>& xs, const char* sep = ",") {
  std::string out;
  for (auto& x : xs)
    out += (out.empty() ? "" : sep) + x;
  return out;
}

std::string or_dash(const std::string& s) {
  return s.empty() ? "-" : s;
}

std::string run_time(const job_record& j, double now) {
  if (j.start_time <= 0)
    return "-";
  return format_span((j.end_time > 0 ? j.end_time : now) - j.start_time);
}

std::string return_code(const job_record& j) {
  return j.has_return_code ? std::to_string(j.return_code) : "-";
}

std::string retries(const job_record& j) {
  return std::to_string(j.retries) + "/"
         + (j.max_retries < 0 ? std::string{"default"} : std::to_string(j.max_retries));
}

} // namespace

// --- small pieces

std::string format_span(double s) {
  if (!std::isfinite(s) || s < 0)
    s = 0;
  if (s < 60)
    return printf_string("%.1fs", s);
  auto whole = static_cast<long long>(s);
  char buf[64];
  if (whole < 3600)
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", whole / 60, whole % 60);
  else if (whole < 86400)
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm%02llds", whole / 3600, whole % 3600 / 60,
                  whole % 60);
  else
    std::snprintf(buf, sizeof(buf), "%lldd%02lldh%02lldm", whole / 86400, whole % 86400 / 3600,
                  whole % 3600 / 60);
  return buf;
}

std::string format_age(double now, double t) {
  if (t <= 0)
    return "-";
  auto d = now - t;
  if (d < -0.05)
    return "in " + format_span(-d);
  d = std::max(d, 0.0);
  if (d >= 3600 && d < 86400) { // hours and minutes are enough
    auto whole = static_cast<long long>(d);
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm ago", whole / 3600, whole % 3600 / 60);
    return buf;
  }
  return format_span(d) + " ago";
}

std::string format_local_time(double t) {
  if (t <= 0)
    return "-";
  auto secs = static_cast<std::time_t>(t);
  std::tm tm{};
  localtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<cell>>& rows, bool color) {
  std::vector<size_t> width(header.size(), 0);
  for (size_t i = 0; i < header.size(); ++i)
    width[i] = header[i].size();
  for (auto& row : rows)
    for (size_t i = 0; i < row.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], row[i].text.size());
  std::string out;
  auto line = [&](const std::vector<cell>& row, bool bold) {
    std::string text;
    size_t pending = 0; // padding written only before a following cell
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) {
      text.append(pending, ' ');
      auto code = bold ? std::string{"1"} : row[i].color;
      if (color && !code.empty())
        text += "\x1b[" + code + "m" + row[i].text + "\x1b[0m";
      else
        text += row[i].text;
      pending = width[i] - row[i].text.size() + 2;
    }
    while (!text.empty() && text.back() == ' ')
      text.pop_back();
    out += text + "\n";
  };
  line(std::vector<cell>(header.begin(), header.end()), true);
  for (auto& row : rows)
    line(row, false);
  return out;
}

std::string state_color(const std::string& state) {
  static const std::vector<std::pair<std::string, std::string>> colors = {
    {"running", green}, {"busy", green},      {"completed", green}, {"ok", green},
    {"failed", red},    {"lost", red},        {"queued", yellow},   {"drained", yellow},
    {"pending", blue},  {"cancelled", magenta}, {"free", dim}};
  for (auto& [name, code] : colors)
    if (name == state)
      return code;
  return {};
}

std::string slot_state(const slot_info& s, bool node_drained) {
  if (!s.current_job.empty())
    return "busy";
  return node_drained ? "drained" : "free";
}

std::optional<std::string> resolve_node(const std::vector<node_view>& nodes,
                                        const std::string& name) {
  auto trim = [](std::string s) {
    while (!s.empty() && s.back() == '/')
      s.pop_back();
    return s;
  };
  for (auto& n : nodes)
    if (n.info.node_id == name)
      return n.info.node_id;
  for (auto& n : nodes)
    if (!name.empty() && trim(n.info.host_address) == trim(name))
      return n.info.node_id;
  return std::nullopt;
}

// --- nodes and slots

/// "masters: A active (epoch 3); standby: B, C"
std::string masters_line(const masters_view& m) {
  if (!m.known)
    return "";
  std::string out = "masters: "
                    + (m.active.node_id.empty() ? std::string{"none holds the lease"}
                                                : m.active.node_id + " active (epoch "
                                                    + std::to_string(m.active.epoch) + ")");
  out += "; standby: ";
  if (m.standbys.empty())
    out += "none";
  for (size_t i = 0; i < m.standbys.size(); ++i)
    out += (i ? ", " : "") + m.standbys[i].node_id;
  return out + "\n";
}

std::string nodes_text(const std::vector<node_view>& nodes, const render_options& o,
                       const masters_view& masters) {
  if (nodes.empty())
    return "no nodes\n" + masters_line(masters);
  std::vector<std::vector<cell>> rows;
  for (auto& n : nodes) {
    auto t = totals(n);
    std::string state = n.drained ? "drained" : "ok";
    rows.push_back({n.info.node_id, n.role, n.info.host_address,
                    std::to_string(n.slots.size()), std::to_string(t.busy),
                    std::to_string(n.slots.size() - t.busy), or_dash(join(t.gpus)),
                    or_dash(join(t.jobs)), format_age(o.now, n.last_seen),
                    or_dash(n.info.version),
                    n.info.started > 0 ? format_span(o.now - n.info.started) : "-",
                    cell{state, state_color(state)}});
  }
  return render_table({"NODE", "ROLE", "ADDRESS", "SLOTS", "BUSY", "FREE", "GPUS", "RUNNING",
                       "HEARTBEAT", "VERSION", "UPTIME", "DISPATCH"},
                      rows, o.color)
         + masters_line(masters);
}

std::string slots_text(const std::vector<node_view>& nodes, const std::string& node,
                       const render_options& o) {
  std::vector<std::vector<cell>> rows;
  for (auto& n : nodes) {
    if (!node_matches(node, n.info.node_id))
      continue;
    for (auto& s : n.slots) {
      auto state = slot_state(s, n.drained);
      rows.push_back({s.key, n.info.node_id, cell{state, state_color(state)},
                      or_dash(s.current_job), or_dash(join(s.gpus)), std::to_string(s.jobs_run),
                      or_dash(s.last_error)});
    }
  }
  if (rows.empty())
    return node.empty() ? "no slots\n" : "no slots on node " + node + "\n";
  return render_table({"SLOT", "NODE", "STATE", "JOB", "GPUS", "JOBS RUN", "LAST ERROR"}, rows,
                      o.color);
}

// --- jobs

std::vector<job_record> filter_jobs(std::vector<job_record> jobs, const std::string& state,
                                    const std::string& user) {
  std::erase_if(jobs, [&](const job_record& j) {
    return (!state.empty() && to_string(j.state) != state && api_status(j.state) != state)
           || (!user.empty() && j.username != user);
  });
  std::stable_sort(jobs.begin(), jobs.end(), [](const job_record& a, const job_record& b) {
    return std::tie(a.seq, a.queued_time, a.job_id) < std::tie(b.seq, b.queued_time, b.job_id);
  });
  return jobs;
}

std::string jobs_text(const std::vector<job_record>& jobs, const render_options& o) {
  if (jobs.empty())
    return "no jobs\n";
  std::vector<std::vector<cell>> rows;
  for (auto& j : jobs) {
    std::string state{to_string(j.state)};
    rows.push_back({j.job_id, cell{state, state_color(state)}, or_dash(j.username),
                    or_dash(j.project_name), or_dash(j.node), or_dash(j.slot),
                    format_age(o.now, j.queued_time), run_time(j, o.now), retries(j),
                    return_code(j)});
  }
  return render_table({"JOB", "STATE", "USER", "PROJECT", "NODE", "SLOT", "QUEUED", "RUN TIME",
                       "RETRIES", "RC"},
                      rows, o.color);
}

std::string job_text(const job_record& j, const render_options& o) {
  std::string state{to_string(j.state)};
  auto when = [&](double t) {
    return t > 0 ? format_local_time(t) + " (" + format_age(o.now, t) + ")" : std::string{"-"};
  };
  std::vector<std::vector<cell>> fields = {
    {"job", j.job_id},
    {"state", cell{state, state_color(state)}},
    {"user", or_dash(j.username)},
    {"project", or_dash(j.project_name)},
    {"priority", std::to_string(j.priority)},
    {"gpus", std::to_string(j.num_gpus)},
    {"node", j.node.empty() ? "-" : j.node + (j.host_address.empty() ? "" : " (" + j.host_address + ")")},
    {"slot", or_dash(j.slot)},
    {"retries", retries(j)},
    {"queued", when(j.queued_time)},
    {"started", when(j.start_time)},
    {"ended", when(j.end_time)},
    {"run time", run_time(j, o.now)},
    {"return code", return_code(j)},
  };
  if (!j.reason.empty())
    fields.push_back({"reason", j.reason});
  // The field names are the first column of a table without a header.
  auto table = render_table({"", ""}, fields, o.color);
  table.erase(0, table.find('\n') + 1);
  std::vector<std::vector<cell>> steps;
  auto& history = j.history;
  for (size_t i = 0; i < history.size(); ++i) {
    auto& t = history[i];
    std::string s{to_string(t.state)};
    auto next = i + 1 < history.size() ? history[i + 1].time : (is_terminal(t.state) ? 0 : o.now);
    steps.push_back({cell{s, state_color(s)}, format_local_time(t.time), format_age(o.now, t.time),
                     t.time > 0 && next > 0 ? format_span(next - t.time) : "-", or_dash(t.slot)});
  }
  if (steps.empty()) // a record from before histories were kept
    return table + "\nlifecycle: not recorded\n";
  return table + "\nlifecycle:\n"
         + render_table({"STATE", "AT", "AGE", "FOR", "SLOT"}, steps, o.color);
}

// --- queue

std::string queue_text(const std::vector<queue_entry>& queue, const render_options& o) {
  if (queue.empty())
    return "the queue is empty\n";
  std::vector<std::vector<cell>> rows;
  for (auto& q : queue)
    rows.push_back({std::to_string(q.position), q.job.job_id, or_dash(q.job.username),
                    std::to_string(q.job.priority), std::to_string(q.job.num_gpus),
                    format_age(o.now, q.job.queued_time), std::to_string(q.job.retries),
                    cell{or_dash(q.reason), yellow}});
  return render_table({"POS", "JOB", "USER", "PRIORITY", "GPUS", "QUEUED", "RETRIES", "WAITING FOR"},
                      rows, o.color);
}

// --- actors

std::string actors_text(const std::vector<actor_stats>& actors, const std::string& node,
                        const render_options& o) {
  auto xs = sorted_actors(actors, node);
  if (xs.empty())
    return node.empty() ? "no actors\n" : "no actors on node " + node + "\n";
  std::vector<std::vector<cell>> rows;
  for (auto& a : xs)
    rows.push_back({a.name, std::to_string(a.id), or_dash(a.node),
                    cell{std::to_string(a.mailbox), a.mailbox > 100 ? red : ""},
                    std::to_string(a.handled), format_age(o.now, a.last_message),
                    or_dash(a.summary)});
  return render_table({"NAME", "ID", "NODE", "MAILBOX", "HANDLED", "LAST MESSAGE", "SUMMARY"},
                      rows, o.color);
}

// --- watch

std::string watch_text(const std::string& master, const std::vector<node_view>& nodes,
                       const std::vector<queue_entry>& queue, const render_options& o) {
  size_t slots = 0;
  size_t busy = 0;
  for (auto& n : nodes) {
    slots += n.slots.size();
    busy += totals(n).busy;
  }
  auto title = "atlas-ctl watch  master " + master + "  " + format_local_time(o.now) + "  "
               + std::to_string(nodes.size()) + " node(s), " + std::to_string(busy) + "/"
               + std::to_string(slots) + " slots busy, " + std::to_string(queue.size())
               + " queued";
  if (o.color)
    title = "\x1b[1m" + title + "\x1b[0m";
  return title + "\n\nNODES\n" + nodes_text(nodes, o) + "\nSLOTS\n" + slots_text(nodes, "", o)
         + "\nQUEUE\n" + queue_text(queue, o);
}

} // namespace atlas::ctl
