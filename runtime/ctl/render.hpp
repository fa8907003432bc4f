#pragma once

// atlas-ctl's output: the introspection messages as aligned tables (ANSI
// colour only when asked; render.cpp) or as JSON with stable keys
// (render_json.cpp). Pure formatting, no CAF and no I/O, so it is
// unit-tested alone.

#include <optional>
#include <string>
#include <vector>

#include "messages/introspection.hpp"
#include "runtime/master_lease.hpp"

namespace atlas::ctl {

/// How to render: `now` (epoch seconds) is the reference for ages, `color`
/// adds ANSI colours (stdout is a terminal).
struct render_options {
  double now = 0;
  bool color = false;
};

// --- small pieces

/// "3.2s ago", "4m05s ago", "2h03m ago", "3d04h00m ago"; "-" for 0 (never);
/// "in 1.0s" for a time ahead of `now` (clock skew between nodes).
std::string format_age(double now, double t);

/// Local time "2024-05-01 12:03:04"; "-" for 0.
std::string format_local_time(double t);

/// A span of seconds: "0.4s", "12.0s", "4m05s", "1h02m03s".
std::string format_span(double seconds);

/// One table cell: its text and an optional ANSI colour code ("32" = green).
struct cell {
  std::string text;
  std::string color;
  cell(std::string t = {}, std::string c = {}) : text(std::move(t)), color(std::move(c)) {}
  cell(const char* t) : text(t) {}
};

/// Columns aligned on the visible text (colour codes take no width); the
/// header is bold when colouring. Trailing spaces are not written.
std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<cell>>& rows, bool color);

/// The colour code for a job state, a slot state ("busy", "free",
/// "drained") or a node state; "" for none.
std::string state_color(const std::string& state);

/// "busy" (holds a job), "drained" (its node takes no new jobs) or "free".
std::string slot_state(const slot_info& s, bool node_drained);

/// The node a name means: its node id, or its HOST_ADDRESS (with or without
/// the trailing '/'). nullopt when none matches.
std::optional<std::string> resolve_node(const std::vector<node_view>& nodes,
                                        const std::string& name);

// --- commands: each as a table (text) and as JSON (one object, no newline)

/// The masters as Redis knows them: the lease holder and the standbys.
struct masters_view {
  bool known = false; // false: Redis could not be read
  lease_holder active;
  std::vector<standby_master> standbys;
};

std::string nodes_text(const std::vector<node_view>& nodes, const render_options& o,
                       const masters_view& masters = {});
std::string nodes_json(const std::vector<node_view>& nodes, const render_options& o,
                       const masters_view& masters = {});

/// Slots of every node, or of the node `node` names ("" = all).
std::string slots_text(const std::vector<node_view>& nodes, const std::string& node,
                       const render_options& o);
std::string slots_json(const std::vector<node_view>& nodes, const std::string& node);

/// The jobs in state `state` ("" = any) of user `user` ("" = any), in
/// submission order.
std::vector<job_record> filter_jobs(std::vector<job_record> jobs, const std::string& state,
                                    const std::string& user);
std::string jobs_text(const std::vector<job_record>& jobs, const render_options& o);
std::string jobs_json(const std::vector<job_record>& jobs);

/// One job: its fields, where it ran, retries, and every transition with
/// its local time and age.
std::string job_text(const job_record& job, const render_options& o);
/// The record's JSON object (as in jobs_json), history included.
std::string job_json(const job_record& job);

std::string queue_text(const std::vector<queue_entry>& queue, const render_options& o);
std::string queue_json(const std::vector<queue_entry>& queue);

/// Every actor, or those of node `node` ("" = all), ordered by node, name, id.
std::string actors_text(const std::vector<actor_stats>& actors, const std::string& node,
                        const render_options& o);
std::string actors_json(const std::vector<actor_stats>& actors, const std::string& node,
                        const render_options& o);

/// One frame of `watch`: a title line, then nodes, slots and queue.
std::string watch_text(const std::string& master, const std::vector<node_view>& nodes,
                       const std::vector<queue_entry>& queue, const render_options& o);
/// One frame of `watch --json`: {"time", "nodes", "slots", "queue"}.
std::string watch_json(const std::vector<node_view>& nodes,
                       const std::vector<queue_entry>& queue, const render_options& o);

} // namespace atlas::ctl
