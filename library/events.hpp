#pragma once

// The event stream: every job transition and node event, in the Redis
// stream `atlas:events` (ids "<ms>-<n>", increasing), so a client can follow
// it and resume after any restart from the last id it saw. Job transitions
// are added by the same atomic write that stores the record, so the stream
// holds exactly the transitions Redis holds. Plain C++ (no actors).
//
// An event is a JSON object; every event has "id" (the stream id, added
// when read), "time" (epoch seconds) and "kind":
// - "job":  job_id, state, from (the state before, "" for the first), user,
//   project, node, slot, reason, return_code (null unless ended with one),
//   n (its place in the job's history, 1 for queued)
// - "node": node, event ("joined", "left", "drained", "undrained"), detail

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "adapters/redis_client.hpp"
#include "adapters/status.hpp"
#include "library/redis_writer.hpp"
#include "messages/job.hpp"

namespace atlas::events {

using cmd = std::vector<std::string>;

/// The stream keeps about this many events (XADD MAXLEN ~): some 30 MB of
/// Redis, the last ~25,000 jobs' transitions for a client to resume from.
constexpr uint64_t max_events = 100'000;

/// The most events one read answers.
constexpr uint64_t max_read = 1000;

/// The event of rec.history[index] (a "job" event).
std::string job_event(const job_record& rec, size_t index);

/// A "node" event.
std::string node_event(const std::string& node, const std::string& what,
                       const std::string& detail, double time);

/// XADD of one event (JSON object) to the stream.
cmd publish(const std::string& event);

/// XADDs of rec.history[from, size).
std::vector<cmd> publish_job(const job_record& rec, size_t from);

/// Whether `id` is a stream id ("<ms>-<n>" or "<ms>") or "" / "0" (from the
/// start): what may follow `after=` and Last-Event-ID.
bool valid_id(const std::string& id);

/// XRANGE of up to `count` (at most max_read) events after `after`.
cmd read_after(const std::string& after, uint64_t count);

/// One event per element of an XRANGE reply: the stored object with "id".
struct event {
  std::string id;
  std::string json;
};
std::vector<event> from_reply(const redis_reply& reply);

/// {"events": [...], "last": the last id (or `after` when none)}.
std::string to_json(const std::vector<event>& evs, const std::string& after);

/// to_json() read back (atlas-ctl, the gateway's follow).
struct page {
  std::vector<event> events;
  std::string last;
};
result<page> from_json(const std::string& body);

/// A page of events after `after` (checked with valid_id first) read on
/// `redis`: to_json()'s text; nullopt when Redis is unavailable.
std::optional<std::string> read_page(redis_writer& redis, const std::string& after,
                                     uint64_t count);

/// Server-sent events: "id: <id>\nevent: <kind>\ndata: <json>\n\n" each.
std::string to_sse(const std::vector<event>& evs);

} // namespace atlas::events
