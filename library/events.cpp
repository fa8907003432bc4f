#include "library/events.hpp"

#include <charconv>

#include "adapters/json.hpp"
#include "messages/redis_keys.hpp"

namespace atlas::events {

namespace {

bool all_digits(std::string_view s) {
  if (s.empty() || s.size() > 20)
    return false;
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  return ec == std::errc{} && end == s.data() + s.size();
}

/// The event's "kind", read back for the SSE "event:" line.
std::string kind_of(const std::string& json) {
  std::string err;
  auto v = json::parse(json, err);
  return v ? v->get_string("kind").value_or("event") : "event";
}

} // namespace

std::string job_event(const job_record& rec, size_t index) {
  const auto& step = rec.history.at(index);
  json::writer w;
  w.begin_object().kv("kind", "job").kv("time", step.time).kv("job_id", rec.job_id)
    .kv("state", to_string(step.state))
    .kv("from", index > 0 ? std::string(to_string(rec.history[index - 1].state)) : "")
    .kv("user", rec.username).kv("project", rec.project_name)
    .kv("node", step.slot.empty() ? "" : step.slot.substr(0, step.slot.rfind('/')))
    .kv("slot", step.slot);
  // The record's reason and return code belong to its latest state.
  const bool latest = index + 1 == rec.history.size();
  w.kv("reason", latest ? rec.reason : "").key("return_code");
  if (latest && rec.has_return_code)
    w.value(rec.return_code);
  else
    w.null();
  w.kv("n", static_cast<uint64_t>(index + 1)).end_object();
  return w.take();
}

std::string node_event(const std::string& node, const std::string& what,
                       const std::string& detail, double time) {
  json::writer w;
  w.begin_object().kv("kind", "node").kv("time", time).kv("node", node).kv("event", what)
    .kv("detail", detail).end_object();
  return w.take();
}

cmd publish(const std::string& event) {
  return {"XADD", keys::events, "MAXLEN", "~", std::to_string(max_events), "*", "e", event};
}

std::vector<cmd> publish_job(const job_record& rec, size_t from) {
  std::vector<cmd> out;
  for (size_t k = from; k < rec.history.size(); ++k)
    out.push_back(publish(job_event(rec, k)));
  return out;
}

bool valid_id(const std::string& id) {
  if (id.empty() || id == "0")
    return true;
  auto dash = id.find('-');
  if (dash == std::string::npos)
    return all_digits(id);
  return all_digits(std::string_view(id).substr(0, dash))
         && all_digits(std::string_view(id).substr(dash + 1));
}

cmd read_after(const std::string& after, uint64_t count) {
  auto start = after.empty() || after == "0" ? std::string("-") : "(" + after;
  return {"XRANGE", keys::events, start, "+", "COUNT",
          std::to_string(std::min<uint64_t>(std::max<uint64_t>(count, 1), max_read))};
}

std::vector<event> from_reply(const redis_reply& reply) {
  std::vector<event> out;
  for (auto& entry : reply.elements) {
    if (entry.elements.size() != 2)
      continue;
    auto& fields = entry.elements[1].elements;
    for (size_t k = 0; k + 1 < fields.size(); k += 2) {
      if (fields[k].str != "e" || fields[k + 1].str.size() < 2)
        continue;
      // The stored object with the id first: {"id":"...", ...}.
      auto& stored = fields[k + 1].str;
      out.push_back({entry.elements[0].str,
                     "{\"id\":" + json::quote(entry.elements[0].str) + ","
                       + stored.substr(1)});
    }
  }
  return out;
}

std::string to_json(const std::vector<event>& evs, const std::string& after) {
  json::writer w;
  w.begin_object().key("events").begin_array();
  for (auto& e : evs)
    w.raw(e.json);
  w.end_array().kv("last", evs.empty() ? after : evs.back().id).end_object();
  return w.take();
}

result<page> from_json(const std::string& body) {
  std::string err;
  auto v = json::parse(body, err);
  if (!v || !v->is_object())
    return status::fail(v ? "events: not a JSON object" : "events: " + err);
  auto list = v->find("events");
  if (list == nullptr || !list->is_array())
    return status::fail("events: no \"events\" array");
  page out;
  out.last = v->get_string("last").value_or("");
  for (auto& e : list->array)
    out.events.push_back({e.get_string("id").value_or(""), e.dump()});
  return out;
}

std::optional<std::string> read_page(redis_writer& redis, const std::string& after,
                                     uint64_t count) {
  auto reply = redis.command(read_after(after, count));
  if (!reply)
    return std::nullopt;
  return to_json(from_reply(*reply), after);
}

std::string to_sse(const std::vector<event>& evs) {
  std::string out;
  for (auto& e : evs)
    out += "id: " + e.id + "\nevent: " + kind_of(e.json) + "\ndata: " + e.json + "\n\n";
  return out;
}

} // namespace atlas::events
