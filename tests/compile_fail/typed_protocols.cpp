// Typed actor interfaces turn a message an actor does not understand into a
// compile error. Without TYPED_PROTOCOL_CASE this file talks to every actor in
// its protocol and must compile; each case makes one mistake and must fail
// with CAF's diagnostic (tests/CMakeLists.txt builds every case).

#include <cstdint>
#include <string>

#include <caf/event_based_actor.hpp>

#include "actortrain/session_actor.hpp"
#include "protocol/interfaces.hpp"
#include "protocol/type_ids.hpp"

#ifndef TYPED_PROTOCOL_CASE
#define TYPED_PROTOCOL_CASE 0
#endif

namespace actortrain {

void talk(caf::event_based_actor* self, const scheduler_actor& scheduler,
          const aggregator_actor& aggregator,
          const slot_executor_actor& executor, const state_keeper_actor& keeper,
          const worker_node_actor& node, const session_actor& session) {
  self->send(scheduler, acquire_atom_v, trainer_info{});
  self->send(aggregator, flush_atom_v);
  self->send(keeper, forget_atom_v, uint64_t{1});
  self->request(executor, caf::infinite, quantum_atom_v, remote_quantum{})
      .then([](quantum_report&) {});
  self->request(node, caf::infinite, join_atom_v, wire_version, run_setup{})
      .then([](std::vector<slot_grant>&) {});
  self->request(session, caf::infinite, wait_atom_v, uint64_t{3})
      .then([](network_result&) {});
#if TYPED_PROTOCOL_CASE == 1
  // The scheduler's acquire takes a trainer_info.
  self->send(scheduler, acquire_atom_v, std::string{"net-0001"});
#elif TYPED_PROTOCOL_CASE == 2
  // The aggregator takes no join: that atom belongs to the worker protocol.
  self->send(aggregator, join_atom_v, run_setup{});
#elif TYPED_PROTOCOL_CASE == 3
  // An executor runs a quantum_job or a remote_quantum, not a number.
  self->send(executor, quantum_atom_v, uint64_t{1});
#elif TYPED_PROTOCOL_CASE == 4
  // A worker node answers a join with its slots, not a count.
  self->request(node, caf::infinite, join_atom_v, wire_version, run_setup{})
      .then([](int64_t) {});
#elif TYPED_PROTOCOL_CASE == 6
  // A session cancels a network by its id, not by its name.
  self->send(session, cancel_atom_v, std::string{"net-0003"});
#elif TYPED_PROTOCOL_CASE == 7
  // A session answers a wait with the network's result, not its status.
  self->request(session, caf::infinite, wait_atom_v, uint64_t{3})
      .then([](network_status) {});
#endif
}

#if TYPED_PROTOCOL_CASE == 5
// A keeper that does not hand states over is not a state keeper.
state_keeper_actor::behavior_type incomplete_keeper() {
  return {
      [](forget_atom, uint64_t) {},
  };
}
#endif

} // namespace actortrain
