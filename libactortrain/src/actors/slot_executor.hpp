#pragma once

#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>

#include "protocol/slot.hpp"

namespace actortrain {

/// Runs quanta on one slot. Spawned `detached`, so it has a thread of its
/// own: heavy LibTorch compute runs here and never blocks the cooperative
/// threads that the scheduler, trainers and aggregator share.
/// Handles (quantum_atom, quantum_job) -> quantum_outcome.
caf::behavior slot_executor(caf::event_based_actor* self, slot_info slot);

} // namespace actortrain
