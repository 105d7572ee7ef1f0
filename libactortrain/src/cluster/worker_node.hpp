#pragma once

#include <memory>
#include <vector>

#include <caf/actor_addr.hpp>

#include "actortrain/cluster.hpp"
#include "protocol/interfaces.hpp"

namespace actortrain {

class worker_run;

struct worker_node_state {
  worker_options opts;
  /// The run being served (null while waiting for a coordinator).
  std::shared_ptr<worker_run> run;
  caf::actor_addr coordinator;
  std::vector<slot_executor_actor> executors;
  static inline const char* name = "actortrain.worker_node";
};

/// The actor a worker publishes. (join_atom, run_setup) ->
/// std::vector<slot_grant>: loads the run's data, checks it against the
/// coordinator's content hash and spawns one executor per slot. When the
/// coordinator goes down, the executors stop and the node waits for the next
/// run (or quits with `exit_when_orphaned`). Spawn it detached: a join
/// loads data.
worker_node_actor::behavior_type
worker_node(worker_node_actor::stateful_pointer<worker_node_state> self,
            worker_options opts);

} // namespace actortrain
