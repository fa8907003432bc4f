#include "library/worker_requests.hpp"

#include <algorithm>
#include <cctype>

#include "adapters/json.hpp"

namespace atlas {

namespace {

bool is_index(std::string_view s) {
  return !s.empty() && s.size() <= 9
         && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_node_id(std::string_view s) {
  return !s.empty() && s.size() <= 253 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ':';
  });
}

} // namespace

std::optional<std::string> worker_node_of(std::string_view body, const std::string& answering,
                                          std::string& error) {
  auto blank = std::all_of(body.begin(), body.end(),
                           [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
  if (blank)
    return answering;
  auto v = json::parse(body, error);
  if (!v)
    return std::nullopt;
  if (!v->is_object()) {
    error = "expected a JSON object such as {\"node\": \"<node id>\"}, or no body";
    return std::nullopt;
  }
  auto node = v->find("node");
  if (node == nullptr || node->is_null())
    return answering;
  if (!node->is_string() || !is_node_id(node->string)) {
    error = "\"node\" must be a node id (a string)";
    return std::nullopt;
  }
  return node->string;
}

std::optional<std::string> worker_key_of(const std::vector<std::string>& parts,
                                         const std::string& answering) {
  if (parts.size() == 3 && is_node_id(parts[1]) && is_index(parts[2]))
    return parts[1] + "/" + parts[2];
  if (parts.size() != 2)
    return std::nullopt;
  if (is_index(parts[1]))
    return answering + "/" + parts[1];
  for (std::string_view sep : {"%2F", "%2f"})
    if (auto at = parts[1].find(sep); at != std::string::npos) {
      auto node = parts[1].substr(0, at);
      auto index = parts[1].substr(at + sep.size());
      if (is_node_id(node) && is_index(index))
        return node + "/" + index;
    }
  return std::nullopt;
}

} // namespace atlas
