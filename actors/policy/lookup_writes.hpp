#pragma once

// The Redis commands behind the lookup actor's writes (plain C++, no actors).
//
// Layout: the record `atlas:job:<id>` is the source of truth; the per-state
// sets and the listing indexes (library/job_index.hpp) are indexes. Readers
// of an index keep only the records that belong there (a stale entry is
// harmless), so a write needs no MULTI/EXEC: its commands are pipelined in
// one round trip, ordered so that a write cut off half way never loses a job:
// - a new job enters its state's set before its record exists;
// - a transition moves the id between state sets with one SMOVE before the
//   record is overwritten, so a cut-off write leaves the record in its old
//   state, which the master then writes again, repairing the index;
// - a job's end adds the id to its finished list (and a cancelled job to its
//   set), writes the record, and only then takes the id out of its
//   unfinished state's set: every record not finished has its id in an
//   unfinished state's set, all that a master's recovery reads.
// Completed and failed jobs have no set: their scheduler list's index holds
// them (a finished job is most of a large store, and each set entry costs
// ~70 bytes). Every id is in `atlas:index:all`; `atlas:jobs` is only read
// in a store written before the listing indexes, until they are built.

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "adapters/redis_client.hpp"
#include "messages/job.hpp"

namespace atlas::lookup_writes {

using cmd = std::vector<std::string>;

/// Whether jobs in state `s` are kept in a set `atlas:state:<s>`: all but
/// completed and failed ones, whose ended lists hold them (and count them;
/// the failed list holds cancelled jobs too, which their set tells apart).
bool has_state_set(job_state s);

/// A new job: SADD to its state's set, SET NX the record,
/// then its history's events (library/events.hpp) only if the SET was
/// applied, with its listing indexes (library/job_index.hpp) and a bump of
/// the listing version. The SET's reply (the second) is nil when a record
/// with that id already exists: nothing was overwritten.
std::vector<cmd> enqueue(const job_record& rec);

/// Whether the replies of enqueue() created the record.
bool enqueue_created(std::span<const redis_reply> replies);

/// The state this job's record was last stored in, as far as its history
/// tells: the entry before the last that is not `lost` (a lost job is always
/// stored in the state it moves on to). Nullopt for a record with a single
/// history entry. A guess: a transition that was never stored on its own
/// (pending → running → completed reported at once) makes it wrong, which
/// transition()'s SMOVE reply then shows.
std::optional<job_state> last_stored_state(const job_record& rec);

/// A write of an existing job: the listing version's bump (and, for a
/// finished job, its ended indexes: library/job_index.hpp), SMOVE from
/// `from` to its state's set (SADD when `from` is unknown or the same
/// state; SREM when the new state has no set), then SET the record: the
/// SMOVE is next to last. A job's end (from an unfinished `from`) is SADD
/// (when its state has a set), SET, then SREM from `from`'s set. The write of a pending record (a dispatch) also stores the
/// tracking secret's digest and HSETs the original's routing table to its
/// host address, before the SMOVE. The write that ends a dispatch (a
/// terminal state, or requeued after being lost) first DELetes the tracking
/// secret's digest.
std::vector<cmd> transition(const job_record& rec, std::optional<job_state> from);

/// True when transition()'s SMOVE (or an end's SREM) found the id in `from`'s set (or no SMOVE
/// was needed); false means the index must be repaired with reindex().
bool transition_indexed(const job_record& rec, std::optional<job_state> from,
                        std::span<const redis_reply> replies);

/// What follows a write of an existing job: the events of
/// rec.history[from, size). A write that ends the job also adds its usage
/// (library/usage.hpp); both then happen once only, behind a marker key set
/// with NX, so that a final write sent again counts nothing twice.
std::vector<cmd> published(const job_record& rec, size_t from);

/// The rare path: SADD the id to its state's set (a finished job: ZADD to
/// its ended indexes) and SREM it from every other state's set.
std::vector<cmd> reindex(const job_record& rec);

/// Removes a job: its record, its index entries (`rec` says which project
/// and list), its routing entry and `extra_keys` (its tracking data). The
/// first reply is the record's DEL.
std::vector<cmd> remove(const job_record& rec, const std::vector<std::string>& extra_keys);

} // namespace atlas::lookup_writes
