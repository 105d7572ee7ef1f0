#include "actors/slot_executor.hpp"

#include <ATen/Parallel.h>

#include "protocol/type_ids.hpp"
#include "training/network_runner.hpp"

namespace actortrain {

caf::behavior slot_executor(caf::event_based_actor*, slot_info slot) {
  auto threads_set = std::make_shared<bool>(false);
  return {
      [=](quantum_atom, quantum_job& job) -> quantum_report {
        if (!*threads_set) {
          // Intra-op threads are per calling thread (OpenMP), so each slot's
          // thread sets its own count once, on itself.
          at::set_num_threads(static_cast<int>(slot.threads));
          *threads_set = true;
        }
        return job.run();
      },
  };
}

} // namespace actortrain
