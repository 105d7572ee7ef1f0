#include "cluster/state_keeper.hpp"

#include "cluster/worker_run.hpp"
#include "protocol/slot.hpp"
#include "protocol/type_ids.hpp"

namespace actortrain {

state_keeper_actor::behavior_type
state_keeper(state_keeper_actor::pointer, std::shared_ptr<worker_run> run) {
  return {
      [=](export_atom,
          uint64_t group_id) -> caf::result<std::vector<runner_state>> {
        auto states = run->export_group(group_id);
        if (!states)
          return states.error();
        return std::move(*states);
      },
      [=](forget_atom, uint64_t group_id) { run->forget(group_id); },
  };
}

} // namespace actortrain
