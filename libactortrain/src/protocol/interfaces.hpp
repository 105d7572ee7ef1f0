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
    caf::reacts_to<checkpoint_atom, uint64_t, int64_t, std::vector<char>>,
    caf::reacts_to<outcome_atom, network_outcome>,
    caf::reacts_to<schedule_atom, std::vector<grant_record>>,
    caf::reacts_to<flush_atom>,
    caf::replies_to<status_atom>::with<aggregator_status>,
    caf::replies_to<finish_atom, bool>::with<run_result>>;

/// The scheduler: trainers acquire and release slots, the coordinator adds
/// slots, stops it, flushes its schedule and asks for its status.
using scheduler_actor = caf::typed_actor<
    caf::reacts_to<acquire_atom, trainer_info>,
    caf::reacts_to<release_atom, uint32_t, progress_report>,
    caf::reacts_to<release_atom, uint32_t, progress_report, bool>,
    caf::reacts_to<add_slots_atom, std::vector<slot_grant>>,
    caf::reacts_to<schedule_atom>, caf::reacts_to<stop_atom>,
    caf::replies_to<status_atom>::with<scheduler_status>>;

} // namespace actortrain
