#include "adapters/peer_directory.hpp"

namespace atlas {

void peer_directory::set_local(std::string bytes) {
  std::lock_guard<std::mutex> guard{mtx_};
  local_ = std::move(bytes);
}

std::string peer_directory::local() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return local_;
}

bool peer_directory::bind(const std::string& node, const peer_identity& who) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (node == local_)
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
