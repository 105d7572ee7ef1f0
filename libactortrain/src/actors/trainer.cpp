#include "actors/trainer.hpp"

#include <caf/event_based_actor.hpp>
#include <fmt/format.h>

#include "actortrain/error.hpp"
#include "actortrain/type_ids.hpp"

namespace actortrain {

caf::behavior trainer(caf::stateful_actor<trainer_state>* self,
                      std::shared_ptr<network_runner> runner,
                      trainer_config config) {
  self->state.runner = std::move(runner);
  self->state.config = std::move(config);
  auto id = self->state.runner->spec().id;
  self->send(self->state.config.scheduler, acquire_atom_v,
             self->state.runner->info());
  return {
      [=](grant_atom, const slot_grant& grant) {
        auto runner = self->state.runner;
        auto slot = grant.slot;
        auto limits = self->state.config.quantum;
        quantum_job job{[runner, slot, limits] {
          return runner->run_quantum(slot, limits);
        }};
        self->request(grant.executor, caf::infinite, quantum_atom_v, job)
            .then(
                [=](quantum_outcome& out) {
                  auto& cfg = self->state.config;
                  for (auto& m : out.epochs)
                    self->send(cfg.aggregator, epoch_atom_v, m);
                  for (auto& reason : out.failures)
                    self->send(cfg.aggregator, failure_atom_v, id,
                               out.progress.steps_done, std::move(reason));
                  if (!out.checkpoint.empty())
                    self->send(cfg.aggregator, checkpoint_atom_v, id,
                               out.checkpoint_step, std::move(out.checkpoint));
                  // Unless finished, the scheduler queues us for the next
                  // quantum.
                  self->send(cfg.scheduler, release_atom_v, slot.id,
                             out.progress);
                  if (out.progress.finished) {
                    self->send(cfg.aggregator, outcome_atom_v,
                               std::move(out.outcome));
                    self->quit();
                  }
                },
                [=](caf::error& err) {
                  // The slot's executor went away mid-quantum: the network
                  // fails with the reason; its slot goes back to the scheduler.
                  auto& cfg = self->state.config;
                  progress_report p;
                  p.network_id = id;
                  p.finished = true;
                  self->send(cfg.scheduler, release_atom_v, slot.id, p);
                  network_outcome o;
                  o.network_id = id;
                  o.status = network_status::failed;
                  o.error = fmt::format("slot {} failed: {}", slot.id,
                                        to_string_pretty(err));
                  self->send(cfg.aggregator, outcome_atom_v, std::move(o));
                  self->quit();
                });
      },
  };
}

} // namespace actortrain
