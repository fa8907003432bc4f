#include "runtime/cluster_secret.hpp"

#include <cstdlib>
#include <fstream>

#include <fcntl.h>
#include <unistd.h>

namespace atlas {

namespace {

std::string secret_file(const node_config& cfg) {
  return cfg.foundations_home + "/config/cluster.secret";
}

} // namespace

std::string read_cluster_secret(const node_config& cfg) {
  if (!cfg.cluster_secret.empty())
    return cfg.cluster_secret;
  if (auto env = std::getenv("ATLAS_CLUSTER_SECRET"); env != nullptr && *env != '\0')
    return env;
  std::string secret;
  std::ifstream(secret_file(cfg)) >> secret;
  return secret;
}

std::string ensure_cluster_secret(const node_config& cfg) {
  auto secret = read_cluster_secret(cfg);
  if (!secret.empty() || !cfg.is_master)
    return secret;
  std::ifstream random("/dev/urandom", std::ios::binary);
  unsigned char bytes[24];
  random.read(reinterpret_cast<char*>(bytes), sizeof(bytes));
  static const char* hex = "0123456789abcdef";
  for (auto b : bytes) {
    secret.push_back(hex[b >> 4]);
    secret.push_back(hex[b & 15]);
  }
  auto path = secret_file(cfg);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd >= 0) {
    auto text = secret + "\n";
    [[maybe_unused]] auto n = ::write(fd, text.data(), text.size());
    ::close(fd);
    return secret;
  }
  return read_cluster_secret(cfg); // another master wrote it first
}

} // namespace atlas
