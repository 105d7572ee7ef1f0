#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/spawn_options.hpp>
#include <fmt/format.h>

#include "actors/slot_executor.hpp"
#include "actors/stall_watch.hpp"
#include "protocol/slot.hpp"
#include "protocol/type_ids.hpp"
#include "scheduling/scheduler.hpp"
#include "test_support.hpp"
#include "training/network_runner.hpp"

using namespace actortrain;
using namespace std::chrono_literals;

CAF_ADD_ATOM(actortrain_test, actortrain_test, finish_quantum_atom, "finishq")
using actortrain_test::finish_quantum_atom;
using actortrain_test::finish_quantum_atom_v;

namespace {

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
  scheduler_fixture(caf::actor_system& sys, int n,
                    std::shared_ptr<store_backlog> unwritten = nullptr)
      : sys(sys) {
    for (int i = 0; i < n; ++i) {
      slot_info info;
      info.id = static_cast<uint32_t>(i);
      slots.push_back(
          slot_grant{info, sys.spawn<caf::detached>(slot_executor, info), {}});
    }
    sched = sys.spawn(
        scheduler, slots,
        std::shared_ptr<scheduling_policy>{make_policy(policy_kind::fifo)},
        aggregator_actor{}, size_t{0}, search_settings{}, search_history{}, 0.0,
        std::move(unwritten));
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
  caf::actor_system sys{test::actor_config()};
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
  caf::actor_system sys{test::actor_config()};
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

TEST_CASE("no quantum starts while the store has more than its limit to "
          "write, and quanta go on once it caught up") {
  caf::actor_system sys{test::actor_config()};
  auto unwritten = std::make_shared<store_backlog>(1000);
  scheduler_fixture fx{sys, 1, unwritten};
  auto& sched = fx.sched;
  caf::scoped_actor self{sys};
  // A trainer sent 1,500 bytes the aggregator has not written yet.
  unwritten->sent(1500);
  self->send(sched, acquire_atom_v, trainer_info{0, 1, 1, 0, {}, {}, {}, {}});
  bool granted = false;
  self->receive([&](grant_atom, const slot_grant&) { granted = true; },
                caf::after(300ms) >> [] {});
  CHECK_FALSE(granted);
  auto s = status_of(self, sched);
  CHECK(s.busy == 0);
  CHECK(s.waiting == 1);
  CHECK(s.store_waits == 1);
  CHECK(s.unwritten_peak == 1500);
  // Down to the limit: the free slot goes out.
  unwritten->written(500);
  self->receive([&](grant_atom, const slot_grant&) { granted = true; },
                caf::after(5s) >> [] {});
  CHECK(granted);
  // Over it again: the slot's next holder waits, however often the
  // scheduler looks.
  unwritten->sent(2000);
  self->send(sched, acquire_atom_v, trainer_info{1, 1, 1, 0, {}, {}, {}, {}});
  progress_report p;
  p.network_id = 0;
  p.finished = true;
  self->send(sched, release_atom_v, uint32_t{0}, p);
  granted = false;
  self->receive([&](grant_atom, const slot_grant&) { granted = true; },
                caf::after(300ms) >> [] {});
  CHECK_FALSE(granted);
  CHECK(status_of(self, sched).store_waits == 2);
  unwritten->written(2000);
  self->receive([&](grant_atom, const slot_grant&) { granted = true; },
                caf::after(5s) >> [] {});
  CHECK(granted);
  CHECK(status_of(self, sched).unwritten_peak == 3000);
}

TEST_CASE("a release from an actor that does not hold the slot is ignored") {
  caf::actor_system sys{test::actor_config()};
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

TEST_CASE("a quiet scheduler says who holds which slot for how long and who "
          "waits, and the stall watch reports it once per doubling") {
  caf::actor_system sys{test::actor_config()};
  scheduler_fixture fx{sys, 1};
  auto& sched = fx.sched;
  caf::scoped_actor self{sys};
  caf::scoped_actor other{sys};
  self->send(sched, acquire_atom_v, trainer_info{0, 1, 1, 0, {}, {}, {}, {}});
  self->receive([](grant_atom, const slot_grant&) {});
  other->send(sched, acquire_atom_v, trainer_info{1, 1, 1, 0, {}, {}, {}, {}});
  std::this_thread::sleep_for(300ms);
  auto s = status_of(self, sched);
  REQUIRE(s.holders.size() == 1);
  CHECK(s.holders[0].network_id == 0);
  CHECK(s.holders[0].device == "cpu");
  CHECK(s.holders[0].node.empty());
  CHECK(s.holders[0].held_seconds >= 0.3);
  CHECK(s.quiet_seconds >= 0.3);
  CHECK(s.trainers == 2);
  CHECK(s.waiting == 1);
  CHECK(s.free_slots == 0);
  CHECK(s.lost_slots == 0);
  auto name = [](const slot_holder& h) {
    return fmt::format("trainer {}", h.network_id);
  };
  stall_watch watch{0.2};
  auto line = watch.look(s, name);
  REQUIRE(line);
  INFO(*line);
  CHECK(line->find("no quantum has started or ended for 0.") == 0);
  CHECK(line->find("(scheduler.stall_report_seconds = 0.2): trainer 0 has "
                   "held slot 0 (cpu) for 0.") != std::string::npos);
  CHECK(line->find("1 trainer waits for a slot") != std::string::npos);
  CHECK(line->find("neither") == std::string::npos);
  CHECK(watch.stalled());
  // Said once: again only when the quiet has doubled.
  CHECK_FALSE(watch.look(status_of(self, sched), name));
  CHECK(watch.stalled());
  // The slot changes hands: the run is not quiet any more.
  progress_report done;
  done.network_id = 0;
  done.finished = true;
  self->send(sched, release_atom_v, uint32_t{0}, done);
  other->receive([](grant_atom, const slot_grant&) {});
  s = status_of(self, sched);
  CHECK(s.quiet_seconds < 0.2);
  CHECK(s.trainers == 1);
  CHECK(s.longest_quantum >= 0.3);
  CHECK_FALSE(watch.look(s, name));
  CHECK_FALSE(watch.stalled());
}

TEST_CASE("the stall watch names lost slots, trainers the scheduler lost "
          "track of, and waits longer than the run's longest quantum") {
  auto name = [](const slot_holder& h) {
    return fmt::format("net-{}", h.network_id);
  };
  scheduler_status s;
  s.slots = 0;
  s.lost_slots = 2;
  s.trainers = 3;
  s.waiting = 3;
  s.quiet_seconds = 61;
  CHECK_FALSE(stall_watch{0}.look(s, name));
  auto lost = stall_watch{60}.look(s, name);
  REQUIRE(lost);
  CHECK(*lost == "no quantum has started or ended for 61 s "
                 "(scheduler.stall_report_seconds = 60): 3 trainers wait for "
                 "a slot; no slot is alive (2 lost with their workers): the "
                 "run waits for a worker to come back");
  // Two trainers neither hold a slot nor wait: a bug, said as one.
  s.slots = 2;
  s.free_slots = 1;
  s.waiting = 0;
  s.holders = {{1, "cpu", 7, "127.0.0.1:4000", 61}};
  s.busy = 1;
  auto stray = stall_watch{60}.look(s, name);
  REQUIRE(stray);
  CHECK(stray->find("net-7 has held slot 1 (127.0.0.1:4000 cpu) for 61 s; "
                    "2 trainers are neither on a slot nor waiting for one "
                    "(a bug: please report this line); 2 of 4 slots lost "
                    "with their workers") != std::string::npos);
  // Quanta of 30 s: a quiet minute is one of them running.
  s.longest_quantum = 30;
  stall_watch watch{60};
  CHECK_FALSE(watch.look(s, name));
  s.quiet_seconds = 91;
  CHECK(watch.look(s, name));
  s.quiet_seconds = 150;
  CHECK_FALSE(watch.look(s, name));
  s.quiet_seconds = 182;
  CHECK(watch.look(s, name));
  // Stopping, only the quanta in flight count.
  s.quiet_seconds = 61;
  s.longest_quantum = 0;
  auto stopping = stall_watch{60}.look(s, name, true);
  REQUIRE(stopping);
  CHECK(*stopping == "no quantum has started or ended for 61 s "
                     "(scheduler.stall_report_seconds = 60): net-7 has held "
                     "slot 1 (127.0.0.1:4000 cpu) for 61 s; the run is "
                     "stopping and waits for its quanta in flight to end");
  s.holders.clear();
  s.busy = 0;
  CHECK_FALSE(stall_watch{60}.look(s, name, true));
  // Nothing left to do (a live session between submissions): no report.
  scheduler_status idle;
  idle.slots = 2;
  idle.quiet_seconds = 600;
  CHECK_FALSE(stall_watch{60}.look(idle, name));
}

TEST_CASE("the scheduler answers while every slot computes") {
  caf::actor_system sys{test::actor_config()};
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

namespace {

/// A fake trainer in virtual time: needs `slots` slots at once for each of
/// its `quanta` quanta, each `cost` virtual seconds long.
struct virtual_trainer {
  std::unique_ptr<caf::scoped_actor> self;
  uint64_t id = 0;
  int64_t slots = 1;
  int quanta = 0;
  double cost = 0;
  int done = 0;
  std::vector<uint32_t> held;
};

/// What the virtual-time schedule showed.
struct gang_observations {
  int64_t quanta = 0;
  int64_t gang_quanta = 0;
  int64_t overlaps = 0;
  int64_t wrong_sizes = 0;
  int64_t empty_grants = 0;
  double longest_idle = 0;
  double makespan = 0;
};

/// Runs `trainers` on `slots` slots under `policy`, in virtual time: the
/// test plays every trainer, ends the earliest quantum, lets the scheduler
/// answer, takes the grants it made, and so on until nothing runs. A slot's
/// idle time is measured from its release to its next grant while every
/// trainer not running waits.
gang_observations run_virtual(caf::actor_system& sys, int slots,
                              std::vector<virtual_trainer>& trainers,
                              policy_kind policy) {
  std::vector<slot_grant> grants;
  for (int i = 0; i < slots; ++i) {
    slot_info info;
    info.id = static_cast<uint32_t>(i);
    grants.push_back(
        slot_grant{info, sys.spawn<caf::detached>(slot_executor, info), {}});
  }
  auto sched =
      sys.spawn(scheduler, grants,
                std::shared_ptr<scheduling_policy>{make_policy(policy)},
                aggregator_actor{}, trainers.size(), search_settings{},
                search_history{}, 0.0, nullptr);
  gang_observations obs;
  std::vector<double> free_since(static_cast<size_t>(slots), 0);
  std::vector<int> holder(static_cast<size_t>(slots), -1);
  // (end time, trainer index) of every quantum running.
  std::multimap<std::pair<double, size_t>, bool> running;
  double now = 0;
  auto take = [&](size_t t, std::vector<uint32_t> ids) {
    auto& tr = trainers[t];
    if (ids.empty()) {
      ++obs.empty_grants;
      tr.done = tr.quanta; // it fails: it never runs
      return;
    }
    if (static_cast<int64_t>(ids.size()) != tr.slots)
      ++obs.wrong_sizes;
    for (auto s : ids) {
      if (holder[s] >= 0)
        ++obs.overlaps;
      holder[s] = static_cast<int>(t);
      obs.longest_idle = std::max(obs.longest_idle, now - free_since[s]);
    }
    ++obs.quanta;
    if (ids.size() > 1)
      ++obs.gang_quanta;
    tr.held = std::move(ids);
    running.emplace(std::make_pair(now + tr.cost, t), true);
  };
  // Everything the scheduler sent before answering `asker` is in the
  // mailboxes: collect the grants.
  auto settle = [&](caf::scoped_actor& asker) {
    asker->request(sched, 5s, status_atom_v)
        .receive([](const scheduler_status&) {},
                 [](caf::error& err) { FAIL(caf::to_string(err)); });
    for (size_t t = 0; t < trainers.size(); ++t) {
      bool more = true;
      while (more)
        (*trainers[t].self)
            ->receive(
                [&](grant_atom, const slot_grant& g) { take(t, {g.slot.id}); },
                [&](grant_atom, const std::vector<slot_grant>& gs) {
                  std::vector<uint32_t> ids;
                  for (const auto& g : gs)
                    ids.push_back(g.slot.id);
                  take(t, ids);
                },
                caf::after(0ms) >> [&] { more = false; });
    }
  };
  for (auto& tr : trainers) {
    tr.self = std::make_unique<caf::scoped_actor>(sys);
    trainer_info info;
    info.network_id = tr.id;
    info.steps_total = tr.quanta;
    info.slots = tr.slots;
    (*tr.self)->send(sched, acquire_atom_v, info);
  }
  settle(*trainers.front().self);
  while (!running.empty()) {
    auto [key, unused] = *running.begin();
    (void)unused;
    running.erase(running.begin());
    now = key.first;
    auto& tr = trainers[key.second];
    progress_report p;
    p.network_id = tr.id;
    p.steps_total = tr.quanta;
    p.steps_done = ++tr.done;
    p.quantum_steps = 1;
    p.quantum_seconds = tr.cost;
    p.finished = tr.done == tr.quanta;
    for (auto s : tr.held) {
      holder[s] = -1;
      free_since[s] = now;
    }
    if (tr.held.size() == 1)
      (*tr.self)->send(sched, release_atom_v, tr.held.front(), p);
    else
      (*tr.self)->send(sched, release_atom_v, tr.held, p);
    tr.held.clear();
    settle(*tr.self);
  }
  obs.makespan = now;
  caf::scoped_actor self{sys};
  for (auto& g : grants)
    self->send_exit(g.executor, caf::exit_reason::user_shutdown);
  self->send_exit(sched, caf::exit_reason::user_shutdown);
  return obs;
}

} // namespace

TEST_CASE("replicated networks get their slots together, never deadlock and "
          "never keep a slot idle beyond a quantum") {
  caf::actor_system sys{test::actor_config()};
  for (auto policy : {policy_kind::fifo, policy_kind::round_robin,
                      policy_kind::shortest_remaining}) {
    auto policy_name = std::string{name_of(policy)};
    CAPTURE(policy_name);
    // Two replicated networks (3 and 2 slots) and five single ones with
    // quanta of different lengths compete for 4 slots.
    std::vector<virtual_trainer> trainers;
    auto add = [&](int64_t slots, int quanta, double cost) {
      virtual_trainer t;
      t.id = trainers.size();
      t.slots = slots;
      t.quanta = quanta;
      t.cost = cost;
      trainers.push_back(std::move(t));
    };
    add(3, 4, 2.0);
    add(1, 6, 1.0);
    add(2, 5, 1.5);
    add(1, 3, 3.0);
    add(1, 8, 0.5);
    add(1, 4, 2.5);
    add(1, 5, 1.0);
    auto obs = run_virtual(sys, 4, trainers, policy);
    int64_t expected = 0;
    int64_t expected_gangs = 0;
    for (const auto& t : trainers) {
      expected += t.quanta;
      expected_gangs += t.slots > 1 ? t.quanta : 0;
      CHECK(t.done == t.quanta); // nobody deadlocked
    }
    CHECK(obs.quanta == expected);
    CHECK(obs.gang_quanta == expected_gangs);
    CHECK(obs.overlaps == 0);
    CHECK(obs.wrong_sizes == 0);
    CHECK(obs.empty_grants == 0);
    // A freed slot waits at most for the longest quantum (3.0) running.
    CHECK(obs.longest_idle <= 3.0);
    // Work conserving enough: the makespan is within twice the lower bound.
    double work = 0;
    for (const auto& t : trainers)
      work += static_cast<double>(t.slots) * t.quanta * t.cost;
    MESSAGE(fmt::format("{}: makespan {} for {} slot-seconds of work on 4 "
                        "slots, longest idle {}",
                        policy_name, obs.makespan, work, obs.longest_idle));
    CHECK(obs.makespan <= 2 * work / 4);
  }
}

TEST_CASE("a network that needs more slots than the run has gets an empty "
          "grant and the others go on") {
  caf::actor_system sys{test::actor_config()};
  std::vector<virtual_trainer> trainers(3);
  for (size_t i = 0; i < trainers.size(); ++i) {
    trainers[i].id = i;
    trainers[i].quanta = 2;
    trainers[i].cost = 1;
  }
  trainers[1].slots = 3;
  auto obs = run_virtual(sys, 2, trainers, policy_kind::fifo);
  CHECK(obs.empty_grants == 1);
  CHECK(obs.quanta == 4);
  CHECK(trainers[0].done == 2);
  CHECK(trainers[2].done == 2);
}
