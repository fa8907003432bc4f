#pragma once

// atlas-ctl's `usage` and `events` commands, and the event cursor that lets
// `watch` redraw as soon as something happens. They ask the master
// (usage_atom, events_atom); the formatting is in render_usage.hpp.

#include <atomic>
#include <string>

#include "runtime/ctl/connect.hpp"
#include "runtime/ctl/render_usage.hpp"

namespace atlas::ctl {

/// `usage`: the totals of the UTC days from `since` to `until`, summed by
/// `by` (user, project or day), as a table or as usage::to_json.
int usage_command(session& s, double since, double until, const std::string& by, bool json,
                  const render_options& o);

/// `events`: every event after `after` ("" = from the start), one line
/// each (or its JSON object with `json`); with `follow`, then every new one,
/// polling every 0.5 s until `stop`.
int events_command(session& s, const std::string& after, bool follow, bool json,
                   const render_options& o, const std::atomic<bool>& stop);

/// The stream id of "now" by this host's clock: what `--after now` means and
/// where `watch` starts (no event before it is wanted, and no read of the
/// whole stream to find its end).
std::string now_id();

/// Follows the stream for `watch`: whether any event came since the last
/// call. Never fails the program: a master that cannot answer (an older
/// one, a timeout) turns the cursor off, and watch redraws on its interval.
class event_cursor {
public:
  event_cursor() : last_(now_id()) {}
  bool arrived(session& s);

private:
  std::string last_;
  bool off_ = false;
};

} // namespace atlas::ctl
