#pragma once

#include <atomic>
#include <memory>

#include "messages/actors.hpp"
#include "library/config.hpp"

namespace atlas {

class event_loop;
class process_supervisor;
class job_runners;
class caf_front;

/// What the node's actors share. The node's runtime owns all of it and
/// outlives every actor.
struct node_context {
  std::shared_ptr<const node_config> config;
  event_loop* loop = nullptr;                // file work goes to its thread pool
  process_supervisor* processes = nullptr;   // the managed Redis runs through it
  const job_runners* runners = nullptr;      // jobs run through one of them
  std::atomic<int>* redis_pid = nullptr;     // pid of the managed redis-server, 0 if none
  caf_front* front = nullptr;                // the cluster port: workers dial the master through it
};

/// Spawns slot `index` of this node; it registers itself with `master` and
/// tells `node` whenever it becomes idle.
worker_slot_actor spawn_worker_slot(caf::actor_system& sys, node_context ctx,
                                    int32_t index, std::vector<std::string> gpus,
                                    master_actor master, node_actor node);

} // namespace atlas
