#pragma once

#include <memory>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "network_runner.hpp"

namespace actortrain {

/// What a trainer needs besides its network.
struct trainer_config {
  caf::actor scheduler;
  caf::actor aggregator;
  /// Quantum length: steps (when > 0) or epochs.
  int64_t quantum_steps = 0;
  int64_t quantum_epochs = 1;
};

struct trainer_state {
  std::shared_ptr<network_runner> runner;
  trainer_config config;
  static inline const char* name = "actortrain.trainer";
};

/// One network. Asks the scheduler for a slot, trains one quantum on it
/// through the slot's executor, reports metrics to the aggregator and
/// progress to the scheduler, and asks again until the network is done.
caf::behavior trainer(caf::stateful_actor<trainer_state>* self,
                      std::shared_ptr<network_runner> runner,
                      trainer_config config);

} // namespace actortrain
