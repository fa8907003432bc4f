#include "library/http_answers.hpp"

#include <algorithm>
#include <charconv>

#include "adapters/http_wire.hpp"
#include "adapters/json.hpp"
#include "library/job_codec.hpp"

namespace atlas {

http_response json_answer(uint16_t status, std::string body) {
  http_response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

http_response error_answer(uint16_t status, std::string_view message) {
  json::writer w;
  w.begin_object().kv("error", message).end_object();
  return json_answer(status, w.take());
}

http_response no_content() {
  return json_answer(204, "{}");
}

namespace {

std::string form_decode(std::string_view s) {
  return http_wire::percent_decode(s, http_wire::percent_mode::form).value_or(std::string{});
}

} // namespace

std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    auto amp = query.find('&');
    auto part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (part.empty())
      continue;
    auto eq = part.find('=');
    if (eq == std::string_view::npos)
      out[form_decode(part)] = "";
    else
      out[form_decode(part.substr(0, eq))] = form_decode(part.substr(eq + 1));
  }
  return out;
}

std::string body_as_json(const std::map<std::string, std::string>& headers, const std::string& body) {
  auto type = headers.find("content-type");
  if (type == headers.end() || type->second.rfind("application/x-www-form-urlencoded", 0) != 0)
    return body;
  json::writer w;
  w.begin_object();
  for (const auto& [name, value] : parse_query(body))
    w.kv(name, value);
  w.end_object();
  return w.take();
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  while (!path.empty()) {
    auto slash = path.find('/');
    auto part = path.substr(0, slash);
    if (!part.empty())
      out.emplace_back(part);
    if (slash == std::string_view::npos)
      break;
    path = path.substr(slash + 1);
  }
  return out;
}

std::string records_by_id(const std::vector<job_record>& recs) {
  json::writer w;
  w.begin_object();
  for (auto& rec : recs) {
    w.key(rec.job_id).begin_object();
    write_job_fields(w, rec);
    w.end_object();
  }
  w.end_object();
  return w.take();
}

namespace {

/// Orders JSON values of one field: null, then booleans, numbers, strings;
/// arrays and objects by their text.
bool value_less(const json::value& a, const json::value& b) {
  auto rank = [](const json::value& v) {
    return v.is_null() ? 0 : v.type == json::value::kind::boolean ? 1 : v.is_number() ? 2
           : v.is_string() ? 3 : 4;
  };
  if (rank(a) != rank(b))
    return rank(a) < rank(b);
  switch (rank(a)) {
    case 1: return a.boolean < b.boolean;
    case 2: return a.number < b.number;
    case 3: return a.string < b.string;
    case 4: return a.dump() < b.dump();
    default: return false;
  }
}

} // namespace

std::optional<std::string> records_sorted(const std::vector<job_record>& recs,
                                          std::string_view sort, std::string& error) {
  struct row {
    std::string id, text;
    json::value parsed;
  };
  std::vector<row> rows;
  for (auto& rec : recs) {
    row r{rec.job_id, to_json(rec), {}};
    std::string ignored;
    r.parsed = json::parse(r.text, ignored).value_or(json::value{});
    rows.push_back(std::move(r));
  }
  while (!sort.empty()) {
    auto comma = sort.find(',');
    auto field = sort.substr(0, comma);
    sort = comma == std::string_view::npos ? std::string_view{} : sort.substr(comma + 1);
    auto colon = field.find(':');
    std::string name(field.substr(0, colon));
    std::string dir = colon == std::string_view::npos ? "asc" : std::string(field.substr(colon + 1));
    dir = dir.substr(0, dir.find(':'));
    auto bad = [&] {
      error = "Bad sort request in ['" + name + "', '" + dir + "']";
      return std::nullopt;
    };
    if (dir != "asc" && dir != "desc")
      return bad();
    for (auto& r : rows)
      if (r.parsed.find(name) == nullptr)
        return bad();
    bool desc = dir == "desc";
    std::stable_sort(rows.begin(), rows.end(), [&](const row& a, const row& b) {
      auto& x = *a.parsed.find(name);
      auto& y = *b.parsed.find(name);
      return desc ? value_less(y, x) : value_less(x, y);
    });
  }
  json::writer w;
  w.begin_array();
  for (auto& r : rows)
    w.begin_array().value(r.id).raw(r.text).end_array();
  w.end_array();
  return w.take();
}

std::string records_by_position(const std::vector<job_record>& recs, uint64_t first) {
  json::writer w;
  w.begin_object();
  for (size_t i = 0; i < recs.size(); ++i) {
    auto pos = first + i;
    w.key(std::to_string(pos)).begin_object();
    write_job_fields(w, recs[i]);
    w.kv("position", pos);
    w.end_object();
  }
  w.end_object();
  return w.take();
}

std::string record_list(std::vector<job_record> recs) {
  std::sort(recs.begin(), recs.end(), [](const job_record& a, const job_record& b) {
    return a.queued_time > b.queued_time;
  });
  json::writer w;
  w.begin_object().key("jobs").begin_array();
  for (auto& rec : recs) {
    w.begin_object();
    write_job_fields(w, rec);
    w.end_object();
  }
  w.end_array().end_object();
  return w.take();
}

std::string job_with_logs(const job_record& rec, std::string_view logs) {
  json::writer w;
  w.begin_object();
  write_job_fields(w, rec);
  w.kv("logs", logs);
  w.end_object();
  return w.take();
}

std::optional<uint64_t> parse_index(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\n'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\n' || text.back() == '\r'))
    text.remove_suffix(1);
  uint64_t out = 0;
  auto [ptr, err] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (err != std::errc{} || ptr != text.data() + text.size() || text.empty())
    return std::nullopt;
  return out;
}

} // namespace atlas
