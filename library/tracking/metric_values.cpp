#include "library/tracking/metric_values.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string_view>

#include "messages/redis_keys.hpp"

namespace atlas::dashboard {

namespace {

/// The metric names of a validated batch, first logged first, with their
/// values (JSON text) in logged order.
using batch_values = std::vector<std::pair<std::string, std::vector<std::string>>>;
batch_values metric_values_of(const json::value& entries) {
  batch_values out;
  std::map<std::string, size_t> at;
  for (auto& e : entries.array) {
    if (e.get_string("kind") != "metric")
      continue;
    auto key = *e.get_string("key");
    auto [it, fresh] = at.try_emplace(key, out.size());
    if (fresh)
      out.emplace_back(key, std::vector<std::string>{});
    out[it->second].second.push_back(e.find("value")->dump());
  }
  return out;
}

} // namespace

// JSON text never holds a raw newline: the values are split at newlines.
std::string appended_values(const std::string& current, const std::vector<std::string>& added) {
  std::vector<std::string_view> values;
  int64_t count = 0;
  if (auto nl = current.find('\n'); nl != std::string::npos) {
    count = std::strtoll(current.c_str(), nullptr, 10);
    std::string_view rest(current);
    for (size_t at = nl + 1; at < rest.size();) {
      auto next = std::min(rest.find('\n', at), rest.size());
      values.push_back(rest.substr(at, next - at));
      at = next + 1;
    }
  }
  for (auto& v : added)
    values.push_back(v);
  count += static_cast<int64_t>(added.size());
  auto first = values.size() > max_listed_metric_values ? values.size() - max_listed_metric_values : 0;
  std::string out = std::to_string(count);
  for (size_t i = first; i < values.size(); ++i)
    out.append("\n").append(values[i]);
  return out;
}

bool metric_value_commands(const redis_tx& tx, const std::string& id, const json::value& entries,
                           std::vector<redis_cmd>& out) {
  auto batch = metric_values_of(entries);
  if (batch.empty())
    return true;
  redis_cmd get{"HMGET", keys::job_metric_values(id)};
  for (auto& [name, values] : batch)
    get.push_back(name);
  auto current = tx({get});
  if (!current || current->size() != 1 || current->front().elements.size() != batch.size())
    return false;
  redis_cmd set{"HSET", keys::job_metric_values(id)};
  for (size_t i = 0; i < batch.size(); ++i) {
    auto& stored = current->front().elements[i];
    set.push_back(batch[i].first);
    set.push_back(appended_values(stored.type == redis_reply::kind::string ? stored.str : "",
                                  batch[i].second));
  }
  out.push_back(std::move(set));
  return true;
}

void values_object(json::writer& w, const std::string& text) {
  auto nl = text.find('\n');
  w.begin_object().kv("count", static_cast<int64_t>(std::strtoll(text.c_str(), nullptr, 10)))
    .key("values").begin_array();
  for (size_t at = nl; at != std::string::npos && at + 1 < text.size();) {
    auto next = text.find('\n', at + 1);
    w.raw(text.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1));
    at = next;
  }
  w.end_array().end_object();
}

} // namespace atlas::dashboard
