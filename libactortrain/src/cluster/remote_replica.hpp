#pragma once

#include <memory>

#include <caf/actor_system.hpp>

#include "protocol/interfaces.hpp"
#include "training/remote_part.hpp"

namespace actortrain {

/// A worker's slot serving as one replica of a synchronous replicated
/// network for one quantum (see remote_part). The leader's slot thread
/// blocks in receive(); an actor of its own sends each part to the slot's
/// executor and watches it, so that a lost worker ends the wait with an
/// error instead of never.
std::shared_ptr<remote_part> make_remote_replica(caf::actor_system& sys,
                                                 slot_executor_actor executor);

} // namespace actortrain
