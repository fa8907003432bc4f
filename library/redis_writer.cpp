#include "library/redis_writer.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>

#include "messages/redis_keys.hpp"

namespace atlas {

namespace {

// KEYS[1]: the lease; ARGV[1]: the lease value of this master ("" when not
// fenced), then each command as its argument count followed by its
// arguments. Runs them all (error replies kept in place) only while the
// lease is still this master's. A command whose first word is IFOK runs only
// when the one before it succeeded (not nil, not an error), and is nil
// otherwise: how a write adds something only once (SET NX, then IFOK ...).
constexpr const char* fenced_script = R"lua(
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED this master no longer holds the lease (' .. ARGV[1] .. ')')
end
local function ok(r) return r and not (type(r) == 'table' and r.err) end
local out, i, prev = {}, 2, true
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local r = false
  if ARGV[i + 1] ~= 'IFOK' then
    r = redis.pcall(unpack(ARGV, i + 1, i + n))
  elseif ok(prev) then
    r = redis.pcall(unpack(ARGV, i + 2, i + n))
  end
  out[#out + 1] = r
  prev = r
  i = i + n + 1
end
return out
)lua";

} // namespace

redis_writer::redis_writer(redis_target target, redis_write_options opts, std::string who)
  : redis_(std::move(target)), opts_(std::move(opts)), who_(std::move(who)) {
}

/// Runs `attempt` until it succeeds or the retry budget is spent. Blocking
/// is fine: the owning actor runs on its own thread.
template <class F>
auto redis_writer::with_retry(F attempt) -> decltype(attempt(std::declval<std::string&>())) {
  std::string err;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(opts_.retry_s);
  auto backoff = std::chrono::milliseconds(50);
  for (;;) {
    if (auto res = attempt(err))
      return res;
    if (err.starts_with("FENCED")) { // the lease is gone for good: no retry can succeed
      spdlog::error("{}: write refused: {}", who_, err);
      return {};
    }
    if (std::chrono::steady_clock::now() + backoff > deadline) {
      spdlog::error("{}: Redis unavailable: {}", who_, err);
      return {};
    }
    spdlog::warn("{}: Redis call failed, retrying in {} ms: {}", who_, backoff.count(), err);
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
}

/// One try of `cmds` in one round trip. Fenced (the active master): inside
/// one script that first checks the lease still names this master, so a
/// master that lost it writes nothing, and the batch is atomic. Otherwise
/// `atomic` wraps them in MULTI/EXEC. With replicas to wait for, WAIT
/// follows in the same round trip and must see enough of them.
std::optional<std::vector<redis_reply>> redis_writer::write_once(const std::vector<cmd>& cmds,
                                                                 bool atomic, std::string& err) {
  const bool conditional = std::any_of(cmds.begin(), cmds.end(), [](const cmd& c) {
    return !c.empty() && c[0] == if_ok;
  });
  const bool fenced = !opts_.fence.empty() || conditional; // the script runs both
  const bool wait = opts_.min_replica_acks > 0;
  std::vector<cmd> wrapped;
  if (fenced) {
    cmd eval{"EVAL", fenced_script, "1", keys::master_lease, opts_.fence};
    for (auto& c : cmds) {
      eval.push_back(std::to_string(c.size()));
      eval.insert(eval.end(), c.begin(), c.end());
    }
    wrapped.push_back(std::move(eval));
  } else if (atomic || wait) {
    if (atomic)
      wrapped.push_back({"MULTI"});
    wrapped.insert(wrapped.end(), cmds.begin(), cmds.end());
    if (atomic)
      wrapped.push_back({"EXEC"});
  }
  if (wait)
    wrapped.push_back({"WAIT", std::to_string(opts_.min_replica_acks),
                       std::to_string(opts_.wait_timeout_ms)});
  auto replies = redis_.pipeline(wrapped.empty() ? cmds : wrapped, &err);
  if (!replies)
    return std::nullopt;
  if (wait) {
    auto acks = replies->back().integer;
    if (replies->back().type != redis_reply::kind::integer || acks < opts_.min_replica_acks) {
      err = "only " + std::to_string(acks) + " of " + std::to_string(opts_.min_replica_acks)
            + " Redis replica(s) confirmed the write within "
            + std::to_string(opts_.wait_timeout_ms) + " ms";
      redis_.disconnect(); // behind sentinels, the next try asks them where the primary is
      return std::nullopt;
    }
    replies->pop_back();
  }
  if (fenced || atomic) {
    auto& last = replies->back();
    if (last.type == redis_reply::kind::array)
      return std::move(last.elements);
    err = last.is_error() ? last.str : "Redis refused the transaction";
    return std::nullopt;
  }
  return replies;
}

std::optional<std::vector<redis_reply>> redis_writer::transaction(const std::vector<cmd>& cmds) {
  return with_retry([&](std::string& err) { return write_once(cmds, true, err); });
}

std::optional<std::vector<redis_reply>> redis_writer::pipeline(const std::vector<cmd>& cmds) {
  auto replies = with_retry([&](std::string& err) { return write_once(cmds, false, err); });
  if (replies)
    for (size_t i = 0; i < replies->size() && i < cmds.size(); ++i)
      if ((*replies)[i].is_error())
        spdlog::error("{}: Redis refused {} {}: {}", who_, cmds[i][0],
                      cmds[i].size() > 1 ? cmds[i][1] : "", (*replies)[i].str);
  return replies;
}

std::optional<std::vector<redis_reply>> redis_writer::reads(const std::vector<cmd>& cmds) {
  return with_retry([&](std::string& err) { return redis_.pipeline(cmds, &err); });
}

std::optional<redis_reply> redis_writer::command(const cmd& c) {
  return with_retry([&](std::string& err) { return redis_.command(c, &err); });
}

std::string redis_writer::describe() const {
  return "Redis " + redis_.host() + ":" + std::to_string(redis_.port())
         + (redis_.connected() ? " connected" : " not connected")
         + (opts_.fence.empty() ? ""
                                : ", fenced by lease epoch "
                                    + opts_.fence.substr(0, opts_.fence.find(' ')));
}

} // namespace atlas
