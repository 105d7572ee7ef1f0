#pragma once

#include <set>
#include <string>
#include <vector>

#include <caf/error.hpp>

#include "actortrain/results.hpp"

// What an earlier attempt at a run left behind, turned into what is left to
// do. A batch run and a reopened session resume through the same plan.

namespace actortrain {

class results_store;
struct run_plan;

/// Plans the resumption of the run `store` holds (its networks `prior`):
/// finished networks whose files are intact, failed and cancelled ones are
/// kept as they are; a finished one whose files are damaged trains again
/// (its result depends only on its spec and seed); every other one
/// continues from its newest intact checkpoint, or from the start. Removes
/// checkpoint files the store does not know and marks the run resumed.
/// Finished networks in `extend` continue to their larger budget from the
/// final state they kept, with the epochs they trained kept too.
caf::error plan_resume(results_store& store,
                       const std::vector<network_result>& prior, run_plan& plan,
                       const std::set<uint64_t>& extend = {});

} // namespace actortrain
