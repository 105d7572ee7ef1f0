#pragma once

#include <map>
#include <memory>
#include <optional>
#include <vector>

#include <caf/actor_addr.hpp>

#include "actortrain/cluster.hpp"
#include "cluster/data_cache.hpp"
#include "protocol/interfaces.hpp"

namespace actortrain {

class worker_run;

struct worker_node_state {
  worker_node_state() = default;
  worker_node_state(const worker_node_state&) = delete;
  worker_node_state& operator=(const worker_node_state&) = delete;
  /// Stops the executors and keepers of every run still served, however
  /// the node ends (CAF destroys an actor's state before its attached
  /// functors run, so no cleanup may wait until then).
  ~worker_node_state();
  worker_options opts;
  /// A run being served: its networks, this node's slots for it and the
  /// keeper of the groups it trains here.
  struct served_run {
    std::shared_ptr<worker_run> run;
    std::vector<slot_executor_actor> executors;
    state_keeper_actor keeper;
    /// Stops its executors and keeper (a quantum in progress finishes).
    void stop() const;
  };
  /// Every run served, by its coordinator (none while waiting for one).
  std::map<caf::actor_addr, served_run> runs;
  /// Data received from coordinators (`opts.cache_dir`), if kept.
  std::optional<data_cache> cache;
  static inline const char* name = "actortrain.worker_node";
};

/// The actor a worker publishes. (join_atom, wire_version, run_setup) ->
/// std::vector<slot_grant>: refuses a coordinator of another wire_version,
/// loads the run's data, checks it against the
/// coordinator's content hash and spawns one executor per slot for that
/// run. It serves every coordinator that joins it, at once: each run gets
/// its own `opts.slots` executors and its own networks, so the runs share
/// the cores and a run's quanta only ever reach its own executors (and
/// networks). (submit_atom, coordinator, submissions) adds networks
/// submitted to that coordinator's session. When a coordinator goes down,
/// its run's executors stop; with no run left the node waits for the next
/// coordinator (or quits with `exit_when_orphaned`). Spawn it detached: a
/// join loads data.
worker_node_actor::behavior_type
worker_node(worker_node_actor::stateful_pointer<worker_node_state> self,
            worker_options opts);

} // namespace actortrain
