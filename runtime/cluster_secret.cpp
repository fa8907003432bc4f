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

std::string read_first_word(const std::string& path) {
  std::string word;
  std::ifstream(path) >> word;
  return word;
}

/// The secret in `path`, or a new random one written there (readable by its
/// owner only) when `create`; another process writing it first wins.
std::string ensure_secret_file(const std::string& path, bool create) {
  auto secret = read_first_word(path);
  if (!secret.empty() || !create)
    return secret;
  std::ifstream random("/dev/urandom", std::ios::binary);
  unsigned char bytes[24];
  random.read(reinterpret_cast<char*>(bytes), sizeof(bytes));
  static const char* hex = "0123456789abcdef";
  for (auto b : bytes) {
    secret.push_back(hex[b >> 4]);
    secret.push_back(hex[b & 15]);
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd >= 0) {
    auto text = secret + "\n";
    [[maybe_unused]] auto n = ::write(fd, text.data(), text.size());
    ::close(fd);
    return secret;
  }
  return read_first_word(path);
}

} // namespace

std::string read_cluster_secret(const node_config& cfg) {
  if (!cfg.cluster_secret.empty())
    return cfg.cluster_secret;
  if (auto env = std::getenv("ATLAS_CLUSTER_SECRET"); env != nullptr && *env != '\0')
    return env;
  return read_first_word(secret_file(cfg));
}

std::string ensure_cluster_secret(const node_config& cfg) {
  auto secret = read_cluster_secret(cfg);
  if (!secret.empty() || !cfg.is_master)
    return secret;
  return ensure_secret_file(secret_file(cfg), true);
}

std::string ensure_metrics_token(const node_config& cfg) {
  return ensure_secret_file(cfg.foundations_home + "/config/metrics.token", cfg.is_master);
}

} // namespace atlas
