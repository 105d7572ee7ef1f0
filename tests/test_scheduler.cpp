#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/spawn_options.hpp>

#include "actors/slot_executor.hpp"
#include "protocol/slot.hpp"
#include "protocol/type_ids.hpp"
#include "scheduling/scheduler.hpp"
#include "training/network_runner.hpp"

using namespace actortrain;
using namespace std::chrono_literals;

CAF_ADD_ATOM(actortrain_test, actortrain_test, finish_quantum_atom, "finishq")
using actortrain_test::finish_quantum_atom;
using actortrain_test::finish_quantum_atom_v;

namespace {

struct system_fixture {
  static caf::actor_system_config& config() {
    static caf::actor_system_config cfg;
    static bool once = [] {
      cfg.add_message_types<caf::id_block::actortrain>();
      return true;
    }();
    (void)once;
    return cfg;
  }
};

/// Counts what fake trainers observe: concurrent holders and slot reuse.
struct observations {
  std::mutex mtx;
  std::set<uint32_t> in_use;
  int64_t busy = 0;
  int64_t peak = 0;
  int64_t double_grants = 0;
  std::atomic<int64_t> quanta_done{0};
};

/// A trainer without compute: holds each granted slot for ~1 ms, `quanta`
/// times, and records what it sees.
caf::behavior fake_trainer(caf::event_based_actor* self, scheduler_actor sched,
                           uint64_t id, int quanta,
                           std::shared_ptr<observations> obs) {
  auto left = std::make_shared<int>(quanta);
  self->send(sched, acquire_atom_v,
             trainer_info{id, quanta, 1, 0, {}, {}, {}, {}});
  return {
      [=](grant_atom, const slot_grant& g) {
        {
          std::lock_guard<std::mutex> guard{obs->mtx};
          if (!obs->in_use.insert(g.slot.id).second)
            ++obs->double_grants;
          obs->peak = std::max(obs->peak, ++obs->busy);
        }
        self->delayed_send(self, 1ms, finish_quantum_atom_v, g.slot.id);
      },
      [=](finish_quantum_atom, uint32_t slot) {
        {
          std::lock_guard<std::mutex> guard{obs->mtx};
          obs->in_use.erase(slot);
          --obs->busy;
        }
        ++obs->quanta_done;
        progress_report p;
        p.network_id = id;
        p.steps_done = quanta - *left + 1;
        p.steps_total = quanta;
        p.quantum_steps = 1;
        p.finished = --*left == 0;
        // Unless finished, the release queues this trainer again.
        self->send(sched, release_atom_v, slot, p);
        if (p.finished)
          self->quit();
      },
  };
}

/// A FIFO scheduler over `n` real slot executors; stops them all when done.
struct scheduler_fixture {
  scheduler_fixture(caf::actor_system& sys, int n) : sys(sys) {
    for (int i = 0; i < n; ++i) {
      slot_info info;
      info.id = static_cast<uint32_t>(i);
      slots.push_back(
          slot_grant{info, sys.spawn<caf::detached>(slot_executor, info)});
    }
    sched = sys.spawn(
        scheduler, slots,
        std::shared_ptr<scheduling_policy>{make_policy(policy_kind::fifo)},
        aggregator_actor{}, size_t{0}, search_settings{}, search_history{});
  }

  ~scheduler_fixture() {
    caf::scoped_actor self{sys};
    for (auto& s : slots)
      self->send_exit(s.executor, caf::exit_reason::user_shutdown);
    self->send_exit(sched, caf::exit_reason::user_shutdown);
  }

  caf::actor_system& sys;
  std::vector<slot_grant> slots;
  scheduler_actor sched;
};

scheduler_status status_of(caf::scoped_actor& self,
                           const scheduler_actor& sched) {
  scheduler_status result;
  self->request(sched, 5s, status_atom_v)
      .receive([&](const scheduler_status& s) { result = s; },
               [&](caf::error& err) { FAIL(caf::to_string(err)); });
  return result;
}

} // namespace

