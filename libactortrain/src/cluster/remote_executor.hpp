#pragma once

#include <memory>

#include "protocol/interfaces.hpp"
#include "protocol/slot.hpp"

namespace actortrain {

class worker_run;

/// A worker's slot: runs quanta that a coordinator's trainers send as
/// values. Spawned `detached`, like a local slot executor.
/// Handles (quantum_atom, remote_quantum) -> quantum_report; the group's live
/// state stays here (the run's state keeper hands it over when the group
/// moves). Handles (replica_atom, replica_work) -> replica_gradient: a part
/// of a synchronous replicated step whose leader runs in the coordinator.
/// Refuses an in-process quantum_job, which cannot come from another
/// process.
slot_executor_actor::behavior_type
remote_executor(slot_executor_actor::pointer self, slot_info slot,
                std::shared_ptr<worker_run> run);

} // namespace actortrain
