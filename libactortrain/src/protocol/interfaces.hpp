#pragma once

// Actor interfaces as CAF typed actors: sending an actor a message its
// protocol lacks is a compile error. What each message means is documented
// with the actor (scheduling/scheduler.hpp) and its atom (type_ids.hpp).

#include <cstdint>
#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "protocol/type_ids.hpp"

namespace actortrain {

/// The aggregator: trainers send what quanta produced, the scheduler the
/// schedule, the coordinator asks for status and finally for the result.
using aggregator_actor = caf::typed_actor<
    caf::reacts_to<epoch_atom, epoch_metrics>,
    caf::reacts_to<failure_atom, uint64_t, int64_t, std::string>,
    caf::reacts_to<staleness_atom, std::vector<staleness_count>>,
    caf::reacts_to<kept_atom, uint64_t, int64_t, std::vector<char>>,
    caf::replies_to<kept_atom, uint64_t, int64_t>::with<std::vector<char>>,
    caf::reacts_to<checkpoint_atom, uint64_t, int64_t, std::vector<char>>,
    caf::replies_to<checkpoint_atom,
                    std::vector<uint64_t>>::with<std::vector<runner_state>>,
    caf::reacts_to<outcome_atom, network_outcome>,
    caf::reacts_to<schedule_atom, std::vector<grant_record>>,
    caf::reacts_to<data_atom, std::string, uint64_t>,
    caf::reacts_to<decisions_atom, std::vector<decision_record>>,
    caf::reacts_to<stall_atom, stall_record>,
    caf::reacts_to<stall_atom, double, double>, caf::reacts_to<flush_atom>,
    caf::replies_to<status_atom,
                    std::vector<uint64_t>>::with<aggregator_status>,
    caf::replies_to<submit_atom, submission>::with<int64_t>,
    caf::replies_to<finish_atom, bool>::with<run_result>>;

/// The scheduler: trainers acquire and release slots, the coordinator adds
/// slots, stops it, flushes its schedule and asks for its status.
using scheduler_actor = caf::typed_actor<
    caf::reacts_to<acquire_atom, trainer_info>,
    caf::reacts_to<release_atom, uint32_t, progress_report>,
    caf::reacts_to<release_atom, uint32_t, progress_report, bool>,
    caf::reacts_to<release_atom, std::vector<uint32_t>, progress_report>,
    caf::reacts_to<add_slots_atom, std::vector<slot_grant>>,
    caf::reacts_to<expect_atom, uint64_t>,
    caf::reacts_to<exploited_atom, uint64_t, std::string>,
    caf::reacts_to<schedule_atom>, caf::reacts_to<stop_atom>,
    caf::reacts_to<tick_atom>,
    caf::replies_to<priority_atom, uint64_t, double>::with<bool>,
    caf::replies_to<status_atom>::with<scheduler_status>>;

/// A slot's executor, on the slot's own thread. A local slot runs
/// in-process jobs (quantum_job); a worker's slot runs networks sent as
/// values (remote_quantum), whose live state stays on the worker between
/// quanta, and computes a replica's part of a synchronous replicated step
/// whose leader runs in the coordinator (replica_work). One interface for
/// both, so a grant carries one handle type wherever the slot is; each kind
/// refuses the other's work.
using slot_executor_actor = caf::typed_actor<
    caf::replies_to<quantum_atom, quantum_job>::with<quantum_report>,
    caf::replies_to<quantum_atom, remote_quantum>::with<quantum_report>,
    caf::replies_to<replica_atom, replica_work>::with<replica_gradient>>;

/// A worker's keeper of one run's live groups (the states their last
/// quanta there left): hands a group's states over when it moves to
/// another node, and forgets a group. Not on a slot's thread, so it answers
/// while every slot computes.
using state_keeper_actor = caf::typed_actor<
    caf::replies_to<export_atom, uint64_t>::with<std::vector<runner_state>>,
    caf::reacts_to<forget_atom, uint64_t>>;

/// The actor a worker publishes: a coordinator's link asks it to join a run
/// (saying how it encodes messages: cluster_messages.hpp's wire_version)
/// and gets the worker's slots; a session's coordinator then tells it the
/// networks submitted (all so far when it joins, each new submission before
/// its networks can be granted there), naming itself (a worker serves
/// several coordinators at once), and gets how many networks the worker
/// knows for it. A worker with a data cache that lacks a run's data answers
/// the join with errc::data_needed; the link sends the data in chunks and
/// asks again. (stop_atom, coordinator): that coordinator's run is
/// stopping, so its quanta running there end after their next step.
using worker_node_actor = caf::typed_actor<
    caf::replies_to<join_atom, uint32_t,
                    run_setup>::with<std::vector<slot_grant>>,
    caf::replies_to<data_atom, std::string, uint64_t, std::vector<char>,
                    bool>::with<uint64_t>,
    caf::replies_to<submit_atom, caf::actor,
                    std::vector<worker_submission>>::with<uint64_t>,
    caf::reacts_to<stop_atom, caf::actor>>;

} // namespace actortrain
