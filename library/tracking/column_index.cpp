#include "library/tracking/column_index.hpp"

#include <map>
#include <optional>

#include "library/job_index.hpp"

namespace atlas::dashboard {

namespace {

std::optional<double> number_of(const json::value* v) {
  if (v != nullptr && v->is_number())
    return v->number;
  return std::nullopt;
}

} // namespace

std::vector<std::vector<std::string>> column_writes(const std::string& project,
                                                    const std::string& id,
                                                    const json::value& entries) {
  std::map<std::string, std::optional<double>> last; // column -> its last value here
  for (auto& e : entries.array) {
    auto kind = e.get_string("kind");
    auto key = e.get_string("key");
    if (kind && key && (*kind == "metric" || *kind == "param"))
      last[*kind + ":" + *key] = number_of(e.find("value"));
  }
  std::vector<std::vector<std::string>> out;
  for (auto& [column, value] : last)
    out.push_back(job_index::column_value(project, id, column, value));
  return out;
}

std::vector<std::vector<std::string>> column_backfill(const std::string& project,
                                                      const std::string& id,
                                                      const redis_reply& metrics,
                                                      const redis_reply& params) {
  std::vector<std::vector<std::string>> out;
  auto each = [&](const redis_reply& hash, const std::string& prefix, bool latest_object) {
    for (size_t i = 0; i + 1 < hash.elements.size(); i += 2) {
      std::string err;
      auto v = json::parse(hash.elements[i + 1].str, err);
      const json::value* value = v ? &*v : nullptr;
      if (latest_object) // a metric's hash holds {"value", "step", "time"}
        value = value && value->is_object() ? value->find("value") : nullptr;
      if (auto n = number_of(value))
        out.push_back(job_index::column_value(project, id, prefix + hash.elements[i].str, n));
    }
  };
  each(metrics, "metric:", true);
  each(params, "param:", false);
  return out;
}

} // namespace atlas::dashboard
