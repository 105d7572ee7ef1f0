#pragma once

#include "protocol/interfaces.hpp"
#include "protocol/slot.hpp"

namespace actortrain {

/// Runs quanta on one local slot. Spawned `detached`, so it has a thread of
/// its own: heavy LibTorch compute runs here and never blocks the cooperative
/// threads that the scheduler, trainers and aggregator share. Runs
/// (quantum_atom, quantum_job) -> quantum_report; refuses a worker's
/// remote_quantum.
slot_executor_actor::behavior_type
slot_executor(slot_executor_actor::pointer self, slot_info slot);

} // namespace actortrain
