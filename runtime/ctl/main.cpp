// atlas-ctl: the operator's view of a running cluster. Connects to the
// master's actor system over CAF (its endpoint from --master or from Redis),
// shows the cluster secret at its door, and asks the actors themselves.
// Every wait is bounded; a master that cannot be reached is one line on
// stderr and exit status 1.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "messages/actors.hpp"
#include "library/config.hpp"
#include "runtime/ctl/connect.hpp"
#include "runtime/ctl/render.hpp"
#include "runtime/ctl/render_schedules.hpp"
#include "adapters/redis_client.hpp"
#include "messages/redis_keys.hpp"
#include "runtime/ctl/usage_events.hpp"
#include "library/events.hpp"
#include "library/job_codec.hpp"

using namespace atlas;

namespace {

using ctl::ask;
using ctl::fail;
using ctl::finish;
using ctl::session;
using ctl::usage_error;

const char* usage_text =
  "usage: atlas-ctl [--master HOST:PORT] [--json] [--no-color] COMMAND [ARGS]\n"
  "\n"
  "commands:\n"
  "  nodes                        every node: role, address, slots, GPUs, jobs, heartbeat\n"
  "  slots [--node N]             every slot: state, current job, GPUs, jobs run, last error\n"
  "  jobs [--state S] [--user U]  job records in submission order: every unfinished job\n"
  "                               and the newest 1,000 (the dashboard pages the rest)\n"
  "  job ID                       one job's lifecycle: each transition's time, where it ran\n"
  "  queue                        the queue in dispatch order, each job's reason to wait\n"
  "  actors [--node N]            every actor: mailbox, messages handled, last message\n"
  "  drain NODE / undrain NODE    stop / resume dispatching new jobs to a node\n"
  "  schedules                    the scheduled jobs: cron, state, next run, runs fired\n"
  "  watch [--count N] [--interval S]\n"
  "                               nodes, slots and queue, refreshed every second and\n"
  "                               as soon as an event arrives\n"
  "  usage [--since WHEN] [--until WHEN] [--by user|project|day]\n"
  "                               jobs, slot, GPU and CPU time and peak memory of the jobs\n"
  "                               that ended in those UTC days (default: the last 30 days,\n"
  "                               by user); WHEN is YYYY-MM-DD or epoch seconds\n"
  "  events [--after ID] [--follow]\n"
  "                               job transitions and node events after stream id ID\n"
  "                               (default: from the start; 'now': only new ones); with\n"
  "                               --follow, then each new one as it comes\n"
  "\n"
  "options:\n"
  "  --master HOST:PORT  the master's CAF endpoint (default: read from Redis at\n"
  "                      REDIS_ADDRESS, key atlas:master:endpoint)\n"
  "  --json              machine-readable output\n"
  "  --no-color          no ANSI colours (they are used only on a terminal anyway)\n"
  "  -h, --help          this text\n";

struct options {
  std::string master;
  bool json = false;
  bool color = true;
  std::string command;
  std::vector<std::string> args;
  std::string node;
  std::string state;
  std::string user;
  long count = 0;      // watch: 0 = until interrupted
  double interval = 1; // watch: seconds between refreshes
  std::string since, until; // usage: as given (checked into the numbers below)
  std::string by = "user";
  double since_time = 0, until_time = 0;
  std::string after;   // events: a stream id, "" = from the start
  bool follow = false; // events: keep polling
};

// usage's --since and --until: defaults (the last 30 days up to now) or
// checked, so a bad one is a usage error before any connection.
void check_usage_options(options& o) {
  if (o.by != "user" && o.by != "project" && o.by != "day")
    usage_error("--by: expected user, project or day, got '" + o.by + "'");
  auto now = now_seconds();
  auto when = [](const std::string& name, const std::string& text, bool end_of_day) {
    auto t = ctl::parse_when(text, end_of_day);
    if (!t.ok())
      usage_error(name + ": " + t.error());
    return t.value();
  };
  o.until_time = o.until.empty() ? now : when("--until", o.until, true);
  o.since_time = o.since.empty() ? o.until_time - 30 * 86400.0 : when("--since", o.since, false);
  if (o.since_time > o.until_time)
    usage_error("--since is after --until");
}

options parse(int argc, char** argv) {
  options o;
  auto value = [&](int& i, const std::string& a, const std::string& name) -> std::string {
    if (a.size() > name.size() && a.compare(0, name.size() + 1, name + "=") == 0)
      return a.substr(name.size() + 1);
    if (i + 1 >= argc)
      usage_error(name + " needs a value");
    return argv[++i];
  };
  auto is = [](const std::string& a, const std::string& name) {
    return a == name || a.rfind(name + "=", 0) == 0;
  };
  const std::pair<const char*, std::string options::*> strings[] = {
    {"--master", &options::master}, {"--node", &options::node},
    {"--state", &options::state},   {"--user", &options::user},
    {"--since", &options::since},   {"--until", &options::until},
    {"--by", &options::by},         {"--after", &options::after}};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto string_option = std::find_if(std::begin(strings), std::end(strings),
                                      [&](auto& x) { return is(a, x.first); });
    if (a == "-h" || a == "--help") {
      std::fputs(usage_text, stdout);
      finish(0);
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--follow") {
      o.follow = true;
    } else if (a == "--no-color" || a == "--no-colour") {
      o.color = false;
    } else if (string_option != std::end(strings)) {
      o.*(string_option->second) = value(i, a, string_option->first);
    } else if (is(a, "--count") || is(a, "--interval")) {
      auto name = is(a, "--count") ? "--count" : "--interval";
      auto text = value(i, a, name);
      char* end = nullptr;
      auto x = std::strtod(text.c_str(), &end);
      if (end == text.c_str() || *end != '\0' || x <= 0)
        usage_error(std::string{name} + ": expected a positive number, got '" + text + "'");
      if (is(a, "--count"))
        o.count = static_cast<long>(x);
      else
        o.interval = x;
    } else if (a.size() > 1 && a[0] == '-') {
      usage_error("unknown option '" + a + "'");
    } else if (o.command.empty()) {
      o.command = a;
    } else {
      o.args.push_back(a);
    }
  }
  static const std::vector<std::string> commands = {"nodes", "slots", "jobs", "job", "queue",
                                                    "actors", "drain", "undrain", "watch",
                                                    "usage", "events", "schedules"};
  if (o.command.empty()) {
    std::fputs(usage_text, stderr);
    finish(2);
  }
  if (std::find(commands.begin(), commands.end(), o.command) == commands.end())
    usage_error("unknown command '" + o.command + "'");
  bool one_arg = o.command == "job" || o.command == "drain" || o.command == "undrain";
  if (one_arg && o.args.size() != 1)
    usage_error(o.command + " needs exactly one argument");
  if (!one_arg && !o.args.empty())
    usage_error("unexpected argument '" + o.args.front() + "'");
  if (!o.state.empty() && !parse_job_state(o.state))
    usage_error("--state: expected queued, pending, running, completed, failed, cancelled "
                "or lost, got '" + o.state + "'");
  if (o.command == "usage")
    check_usage_options(o);
  if (o.after == "now")
    o.after = ctl::now_id();
  if (!events::valid_id(o.after))
    usage_error("--after: expected a stream id such as 1714521600000-0, got '" + o.after + "'");
  return o;
}

