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

/// A score as Redis reads it back exactly: integers as such, other numbers
/// in their shortest exact form.
std::string score_text(double x) {
  if (std::nearbyint(x) == x && std::fabs(x) < 9.0e15)
    return std::to_string(static_cast<int64_t>(x));
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, x);
  return ec == std::errc{} ? std::string(buf, end) : std::string{"0"};
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
  std::vector<cmd> out{
    {"ZADD", keys::project_jobs(rec.project_name), score, rec.job_id},
    {"ZADD", keys::project_status(rec.project_name, api_status(rec.state)), score, rec.job_id},
    {"ZADD", keys::jobs_by_order, score, rec.job_id},
    {"SADD", keys::projects, rec.project_name}};
  if (!rec.sweep_id.empty()) { // a trial: its sweep's, and the sweep in its project's (first wins)
    out.push_back({"ZADD", keys::sweep_trials(rec.project_name, rec.sweep_id), score, rec.job_id});
    out.push_back({"ZADD", keys::project_sweeps(rec.project_name), "NX", score, rec.sweep_id});
  }
  return out;
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
  if (!rec.sweep_id.empty())
    out.push_back({"ZREM", keys::sweep_trials(rec.project_name, rec.sweep_id), rec.job_id});
  out.push_back(bump_version());
  return out;
}

cmd bump_version() {
  return {"INCR", keys::listing_version};
}

cmd column_value(const std::string& project, const std::string& id, const std::string& column,
                 std::optional<double> number) {
  if (!number)
    return {"ZREM", keys::project_column(project, column), id};
  return {"ZADD", keys::project_column(project, column), score_text(*number), id};
}

std::vector<cmd> column_reads(const std::string& id) {
  return {{"HKEYS", keys::job_metrics(id)}, {"HKEYS", keys::job_params(id)}};
}

std::vector<cmd> columns_removed(const std::string& project, const std::string& id,
                                 const redis_reply& metric_names, const redis_reply& param_names) {
  std::vector<cmd> out;
  for (auto& m : metric_names.elements)
    out.push_back({"ZREM", keys::project_column(project, "metric:" + m.str), id});
  for (auto& p : param_names.elements)
    out.push_back({"ZREM", keys::project_column(project, "param:" + p.str), id});
  return out;
}

std::optional<cursor> parse_cursor(const std::string& text) {
  cursor c;
  std::string_view rest = text;
  if (!rest.empty() && rest[0] == '~') {
    c.tail = true;
    rest.remove_prefix(1);
    if (rest.empty())
      return c; // the tail's first row
  }
  auto colon = rest.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size())
    return std::nullopt;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + colon, c.score);
  if (ec != std::errc{} || end != rest.data() + colon || !std::isfinite(c.score))
    return std::nullopt;
  auto id = rest.substr(colon + 1);
  if (auto second = id.find(':'); second != std::string_view::npos) {
    auto tied = id.substr(second + 1);
    auto [tend, tec] = std::from_chars(tied.data(), tied.data() + tied.size(), c.tied);
    if (tec != std::errc{} || tend != tied.data() + tied.size() || c.tied == 0)
      return std::nullopt;
    id = id.substr(0, second);
  }
  c.id = std::string(id);
  if (c.id.empty() || c.id.size() > 64 || c.id.find_first_of(": /") != std::string::npos)
    return std::nullopt;
  return c;
}

std::string to_string(const cursor& c) {
  std::string out = c.tail ? "~" : "";
  if (c.tail && c.id.empty())
    return out;
  out += score_text(c.score) + ":" + c.id;
  if (c.tied > 1)
    out += ":" + std::to_string(c.tied);
  return out;
}

std::vector<cmd> page_reads(const std::string& key, const std::optional<cursor>& from,
                            uint64_t limit, bool ascending) {
  bool placed = from && !from->id.empty();
  auto at = placed ? score_text(from->score) : std::string{ascending ? "-inf" : "+inf"};
  // Rows at the cursor's score before it are skipped by Redis, but for
  // tie_room of them: ones inserted or removed meanwhile stay exact.
  uint64_t skip = placed && from->tied > tie_room ? from->tied - tie_room : 0;
  auto count = limit + 1 + (placed ? 2 * tie_room : 0);
  auto range = ascending ? cmd{"ZRANGEBYSCORE", key, at, "+inf"}
                         : cmd{"ZREVRANGEBYSCORE", key, at, "-inf"};
  for (auto part : {"WITHSCORES", "LIMIT"})
    range.push_back(part);
  range.push_back(std::to_string(skip));
  range.push_back(std::to_string(count));
  return {range, {"ZCARD", key}};
}

page_ids take_page(const redis_reply& reply, const std::optional<cursor>& from, uint64_t limit,
                   bool ascending) {
  page_ids out;
  bool placed = from && !from->id.empty();
  auto& rows = reply.elements;
  for (size_t i = 0; i + 1 < rows.size(); i += 2) {
    cursor at;
    at.tail = from && from->tail;
    at.id = rows[i].str;
    auto& text = rows[i + 1].str;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), at.score);
    if (ec != std::errc{} || end != text.data() + text.size())
      continue; // not written by us
    if (placed) {
      bool past = ascending ? at.score > from->score : at.score < from->score;
      bool tie = at.score == from->score;
      if (!past && !(tie && (ascending ? at.id > from->id : at.id < from->id)))
        continue; // at or before the cursor
    }
    if (out.ids.size() >= limit) {
      if (!out.ids.empty())
        out.next = out.at.back(); // more follow the page's last row
      break;
    }
    const cursor* before = !out.at.empty() ? &out.at.back() : placed ? &*from : nullptr;
    at.tied = before && before->score == at.score ? before->tied + 1 : 1;
    out.ids.push_back(at.id);
    out.at.push_back(std::move(at));
  }
  return out;
}

} // namespace atlas::job_index
