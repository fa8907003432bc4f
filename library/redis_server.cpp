#include "library/redis_server.hpp"

#include <arpa/inet.h>
#include <filesystem>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "adapters/redis_client.hpp"

namespace atlas {

process_spec redis_process(const node_config& cfg) {
  auto dir = cfg.node_dir + "/redis";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  // Workers on other hosts reach the master's Redis unless the node only
  // serves loopback.
  auto host = cfg.host_address;
  bool loopback = host.find("://127.") != std::string::npos
                  || host.find("://localhost") != std::string::npos;
  process_spec spec;
  spec.argv = {cfg.redis_binary, "--port", std::to_string(cfg.redis_port),
               "--bind", loopback ? "127.0.0.1" : "0.0.0.0",
               "--protected-mode", "no", "--appendonly", "yes", "--appendfsync",
               "everysec", "--save", "", "--dir", dir, "--daemonize", "no"};
  for (char** e = environ; e != nullptr && *e != nullptr; ++e)
    spec.env.emplace_back(*e);
  spec.cwd = dir;
  spec.log_path = dir + "/redis.log";
  return spec;
}

redis_target redis_target_of(const node_config& cfg) {
  return redis_target{cfg.redis_host, cfg.redis_port, cfg.redis_sentinels, cfg.redis_master_name};
}

bool redis_answers(const std::string& host, uint16_t port,
                   std::chrono::milliseconds timeout) {
  return redis_answers(redis_target{host, port, {}, {}}, timeout);
}

bool redis_answers(const redis_target& target, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    redis_client probe(target, std::chrono::milliseconds(500));
    if (probe.connect()) {
      auto reply = probe.command({"PING"});
      if (reply && reply->type == redis_reply::kind::status)
        return true;
    }
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

bool port_in_use(const std::string& host, uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1)
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool used = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return used;
}

} // namespace atlas
