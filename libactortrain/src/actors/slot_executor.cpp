#include "actors/slot_executor.hpp"

#include <memory>

#include "actortrain/error.hpp"
#include "platform/device_memory.hpp"
#include "protocol/type_ids.hpp"
#include "training/network_runner.hpp"
#include "training/slot_thread.hpp"

namespace actortrain {

slot_executor_actor::behavior_type slot_executor(slot_executor_actor::pointer,
                                                 slot_info slot) {
  auto thread = std::make_shared<slot_thread>(slot.device, slot.threads);
  return {
      [=](quantum_atom, quantum_job& job) -> quantum_report {
        auto on_stream = thread->enter();
        device_memory_probe memory{slot.device};
        auto report = job.run();
        report.memory_peak = memory.peak();
        return report;
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
