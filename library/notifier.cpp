#include "library/notifier.hpp"

#include <condition_variable>
#include <mutex>

#include <spdlog/spdlog.h>

#include "adapters/hmac.hpp"
#include "adapters/http_client.hpp"
#include "adapters/json.hpp"
#include "library/events.hpp"
#include "library/metrics.hpp"
#include "library/notify_policy.hpp"
#include "messages/redis_keys.hpp"

namespace atlas {

struct notifier::sink {
  sink(notify_sink_settings s, const notifier_options& o, const std::atomic<bool>& stop)
    : cfg(std::move(s)), queue(static_cast<size_t>(cfg.max_queue)),
      redis(o.target, o.writes, "notifier " + cfg.name), stopping(stop) {}

  notify_sink_settings cfg;
  std::mutex m;
  std::condition_variable cv;
  notify::bounded_queue<notify::job_event> queue; // under m
  std::string seen;      // under m: the last stream id handed to this sink
  std::string persisted; // the cursor as last written (this sink's thread only)
  std::string start;     // its cursor when the notifier started
  redis_writer redis;    // this sink's thread only (after start())
  const std::atomic<bool>& stopping;
  std::thread thread;

  void run();
  bool deliver(const notify::job_event& ev);
  http_result post(const notify::job_event& ev);
  void write_cursor(const std::string& id);
  bool pause(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(m);
    return !cv.wait_for(lock, d, [&] { return stopping.load(); });
  }
};

namespace {

/// The last id of the stream, or "0" when it is empty.
std::optional<std::string> stream_end(redis_writer& redis) {
  auto r = redis.command({"XREVRANGE", keys::events, "+", "-", "COUNT", "1"});
  if (!r || r->is_error())
    return std::nullopt;
  if (r->elements.empty() || r->elements[0].elements.empty())
    return std::string{"0"};
  return r->elements[0].elements[0].str;
}

} // namespace

notifier::notifier(notifier_options opts) : opts_(std::move(opts)) {}

notifier::~notifier() { stop(); }

status notifier::start() {
  if (opts_.sinks.empty())
    return status::success();
  redis_writer redis(opts_.target, opts_.writes, "notifier");
  auto stored = redis.command({"HGETALL", keys::notify_cursors});
  auto end = stream_end(redis);
  if (!stored || stored->is_error() || !end)
    return status::fail("notifications: cannot read their cursors from Redis");
  std::vector<redis_writer::cmd> fresh;
  bool first = true;
  for (auto& s : opts_.sinks) {
    auto k = std::make_shared<sink>(s, opts_, stopping_);
    k->start = *end;
    bool known = false;
    for (size_t i = 0; i + 1 < stored->elements.size(); i += 2)
      if (stored->elements[i].str == s.name) {
        k->start = stored->elements[i + 1].str;
        known = true;
      }
    if (!known) // a new sink starts now, not with the stream's history
      fresh.push_back({"HSET", keys::notify_cursors, s.name, k->start});
    k->seen = k->persisted = k->start;
    if (first || notify::id_before(k->start, after_))
      after_ = k->start;
    first = false;
    spdlog::info("notifications: sink {} ({}) goes on after event {}", s.name, s.kind, k->start);
    sinks_.push_back(std::move(k));
  }
  if (!fresh.empty() && !redis.pipeline(fresh))
    return status::fail("notifications: cannot record the new sinks' cursors in Redis");
  for (auto& k : sinks_)
    k->thread = std::thread([k] { k->run(); });
  reader_ = std::thread([this] { read_loop(); });
  return status::success();
}

void notifier::stop() {
  stopping_ = true;
  if (reader_.joinable())
    reader_.join();
  for (auto& k : sinks_) {
    {
      std::lock_guard<std::mutex> lock(k->m);
    }
    k->cv.notify_all();
    if (k->thread.joinable())
      k->thread.join();
  }
  sinks_.clear();
}

void notifier::read_loop() {
  redis_writer redis(opts_.target, opts_.writes, "notifier");
  while (!stopping_) {
    // Blocks in Redis up to a second: new events arrive at once, and a stop
    // is seen within that second.
    auto r = redis.command({"XREAD", "COUNT", std::to_string(events::max_read), "BLOCK", "1000",
                            "STREAMS", keys::events, after_.empty() ? "0" : after_});
    if (!r || r->is_error()) {
      if (r)
        spdlog::warn("notifications: reading {}: {}", keys::events, r->str);
      std::this_thread::sleep_for(std::chrono::seconds(1));
      continue;
    }
    if (r->is_nil() || r->elements.empty() || r->elements[0].elements.size() != 2)
      continue;
    auto evs = events::from_reply(r->elements[0].elements[1]);
    for (auto& e : evs) {
      auto ev = notify::parse_job_event(e.id, e.json);
      for (auto& k : sinks_) {
        if (!notify::id_before(k->start, e.id))
          continue; // this sink was done with it before the restart
        bool wake = false;
        size_t dropped = 0;
        {
          std::lock_guard<std::mutex> lock(k->m);
          if (ev && notify::wanted(k->cfg, *ev)) {
            dropped = k->queue.push(*ev);
            wake = true;
          }
          k->seen = e.id;
        }
        if (dropped > 0) {
          spdlog::warn("notifications: sink {} is {} events behind; dropped the oldest",
                       k->cfg.name, k->cfg.max_queue);
          metrics::notification(k->cfg.name, "dropped");
        }
        if (wake)
          k->cv.notify_one();
      }
    }
    if (!evs.empty())
      after_ = evs.back().id;
    else if (auto& entries = r->elements[0].elements[1].elements; !entries.empty())
      after_ = entries.back().elements.empty() ? after_ : entries.back().elements[0].str;
  }
}

void notifier::sink::run() {
  while (!stopping) {
    std::optional<notify::job_event> ev;
    std::string cursor;
    {
      std::unique_lock<std::mutex> lock(m);
      // Unwanted events move the cursor too, written once a second at most.
      cv.wait_for(lock, std::chrono::seconds(1), [&] { return stopping.load() || !queue.empty(); });
      if (stopping)
        return;
      ev = queue.pop();
      if (!ev && seen != persisted)
        cursor = seen;
    }
    if (ev) {
      deliver(*ev);
      std::lock_guard<std::mutex> lock(m);
      cursor = queue.empty() ? seen : ev->id;
    }
    if (!cursor.empty() && cursor != persisted && !stopping)
      write_cursor(cursor);
  }
}

void notifier::sink::write_cursor(const std::string& id) {
  if (redis.pipeline({{"HSET", keys::notify_cursors, cfg.name, id}}))
    persisted = id;
}

http_result notifier::sink::post(const notify::job_event& ev) {
  http_options o;
  o.peer = "notification sink " + cfg.name; // never the URL: it may hold a secret
  o.connect_timeout_s = std::min(cfg.connect_timeout_s, cfg.timeout_s);
  o.request_timeout_s = cfg.timeout_s;
  o.cancel = &stopping;
  o.headers = {"X-Atlas-Event-Id: " + ev.id, "X-Atlas-Event: job." + ev.state,
               "User-Agent: atlas-notifier"};
  if (cfg.kind == "slack") {
    o.token = cfg.secret;
    return http_client::request("POST", cfg.url, notify::slack_body(ev, cfg.channel),
                                "application/json; charset=utf-8", o);
  }
  o.token = "";
  auto body = notify::webhook_body(ev);
  o.headers.push_back("X-Atlas-Signature: sha256=" + hmac_sha256_hex(cfg.secret, body));
  return http_client::post_json(cfg.url, body, o);
}

bool notifier::sink::deliver(const notify::job_event& ev) {
  std::string why;
  for (int attempt = 1; attempt <= cfg.max_tries && !stopping; ++attempt) {
    if (attempt > 1 && !pause(notify::retry_delay(attempt)))
      return false;
    auto r = post(ev);
    bool ok = r.ok();
    if (ok && cfg.kind == "slack") { // Slack answers 200 with {"ok": false, "error": ...}
      std::string err;
      auto v = json::parse(r.body, err);
      auto flag = v ? v->find("ok") : nullptr;
      ok = flag != nullptr && flag->boolean;
      if (!ok)
        why = "Slack answered " + (v ? v->get_string("error").value_or("not ok") : "no JSON");
    } else if (!ok) {
      why = r.error.empty() ? "HTTP " + std::to_string(r.status) : r.error;
    }
    if (ok) {
      metrics::notification(cfg.name, "sent");
      return true;
    }
    if (stopping)
      return false; // abandoned: the next master sends it again
    spdlog::warn("notifications: sink {} try {}/{} failed: {} job_id={} event={}", cfg.name,
                 attempt, cfg.max_tries, why, ev.job_id, ev.id);
    if (!r.ok() && !notify::worth_retrying(r.status, !r.error.empty()))
      break;
  }
  spdlog::error("notifications: sink {} gave up on event {} ({} of job_id={}): {}", cfg.name,
                ev.id, ev.state, ev.job_id, why);
  metrics::notification(cfg.name, "failed");
  return false;
}

} // namespace atlas
