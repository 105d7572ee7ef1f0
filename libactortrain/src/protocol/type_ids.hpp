#pragma once

// The one place where actortrain's message types and atoms are declared.

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/type_id.hpp>

#include "actortrain/session_actor.hpp"
#include "protocol/cluster_messages.hpp"
#include "protocol/messages.hpp"

// Defined in protocol/slot.hpp, which needs the atoms below for the slot
// executor's typed handle in slot_grant: include it where they are used.
namespace actortrain {
struct slot_info;
struct slot_grant;
struct scheduler_status;
} // namespace actortrain

CAF_BEGIN_TYPE_ID_BLOCK(actortrain, caf::first_custom_type_id)

CAF_ADD_TYPE_ID(actortrain, (actortrain::epoch_metrics))
CAF_ADD_TYPE_ID(actortrain, (actortrain::progress_report))
CAF_ADD_TYPE_ID(actortrain, (actortrain::network_outcome))
CAF_ADD_TYPE_ID(actortrain, (actortrain::slot_info))
CAF_ADD_TYPE_ID(actortrain, (actortrain::slot_grant))
CAF_ADD_TYPE_ID(actortrain, (actortrain::scheduler_status))
CAF_ADD_TYPE_ID(actortrain, (actortrain::quantum_outcome))
CAF_ADD_TYPE_ID(actortrain, (actortrain::quantum_report))
CAF_ADD_TYPE_ID(actortrain, (actortrain::trainer_info))
CAF_ADD_TYPE_ID(actortrain, (actortrain::grant_record))
CAF_ADD_TYPE_ID(actortrain, (std::vector<actortrain::grant_record>))
CAF_ADD_TYPE_ID(actortrain, (actortrain::run_setup))
CAF_ADD_TYPE_ID(actortrain, (actortrain::remote_quantum))
CAF_ADD_TYPE_ID(actortrain, (actortrain::worker_submission))
CAF_ADD_TYPE_ID(actortrain, (std::vector<actortrain::worker_submission>))
CAF_ADD_TYPE_ID(actortrain, (std::vector<actortrain::slot_grant>))
CAF_ADD_TYPE_ID(actortrain, (std::vector<uint32_t>))
CAF_ADD_TYPE_ID(actortrain, (actortrain::staleness_count))
CAF_ADD_TYPE_ID(actortrain, (std::vector<actortrain::staleness_count>))
CAF_ADD_TYPE_ID(actortrain, (actortrain::aggregator_status))
CAF_ADD_TYPE_ID(actortrain, (actortrain::decision_record))
CAF_ADD_TYPE_ID(actortrain, (std::vector<actortrain::decision_record>))
CAF_ADD_TYPE_ID(actortrain, (actortrain::stall_record))
CAF_ADD_TYPE_ID(actortrain, (actortrain::runner_state))
CAF_ADD_TYPE_ID(actortrain, (std::vector<actortrain::runner_state>))
CAF_ADD_TYPE_ID(actortrain, (actortrain::replica_work))
CAF_ADD_TYPE_ID(actortrain, (actortrain::replica_gradient))

