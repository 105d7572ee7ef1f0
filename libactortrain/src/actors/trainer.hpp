#pragma once

#include <memory>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "network_group.hpp"

namespace actortrain {

/// What a trainer needs besides its network.
struct trainer_config {
  caf::actor scheduler;
  caf::actor aggregator;
  quantum_limits quantum;
};

struct trainer_state {
  std::shared_ptr<network_group> group;
  trainer_config config;
  static inline const char* name = "actortrain.trainer";
};

/// One network, or a group of networks trained fused. Asks the scheduler
/// for a slot once, trains one quantum on each slot it is granted through
/// the slot's executor, reports each network's metrics, checkpoints and
/// outcome to the aggregator and the group's progress to the scheduler
/// (which queues it again until the report says finished).
caf::behavior trainer(caf::stateful_actor<trainer_state>* self,
                      std::shared_ptr<network_group> group,
                      trainer_config config);

} // namespace actortrain
