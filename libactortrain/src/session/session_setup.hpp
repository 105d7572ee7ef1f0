#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "actortrain/experiment.hpp"
#include "actortrain/results.hpp"

namespace caf {
class actor_system;
} // namespace caf

// What a session does before its coordinator starts: the worker nodes join,
// and the results store of its folder is created, reopened or resumed.

namespace actortrain {

struct run_plan;

/// Asks every worker of `plan.exp` to join, all at once, with the setup
/// workers derive their networks from. A worker that refuses (different
/// data, busy) is an error; one that cannot be reached or does not answer
/// is tried again during the run, unless no slot would be left at all. A
/// stop (SIGTERM) ends the wait. Workers serve `coordinator`, and let go of
/// the run when it goes down.
caf::error join_cluster(caf::actor_system& sys, run_plan& plan,
                        const caf::actor& coordinator, bool tls,
                        const std::shared_ptr<std::atomic<bool>>& stop);

/// Tells the workers that joined every network submitted to the session
/// before (a reopened session's, `plan.worker_submissions`). A worker that
/// cannot train them is an error naming it; one that does not answer is
/// tried again during the run (and told them when it joins).
caf::error share_submissions(caf::actor_system& sys, run_plan& plan);

/// What opening a session's folder found.
struct opened_store {
  /// The networks stored before (a reopened or resumed folder).
  std::vector<network_result> prior;
  /// Where new submissions continue.
  uint64_t next_id = 0;
  int64_t next_group = 0;
};

/// Opens the results store in `plan.output_dir` into `plan.store`. A new
/// folder records a new run: with `plan.fixed_population`, of every network
/// in `plan.specs` (the setup's); else of none yet. A folder that holds a run
/// of the same setup is resumed: with a fixed population, its networks must
/// be the setup's; else they are rebuilt from the stored configurations
/// (same ids, seeds and shards). Either way finished, failed and cancelled
/// networks are kept and the others continue from their checkpoints. A
/// folder of another setup is refused, naming both fingerprints.
caf::expected<opened_store> open_run_store(const experiment& setup,
                                           bool builtin, run_plan& plan);

} // namespace actortrain
