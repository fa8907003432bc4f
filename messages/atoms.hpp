#pragma once

#include <caf/atom.hpp>

namespace atlas {

// Verbs of the message protocol. At most 10 characters each (CAF 0.17).
using submit_atom = caf::atom_constant<caf::atom("submit")>;
using enqueue_atom = caf::atom_constant<caf::atom("enqueue")>;
using put_atom = caf::atom_constant<caf::atom("put")>;
using get_atom = caf::atom_constant<caf::atom("get")>;
using list_atom = caf::atom_constant<caf::atom("list")>;
using delete_atom = caf::atom_constant<caf::atom("delete")>;
using register_atom = caf::atom_constant<caf::atom("register")>;
using idle_atom = caf::atom_constant<caf::atom("idle")>;
using dispatch_atom = caf::atom_constant<caf::atom("dispatch")>;
using run_atom = caf::atom_constant<caf::atom("run")>;
using report_atom = caf::atom_constant<caf::atom("report")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;
using lost_atom = caf::atom_constant<caf::atom("lost")>;
using done_atom = caf::atom_constant<caf::atom("done")>;
using requeue_atom = caf::atom_constant<caf::atom("requeue")>;
using dequeue_atom = caf::atom_constant<caf::atom("dequeue")>;
using move_atom = caf::atom_constant<caf::atom("move")>;
using clear_atom = caf::atom_constant<caf::atom("clear")>;
using slots_atom = caf::atom_constant<caf::atom("slots")>;
using prepared_atom = caf::atom_constant<caf::atom("prepared")>;
using started_atom = caf::atom_constant<caf::atom("started")>;
using exited_atom = caf::atom_constant<caf::atom("exited")>;
using archived_atom = caf::atom_constant<caf::atom("archived")>;
using kill_atom = caf::atom_constant<caf::atom("kill")>;
using drain_atom = caf::atom_constant<caf::atom("drain")>;
using retry_atom = caf::atom_constant<caf::atom("retry")>;
using next_atom = caf::atom_constant<caf::atom("next")>;
using redis_atom = caf::atom_constant<caf::atom("redis")>;
using join_atom = caf::atom_constant<caf::atom("join")>;
using adopt_atom = caf::atom_constant<caf::atom("adopt")>;
using discard_atom = caf::atom_constant<caf::atom("discard")>;
using endpoint_atom = caf::atom_constant<caf::atom("endpoint")>;
using node_atom = caf::atom_constant<caf::atom("node")>;
using connect_atom = caf::atom_constant<caf::atom("connect")>;
using recover_atom = caf::atom_constant<caf::atom("recover")>;
using fetch_atom = caf::atom_constant<caf::atom("fetch")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using nodes_atom = caf::atom_constant<caf::atom("nodes")>;
using queue_atom = caf::atom_constant<caf::atom("queue")>;
using jobs_atom = caf::atom_constant<caf::atom("jobs")>;
using sweep_atom = caf::atom_constant<caf::atom("sweep")>;
using actors_atom = caf::atom_constant<caf::atom("actors")>;
using ping_atom = caf::atom_constant<caf::atom("ping")>;
using track_atom = caf::atom_constant<caf::atom("track")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using placed_atom = caf::atom_constant<caf::atom("placed")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using usage_atom = caf::atom_constant<caf::atom("usage")>;
using events_atom = caf::atom_constant<caf::atom("events")>;
using publish_atom = caf::atom_constant<caf::atom("publish")>;
using metrics_atom = caf::atom_constant<caf::atom("metrics")>;
using preempt_atom = caf::atom_constant<caf::atom("preempt")>;
using limit_atom = caf::atom_constant<caf::atom("limit")>;
using local_run_atom = caf::atom_constant<caf::atom("localrun")>;
using projects_atom = caf::atom_constant<caf::atom("projects")>;

} // namespace atlas