void print(const std::string& text, bool json) {
  std::fputs(text.c_str(), stdout);
  if (json)
    std::fputc('\n', stdout);
}

std::atomic<bool> interrupted{false};

extern "C" void on_interrupt(int) {
  interrupted = true;
}

int watch(session& s, const options& o, ctl::render_options r, bool tty) {
  struct sigaction sa{};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  bool in_place = tty && !o.json;
  if (in_place) {
    std::fputs("\x1b[?25l", stdout); // hide the cursor while refreshing
    ctl::show_cursor_at_finish();
  }
  ctl::event_cursor events; // from now: what happens while watching
  for (long n = 0; !interrupted && (o.count == 0 || n < o.count); ++n) {
    if (n > 0) {
      // Redraw after the interval, or at once when an event arrives (asked
      // every 0.2 s).
      auto until = std::chrono::steady_clock::now()
                   + std::chrono::milliseconds(static_cast<long>(o.interval * 1000));
      auto next_poll = std::chrono::steady_clock::now();
      while (!interrupted && std::chrono::steady_clock::now() < until) {
        if (std::chrono::steady_clock::now() >= next_poll) {
          if (events.arrived(s))
            break;
          next_poll = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (interrupted)
        break;
    }
    auto nodes = ask<std::vector<node_view>>(s, "the node list", nodes_atom::value);
    auto queue = ask<std::vector<queue_entry>>(s, "the queue", queue_atom::value);
    r.now = now_seconds();
    std::string frame;
    if (o.json)
      frame = ctl::watch_json(nodes, queue, r) + "\n";
    else if (in_place)
      frame = "\x1b[H\x1b[2J" + ctl::watch_text(s.where.text(), nodes, queue, r);
    else
      frame = (n > 0 ? "\n" : "") + ctl::watch_text(s.where.text(), nodes, queue, r);
    std::fwrite(frame.data(), 1, frame.size(), stdout);
    std::fflush(stdout);
  }
  return 0; // finish() shows the cursor again
}

/// The scheduled jobs, read where the scheduler keeps them (the Redis hash
/// atlas:schedules): they are listed while no master is active, too.
int schedules(session& s, const options& o, ctl::render_options r) {
  redis_client redis(s.redis, std::chrono::seconds(2));
  auto reply = redis.command({"HGETALL", keys::schedules});
  if (!reply || reply->is_error())
    fail("cannot read the scheduled jobs from Redis at " + s.redis.describe()
         + (reply ? ": " + reply->str : ""));
  std::vector<scheduled_job> list;
  uint64_t unreadable = 0;
  for (size_t i = 0; i + 1 < reply->elements.size(); i += 2) {
    auto job = scheduled_job_from_json(reply->elements[i + 1].str);
    if (job)
      list.push_back(std::move(job.value()));
    else
      ++unreadable, std::fprintf(stderr, "atlas-ctl: scheduled job %s is unreadable: %s\n",
                                 reply->elements[i].str.c_str(), job.error().c_str());
  }
  r.now = now_seconds();
  print(o.json ? ctl::schedules_json(std::move(list), r, unreadable)
               : ctl::schedules_text(std::move(list), r),
        o.json);
  return unreadable == 0 ? 0 : 1;
}

int run(session& s, const options& o, bool tty) {
  ctl::render_options r;
  r.color = tty && o.color && std::getenv("NO_COLOR") == nullptr && !o.json;
  auto node_filter = [&](const std::string& name) -> std::string {
    if (name.empty())
      return {};
    auto nodes = ask<std::vector<node_view>>(s, "the node list", nodes_atom::value);
    return ctl::resolve_node(nodes, name).value_or(name);
  };
  const auto& cmd = o.command;
  if (cmd == "watch")
    return watch(s, o, r, tty);
  if (cmd == "usage")
    return ctl::usage_command(s, o.since_time, o.until_time, o.by, o.json, r);
  if (cmd == "events")
    return ctl::events_command(s, o.after, o.follow, o.json, r, interrupted);
  if (cmd == "nodes" || cmd == "slots") {
    auto nodes = ask<std::vector<node_view>>(s, "the node list", nodes_atom::value);
    r.now = now_seconds();
    if (cmd == "nodes") {
      auto masters = ctl::read_masters_view(s);
      print(o.json ? ctl::nodes_json(nodes, r, masters) : ctl::nodes_text(nodes, r, masters),
            o.json);
      return 0;
    }
    std::string node;
    if (!o.node.empty()) {
      auto found = ctl::resolve_node(nodes, o.node);
      if (!found)
        fail("no node named '" + o.node + "'");
      node = *found;
    }
    print(o.json ? ctl::slots_json(nodes, node) : ctl::slots_text(nodes, node, r), o.json);
    return 0;
  }
  if (cmd == "schedules")
    return schedules(s, o, r);
  if (cmd == "jobs") {
    auto jobs = ask<std::vector<job_record>>(s, "the job list", jobs_atom::value);
    jobs = ctl::filter_jobs(std::move(jobs), o.state, o.user);
    r.now = now_seconds();
    print(o.json ? ctl::jobs_json(jobs) : ctl::jobs_text(jobs, r), o.json);
    return 0;
  }
  if (cmd == "job") {
    auto job = ask<job_record>(s, "about job " + o.args[0], jobs_atom::value, o.args[0]);
    r.now = now_seconds();
    print(o.json ? ctl::job_json(job) : ctl::job_text(job, r), o.json);
    return 0;
  }
  if (cmd == "queue") {
    auto queue = ask<std::vector<queue_entry>>(s, "the queue", queue_atom::value);
    r.now = now_seconds();
    print(o.json ? ctl::queue_json(queue) : ctl::queue_text(queue, r), o.json);
    return 0;
  }
  if (cmd == "actors") {
    auto node = node_filter(o.node);
    auto actors = ask<std::vector<actor_stats>>(s, "the actor list", actors_atom::value);
    r.now = now_seconds();
    print(o.json ? ctl::actors_json(actors, node, r) : ctl::actors_text(actors, node, r),
          o.json);
    return 0;
  }
  // drain / undrain
  bool drain = cmd == "drain";
  auto node = node_filter(o.args[0]);
  ask<bool>(s, (drain ? "the drain of " : "the undrain of ") + node, drain_atom::value, node,
            drain);
  if (o.json)
    print("{\"node\":" + json::quote(node) + ",\"drained\":" + (drain ? "true" : "false") + "}",
          true);
  else
    std::printf("node %s %s\n", node.c_str(),
                drain ? "drained: no new jobs go there (running jobs go on)"
                      : "undrained: it takes new jobs again");
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  auto o = parse(argc, argv);
  std::signal(SIGPIPE, SIG_IGN);
  auto loaded = load_node_config(current_environment(), start_flags{});
  if (!loaded.ok())
    fail(loaded.error);
  session s;
  ctl::connect(s, loaded.config, o.master);
  finish(run(s, o, ::isatty(STDOUT_FILENO) == 1));
}
