#include "runtime/ctl/usage_events.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <thread>

#include "library/events.hpp"
#include "library/job_codec.hpp"
#include "library/usage.hpp"

namespace atlas::ctl {

namespace {

constexpr auto follow_period = std::chrono::milliseconds(500);

void write_out(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
}

// One page of events after `after`; fails (exits) like every other question.
events::page read_page(session& s, const std::string& after) {
  auto body = ask<std::string>(s, "the events", events_atom::value, after, events::max_read);
  auto page = events::from_json(body);
  if (!page.ok())
    fail("the master's events: " + page.error());
  return std::move(page.value());
}

} // namespace

int usage_command(session& s, double since, double until, const std::string& by, bool json,
                  const render_options& o) {
  auto body = ask<std::string>(s, "the usage totals", usage_atom::value, since, until);
  auto rows = usage::from_json(body);
  if (!rows.ok())
    fail("the master's usage totals: " + rows.error());
  auto summed = usage::aggregate(rows.value(), by);
  if (!summed.ok())
    usage_error("--by: " + summed.error());
  write_out(json ? usage::to_json(summed.value(), by, since, until) + "\n"
                 : usage_text(summed.value(), by, since, until, o));
  return 0;
}

int events_command(session& s, const std::string& after, bool follow, bool json,
                   const render_options& o, const std::atomic<bool>& stop) {
  std::string last = after;
  while (!stop) {
    auto page = read_page(s, last);
    for (auto& e : page.events)
      write_out((json ? e.json : event_line(e.json, o)) + "\n");
    std::fflush(stdout);
    if (!page.last.empty())
      last = page.last;
    if (page.events.size() >= events::max_read)
      continue; // more are there already
    if (!follow)
      break;
    auto until = std::chrono::steady_clock::now() + follow_period;
    while (!stop && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return 0;
}

std::string now_id() {
  return std::to_string(static_cast<long long>(std::floor(now_seconds() * 1000)));
}

bool event_cursor::arrived(session& s) {
  if (off_)
    return false;
  std::optional<std::string> body;
  (*s.self)
    ->request(s.master, request_timeout, events_atom::value, last_, events::max_read)
    .receive([&](std::string& b) { body = std::move(b); }, [&](caf::error&) {});
  auto page = body ? events::from_json(*body) : result<events::page>(status::fail("no answer"));
  if (!page.ok()) {
    off_ = true;
    return false;
  }
  if (page->events.empty())
    return false;
  last_ = page->last;
  return true;
}

} // namespace atlas::ctl
