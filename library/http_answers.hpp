#pragma once

// Small builders for HTTP answers and request parsing, shared by the
// gateway's routes. No actors here.

#include <map>
#include <optional>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "messages/http.hpp"
#include "messages/job.hpp"

namespace atlas {

http_response json_answer(uint16_t status, std::string body);
/// {"error": message}
http_response error_answer(uint16_t status, std::string_view message);
/// 204 with "{}" as the original answered.
http_response no_content();

/// "a=1&b=x%20y" -> {a: "1", b: "x y"}
std::map<std::string, std::string> parse_query(std::string_view query);

/// A form-encoded body (Content-Type application/x-www-form-urlencoded) as
/// the JSON object of its fields, strings each, as the original's API read
/// `request.form`; any other body as it is.
std::string body_as_json(const std::map<std::string, std::string>& headers, const std::string& body);

/// "/jobs/abc/logs" -> {"jobs", "abc", "logs"}
std::vector<std::string> split_path(std::string_view path);

/// {"<id>": record, ...} as the original's running/completed/failed listings.
std::string records_by_id(const std::vector<job_record>& recs);

/// GET /completed_jobs?sort=<field>[:asc|:desc],...: the original sorted
/// the listing once per field, in order (so the last field decides first),
/// and answered [["<id>", record], ...]. nullopt, with `error` fit for a 400,
/// when a record lacks a field or a direction is neither asc nor desc.
std::optional<std::string> records_sorted(const std::vector<job_record>& recs,
                                          std::string_view sort, std::string& error);

/// {"0": {record..., "position": 0}, ...} as the original's queue listing,
/// `recs` being the queue's positions from `first` on.
std::string records_by_position(const std::vector<job_record>& recs, uint64_t first = 0);

/// {"jobs": [records, newest first]}
std::string record_list(std::vector<job_record> recs);

/// The original's GET /jobs/<id>: {job_id, status, logs, spec} plus the
/// record's other fields.
std::string job_with_logs(const job_record& rec, std::string_view logs);

/// Parses a whole number from a path segment or body.
std::optional<uint64_t> parse_index(std::string_view text);

} // namespace atlas
