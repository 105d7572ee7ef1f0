#include "cluster/remote_executor.hpp"

#include <chrono>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "actortrain/error.hpp"
#include "cluster/worker_run.hpp"
#include "platform/device_memory.hpp"
#include "platform/environment.hpp"
#include "protocol/slot.hpp"
#include "protocol/type_ids.hpp"
#include "training/slot_thread.hpp"

namespace actortrain {

namespace {

/// ACTORTRAIN_SLOW_WORKER=F (F >= 1): this worker's quanta take F times as
/// long, as on a slower machine (for tests and benchmarks of work
/// stealing); 1 when unset.
double slowdown() {
  static const double factor =
      number_from_environment("ACTORTRAIN_SLOW_WORKER", 1, 1);
  return factor;
}

} // namespace

slot_executor_actor::behavior_type
remote_executor(slot_executor_actor::pointer, slot_info slot,
                std::shared_ptr<worker_run> run) {
  auto thread = std::make_shared<slot_thread>(slot.device, slot.threads);
  return {
      [=](quantum_atom, remote_quantum& q) -> caf::result<quantum_report> {
        auto on_stream = thread->enter();
        try {
          auto group = run->checkout(q);
          if (!group) {
            // From a peer that is not a well-behaved coordinator, or a bug:
            // no trainer sees it, so say it here.
            run->log(fmt::format("slot {}: refused a quantum: {}", slot.id,
                                 to_string_pretty(group.error())));
            return group.error();
          }
          // A run or a worker told to stop ends its quanta after their next
          // step with a checkpoint, which their reports take back: nothing
          // done is lost. A quantum sent by a stopping coordinator says so
          // itself (its stop message may come later).
          if (q.stopping)
            run->stop_quanta();
          quantum_limits limits{q.steps, q.epochs, q.seconds, run->stopping(),
                                q.search};
          auto started = std::chrono::steady_clock::now();
          device_memory_probe memory{slot.device};
          auto report = (*group)->run_quantum(slot, limits);
          report.memory_peak = memory.peak();
          if (auto f = slowdown(); f > 1)
            std::this_thread::sleep_for(
                (std::chrono::steady_clock::now() - started) * (f - 1));
          report.slot_seconds = std::chrono::duration<double>(
                                    std::chrono::steady_clock::now() - started)
                                    .count();
          if (report.progress.finished)
            run->forget(q.group_id);
          if (run->verbose())
            run->log(fmt::format("slot {}: quantum of group {} ({} networks) "
                                 "to step {} of {}",
                                 slot.id, q.group_id, q.members.size(),
                                 report.progress.steps_done,
                                 report.progress.steps_total));
          return report;
        } catch (const std::exception& e) {
          // Building a group or restoring a state failed: the trainer
          // retries elsewhere, then fails the networks with this reason.
          run->log(
              fmt::format("slot {}: refused a quantum: {}", slot.id, e.what()));
          return make_error(
              errc::cluster_failed,
              fmt::format("worker slot {}: {}", slot.id, e.what()));
        }
      },
      [=](replica_atom, replica_work& w) -> caf::result<replica_gradient> {
        auto on_stream = thread->enter();
        try {
          auto started = std::chrono::steady_clock::now();
          auto result = run->replica_part(slot.id, w);
          if (auto f = slowdown(); f > 1)
            std::this_thread::sleep_for(
                (std::chrono::steady_clock::now() - started) * (f - 1));
          if (!result)
            run->log(fmt::format("slot {}: refused a replica's part: {}",
                                 slot.id, to_string_pretty(result.error())));
          return result ? caf::result<replica_gradient>{std::move(*result)}
                        : caf::result<replica_gradient>{result.error()};
        } catch (const std::exception& e) {
          run->log(fmt::format("slot {}: a replica's part failed: {}", slot.id,
                               e.what()));
          return make_error(
              errc::cluster_failed,
              fmt::format("worker slot {}: {}", slot.id, e.what()));
        }
      },
      [](quantum_atom, quantum_job&) -> caf::result<quantum_report> {
        return make_error(errc::cluster_failed,
                          "a worker's slot runs networks sent as values, not "
                          "in-process jobs");
      },
  };
}

} // namespace actortrain
