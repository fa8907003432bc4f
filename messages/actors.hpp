#pragma once

// Every typed actor interface of the system. They refer to each other, so
// they live in one header. Handlers are listed with one line each.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/atoms.hpp"
#include "messages/cluster.hpp"
#include "messages/http.hpp"
#include "messages/introspection.hpp"
#include "messages/job.hpp"

namespace atlas {

/// The Redis-backed registry: job records, state indexes, the lookup table.
/// Runs detached: its blocking Redis calls never hold a scheduler thread.
/// Writes (enqueue, put) and reads of one record (get) are batched: those
/// waiting in its mailbox share one pipelined round trip, each answered once
/// it is back. Every other request first flushes the batch before it.
using lookup_actor = caf::typed_actor<
  // Persists a new job's record and its state's index (one pipelined
  // round trip); error conflict when a job with that id exists.
  caf::replies_to<enqueue_atom, job_record>::with<bool>,
  // Overwrites a job's record and moves it to its state's index. A pending
  // record's write (a dispatch) also stores its tracking secret's digest
  // and its host address in the lookup table, in the same round trip.
  caf::replies_to<put_atom, job_record>::with<bool>,
  // Reads one record; error not_found when there is none.
  caf::replies_to<get_atom, std::string>::with<job_record>,
  // Every record (listings that need them all).
  caf::replies_to<list_atom>::with<std::vector<job_record>>,
  // What a master's recovery reads: the records of every unfinished job
  // (the ids in the unfinished states' sets), of the jobs they wait for,
  // and of the newest job (its seq), never every finished one.
  caf::replies_to<recover_atom>::with<std::vector<job_record>>,
  // The records in one state.
  caf::replies_to<list_atom, job_state>::with<std::vector<job_record>>,
  // One page of a project's jobs, newest first, of one status (api_status's
  // word; "" for all): after a cursor ("" for the first page), at most this
  // many (library/job_index.hpp).
  caf::replies_to<list_atom, std::string, std::string, std::string, uint64_t>::with<job_page>,
  // One page of a project's jobs sorted by a metric or parameter ("metric:<n>",
  // "param:<n>" or a bare name), descending or not, after a cursor, at most
  // this many (library/column_page.hpp). Not indexed: read the records.
  caf::replies_to<list_atom, std::string, std::string, bool, std::string, uint64_t>::with<job_page>,
  // One page of a scheduler list of finished jobs, newest first: completed
  // (completed_jobs), failed or cancelled (failed_jobs).
  caf::replies_to<list_atom, job_state, std::string, uint64_t>::with<job_page>,
  // One page of every job, newest first (/api/v1/jobs?limit=).
  caf::replies_to<list_atom, std::string, uint64_t>::with<job_page>,
  // The trials of a project's sweep ("" : of its newest sweeps, at most
  // this many sweeps), from the sweep indexes; every record of the project
  // while the indexes are being built.
  caf::replies_to<list_atom, sweep_atom, std::string, std::string, uint64_t>::with<std::vector<job_record>>,
  // Every project with its counts, from the indexes (not its records).
  caf::replies_to<list_atom, projects_atom>::with<project_views>,
  // The records of a project's newest jobs, at most this many, and its
  // number of jobs (total): what a filter no index serves reads. Not
  // indexed while the indexes are being built.
  caf::replies_to<list_atom, jobs_atom, std::string, uint64_t>::with<job_page>,
  // Removes a record, its indexes and its lookup-table entry.
  caf::replies_to<delete_atom, std::string>::with<bool>,
  // Records the master's CAF endpoint "host:port".
  caf::replies_to<endpoint_atom, std::string>::with<bool>,
  // Reads the master's CAF endpoint; error not_found before any master ran.
  caf::replies_to<endpoint_atom>::with<std::string>,
  // Adds an event (JSON object, library/events.hpp) to the event stream,
  // with the next batch.
  caf::reacts_to<publish_atom, std::string>,
  // Events after a stream id ("" or "0": from the oldest), at most this
  // many: JSON {"events": [...], "last": id} (library/events.hpp).
  caf::replies_to<events_atom, std::string, uint64_t>::with<std::string>,
  // Usage totals per (day, user, project) of the jobs that ended between
  // two epoch times: JSON (library/usage.hpp to_json with by "").
  caf::replies_to<usage_atom, double, double>::with<std::string>,
  // The number of job records in each state, in job_state order.
  caf::replies_to<metrics_atom>::with<std::vector<uint64_t>>,
  // Its own account of itself, for atlas-ctl.
  caf::replies_to<stats_atom>::with<actor_stats>,
  // From itself: the requests batched so far go to Redis in one round trip.
  caf::reacts_to<flush_atom>>;

/// Experiment tracking and dashboard data in Redis (one per node, for its
/// gateway). Detached, with its own Redis connection: the in-job SDK's
/// writes never wait behind the lookup's batches, nor these behind them.
using tracking_actor = caf::typed_actor<
  // Runs a dashboard store operation (library/tracking/store.hpp) and
  // answers its JSON; the store's 400/403/404/503 come back as errors.
  caf::replies_to<track_atom, std::string, std::vector<std::string>>::with<std::string>,
  // The gateway's reads of the event stream and the usage totals, as the
  // lookup's (on this connection: a followed stream never waits behind the
  // master's writes, nor they behind it).
  caf::replies_to<events_atom, std::string, uint64_t>::with<std::string>,
  caf::replies_to<usage_atom, double, double>::with<std::string>,
  // Its own account of itself, for atlas-ctl.
  caf::replies_to<stats_atom>::with<actor_stats>>;

/// One job slot on some node: runs one job at a time.
using worker_slot_actor = caf::typed_actor<
  // Runs a job: prepare the bundle, start it, report every state change.
  caf::reacts_to<run_atom, job_record, caf::actor /* job_actor */>,
  // Stops the job it runs: SIGTERM, then SIGKILL after the grace period.
  caf::reacts_to<stop_atom, std::string>,
  // Stops taking work; `true` also stops the running job.
  caf::reacts_to<drain_atom, bool>,
  // Makes way for a job of a higher priority: the warning signal and
  // SIGTERM, SIGKILL after the grace period; reports the job `lost` with a
  // reason starting "preempted" (its lifecycle requeues it).
  caf::reacts_to<preempt_atom, std::string>,
  // From itself: the job's time limit (job id, run number on this slot,
  // true for the warning signal ahead of it, false for the stop at it).
  caf::reacts_to<limit_atom, std::string, uint64_t, bool>,
  // A (new) master: register with it, telling it about the job in hand.
  caf::reacts_to<register_atom, caf::actor /* master_actor */>,
  // The master gave the job in hand to someone else: kill this copy silently.
  caf::reacts_to<discard_atom, std::string>,
  // The (new) master kept the job in hand: report to this lifecycle actor.
  caf::reacts_to<adopt_atom, std::string, caf::actor /* job_actor */>,
  // From the thread pool: a fetched chunk of the bundle is written
  // (job, bytes so far, total size, error).
  caf::reacts_to<fetch_atom, std::string, uint64_t, uint64_t, std::string>,
  // Its current view of itself.
  caf::replies_to<get_atom>::with<slot_info>,
  // Its own account of itself, for atlas-ctl.
  caf::replies_to<stats_atom>::with<actor_stats>,
  // From the thread pool: bundle extracted; error ("" if none), directory to run in.
  caf::reacts_to<prepared_atom, std::string, std::string, std::string>,
  // From the event loop: process started with this pid.
  caf::reacts_to<started_atom, std::string, int32_t>,
  // From the runner: job ended (exit status, signal, start error, failure
  // reason the runner knows better than the exit code, e.g. "out of memory",
  // CPU seconds and peak memory bytes it used).
  caf::reacts_to<exited_atom, std::string, int64_t, int32_t, std::string, std::string, double,
                 uint64_t>,
  // From the event loop: working directory archived ("" or an error).
  caf::reacts_to<archived_atom, std::string, std::string>,
  // Grace period over: SIGKILL if the job still runs.
  caf::reacts_to<kill_atom, std::string>,
  // From itself, once a second while it waits for answers: those past
  // their deadline fail.
  caf::reacts_to<tick_atom>>;

/// The lifecycle of one job, as an explicit state machine. Lives on the
/// master; persists every transition before acting on it.
using job_actor = caf::typed_actor<
  // The master placed the job on a slot: pending, then run there.
  caf::reacts_to<dispatch_atom, worker_slot_actor, slot_info>,
  // A slot reports a state change; answered so the slot knows it arrived.
  // An accepted final report is answered once persisted, and then frees the
  // slot on the master too: the slot sends no `idle` after it.
  caf::replies_to<report_atom, job_report>::with<bool>,
  // A slot started the job. One-way: a lost one is repeated by the report
  // the slot holds when it registers with a master again.
  caf::reacts_to<started_atom, std::string>,
  // A slot that re-registered still holds this job: true when it may keep it.
  caf::replies_to<adopt_atom, worker_slot_actor, slot_info>::with<bool>,
  // The slot or node holding the job disappeared.
  caf::reacts_to<lost_atom, std::string>,
  // A user asked to stop the job.
  caf::replies_to<stop_atom>::with<bool>,
  // The master preempts the job for one of this priority: it is stopped on
  // its slot and requeued at the head of its class, its retries untouched.
  caf::reacts_to<preempt_atom, int64_t>,
  // The current record.
  caf::replies_to<get_atom>::with<job_record>,
  // Whether the job is still placed on this slot (pending or running
  // there): asked before a slot moves the job's files into the archive.
  caf::replies_to<placed_atom, std::string>::with<bool>,
  // Its own account of itself, for atlas-ctl.
  caf::replies_to<stats_atom>::with<actor_stats>>;

/// The master: owns the queue and the slot registry, decides placement.
using master_actor = caf::typed_actor<
  // Accepts a job; answers its id once the job is persisted.
  caf::replies_to<submit_atom, job_record>::with<std::string>,
  // A local run (job_record::local_run) reported its end (state, code).
  caf::replies_to<local_run_atom, job_report>::with<bool>,
  // A slot joins the cluster (free).
  caf::reacts_to<register_atom, slot_info, worker_slot_actor>,
  // A slot finished a job (its id) and is free again; ignored when the
  // master has given the slot another job since.
  caf::reacts_to<idle_atom, std::string, std::string>,
  // A slot takes no more work (its node is draining).
  caf::reacts_to<drain_atom, std::string>,
  // A job actor reached a terminal state; the key of the slot it frees, when
  // that slot's final report ended it ("" otherwise).
  caf::reacts_to<done_atom, std::string, std::string>,
  // A lost job goes back into the queue.
  caf::reacts_to<requeue_atom, job_record>,
  // Stops (or cancels, when queued) a job.
  caf::replies_to<stop_atom, std::string>::with<bool>,
  // The queue in dispatch order.
  caf::replies_to<list_atom>::with<std::vector<job_record>>,
  // Positions [from, from + limit) of it, with its length (total): only
  // the page crosses, and its first page costs the same at any length.
  caf::replies_to<list_atom, uint64_t, uint64_t>::with<job_page>,
  // Removes the queued job at a position; answers its record.
  caf::replies_to<dequeue_atom, uint64_t>::with<job_record>,
  // Moves the queued job at one position to another.
  caf::replies_to<move_atom, uint64_t, uint64_t>::with<bool>,
  // Cancels every queued job; answers how many.
  caf::replies_to<clear_atom>::with<uint64_t>,
  // The slots of the cluster.
  caf::replies_to<get_atom, slots_atom>::with<std::vector<slot_info>>,
  // The live record of an active job (not_found once finished).
  caf::replies_to<get_atom, std::string>::with<job_record>,
  // A node joined (through the cluster door): its gateway and node actor.
  caf::reacts_to<join_atom, node_info, caf::actor, caf::actor>,
  // A node's heartbeat (for the age atlas-ctl shows).
  caf::reacts_to<ping_atom, std::string>,
  // atlas-ctl: every node with its slots.
  caf::replies_to<nodes_atom>::with<std::vector<node_view>>,
  // atlas-ctl: the queue in dispatch order, each job with why it waits.
  caf::replies_to<queue_atom>::with<std::vector<queue_entry>>,
  // atlas-ctl: every job record.
  caf::replies_to<jobs_atom>::with<std::vector<job_record>>,
  // atlas-ctl: one job's record, live or finished.
  caf::replies_to<jobs_atom, std::string>::with<job_record>,
  // atlas-ctl: every actor of every node.
  caf::replies_to<actors_atom>::with<std::vector<actor_stats>>,
  // atlas-ctl: stop (true) or resume (false) dispatch to a node.
  caf::replies_to<drain_atom, std::string, bool>::with<bool>,
  // Its own account of itself.
  caf::replies_to<stats_atom>::with<actor_stats>,
  // The gateway of a node, to forward requests about its jobs.
  caf::replies_to<get_atom, node_atom, std::string>::with<caf::actor>,
  // The grace period for slots to re-register after a restart is over.
  caf::reacts_to<recover_atom>,
  // From itself: look again whether a waiting job may preempt (a running
  // job may have passed scheduling.min_runtime_s since).
  caf::reacts_to<preempt_atom>,
  // A chunk of a job's bundle from the master's job store, for nodes that do
  // not share its file system (read by the master's gateway).
  caf::replies_to<fetch_atom, std::string, uint64_t>::with<bundle_chunk>,
  // atlas-ctl: events after a stream id (the lookup's events_atom).
  caf::replies_to<events_atom, std::string, uint64_t>::with<std::string>,
  // atlas-ctl: usage totals between two epoch times (the lookup's usage_atom).
  caf::replies_to<usage_atom, double, double>::with<std::string>,
  // The master's gauges for /metrics, in the Prometheus text format: jobs
  // by state, queue depth and age per priority, slots, GPUs and heartbeat
  // age per node.
  caf::replies_to<metrics_atom>::with<std::string>,
  // POST /workers: a new slot on a node (by id); answers its key.
  caf::replies_to<slots_atom, put_atom, std::string>::with<std::string>,
  // DELETE /workers/<key>: removes a slot; true when gone at once, false
  // when it goes once its running job ends. not_found for an unknown key.
  caf::replies_to<slots_atom, delete_atom, std::string>::with<bool>>;

/// Turns an HTTP request into an answer: reads through the lookup actor,
/// acts through the master, keeps the dashboard's data through the tracking
/// actor.
using http_gateway_actor = caf::typed_actor<
  caf::replies_to<http_request>::with<http_response>,
  // The master to act through (it changes when a worker reconnects).
  caf::reacts_to<register_atom, master_actor>,
  // Its own account of itself, for atlas-ctl.
  caf::replies_to<stats_atom>::with<actor_stats>,
  // From the thread pool: the answer to a request parked under a ticket.
  caf::reacts_to<done_atom, uint64_t, http_response>,
  // From its master: a chunk of a job's bundle in this node's job store.
  caf::replies_to<fetch_atom, std::string, uint64_t>::with<bundle_chunk>,
  // From the thread pool: the chunk read for a fetch parked under a ticket
  // (error "" if none).
  caf::reacts_to<done_atom, uint64_t, bundle_chunk, std::string>>;

/// Connects one libuv HTTP server to the gateway: one per listening port.
using http_bridge_actor = caf::typed_actor<
  // A request from the server thread, with the token to answer it.
  caf::reacts_to<http_request, uint64_t>,
  // Asks for the next chunk of a streamed answer.
  caf::reacts_to<next_atom, http_request, uint64_t>>;

} // namespace atlas

