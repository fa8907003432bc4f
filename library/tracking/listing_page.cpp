#include "library/tracking/listing_page.hpp"

#include <charconv>

#include "adapters/http_client.hpp"
#include "adapters/json.hpp"
#include "library/job_index.hpp"
#include "library/tracking/listing_query.hpp"

namespace atlas::dashboard {

namespace {

std::optional<uint64_t> number(const std::string& text) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size())
    return std::nullopt;
  return n;
}

} // namespace

std::optional<listing_page_request> parse_listing_page(std::map<std::string, std::string> query,
                                                       std::string& error) {
  listing_page_request out;
  out.limit = job_index::max_page;
  if (auto l = query.find("limit"); l != query.end()) {
    auto n = number(l->second);
    if (!n || *n == 0) {
      error = "limit must be a positive integer (at most " + std::to_string(job_index::max_page)
              + " rows are answered)";
      return std::nullopt;
    }
    out.limit = std::min(*n, job_index::max_page);
    query.erase(l);
  }
  if (auto s = query.find("since"); s != query.end()) {
    if (!(out.since = number(s->second))) {
      error = "since must be the version of an earlier answer (a non-negative integer)";
      return std::nullopt;
    }
    query.erase(s);
  }
  if (auto c = query.find("cursor"); c != query.end()) {
    out.cursor = c->second;
    query.erase(c);
  }
  // Newest first, at most a status filter: what the indexes keep.
  auto indexed = query;
  if (auto sort = indexed.find("sort"); sort != indexed.end() && sort->second == "-creation_time")
    indexed.erase(sort);
  if (auto status = indexed.find("status");
      status != indexed.end() && job_index::indexed_status(status->second)) {
    out.status = status->second;
    indexed.erase(status);
  }
  bool default_order = indexed.empty();
  // Sorted by one metric or parameter, nothing else asked: its index.
  if (auto sort = indexed.find("sort"); out.status.empty() && indexed.size() == 1
                                        && sort != indexed.end()
                                        && sort->second.find(',') == std::string::npos) {
    auto spec = sort->second;
    out.descending = !spec.empty() && spec[0] == '-';
    if (out.descending)
      spec.erase(0, 1);
    if (!spec.empty() && !is_job_column(spec)) {
      out.column = spec;
      default_order = true;
    }
  }
  if (out.cursor.rfind('@', 0) == 0) {
    auto n = number(out.cursor.substr(1));
    if (!n) {
      error = "'" + out.cursor + "' is not a listing cursor";
      return std::nullopt;
    }
    out.offset = *n;
    out.by_index = false;
    out.status.clear();
    out.column.clear();
  } else {
    out.by_index = default_order;
    if (!out.by_index) {
      out.status.clear();
      out.column.clear();
    }
    if (!out.by_index && !out.cursor.empty()) {
      error = "'" + out.cursor + "' is not a cursor of this sort or filter (they start with '@')";
      return std::nullopt;
    }
    if (!out.cursor.empty() && !job_index::parse_cursor(out.cursor)) {
      error = "'" + out.cursor + "' is not a listing cursor";
      return std::nullopt;
    }
  }
  out.rest = std::move(query);
  return out;
}

std::string unchanged_json(uint64_t version) {
  json::writer w;
  w.begin_object().kv("unchanged", true).kv("version", version).end_object();
  return w.take();
}

std::string query_with_cursor(std::map<std::string, std::string> query, const std::string& cursor) {
  query["cursor"] = cursor;
  query.erase("since");
  std::string out;
  for (auto& [k, v] : query)
    out += (out.empty() ? "" : "&") + http_client::escape(k) + "=" + http_client::escape(v);
  return out;
}

} // namespace atlas::dashboard
