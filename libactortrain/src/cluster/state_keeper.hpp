#pragma once

#include <memory>

#include "protocol/interfaces.hpp"

namespace actortrain {

class worker_run;

/// A worker's keeper of one run's live groups: (export_atom, group id) ->
/// the group's states, which the worker then forgets (the group moves to
/// another node); (forget_atom, group id) drops a group. It shares the
/// worker's threads, not a slot's, so a move does not wait for a quantum.
state_keeper_actor::behavior_type state_keeper(state_keeper_actor::pointer self,
                                               std::shared_ptr<worker_run> run);

} // namespace actortrain
