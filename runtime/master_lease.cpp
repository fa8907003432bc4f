#include "runtime/master_lease.hpp"

#include <cstdlib>

#include <spdlog/spdlog.h>

#include "messages/redis_keys.hpp"

namespace atlas {

namespace {

// KEYS: lease, epoch. ARGV: node id, host address, ttl (ms).
constexpr const char* acquire_script = R"lua(
local cur = redis.call('GET', KEYS[1])
if cur then
  local node = string.match(cur, '^%d+ (%S+) ')
  if node ~= ARGV[1] then return {0, cur} end
end
local epoch = redis.call('INCR', KEYS[2])
local value = epoch .. ' ' .. ARGV[1] .. ' ' .. ARGV[2]
redis.call('SET', KEYS[1], value, 'PX', ARGV[3])
return {1, value}
)lua";

// KEYS: lease, epoch. ARGV: our value, ttl (ms), our epoch. A lease that is
// gone while no later epoch was handed out (it lapsed while Redis was away,
// or a Redis without persistence restarted empty) is taken back.
constexpr const char* renew_script = R"lua(
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, cur}
end
if not cur and tonumber(redis.call('GET', KEYS[2]) or '0') <= tonumber(ARGV[3]) then
  redis.call('SET', KEYS[2], ARGV[3])
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, ARGV[1]}
end
return {0, cur or ''}
)lua";

// KEYS: lease. ARGV: our value.
constexpr const char* release_script = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

long long now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// {1|0, value} from a script, or unreachable with the reason. With
/// `acks`, WAIT follows in the same round trip and must see them.
master_lease::outcome run(redis_client& redis, std::vector<std::string> cmd,
                          lease_holder& holder, std::string& error, int acks = 0,
                          int wait_ms = 0) {
  std::vector<std::vector<std::string>> cmds{std::move(cmd)};
  if (acks > 0)
    cmds.push_back({"WAIT", std::to_string(acks), std::to_string(wait_ms)});
  auto replies = redis.pipeline(cmds, &error);
  if (!replies)
    return master_lease::outcome::unreachable;
  if (acks > 0 && (replies->back().type != redis_reply::kind::integer
                   || replies->back().integer < acks)) {
    error = "only " + std::to_string(replies->back().integer) + " of " + std::to_string(acks)
            + " Redis replica(s) confirmed the lease within " + std::to_string(wait_ms) + " ms";
    redis.disconnect(); // behind sentinels, the next try asks them again
    return master_lease::outcome::unreachable;
  }
  auto* reply = &replies->front();
  if (reply->type != redis_reply::kind::array || reply->elements.size() != 2) {
    error = "unexpected answer from Redis to the lease script"
            + (reply->is_error() ? ": " + reply->str : std::string{});
    return master_lease::outcome::unreachable;
  }
  holder = lease_holder::parse(reply->elements[1].str);
  return reply->elements[0].integer == 1 ? master_lease::outcome::ours
                                         : master_lease::outcome::held;
}

} // namespace

lease_holder lease_holder::parse(const std::string& value) {
  lease_holder h;
  h.value = value;
  auto a = value.find(' ');
  if (a == std::string::npos)
    return h;
  auto b = value.find(' ', a + 1);
  h.epoch = std::strtoull(value.substr(0, a).c_str(), nullptr, 10);
  h.node_id = value.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1);
  if (b != std::string::npos)
    h.host_address = value.substr(b + 1);
  return h;
}

master_lease::master_lease(redis_target target, std::string node_id, std::string host_address,
                           std::chrono::milliseconds ttl, int min_replica_acks,
                           int wait_timeout_ms)
    : redis_(std::move(target), std::chrono::milliseconds(1000)), node_id_(std::move(node_id)),
      host_address_(std::move(host_address)), ttl_(ttl), min_replica_acks_(min_replica_acks),
      wait_timeout_ms_(wait_timeout_ms) {}

master_lease::outcome master_lease::acquire(lease_holder& holder, std::string& error) {
  auto got = run(redis_,
                 {"EVAL", acquire_script, "2", keys::master_lease, keys::master_epoch, node_id_,
                  host_address_, std::to_string(ttl_.count())},
                 holder, error, min_replica_acks_, wait_timeout_ms_);
  if (got == outcome::ours) {
    mine_ = holder;
    withdraw_standby();
  }
  return got;
}

master_lease::outcome master_lease::renew(lease_holder& holder, std::string& error) {
  return run(redis_,
             {"EVAL", renew_script, "2", keys::master_lease, keys::master_epoch, mine_.value,
              std::to_string(ttl_.count()), std::to_string(mine_.epoch)},
             holder, error);
}

void master_lease::release() {
  if (!mine_.value.empty())
    redis_.command({"EVAL", release_script, "1", keys::master_lease, mine_.value});
}

void master_lease::announce_standby() {
  redis_.command({"ZADD", keys::master_standbys, std::to_string(now_ms()),
                  node_id_ + " " + host_address_});
}

void master_lease::withdraw_standby() {
  redis_.command({"ZREM", keys::master_standbys, node_id_ + " " + host_address_});
}

lease_keeper::lease_keeper(master_lease& lease) : lease_(lease) {
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock{mtx_};
    while (!wake_.wait_for(lock, lease_.ttl() / 3, [this] { return done_; })) {
      lease_holder holder;
      std::string error;
      auto got = lease_.renew(holder, error);
      if (got == master_lease::outcome::held)
        spdlog::error("master lease lost to {} while starting", holder.node_id);
      else if (got == master_lease::outcome::unreachable)
        spdlog::warn("master lease: Redis unreachable while starting ({})", error);
    }
  });
}

lease_keeper::~lease_keeper() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    done_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

bool read_masters(redis_client& redis, std::chrono::milliseconds ttl, lease_holder& active,
                  std::vector<standby_master>& standbys) {
  auto replies = redis.pipeline(
    {{"GET", keys::master_lease},
     {"ZRANGEBYSCORE", keys::master_standbys, std::to_string(now_ms() - 3 * ttl.count()), "+inf"}});
  if (!replies)
    return false;
  auto& lease = (*replies)[0];
  active = lease.type == redis_reply::kind::string ? lease_holder::parse(lease.str) : lease_holder{};
  standbys.clear();
  for (auto& e : (*replies)[1].elements) {
    auto space = e.str.find(' ');
    auto node = e.str.substr(0, space);
    if (node != active.node_id)
      standbys.push_back({node, space == std::string::npos ? "" : e.str.substr(space + 1)});
  }
  return true;
}

} // namespace atlas
