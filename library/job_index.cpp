#include "library/job_index.hpp"

#include <charconv>
#include <cmath>

#include "messages/redis_keys.hpp"

namespace atlas::job_index {

namespace {

// Rows at the cursor's score that came before it are read again and
// dropped: room for that many jobs ending in the same microsecond.
constexpr uint64_t tie_room = 32;

// api_status's words: the status indexes.
constexpr std::string_view statuses[] = {"queued", "pending", "running", "completed", "failed"};

std::string num(int64_t n) {
  return std::to_string(n);
}

} // namespace

std::string list_of(job_state s) {
  switch (s) {
    case job_state::completed: return "completed_jobs";
    case job_state::failed:
    case job_state::cancelled: return "failed_jobs";
    default: return "";
  }
}

int64_t submit_score(const job_record& rec) {
  if (rec.seq > 0)
    return static_cast<int64_t>(rec.seq);
  return static_cast<int64_t>(std::llround(rec.queued_time * 1e6));
}

int64_t end_score(const job_record& rec) {
  return static_cast<int64_t>(std::llround(rec.end_time * 1e6));
}

bool indexed_status(const std::string& status) {
  for (auto s : statuses)
    if (status == s)
      return true;
  return false;
}

std::vector<cmd> added(const job_record& rec) {
  auto score = num(submit_score(rec));
  return {{"ZADD", keys::project_jobs(rec.project_name), score, rec.job_id},
          {"ZADD", keys::project_status(rec.project_name, api_status(rec.state)), score, rec.job_id},
          {"ZADD", keys::jobs_by_order, score, rec.job_id},
          {"SADD", keys::projects, rec.project_name}};
}

std::vector<cmd> moved(const job_record& rec, std::optional<job_state> from) {
  auto now = api_status(rec.state);
  if (from && api_status(*from) == now)
    return {};
  std::vector<cmd> out;
  if (from)
    out.push_back({"ZREM", keys::project_status(rec.project_name, api_status(*from)), rec.job_id});
  out.push_back({"ZADD", keys::project_status(rec.project_name, now), num(submit_score(rec)), rec.job_id});
  return out;
}

std::vector<cmd> restatus(const job_record& rec) {
  std::vector<cmd> out{{"ZADD", keys::project_status(rec.project_name, api_status(rec.state)),
                        num(submit_score(rec)), rec.job_id}};
  for (auto s : statuses)
    if (s != api_status(rec.state))
      out.push_back({"ZREM", keys::project_status(rec.project_name, s), rec.job_id});
  return out;
}

std::vector<cmd> ended(const job_record& rec) {
  auto list = list_of(rec.state);
  if (list.empty())
    return {};
  auto score = num(end_score(rec));
  return {{"ZADD", keys::project_ended(rec.project_name), score, rec.job_id},
          {"ZADD", keys::ended_list(list), score, rec.job_id}};
}

std::vector<cmd> unended(const job_record& rec) {
  return {{"ZREM", keys::project_ended(rec.project_name), rec.job_id},
          {"ZREM", keys::ended_list("completed_jobs"), rec.job_id},
          {"ZREM", keys::ended_list("failed_jobs"), rec.job_id}};
}

std::vector<cmd> removed(const job_record& rec) {
  std::vector<cmd> out = unended(rec);
  out.push_back({"ZREM", keys::project_jobs(rec.project_name), rec.job_id});
  out.push_back({"ZREM", keys::jobs_by_order, rec.job_id});
  for (auto s : statuses)
    out.push_back({"ZREM", keys::project_status(rec.project_name, s), rec.job_id});
  out.push_back(bump_version());
  return out;
}

cmd bump_version() {
  return {"INCR", keys::listing_version};
}

std::optional<cursor> parse_cursor(const std::string& text) {
  auto colon = text.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return std::nullopt;
  cursor c;
  auto [end, ec] = std::from_chars(text.data(), text.data() + colon, c.score);
  if (ec != std::errc{} || end != text.data() + colon)
    return std::nullopt;
  c.id = text.substr(colon + 1);
  if (c.id.size() > 64 || c.id.find_first_of(": /") != std::string::npos)
    return std::nullopt;
  return c;
}

std::string to_string(const cursor& c) {
  return num(c.score) + ":" + c.id;
}

std::vector<cmd> page_reads(const std::string& key, const std::optional<cursor>& from,
                            uint64_t limit) {
  auto max = from ? num(from->score) : std::string{"+inf"};
  auto count = limit + 1 + (from ? tie_room : 0);
  return {{"ZREVRANGEBYSCORE", key, max, "-inf", "WITHSCORES", "LIMIT", "0", std::to_string(count)},
          {"ZCARD", key}};
}

page_ids take_page(const redis_reply& reply, const std::optional<cursor>& from, uint64_t limit) {
  page_ids out;
  cursor last;
  auto& rows = reply.elements;
  for (size_t i = 0; i + 1 < rows.size(); i += 2) {
    cursor at;
    at.id = rows[i].str;
    double score = 0;
    try {
      score = std::stod(rows[i + 1].str);
    } catch (...) {
      continue; // not written by us
    }
    at.score = static_cast<int64_t>(std::llround(score));
    if (from && at.score == from->score && at.id >= from->id)
      continue; // at or before the cursor
    if (from && at.score > from->score)
      continue;
    if (out.ids.size() >= limit) {
      if (!out.ids.empty())
        out.next = last; // more follow the page's last row
      break;
    }
    out.ids.push_back(at.id);
    last = std::move(at);
  }
  return out;
}

} // namespace atlas::job_index
