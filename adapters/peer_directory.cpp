#include "adapters/peer_directory.hpp"

#include <algorithm>

namespace atlas {

void peer_directory::add_local(std::string bytes) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (std::find(locals_.begin(), locals_.end(), bytes) == locals_.end())
    locals_.push_back(std::move(bytes));
}

std::string peer_directory::local() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return locals_.empty() ? std::string{} : locals_.front();
}

bool peer_directory::is_local(std::string_view node) const {
  std::lock_guard<std::mutex> guard{mtx_};
  return std::find(locals_.begin(), locals_.end(), node) != locals_.end();
}

bool peer_directory::bind(const std::string& node, const peer_identity& who) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (std::find(locals_.begin(), locals_.end(), node) != locals_.end())
    return false;
  auto [it, added] = peers_.emplace(node, who);
  if (added)
    return true;
  auto& known = it->second;
  return known.verified == who.verified && known.name == who.name && known.role == who.role;
}

std::optional<peer_identity> peer_directory::lookup(std::string_view node) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto it = peers_.find(std::string{node});
  if (it == peers_.end())
    return std::nullopt;
  return it->second;
}

bool peer_directory::name_unverified(const std::string& node, const std::string& name,
                                     const std::string& role) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto it = peers_.find(node);
  if (it == peers_.end() || it->second.verified)
    return false;
  if (it->second.name.empty()) {
    it->second.name = name;
    it->second.role = role;
  }
  return it->second.name == name && it->second.role == role;
}

peer_directory& cluster_peers() {
  static peer_directory dir;
  return dir;
}

} // namespace atlas