TEST_CASE("the scheduler never grants more slots than exist") {
  caf::actor_system sys{system_fixture::config()};
  scheduler_fixture fx{sys, 3};
  auto& sched = fx.sched;
  auto obs = std::make_shared<observations>();
  constexpr int trainers = 40;
  constexpr int quanta = 5;
  for (int i = 0; i < trainers; ++i)
    sys.spawn(fake_trainer, sched, static_cast<uint64_t>(i), quanta, obs);
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (obs->quanta_done < trainers * quanta &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  CHECK(obs->quanta_done == trainers * quanta);
  CHECK(obs->double_grants == 0);
  CHECK(obs->peak <= 3);
  CHECK(obs->peak == 3); // with 40 waiting trainers every slot was used
  caf::scoped_actor self{sys};
  auto s = status_of(self, sched);
  CHECK(s.slots == 3);
  CHECK(s.busy == 0);
  CHECK(s.waiting == 0);
  CHECK(s.peak_busy <= 3);
  CHECK(s.grants == trainers * quanta);
  CHECK(s.steps_done == trainers * quanta);
}

TEST_CASE("a trainer that dies holding a slot gives it back") {
  caf::actor_system sys{system_fixture::config()};
  scheduler_fixture fx{sys, 1};
  auto& sched = fx.sched;
  caf::scoped_actor self{sys};
  // A trainer that takes the slot and then never releases it.
  auto holder = sys.spawn([=](caf::event_based_actor* a) -> caf::behavior {
    a->send(sched, acquire_atom_v, trainer_info{0, 1, 1, 0, {}, {}, {}, {}});
    return {[](grant_atom, const slot_grant&) {
    }};
  });
  for (int i = 0; i < 500 && status_of(self, sched).busy == 0; ++i)
    std::this_thread::sleep_for(2ms);
  REQUIRE(status_of(self, sched).busy == 1);
  self->send(sched, acquire_atom_v, trainer_info{1, 1, 1, 0, {}, {}, {}, {}});
  bool granted = false;
  self->receive([&](grant_atom, const slot_grant&) { granted = true; },
                caf::after(200ms) >> [] {});
  CHECK_FALSE(granted);
  CHECK(status_of(self, sched).waiting == 1);
  self->send_exit(holder, caf::exit_reason::kill);
  self->receive(
      [&](grant_atom, const slot_grant& g) {
        granted = true;
        CHECK(g.slot.id == 0);
      },
      caf::after(5s) >> [] {});
  CHECK(granted);
}

TEST_CASE("a release from an actor that does not hold the slot is ignored") {
  caf::actor_system sys{system_fixture::config()};
  scheduler_fixture fx{sys, 1};
  auto& sched = fx.sched;
  caf::scoped_actor self{sys};
  self->send(sched, acquire_atom_v, trainer_info{0, 1, 1, 0, {}, {}, {}, {}});
  self->receive([](grant_atom, const slot_grant&) {});
  caf::scoped_actor other{sys};
  other->send(sched, release_atom_v, uint32_t{0}, progress_report{});
  CHECK(status_of(self, sched).busy == 1);
  progress_report done;
  done.finished = true;
  self->send(sched, release_atom_v, uint32_t{0}, done);
  CHECK(status_of(self, sched).busy == 0);
}

TEST_CASE("the scheduler answers while every slot computes") {
  caf::actor_system sys{system_fixture::config()};
  scheduler_fixture fx{sys, 2};
  auto& sched = fx.sched;
  auto& slots = fx.slots;
  caf::scoped_actor self{sys};
  // Both slots run a job that blocks until the scheduler has answered (a
  // stand-in for long LibTorch compute), or ten seconds at most.
  std::atomic<int> started{0};
  std::atomic<int> finished{0};
  std::atomic<bool> answered{false};
  for (auto& s : slots) {
    quantum_job job{[&] {
      ++started;
      for (int i = 0; i < 10000 && !answered; ++i)
        std::this_thread::sleep_for(1ms);
      ++finished;
      return quantum_report{};
    }};
    self->send(s.executor, quantum_atom_v, job);
  }
  while (started < 2)
    std::this_thread::sleep_for(1ms);
  auto s = status_of(self, sched);
  // The answer came while both slots were still computing.
  CHECK(finished == 0);
  answered = true;
  CHECK(s.slots == 2);
  // Collect the two job replies before shutting down.
  for (int i = 0; i < 2; ++i)
    self->receive([](quantum_report&) {}, caf::after(5s) >> [] {});
}
