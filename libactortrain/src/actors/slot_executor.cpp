#include "actors/slot_executor.hpp"

#include <cstdlib>
#include <optional>

#include <ATen/Context.h>
#include <ATen/Parallel.h>

#include "actortrain/error.hpp"
#include "protocol/type_ids.hpp"
#include "training/network_runner.hpp"
#include "training/slot_stream.hpp"

namespace actortrain {

slot_executor_actor::behavior_type slot_executor(slot_executor_actor::pointer,
                                                 slot_info slot) {
  auto threads_set = std::make_shared<bool>(false);
  auto stream = std::make_shared<std::optional<slot_stream>>();
  return {
      [=](quantum_atom, quantum_job& job) -> quantum_report {
        if (!*stream)
          stream->emplace(slot.device);
        auto on_stream = (*stream)->enter();
        if (!*threads_set) {
          // Intra-op threads are per calling thread (OpenMP), so each slot's
          // thread sets its own count once, on itself.
          at::set_num_threads(static_cast<int>(slot.threads));
          // Denormal floats take a slow path through the FPU (steps became
          // 7x slower once a network's Adam moments decayed into them:
          // docs/benchmarks.md, PBT): this thread flushes them to zero, on
          // every slot and every node alike, so results stay the same bits
          // wherever a network trains. ACTORTRAIN_KEEP_DENORMALS=1 keeps
          // IEEE denormals (for comparisons).
          at::globalContext().setFlushDenormal(
              std::getenv("ACTORTRAIN_KEEP_DENORMALS") == nullptr);
          *threads_set = true;
        }
        return job.run();
      },
      [=](quantum_atom, remote_quantum&) -> caf::result<quantum_report> {
        return make_error(errc::cluster_failed,
                          "a local slot runs in-process jobs, not a "
                          "worker's networks");
      },
      [=](replica_atom, replica_work&) -> caf::result<replica_gradient> {
        return make_error(errc::cluster_failed,
                          "a local slot computes its replicas' parts in "
                          "process, not sent as values");
      },
  };
}

} // namespace actortrain
