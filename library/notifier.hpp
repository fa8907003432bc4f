#pragma once

// Notifications of job transitions to webhooks and Slack, on the active
// master only: a consumer of the event stream `atlas:events`
// (library/events.hpp), apart from dispatch. One thread reads the stream;
// each sink has its own thread and a bounded queue, so a slow or hanging
// receiver delays nothing but its own notifications, and never the master.
//
// Delivery is at least once per matching event and sink: after each event a
// sink is done with, its cursor (the event's stream id) is written to Redis
// (keys::notify_cursors), fenced by the master's lease; a new master starts
// each sink after its cursor, and a sink seen for the first time at the
// stream's end. An event sent again after a crash carries the same
// X-Atlas-Event-Id. Plain C++ threads; no CAF.

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "adapters/redis_client.hpp"
#include "adapters/status.hpp"
#include "library/redis_writer.hpp"
#include "library/settings/notifications.hpp"

namespace atlas {

struct notifier_options {
  redis_target target;
  redis_write_options writes; // fence: the active master's lease value
  std::vector<notify_sink_settings> sinks;
};

/// Owns its threads. start() and stop() are for one thread (the one that
/// brings the master up and down); copying is deleted.
class notifier {
public:
  explicit notifier(notifier_options opts);
  ~notifier(); // stop()

  notifier(const notifier&) = delete;
  notifier& operator=(const notifier&) = delete;

  /// Reads the sinks' cursors (and records the stream's end for new sinks),
  /// then starts the threads. Blocks on Redis; fails when it is unavailable.
  status start();

  /// Stops the threads: within about a second, a request in flight
  /// abandoned (its event is sent again by the next master).
  void stop();

  struct sink; // one sink's queue, cursor and thread (notifier.cpp)

private:
  void read_loop();

  notifier_options opts_;
  std::vector<std::shared_ptr<sink>> sinks_;
  std::string after_; // where the reader goes on from
  std::atomic<bool> stopping_{false};
  std::thread reader_;
};

} // namespace atlas
