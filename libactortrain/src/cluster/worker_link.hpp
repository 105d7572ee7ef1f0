#pragma once

#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/blocking_actor.hpp>
#include <caf/expected.hpp>

#include "protocol/cluster_messages.hpp"
#include "protocol/slot.hpp"

namespace actortrain {

/// A worker that joined a run: its node actor and the slots it offers.
struct joined_worker {
  std::string address;
  caf::actor node;
  std::vector<slot_grant> slots;
};

/// Connects to the worker at `address` ("host:port") and asks it to join the
/// run `setup` describes. Blocks until it answers. On failure `refused` says
/// whether the worker answered (wrong data, busy: asking again will not
/// help) or could not be reached; the error names the worker.
caf::expected<joined_worker> join_worker(caf::actor_system& sys,
                                         const std::string& address,
                                         const run_setup& setup, bool tls,
                                         bool& refused);

/// Tries join_worker every second until the worker joins or refuses, then
/// tells `coordinator`: (join_atom, address, node, slots) or (join_atom,
/// address, error). Ends on an exit message. Spawn it detached.
void worker_link(caf::blocking_actor* self, std::string address,
                 run_setup setup, bool tls, caf::actor coordinator);

} // namespace actortrain
