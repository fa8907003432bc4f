#include "adapters/redis_client.hpp"
#include "adapters/wire_counters.hpp"

#include <hiredis/hiredis.h>

#include <cerrno>
#include <cstdlib>
#include <csignal>
#include <ctime>
#include <exception>
#include <pthread.h>
#include <sys/time.h>
#include <utility>

namespace atlas {

namespace {

// hiredis writes with plain write(), so a peer that reset the connection
// raises SIGPIPE, which would kill the process. Block it on this thread for
// the duration of one call and swallow the one we caused (as libpq does), so
// that the process-wide signal disposition stays the program's business.
class sigpipe_guard {
public:
  sigpipe_guard() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    active_ = pthread_sigmask(SIG_BLOCK, &pipe_, &old_) == 0;
    sigset_t pending;
    was_pending_ = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
  }
  ~sigpipe_guard() {
    if (!active_)
      return;
    sigset_t pending;
    if (!was_pending_ && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
      const timespec zero{};
      while (sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  sigpipe_guard(const sigpipe_guard&) = delete;
  sigpipe_guard& operator=(const sigpipe_guard&) = delete;

private:
  sigset_t pipe_{};
  sigset_t old_{};
  bool active_ = false;
  bool was_pending_ = false;
};

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

redis_reply convert(const redisReply& r) {
  redis_reply out;
  switch (r.type) {
    case REDIS_REPLY_STRING:
      out.type = redis_reply::kind::string;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = redis_reply::kind::status;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = redis_reply::kind::error;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = redis_reply::kind::integer;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = redis_reply::kind::array;
      out.elements.reserve(r.elements);
      for (size_t i = 0; i < r.elements; ++i)
        out.elements.push_back(convert(*r.element[i]));
      break;
    default: // REDIS_REPLY_NIL, and nothing else exists in hiredis 0.14
      out.type = redis_reply::kind::nil;
      break;
  }
  return out;
}

bool has_empty_command(const std::vector<std::vector<std::string>>& cmds) {
  for (const auto& c : cmds)
    if (c.empty())
      return true;
  return false;
}

void set_error(std::string* out, std::string message) {
  if (out != nullptr)
    *out = std::move(message);
}

} // namespace

void redis_client::context_deleter::operator()(redisContext* c) const {
  redisFree(c);
}

redis_client::redis_client(std::string host, uint16_t port, std::chrono::milliseconds timeout)
    : redis_client(redis_target{std::move(host), port, {}, {}}, timeout) {}

redis_client::redis_client(redis_target target, std::chrono::milliseconds timeout)
    : target_(std::move(target)), timeout_(timeout) {
  if (timeout_ <= std::chrono::milliseconds::zero())
    timeout_ = std::chrono::milliseconds(1); // hiredis reads 0 as "no timeout"
}

std::string redis_target::describe() const {
  if (sentinels.empty())
    return host + ":" + std::to_string(port);
  std::string out = "primary '" + master_name + "' of sentinels ";
  for (size_t i = 0; i < sentinels.size(); ++i)
    out += (i ? ", " : "") + sentinels[i];
  return out;
}

redis_client::~redis_client() = default;
redis_client::redis_client(redis_client&&) noexcept = default;
redis_client& redis_client::operator=(redis_client&&) noexcept = default;

std::string redis_client::where() const {
  return target_.host + ":" + std::to_string(target_.port);
}

status redis_client::resolve_primary() {
  std::string why;
  for (auto& s : target_.sentinels) {
    auto colon = s.rfind(':');
    auto port = colon == std::string::npos ? 0 : std::atoi(s.c_str() + colon + 1);
    if (port <= 0 || port > 65535) {
      why += "; " + s + ": not host:port";
      continue;
    }
    redis_client sentinel(s.substr(0, colon), static_cast<uint16_t>(port), timeout_);
    std::string err;
    auto reply = sentinel.command({"SENTINEL", "get-master-addr-by-name", target_.master_name}, &err);
    if (reply && reply->type == redis_reply::kind::array && reply->elements.size() == 2) {
      auto p = std::atoi(reply->elements[1].str.c_str());
      if (p > 0 && p <= 65535) {
        target_.host = reply->elements[0].str;
        target_.port = static_cast<uint16_t>(p);
        return status::success();
      }
    }
    why += "; " + s + ": " + (reply ? (reply->is_error() ? reply->str : "does not know '" + target_.master_name + "'") : err);
  }
  return status::fail("no sentinel named the Redis primary '" + target_.master_name + "'" + why);
}

status redis_client::connect() {
  ctx_.reset();
  if (!target_.sentinels.empty())
    if (auto st = resolve_primary(); !st)
      return st;
  const timeval tv = to_timeval(timeout_);
  context_ptr c{redisConnectWithTimeout(target_.host.c_str(), target_.port, tv)};
  if (!c)
    return status::fail("cannot reach Redis at " + where() + ": out of memory");
  if (c->err != 0)
    return status::fail("cannot reach Redis at " + where() + ": " + c->errstr);
  if (redisSetTimeout(c.get(), tv) != REDIS_OK)
    return status::fail("cannot set a timeout on the connection to Redis at " + where() +
                        ": " + c->errstr);
  // Keepalive lets an idle connection to a vanished host fail on its own.
  redisEnableKeepAlive(c.get());
  ctx_ = std::move(c);
  if (!target_.sentinels.empty()) {
    // A sentinel may name a primary that is being demoted: ask it.
    std::string why;
    bool timed_out = false;
    auto role = try_pipeline({{"ROLE"}}, why, timed_out);
    if (!role)
      return status::fail(why);
    auto& r = role->front();
    if (r.type != redis_reply::kind::array || r.elements.empty() || r.elements[0].str != "master") {
      ctx_.reset();
      return status::fail("Redis at " + where() + ", named primary by the sentinels, is not a primary (yet)");
    }
  }
  return status::success();
}

bool redis_client::connected() const {
  return ctx_ != nullptr && ctx_->err == 0;
}

void redis_client::disconnect() {
  ctx_.reset();
}

std::optional<std::vector<redis_reply>> redis_client::try_pipeline(
    const std::vector<std::vector<std::string>>& cmds, std::string& error, bool& timed_out) {
  timed_out = false;
  sigpipe_guard guard;
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (const auto& cmd : cmds) {
    args.clear();
    lens.clear();
    for (const auto& a : cmd) {
      args.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(ctx_.get(), static_cast<int>(args.size()), args.data(),
                               lens.data()) != REDIS_OK) {
      error = "cannot queue a command for Redis at " + where() + ": " + ctx_->errstr;
      ctx_.reset();
      return std::nullopt;
    }
  }
  std::vector<redis_reply> replies;
  replies.reserve(cmds.size());
  for (size_t i = 0; i < cmds.size(); ++i) {
    void* raw = nullptr;
    errno = 0;
    const int rc = redisGetReply(ctx_.get(), &raw);
    const int saved_errno = errno;
    if (rc != REDIS_OK || raw == nullptr) {
      timed_out = ctx_->err == REDIS_ERR_IO &&
                  (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK);
      if (timed_out)
        error = "Redis at " + where() + " did not answer within " +
                std::to_string(timeout_.count()) + " ms";
      else
        error = "lost connection to Redis at " + where() + ": " + ctx_->errstr;
      // Replies still in flight would be read as answers to the next
      // command: the connection cannot be reused.
      ctx_.reset();
      return std::nullopt;
    }
    auto* reply = static_cast<redisReply*>(raw);
    replies.push_back(convert(*reply));
    freeReplyObject(reply);
  }
  // Behind sentinels, a demoted primary refuses writes: the caller's retry
  // must reach the new one, as after a lost connection.
  if (!target_.sentinels.empty())
    for (auto& r : replies)
      if (r.is_error() && r.str.rfind("READONLY", 0) == 0) {
        error = "Redis at " + where() + " is a replica now: " + r.str;
        ctx_.reset();
        return std::nullopt;
      }
  return replies;
}

std::optional<std::vector<redis_reply>> redis_client::pipeline(
    const std::vector<std::vector<std::string>>& cmds, std::string* error) {
  if (has_empty_command(cmds)) {
    set_error(error, "empty Redis command");
    return std::nullopt;
  }
  try {
    std::string why;
    // Two tries at most: the second only when the first hit a broken connection.
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!connected()) {
        if (auto st = connect(); !st) {
          set_error(error, st.error());
          return std::nullopt;
        }
      }
      bool timed_out = false;
      ++wire_counters::redis_round_trips;
      if (auto replies = try_pipeline(cmds, why, timed_out))
        return replies;
      ++wire_counters::redis_errors;
      if (timed_out)
        break;
    }
    set_error(error, std::move(why));
  } catch (const std::exception& e) { // allocation failure copying a reply
    ctx_.reset();
    set_error(error, std::string("Redis client: ") + e.what());
  }
  return std::nullopt;
}

std::optional<redis_reply> redis_client::command(const std::vector<std::string>& argv,
                                                 std::string* error) {
  try {
    auto replies = pipeline({argv}, error);
    if (replies)
      return std::move(replies->front());
  } catch (const std::exception& e) {
    set_error(error, std::string("Redis client: ") + e.what());
  }
  return std::nullopt;
}

std::optional<std::vector<redis_reply>> redis_client::transaction(
    const std::vector<std::vector<std::string>>& cmds, std::string* error) {
  try {
    std::vector<std::vector<std::string>> all;
    all.reserve(cmds.size() + 2);
    all.push_back({"MULTI"});
    all.insert(all.end(), cmds.begin(), cmds.end());
    all.push_back({"EXEC"});
    auto replies = pipeline(all, error);
    if (!replies)
      return std::nullopt;
    auto& exec = replies->back();
    if (exec.type == redis_reply::kind::array)
      return std::move(exec.elements);
    // EXEC refused: name the first command Redis rejected while queueing.
    std::string why = "Redis at " + where() + " refused the transaction: ";
    why += exec.is_error() ? exec.str : std::string("EXEC returned nil");
    if ((*replies)[0].is_error())
      why += " (MULTI: " + (*replies)[0].str + ")";
    for (size_t i = 1; i + 1 < replies->size(); ++i) {
      if ((*replies)[i].is_error()) {
        why += " (command " + std::to_string(i) + ": " + (*replies)[i].str + ")";
        break;
      }
    }
    set_error(error, std::move(why));
  } catch (const std::exception& e) {
    set_error(error, std::string("Redis client: ") + e.what());
  }
  return std::nullopt;
}

} // namespace atlas
