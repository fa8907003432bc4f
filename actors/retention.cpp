// The listing indexes' backfill and retention (actors/retention.hpp).

#include "actors/retention.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/counted.hpp"
#include "actors/policy/lookup_writes.hpp"
#include "library/bundle_store.hpp"
#include "library/job_codec.hpp"
#include "library/job_files.hpp"
#include "library/job_index.hpp"
#include "library/job_paths.hpp"
#include "library/tracking/column_index.hpp"
#include "library/tracking/store.hpp"
#include "messages/errors.hpp"
#include "messages/redis_keys.hpp"

namespace atlas {

namespace {

using cmd = std::vector<std::string>;

// Ids indexed per backfill step: a step is one SSCAN (ZSCAN), one MGET, one read of
// their metrics and parameters, one write.
constexpr const char* backfill_step = "500";

// Jobs removed per write: one MGET and one atomic write for them all.
constexpr size_t removal_step = 50;

// Between two looks through the bundle store for bundles no job uses.
constexpr double bundle_prune_every_s = 600;

struct retention_state {
  static inline const char* name = "retention";
  std::shared_ptr<const node_config> cfg;
  std::unique_ptr<redis_writer> redis;
  bool built = false;            // the indexes hold every job
  std::string scan_key;          // what the backfill scans for every id
  std::string scan = "0";        // its SSCAN (ZSCAN) cursor
  uint64_t backfilled = 0;       // jobs indexed by the backfill
  uint64_t removed = 0;          // jobs removed by retention
  double bundles_pruned_at = 0;  // the last look through the bundle store
  uint64_t bundles_removed = 0;  // stored bundles no job held
};

using retention_ptr = counted_pointer<retention_actor, retention_state>;

void again_in(retention_ptr self, std::chrono::milliseconds wait) {
  self->delayed_send(self, wait, tick_atom::value);
}

std::vector<job_record> records_of(retention_state& st, const std::vector<std::string>& ids,
                                   bool& ok) {
  std::vector<job_record> out;
  ok = true;
  if (ids.empty())
    return out;
  cmd mget{"MGET"};
  for (auto& id : ids)
    mget.push_back(keys::job(id));
  auto reply = st.redis->command(mget);
  if (!reply) {
    ok = false;
    return out;
  }
  for (auto& e : reply->elements)
    if (e.type == redis_reply::kind::string)
      if (auto rec = job_from_json(e.str))
        out.push_back(std::move(rec.value()));
  return out;
}

/// The indexes are complete: what only a store from before them holds
/// (every id, the finished states' ids: lookup_writes.hpp) is read no more.
/// Best effort: left for the next start when Redis fails.
bool indexes_built(retention_state& st) {
  st.redis->pipeline({{"UNLINK", keys::all_jobs, keys::state_set("completed"),
                       keys::state_set("failed")}});
  return st.built = true;
}

/// One backfill step; true when the indexes are complete. False with `ok`
/// unset when Redis failed (tried again later).
bool backfill(retention_state& st, bool& ok) {
  ok = true;
  if (st.built)
    return true;
  auto built = st.redis->command({"GET", keys::indexes_built});
  if (!built) {
    ok = false;
    return false;
  }
  if (built->str == job_index::generation)
    return indexes_built(st);
  if (st.scan_key.empty()) { // a store from before the indexes has every id in its set
    auto old = st.redis->command({"EXISTS", keys::all_jobs});
    if (!old) {
      ok = false;
      return false;
    }
    st.scan_key = old->integer == 1 ? keys::all_jobs : keys::jobs_by_order;
  }
  bool sorted = st.scan_key == keys::jobs_by_order; // ZSCAN: member, score, member, ...
  auto page = st.redis->command({sorted ? "ZSCAN" : "SSCAN", st.scan_key, st.scan, "COUNT",
                                 backfill_step});
  if (!page || page->elements.size() != 2) {
    ok = false;
    return false;
  }
  std::vector<std::string> ids;
  auto& found = page->elements[1].elements;
  for (size_t i = 0; i < found.size(); i += sorted ? 2 : 1)
    ids.push_back(found[i].str);
  auto recs = records_of(st, ids, ok);
  if (!ok)
    return false;
  std::vector<cmd> reads; // their metrics and parameters, for the column indexes
  for (auto& rec : recs) {
    reads.push_back({"HGETALL", keys::job_metrics(rec.job_id)});
    reads.push_back({"HGETALL", keys::job_params(rec.job_id)});
  }
  auto values = reads.empty() ? std::optional<std::vector<redis_reply>>{std::vector<redis_reply>{}}
                              : st.redis->reads(reads);
  if (!values || values->size() != reads.size()) {
    ok = false;
    return false;
  }
  std::vector<cmd> cmds;
  for (size_t i = 0; i < recs.size(); ++i) {
    auto& rec = recs[i];
    for (auto& c : job_index::added(rec))
      cmds.push_back(std::move(c));
    for (auto& c : job_index::ended(rec))
      cmds.push_back(std::move(c));
    for (auto& c : dashboard::column_backfill(rec.project_name, rec.job_id, (*values)[2 * i],
                                              (*values)[2 * i + 1]))
      cmds.push_back(std::move(c));
  }
  auto next = page->elements[0].str;
  if (next == "0") // the whole set was seen: listings may use the indexes
    cmds.push_back({"SET", keys::indexes_built, job_index::generation});
  if (!cmds.empty() && !st.redis->pipeline(cmds)) {
    ok = false;
    return false;
  }
  st.backfilled += recs.size();
  st.scan = next;
  if (next == "0") {
    indexes_built(st);
    spdlog::info("retention: listing indexes built ({} jobs indexed)", st.backfilled);
  }
  return st.built;
}

/// Finished jobs of `project` its rule removes, oldest first, at most `room`.
std::vector<std::string> due_in(retention_state& st, const std::string& project,
                                const retention_rule& rule, uint64_t room, bool& ok) {
  std::vector<cmd> reads;
  auto key = keys::project_ended(project);
  auto cutoff = static_cast<int64_t>(std::llround((now_seconds() - rule.max_age_s) * 1e6));
  reads.push_back({"ZCARD", key});
  if (rule.max_age_s > 0)
    reads.push_back({"ZRANGEBYSCORE", key, "-inf", std::to_string(cutoff), "LIMIT", "0",
                     std::to_string(room)});
  auto replies = st.redis->reads(reads);
  if (!replies || replies->size() != reads.size()) {
    ok = false;
    return {};
  }
  std::set<std::string> seen;
  std::vector<std::string> out;
  auto add = [&](const redis_reply& r) {
    for (auto& e : r.elements)
      if (out.size() < room && seen.insert(e.str).second)
        out.push_back(e.str);
  };
  if (rule.max_age_s > 0)
    add((*replies)[1]);
  auto count = static_cast<uint64_t>(std::max<int64_t>(0, (*replies)[0].integer));
  if (rule.max_jobs > 0 && count > rule.max_jobs && out.size() < room) {
    auto over = std::min<uint64_t>(count - rule.max_jobs, room);
    auto oldest = st.redis->command({"ZRANGE", key, "0", std::to_string(over - 1)});
    if (!oldest) {
      ok = false;
      return {};
    }
    add(*oldest);
  }
  return out;
}

/// Removes finished jobs everywhere: their files, then their keys in one
/// write (a few round trips for a whole batch). False when Redis failed.
bool remove_jobs(retention_state& st, const std::vector<std::string>& ids, const std::string& project) {
  bool ok = true;
  auto recs = records_of(st, ids, ok);
  std::vector<cmd> reads; // each job's metric and parameter names: its column indexes
  for (auto& id : ids)
    for (auto& c : job_index::column_reads(id))
      reads.push_back(std::move(c));
  auto names = ok ? st.redis->reads(reads) : std::nullopt;
  if (!names || names->size() != 2 * ids.size())
    return false;
  std::vector<cmd> cmds;
  std::set<std::string> found;
  auto forget = [&](const job_record& rec) {
    // The files first: a job whose record is gone is never looked for again.
    delete_job_files(job_paths::of(*st.cfg, rec.job_id));
    for (auto& c : lookup_writes::remove(rec, dashboard::tracking_keys(rec.job_id)))
      cmds.push_back(std::move(c));
    auto at = 2 * static_cast<size_t>(std::find(ids.begin(), ids.end(), rec.job_id) - ids.begin());
    if (at < names->size())
      for (auto& c : job_index::columns_removed(project, rec.job_id, (*names)[at], (*names)[at + 1]))
        cmds.push_back(std::move(c));
  };
  for (auto& rec : recs) {
    found.insert(rec.job_id);
    if (!is_terminal(rec.state)) { // not finished: its ended entry is stale, the job stays
      for (auto& c : job_index::unended(rec))
        cmds.push_back(std::move(c));
      continue;
    }
    forget(rec);
  }
  for (auto& id : ids)
    if (!found.count(id)) { // no record: only its index entries are left
      job_record gone;
      gone.job_id = id;
      gone.project_name = project;
      forget(gone);
    }
  return cmds.empty() || st.redis->transaction(cmds).has_value();
}

/// One retention pass; true when more jobs are due than it removed.
bool retain(retention_state& st, bool& ok) {
  ok = true;
  auto projects = st.redis->command({"SMEMBERS", keys::projects});
  if (!projects) {
    ok = false;
    return false;
  }
  uint64_t room = static_cast<uint64_t>(st.cfg->retention_batch);
  uint64_t done = 0;
  bool more = false;
  for (auto& p : projects->elements) {
    auto& rule = st.cfg->retention_of(p.str);
    if (!rule.removes_any())
      continue;
    auto due = due_in(st, p.str, rule, room - done, ok);
    if (!ok)
      return false;
    for (size_t i = 0; i < due.size(); i += removal_step) {
      std::vector<std::string> step(due.begin() + static_cast<ptrdiff_t>(i),
                                    due.begin() + static_cast<ptrdiff_t>(std::min(due.size(), i + removal_step)));
      if (!remove_jobs(st, step, p.str)) {
        ok = false;
        return false;
      }
      done += step.size();
    }
    if (done == room) {
      more = true;
      break;
    }
  }
  if (done > 0)
    spdlog::info("retention: removed {} finished jobs", done);
  st.removed += done;
  return more;
}

/// Stored bundles no job holds and nobody used for retention.unused_bundles.
void prune_bundles(retention_state& st) {
  auto now = now_seconds();
  if (st.cfg->unused_bundles_s <= 0 || now - st.bundles_pruned_at < bundle_prune_every_s)
    return;
  st.bundles_pruned_at = now;
  auto n = prune_content_bundles(bundle_store_dir(st.cfg->job_store_dir_root),
                                 st.cfg->unused_bundles_s, now);
  if (n > 0)
    spdlog::info("retention: removed {} stored bundles no job used", n);
  st.bundles_removed += n;
}

void pass(retention_ptr self) {
  auto& st = self->state;
  bool ok = true;
  if (!backfill(st, ok)) {
    again_in(self, ok ? std::chrono::milliseconds(1) : std::chrono::seconds(5));
    return;
  }
  prune_bundles(st);
  bool more = st.cfg->removes_any() && retain(st, ok);
  if (!ok)
    again_in(self, std::chrono::seconds(5));
  else if (more)
    again_in(self, std::chrono::milliseconds(100)); // the rest, without hogging Redis
  else
    again_in(self, std::chrono::seconds(st.cfg->retention_interval_s));
}

retention_actor::behavior_type retention_impl(retention_ptr self,
                                              std::shared_ptr<const node_config> cfg,
                                              redis_target target, redis_write_options opts) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.redis = std::make_unique<redis_writer>(std::move(target), std::move(opts), "retention");
  if (auto ok = st.redis->connect(); !ok)
    spdlog::warn("retention: {} (will retry on first use)", ok.error());
  self->send(self, tick_atom::value);
  return {
    [=](tick_atom) { pass(self); },
    [=](stats_atom) {
      auto& s = self->state;
      return self->stats("", std::string(s.built ? "indexes built" : "indexing") + ", "
                               + std::to_string(s.backfilled) + " jobs backfilled, "
                               + std::to_string(s.removed) + " removed by retention, "
                               + std::to_string(s.bundles_removed) + " unused bundles");
    },
  };
}

} // namespace

retention_actor spawn_retention(caf::actor_system& sys, std::shared_ptr<const node_config> cfg,
                                const redis_target& target, redis_write_options opts) {
  return sys.spawn<caf::detached>(retention_impl, std::move(cfg), target, std::move(opts));
}

} // namespace atlas
