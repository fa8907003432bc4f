#pragma once

// The dashboard REST API's answers (the original foundations_rest_api
// shapes), built from job records, the tracking data of
// library/tracking/store.hpp and the master's cluster views. Plain C++ (no
// actors), so the shapes are unit-testable alone. The cluster view is in
// cluster_view.cpp, the rest in views.cpp.

#include <map>
#include <string>
#include <vector>

#include "adapters/json.hpp"
#include "library/tracking/listing_page.hpp"
#include "messages/introspection.hpp"
#include "messages/job.hpp"

namespace atlas::dashboard {

/// GET /api/v2beta/projects: [{name, owner, created_at, last_activity, jobs, active_jobs}]
/// (one per project_name among `recs`, most recently active first).
std::string projects_json(const std::vector<job_record>& recs);

/// The same from the indexes' project views (the lookup's).
std::string projects_json(std::vector<project_view> projects);

/// GET /api/v2beta/projects/<p>/job_listing: {name, jobs, output_metric_names,
/// parameters}. `summary` maps job id -> tracking data ("summary" op).
/// `query`: the original's filters and sorts and ours (listing_query.hpp);
/// a bad value gives a non-empty `error` (a 400). With `page`
/// (listing_page.hpp) also {total, next_cursor, version}: the rows are a
/// page already when it is indexed, else the page is cut from them here
/// (and its total and next set).
std::string job_listing_json(const std::string& project, const std::vector<job_record>& recs,
                             const json::value& summary,
                             const std::map<std::string, std::string>& query, double now,
                             std::string& error, listing_page* page = nullptr);

/// One job in the listing's shape plus "series" (metric -> [[step, value, time]]),
/// node, slot and reason. `detail` is the "detail" op's answer.
std::string job_detail_json(const job_record& rec, const json::value& detail, double now);

/// GET /api/v2beta/projects/<p>/overview_metrics: {all_metric_names,
/// metric_query: [{metric_name, values: [[job_id, value], ...]}]} in creation order
/// (each job's latest value). `only`: the original's ?metric_name=a|b, the
/// metrics metric_query has, in that order (all when empty).
std::string overview_json(const std::vector<job_record>& recs, const json::value& summary,
                          const std::vector<std::string>& only = {});

/// GET /api/v2beta/cluster: nodes with slots (busy/free, GPUs, job, heartbeat
/// age), totals and the queue in dispatch order.
std::string cluster_json(const std::vector<node_view>& nodes,
                         const std::vector<queue_entry>& queue, double now);

/// GET .../note_listing: the stored notes ({date: seconds, author, message})
/// as the original's {date: "2026-01-02 03:04:05.678901" (UTC), message,
/// author}, plus ours: time (seconds since the epoch).
std::string notes_json(const json::value& notes);

/// ISO-8601 UTC ("2026-01-02T03:04:05Z"), or null for "not yet" (t <= 0).
void time_value(json::writer& w, double t);

/// A job's start_time/completed_time as the original listing wrote them:
/// Python's utcfromtimestamp(t).isoformat(), UTC without a zone
/// ("2026-01-02T03:04:05", ".123456" when there are microseconds), or null.
void naive_utc_time_value(json::writer& w, double t);

/// The original's artifact types by extension: "image" (png, jpg, jpeg, gif,
/// svg; ours also webp, any letter case), "audio" (wav, mp3), else "unknown".
std::string artifact_type(const std::string& path);

} // namespace atlas::dashboard
