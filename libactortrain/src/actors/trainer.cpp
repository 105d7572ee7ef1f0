#include "actors/trainer.hpp"

#include <caf/event_based_actor.hpp>
#include <fmt/format.h>

#include "actortrain/error.hpp"
#include "actortrain/type_ids.hpp"

namespace actortrain {

namespace {

/// Sends what one network's quantum produced to the aggregator, except its
/// outcome.
void deliver(const trainer_config& cfg, caf::event_based_actor* self,
             quantum_outcome& out) {
  auto id = out.progress.network_id;
  for (auto& m : out.epochs)
    self->send(cfg.aggregator, epoch_atom_v, m);
  for (auto& reason : out.failures)
    self->send(cfg.aggregator, failure_atom_v, id, out.progress.steps_done,
               std::move(reason));
  if (!out.checkpoint.empty())
    self->send(cfg.aggregator, checkpoint_atom_v, id, out.checkpoint_step,
               std::move(out.checkpoint));
}

} // namespace

caf::behavior trainer(caf::stateful_actor<trainer_state>* self,
                      std::shared_ptr<network_group> group,
                      trainer_config config) {
  self->state.group = std::move(group);
  self->state.config = std::move(config);
  auto id = self->state.group->id();
  self->send(self->state.config.scheduler, acquire_atom_v,
             self->state.group->info());
  return {
      [=](grant_atom, const slot_grant& grant) {
        auto group = self->state.group;
        auto slot = grant.slot;
        auto limits = self->state.config.quantum;
        // Networks not done before this quantum: if the slot fails, these
        // fail with it.
        auto pending = group->unfinished();
        quantum_job job{[group, slot, limits] {
          return group->run_quantum(slot, limits);
        }};
        self->request(grant.executor, caf::infinite, quantum_atom_v, job)
            .then(
                [=](quantum_report& report) {
                  auto& cfg = self->state.config;
                  for (auto& out : report.networks)
                    deliver(cfg, self, out);
                  // Unless finished, the scheduler queues us for the next
                  // quantum. The release goes before the outcomes: the last
                  // outcome ends the run, and with it the schedule.
                  self->send(cfg.scheduler, release_atom_v, slot.id,
                             report.progress);
                  for (auto& out : report.networks)
                    if (out.progress.finished)
                      self->send(cfg.aggregator, outcome_atom_v,
                                 std::move(out.outcome));
                  if (report.progress.finished)
                    self->quit();
                },
                [=](caf::error& err) {
                  // The slot's executor went away mid-quantum: the networks
                  // fail with the reason; the slot goes back to the
                  // scheduler.
                  auto& cfg = self->state.config;
                  progress_report p;
                  p.network_id = id;
                  p.finished = true;
                  self->send(cfg.scheduler, release_atom_v, slot.id, p);
                  for (auto net : pending) {
                    network_outcome o;
                    o.network_id = net;
                    o.status = network_status::failed;
                    o.error = fmt::format("slot {} failed: {}", slot.id,
                                          to_string_pretty(err));
                    self->send(cfg.aggregator, outcome_atom_v, std::move(o));
                  }
                  self->quit();
                });
      },
  };
}

} // namespace actortrain