// trainer -> scheduler: a trainer (trainer_info) waits for its first slot.
CAF_ADD_ATOM(actortrain, actortrain, acquire_atom, "acquire")
// scheduler -> trainer: a slot is yours for one quantum; (std::vector<
// slot_grant>) these slots are, together (a replicated network's; empty:
// never, too few slots are left).
CAF_ADD_ATOM(actortrain, actortrain, grant_atom, "grant")
// leader of a replicated step -> a worker's slot: (replica_work) compute
// this replica's part -> replica_gradient.
CAF_ADD_ATOM(actortrain, actortrain, replica_atom, "replica")
// trainer -> scheduler: the slot (or the std::vector<uint32_t> of slots
// granted together) is free again, with the progress made; unless
// finished, the trainer waits for its next grant.
CAF_ADD_ATOM(actortrain, actortrain, release_atom, "release")
// scheduler -> aggregator: a batch of grant_records (the schedule);
// coordinator -> scheduler: send what is buffered now.
CAF_ADD_ATOM(actortrain, actortrain, schedule_atom, "schedule")
// coordinator -> scheduler: grant nothing more (the run is stopping).
CAF_ADD_ATOM(actortrain, actortrain, stop_atom, "stop")
// trainer -> slot executor: run one quantum of compute.
CAF_ADD_ATOM(actortrain, actortrain, quantum_atom, "quantum")
// trainer -> aggregator: metrics of one epoch.
CAF_ADD_ATOM(actortrain, actortrain, epoch_atom, "epoch")
// trainer -> aggregator: (network, step, reason) of a failure that is retried.
CAF_ADD_ATOM(actortrain, actortrain, failure_atom, "failure")
// trainer -> aggregator: (network, step, snapshot bytes) to store; and
// (std::vector<uint64_t> networks) -> std::vector<runner_state>: their
// newest stored checkpoints, which a cluster run's trainer goes on from
// when the node holding its live models is lost.
CAF_ADD_ATOM(actortrain, actortrain, checkpoint_atom, "checkpoint")
// trainer -> aggregator: (std::vector<staleness_count>) asynchronous
// replicas' pushes of a quantum, by staleness, to add to the store's.
CAF_ADD_ATOM(actortrain, actortrain, staleness_atom, "staleness")
// trainer -> aggregator: (network, epoch, learner bytes) PBT's kept state
// of an interval epoch, to store; and (network, epoch) -> learner bytes:
// that state read back, for a copy (a donor's trainer delegates it).
CAF_ADD_ATOM(actortrain, actortrain, kept_atom, "kept")
// trainer -> aggregator: the outcome of one network.
CAF_ADD_ATOM(actortrain, actortrain, outcome_atom, "outcome")
// aggregator -> itself: write the checkpoints and outcomes received so far.
CAF_ADD_ATOM(actortrain, actortrain, flush_atom, "flush")
// anyone -> scheduler / aggregator: ask for a status snapshot.
CAF_ADD_ATOM(actortrain, actortrain, status_atom, "status")
// aggregator -> coordinator: every network has an outcome.
CAF_ADD_ATOM(actortrain, actortrain, all_done_atom, "all_done")
// coordinator -> aggregator: write the ensemble and close the run.
CAF_ADD_ATOM(actortrain, actortrain, finish_atom, "finish")
// caller -> coordinator: start the run and reply with its result.
CAF_ADD_ATOM(actortrain, actortrain, run_atom, "run")
// coordinator -> itself: refresh the progress display; scheduler ->
// itself: see whether the store caught up (store_backlog.hpp).
CAF_ADD_ATOM(actortrain, actortrain, tick_atom, "tick")
// worker link -> worker node: (run_setup) -> the worker's slots. The
// session's coordinator -> worker node: (submit_atom, worker submissions).
CAF_ADD_ATOM(actortrain, actortrain, join_atom, "join")
// worker link -> worker node: (content hash, offset, chunk, last) -> bytes
// received so far: the run's data, for a worker with a data cache that
// answered a join with errc::data_needed; the link then asks it to join
// again.
CAF_ADD_ATOM(actortrain, actortrain, data_atom, "data")
// worker link -> coordinator or run(): (address, node, slots) a worker
// joined, or (address, error, refused) it refused or could not be reached.
CAF_ADD_ATOM(actortrain, actortrain, joined_atom, "joined")
// coordinator -> scheduler: (std::vector<slot_grant>) more slots to grant.
CAF_ADD_ATOM(actortrain, actortrain, add_slots_atom, "add_slots")
// coordinator -> scheduler: (uint64_t n) n more trainers (a session's
// submission) are about to ask: no grant until they have.
CAF_ADD_ATOM(actortrain, actortrain, expect_atom, "expect")
// trainer -> worker's state keeper: (group id) drop the live state of a
// group that finished or moves on from the last copy the coordinator has.
CAF_ADD_ATOM(actortrain, actortrain, forget_atom, "forget")
// trainer -> worker's state keeper: (group id) -> the live states of the
// group's unfinished networks (std::vector<runner_state>); the worker
// forgets the group: it moves to another node.
CAF_ADD_ATOM(actortrain, actortrain, export_atom, "export")
// scheduler -> trainer: (std::vector<uint64_t>) the adaptive search stopped
// these networks: they finish at the start of the next quantum.
CAF_ADD_ATOM(actortrain, actortrain, search_stop_atom, "search_cut")
// scheduler -> aggregator: (std::vector<decision_record>) the search's
// decisions, to store.
CAF_ADD_ATOM(actortrain, actortrain, decisions_atom, "decisions")
// coordinator -> aggregator: (stall_record) the run made no progress for a
// while and said what it waits on: to store; (double said, double ended)
// the stall first reported at `said` ended then (a quantum started or
// ended again).
CAF_ADD_ATOM(actortrain, actortrain, stall_atom, "stall")
// scheduler -> trainer: (recipient, donor, version, lr factor, the donor's
// trainer) PBT's exploit: copy the donor's state of that epoch; trainer ->
// donor's trainer: (donor, version) -> its learner state (std::vector<char>)
// or an error when it holds no state of that epoch.
CAF_ADD_ATOM(actortrain, actortrain, exploit_atom, "exploit")
// trainer -> scheduler: (recipient, reason) the exploit was made ("") or
// refused (why); the network trains on either way.
CAF_ADD_ATOM(actortrain, actortrain, exploited_atom, "exploited")

// The session's atoms (submit_atom, cancel_atom, priority_atom, close_atom,
// wait_atom) are public: actortrain/session_actor.hpp. Inside, the session
// sends the coordinator (submit_atom, submission) -> the new ids once the
// aggregator recorded them and their trainers started; (cancel_atom, id)
// and (priority_atom, id, priority), passed on to the trainer and the
// scheduler; (close_atom) -> the run_result.

CAF_END_TYPE_ID_BLOCK(actortrain)

// Messages that only ever travel inside one process: a closure to run on a
// slot's thread, the run's result handed to the caller, and networks
// submitted to a live session (with their data shards).
namespace actortrain {
struct quantum_job;
struct run_result;
struct submission;
} // namespace actortrain

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actortrain::quantum_job)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actortrain::run_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actortrain::submission)
