#pragma once

// What the notifier (library/notifier.hpp) decides, as plain functions:
// which job events a sink wants, what a webhook or Slack receives, how long
// to wait before trying again, and a queue that stays bounded by dropping
// its oldest entry. No threads, no I/O: tested alone.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "library/settings/notifications.hpp"

namespace atlas::notify {

/// A job event of the stream (library/events.hpp) as notifications use it.
struct job_event {
  std::string id; // the stream id: the idempotency key (X-Atlas-Event-Id)
  std::string job_id, state, from, user, project, node, reason;
  std::optional<int64_t> return_code;
  double time = 0;
};

/// The job event stored as `json` at stream id `id`; nullopt for node
/// events and anything unreadable.
std::optional<job_event> parse_job_event(const std::string& id, const std::string& json);

/// The states a sink sends when it names none.
inline constexpr const char* default_events[] = {"queued", "running", "completed", "failed",
                                                 "cancelled"};

/// The job state an `events:` entry names ("stopped" is "cancelled"), or
/// "" when it names none.
std::string event_state_name(std::string_view entry);

/// Whether `sink` wants `ev`: its state among the sink's events (or the
/// defaults), its project and user among the sink's (empty: any).
bool wanted(const notify_sink_settings& sink, const job_event& ev);

/// The webhook's JSON body: job_id, state, from, user, project, node,
/// reason, return_code (null when none), time, event_id.
std::string webhook_body(const job_event& ev);

/// The original's Slack text ("Job Completed\nJob Id: …\nTimestamp: …\n
/// Project Name: …"), with the time in this machine's local time.
std::string slack_text(const job_event& ev);

/// chat.postMessage's JSON body: {"channel", "text"}.
std::string slack_body(const job_event& ev, const std::string& channel);

/// Whether an answer is worth another try: no answer, 408, 429 and 5xx
/// are; other 4xx (a wrong URL, a refused signature) are not.
bool worth_retrying(long http_status, bool transport_error);

/// The wait before try `next_try` (2, 3, ...): `base` doubled per try
/// since the first, at most `cap`.
std::chrono::milliseconds retry_delay(int next_try,
                                      std::chrono::milliseconds base = std::chrono::milliseconds(500),
                                      std::chrono::milliseconds cap = std::chrono::seconds(30));

/// Whether stream id `a` comes before `b` ("<ms>-<n>"; "" and "0" first).
bool id_before(const std::string& a, const std::string& b);

/// A FIFO of at most `capacity` entries (at least 1): pushing onto a full
/// one drops the oldest. Not thread-safe: its owner locks.
template <class T>
class bounded_queue {
public:
  explicit bounded_queue(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  /// Appends `x`; returns how many entries were dropped to make room (0 or 1).
  size_t push(T x) {
    size_t dropped = 0;
    while (items_.size() >= capacity_) {
      items_.pop_front();
      ++dropped;
    }
    items_.push_back(std::move(x));
    return dropped;
  }

  /// The oldest entry, removed; nullopt when empty.
  std::optional<T> pop() {
    if (items_.empty())
      return std::nullopt;
    T x = std::move(items_.front());
    items_.pop_front();
    return x;
  }

  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  size_t capacity() const { return capacity_; }

private:
  size_t capacity_;
  std::deque<T> items_;
};

} // namespace atlas::notify