namespace atlas {

/// The door of the cluster, published on the master's CAF port: a node that
/// shows the cluster secret gets the master's handle; others are refused.
using cluster_actor = caf::typed_actor<
  // A node joins: secret, itself, its gateway and its node actor.
  caf::replies_to<join_atom, std::string, node_info, http_gateway_actor,
                  caf::actor>::with<master_actor>,
  // A tool (atlas-ctl) asks for the master with the secret alone.
  caf::replies_to<join_atom, std::string>::with<master_actor>>;

/// One per process: supervises what the node started and shuts it down.
using node_actor = caf::typed_actor<
  // Starts the managed redis-server (again).
  caf::reacts_to<redis_atom>,
  // The managed redis-server exited with this status: restart it.
  caf::reacts_to<redis_atom, int64_t>,
  // The drain period is over: stop what still runs (it is requeued).
  caf::reacts_to<kill_atom>,
  // Drains the node: no new work; running jobs get `drain_s` seconds, then
  // are stopped. Answers once every slot is idle.
  caf::replies_to<drain_atom, int32_t>::with<bool>,
  // A slot of this node started.
  caf::reacts_to<register_atom, worker_slot_actor>,
  // The node's gateway started.
  caf::reacts_to<register_atom, http_gateway_actor>,
  // The node's tracking actor started.
  caf::reacts_to<register_atom, tracking_actor>,
  // Worker nodes: look up the master's endpoint and connect (again).
  caf::reacts_to<connect_atom>,
  // Worker nodes: connected to the cluster door; join through it.
  caf::reacts_to<connect_atom, cluster_actor>,
  // The master node: its own master, to send heartbeats to.
  caf::reacts_to<register_atom, master_actor>,
  // Time to send the master a heartbeat.
  caf::reacts_to<ping_atom>,
  // Every actor of this node, each with its own account.
  caf::replies_to<actors_atom>::with<std::vector<actor_stats>>,
  // Its own account of itself.
  caf::replies_to<stats_atom>::with<actor_stats>,
  // Worker nodes: connecting failed; retry with backoff.
  caf::reacts_to<connect_atom, std::string>,
  // From a slot: it is idle (used while draining).
  caf::reacts_to<idle_atom, std::string>,
  // From the master: start one more slot; answers its key.
  caf::replies_to<slots_atom, put_atom>::with<std::string>,
  // From the master: stop and forget this (idle) slot.
  caf::reacts_to<slots_atom, delete_atom, worker_slot_actor>>;

} // namespace atlas
