#pragma once

#include <memory>

#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>

#include "protocol/slot.hpp"

namespace actortrain {

class worker_run;

/// A worker's slot: runs quanta that a coordinator's trainers send as
/// values. Spawned `detached`, like a local slot executor.
/// Handles (quantum_atom, remote_quantum) -> quantum_report, with the state
/// of every unfinished network, and (forget_atom, group id).
caf::behavior remote_executor(caf::event_based_actor* self, slot_info slot,
                              std::shared_ptr<worker_run> run);

} // namespace actortrain
