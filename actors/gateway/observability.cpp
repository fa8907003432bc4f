// The gateway's observability routes: /metrics (Prometheus text format),
// the event stream (/api/v1/events, JSON pages or server-sent events) and
// usage totals (/api/v1/usage). Events and usage are read on this node's
// tracking connection (never behind the master's writes), so every node
// answers them; the cluster's gauges come from the master.

#include <chrono>
#include <ctime>
#include <string>

#include "actors/gateway/gateway_state.hpp"
#include "library/events.hpp"
#include "library/metrics.hpp"
#include "library/usage.hpp"
#include "messages/errors.hpp"

namespace atlas::gateway {

namespace {

/// Epoch seconds from "YYYY-MM-DD" (that day's start, UTC; `end`: its last
/// second) or a plain number; nullopt for anything else.
std::optional<double> when_of(const std::string& text, bool end) {
  if (text.size() == 10 && text[4] == '-' && text[7] == '-') {
    std::tm t{};
    if (::strptime(text.c_str(), "%Y-%m-%d", &t) == nullptr)
      return std::nullopt;
    auto day = static_cast<double>(::timegm(&t));
    return end ? day + 86399.999 : day;
  }
  char* stop = nullptr;
  double v = std::strtod(text.c_str(), &stop);
  if (text.empty() || stop != text.c_str() + text.size() || !(v >= 0) || v > 1e11)
    return std::nullopt;
  return v;
}

bool wants_follow(const http_request& req, std::map<std::string, std::string>& q) {
  auto f = q.find("follow");
  if (f != q.end())
    return f->second != "0" && f->second != "false";
  auto accept = req.headers.find("accept");
  return accept != req.headers.end()
         && accept->second.find("text/event-stream") != std::string::npos;
}

} // namespace

void serve_metrics(gateway_ptr self, answer rp) {
  auto& st = self->state;
  auto local = metrics::exposition();
  auto text_answer = [](std::string body) {
    http_response r;
    r.content_type = metrics::content_type;
    r.body = std::move(body);
    return r;
  };
  if (!st.cfg->is_master || !st.master)
    return give(rp, text_answer(std::move(local)));
  self->request(st.master, std::chrono::seconds(5), metrics_atom::value)
    .then([=](std::string& cluster) mutable { rp.deliver(text_answer(local + cluster)); },
          // A standby master (or one busy past the deadline): this process only.
          [=](caf::error&) mutable { rp.deliver(text_answer(local)); });
}

void read_events(gateway_ptr self, answer rp, const http_request& req) {
  auto q = parse_query(req.query);
  std::string after = q.count("after") ? q["after"] : "";
  if (auto last = req.headers.find("last-event-id"); !q.count("after") && last != req.headers.end())
    after = last->second;
  if (!events::valid_id(after))
    return give(rp, error_answer(400, "after: '" + after + "' is not an event id (\"<ms>-<n>\")"));
  bool follow = wants_follow(req, q);
  self->request(self->state.tracking, std::chrono::seconds(30), events_atom::value, after,
                events::max_read)
    .then(
      [=](std::string& body) mutable {
        if (!follow) {
          rp.deliver(json_answer(200, std::move(body)));
          return;
        }
        auto page = events::from_json(body);
        if (!page) {
          rp.deliver(error_answer(500, page.error()));
          return;
        }
        http_response r;
        r.content_type = "text/event-stream";
        r.headers["Cache-Control"] = "no-cache";
        r.stream = true;
        r.body = events::to_sse(page->events);
        r.stream_cursor = page->last.empty() ? (after.empty() ? "0" : after) : page->last;
        rp.deliver(std::move(r));
      },
      [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
}

void read_usage(gateway_ptr self, answer rp, const http_request& req) {
  auto q = parse_query(req.query);
  auto now = static_cast<double>(std::time(nullptr));
  auto since = q.count("since") ? when_of(q["since"], false) : std::optional<double>{now - 30 * 86400.0};
  auto until = q.count("until") ? when_of(q["until"], true) : std::optional<double>{now};
  if (!since || !until)
    return give(rp, error_answer(400, "since and until: a day YYYY-MM-DD or epoch seconds"));
  if (*since > *until)
    return give(rp, error_answer(400, "since is after until"));
  std::string by = q.count("by") ? q["by"] : "user";
  if (by != "user" && by != "project" && by != "day")
    return give(rp, error_answer(400, "by: one of user, project, day"));
  self->request(self->state.tracking, std::chrono::seconds(30), usage_atom::value, *since, *until)
    .then(
      [=](std::string& body) mutable {
        auto rows = usage::from_json(body);
        auto sums = rows ? usage::aggregate(rows.value(), by) : status::fail(rows.error());
        if (!sums) {
          rp.deliver(error_answer(500, sums.error()));
          return;
        }
        rp.deliver(json_answer(200, usage::to_json(sums.value(), by, *since, *until)));
      },
      [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
}

} // namespace atlas::gateway
