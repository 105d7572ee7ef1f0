// Benchmark 2 of the scheduling work: grant/release round trips per second
// through the real scheduler actor, with 10,000 trainers doing empty quanta
// (no compute: what is measured is the scheduler and CAF's messaging).
//
// usage: bench_scheduler_throughput [trainers=10000] [quanta=20] [slots=2]

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <fmt/format.h>

#include "protocol/slot.hpp"
#include "protocol/type_ids.hpp"
#include "scheduling/scheduler.hpp"

using namespace actortrain;

namespace {

/// Releases each granted slot at once, `quanta` times, then quits.
caf::behavior empty_trainer(caf::event_based_actor* self, scheduler_actor sched,
                            uint64_t id, int64_t quanta,
                            std::shared_ptr<std::atomic<int64_t>> done) {
  auto left = std::make_shared<int64_t>(quanta);
  self->send(sched, acquire_atom_v,
             trainer_info{id, quanta, 1, 0, {}, {}, {}, {}});
  return {
      [=](grant_atom, const slot_grant& g) {
        progress_report p;
        p.network_id = id;
        p.steps_total = quanta;
        p.steps_done = quanta - *left + 1;
        p.quantum_steps = 1;
        p.quantum_seconds = 1e-6;
        p.finished = --*left == 0;
        self->send(sched, release_atom_v, g.slot.id, p);
        if (p.finished) {
          ++*done;
          self->quit();
        }
      },
  };
}

double measure(caf::actor_system& sys, policy_kind policy, int64_t trainers,
               int64_t quanta, int64_t slots) {
  std::vector<slot_grant> grants(static_cast<size_t>(slots));
  auto sched =
      sys.spawn(scheduler, grants,
                std::shared_ptr<scheduling_policy>{make_policy(policy)},
                aggregator_actor{}, static_cast<size_t>(trainers),
                search_settings{}, search_history{}, 0.0, nullptr);
  auto done = std::make_shared<std::atomic<int64_t>>(0);
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < trainers; ++i)
    sys.spawn(empty_trainer, sched, static_cast<uint64_t>(i), quanta, done);
  while (*done < trainers)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  caf::scoped_actor self{sys};
  self->send_exit(sched, caf::exit_reason::user_shutdown);
  return static_cast<double>(trainers * quanta) / secs;
}

} // namespace

int main(int argc, char** argv) {
  int64_t trainers = argc > 1 ? std::stoll(argv[1]) : 10000;
  int64_t quanta = argc > 2 ? std::stoll(argv[2]) : 20;
  int64_t slots = argc > 3 ? std::stoll(argv[3]) : 2;
  caf::actor_system_config cfg;
  cfg.add_message_types<caf::id_block::actortrain>();
  caf::actor_system sys{cfg};
  fmt::print("{} trainers x {} empty quanta, {} slots\n", trainers, quanta,
             slots);
  fmt::print("| policy | grant/release round trips per second |\n|---|---|\n");
  for (auto policy : all_choices<policy_kind>())
    fmt::print("| {} | {:.0f} |\n", name_of(policy),
               measure(sys, policy, trainers, quanta, slots));
  return 0;
}
