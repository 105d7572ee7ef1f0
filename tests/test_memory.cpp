// Device memory: the scheduler's admission against a device's budget, and
// out-of-memory errors contained (the network waits for a device to itself,
// keeps its bits, or fails alone with a clear reason). GPU budgets are faked
// on CPU slots: the arithmetic and the messages are the same.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include <c10/util/Exception.h>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/spawn_options.hpp>

#include <actortrain/actortrain.hpp>
#include <actortrain/learner.hpp>

#include "actors/slot_executor.hpp"
#include "protocol/slot.hpp"
#include "protocol/type_ids.hpp"
#include "scheduling/scheduler.hpp"
#include "test_support.hpp"
#include "training/network_runner.hpp"

using namespace actortrain;
using namespace std::chrono_literals;

CAF_ADD_ATOM(actortrain_test, actortrain_test, memory_quantum_atom, "memq")
using actortrain_test::memory_quantum_atom;
using actortrain_test::memory_quantum_atom_v;

namespace admission {

/// What the fake trainers see on each device: memory admitted and holders
/// now, and every moment the budget was exceeded with more than one holder.
struct device_log {
  std::mutex mtx;
  std::map<std::string, int64_t> used;
  std::map<std::string, int64_t> holders;
  int64_t over_budget = 0;
  int64_t alone_with_others = 0;
  int64_t alone_grants = 0;
  int64_t largest_granted = 0;
  /// The most memory admitted on all devices together at once.
  int64_t peak_total = 0;
  /// Each trainer's last device, and grants on another one than its last.
  std::map<uint64_t, std::string> last_device;
  int64_t device_changes = 0;
  std::atomic<int64_t> finished{0};
};

struct script {
  uint64_t id = 0;
  int64_t memory = 0;
  int quanta = 4;
  /// Reports running out of memory after its first quantum, then a
  /// measured peak of `measured` after its next.
  bool runs_out = false;
  int64_t measured = 0;
};

/// A trainer without compute: asks with its memory estimate, holds each
/// grant for 2 ms and records what the device holds meanwhile.
caf::behavior trainer(caf::event_based_actor* self, scheduler_actor sched,
                      script s, int64_t budget,
                      std::shared_ptr<device_log> log) {
  auto done = std::make_shared<int>(0);
  trainer_info info{s.id, s.quanta, 1, 0, {}, {}, {}, {}};
  info.memory_bytes = s.memory;
  self->send(sched, acquire_atom_v, info);
  return {
      [=](grant_atom, const slot_grant& g) {
        {
          std::lock_guard<std::mutex> guard{log->mtx};
          auto& used = log->used[g.slot.node + g.slot.device];
          auto& holders = log->holders[g.slot.node + g.slot.device];
          auto [last, first] = log->last_device.emplace(s.id, g.slot.device);
          if (!first && last->second != g.slot.device) {
            ++log->device_changes;
            last->second = g.slot.device;
          }
          used += s.memory;
          ++holders;
          if (holders > 1 && used > budget)
            ++log->over_budget;
          int64_t total = 0;
          for (const auto& [device, bytes] : log->used)
            total += bytes;
          log->peak_total = std::max(log->peak_total, total);
          if (g.alone) {
            ++log->alone_grants;
            if (holders > 1)
              ++log->alone_with_others;
          }
          if (s.memory > budget)
            log->largest_granted = std::max(log->largest_granted, s.memory);
        }
        self->delayed_send(self, 2ms, memory_quantum_atom_v, g);
      },
      [=](memory_quantum_atom, const slot_grant& g) {
        {
          std::lock_guard<std::mutex> guard{log->mtx};
          log->used[g.slot.node + g.slot.device] -= s.memory;
          --log->holders[g.slot.node + g.slot.device];
        }
        ++*done;
        progress_report p;
        p.network_id = s.id;
        p.steps_done = *done;
        p.steps_total = s.quanta;
        p.quantum_steps = 1;
        p.out_of_memory = s.runs_out && *done == 1;
        if (s.runs_out && *done == 2)
          p.memory_bytes = s.measured;
        // A quantum that ran out of memory kept nothing: it counts again.
        p.finished = *done >= s.quanta + (s.runs_out ? 1 : 0);
        self->send(sched, release_atom_v, g.slot.id, p);
        if (p.finished) {
          ++log->finished;
          self->quit();
        }
      },
  };
}

/// A scheduler over `slots` (fifo unless told), for the fake trainers.
scheduler_actor fake_scheduler(caf::actor_system& sys,
                               const std::vector<slot_grant>& slots,
                               policy_kind policy = policy_kind::fifo) {
  return sys.spawn(scheduler, slots,
                   std::shared_ptr<scheduling_policy>{make_policy(policy)},
                   aggregator_actor{}, size_t{0}, search_settings{},
                   search_history{}, 0.0, nullptr);
}

/// Spawns a fake trainer for each of `scripts` and waits (at most 60 s)
/// until every one has finished.
void run_scripts(caf::actor_system& sys, const scheduler_actor& sched,
                 const std::vector<script>& scripts, int64_t budget,
                 const std::shared_ptr<device_log>& log) {
  for (const auto& s : scripts)
    sys.spawn(trainer, sched, s, budget, log);
  auto deadline = std::chrono::steady_clock::now() + 60s;
  auto all = static_cast<int64_t>(scripts.size());
  while (log->finished < all && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  REQUIRE(log->finished == all);
}

/// What `sched` says of itself.
scheduler_status status_of(caf::actor_system& sys,
                           const scheduler_actor& sched) {
  caf::scoped_actor self{sys};
  scheduler_status status;
  self->request(sched, caf::infinite, status_atom_v)
      .receive([&](scheduler_status& s) { status = s; },
               [&](caf::error& e) { FAIL(to_string(e)); });
  return status;
}

} // namespace admission

TEST_CASE("GPU admission never puts more on a device than its budget, and "
          "passes no large network over for good") {
  caf::actor_system sys{test::actor_config()};
  // Two fake GPUs of 2 slots each, 100 bytes of budget apiece, on two
  // nodes; the executors run on the CPU (these trainers never use them).
  constexpr int64_t budget = 100;
  std::vector<slot_grant> slots;
  for (uint32_t i = 0; i < 4; ++i) {
    slot_info info;
    info.id = i;
    auto exec = sys.spawn<caf::detached>(slot_executor, info);
    // Two GPUs named alike on two nodes: each has its own budget.
    info.device = "cuda:0";
    info.node = i < 2 ? "" : "127.0.0.1:4242";
    info.memory_budget = budget;
    slots.push_back(slot_grant{info, exec, {}});
  }
  auto sched = admission::fake_scheduler(sys, slots);
  auto log = std::make_shared<admission::device_log>();
  admission::run_scripts(sys, sched,
                         {{0, 70},
                          {1, 60},
                          {2, 40},
                          {3, 30},
                          {4, 150},
                          {5, 20},
                          {6, 90},
                          {7, 50},
                          {8, 10},
                          {9, 40, 4, true, 30},
                          {10, 60},
                          {11, 25}},
                         budget, log);
  CHECK(log->over_budget == 0);
  // Each device has a budget of its own (more than one device's worth was
  // in use at once).
  CHECK(log->peak_total > budget);
  // The network larger than a device ran, alone on it.
  CHECK(log->largest_granted == 150);
  // Out of memory once: its next grant was a device to itself, and only
  // that one (its measured peak then let it share again).
  CHECK(log->alone_grants == 1);
  CHECK(log->alone_with_others == 0);
  auto status = admission::status_of(sys, sched);
  CHECK(status.out_of_memory == 1);
  CHECK(status.alone_grants == 1);
  CHECK(status.memory_waits > 0);
  CHECK(status.busy == 0);
  caf::scoped_actor self{sys};
  for (auto& s : slots)
    self->send_exit(s.executor, caf::exit_reason::user_shutdown);
  self->send_exit(sched, caf::exit_reason::user_shutdown);
}

namespace admission {

/// Learners that share a pretend device: a step that finds another
/// learner's step running throws LibTorch's out-of-memory error, as a GPU
/// too full for two would. `always` makes network 0 run out even alone.
struct pretend_device {
  std::atomic<int> stepping{0};
  std::atomic<int64_t> out_of_memory{0};
  bool crowded = true;
  bool network_0_never_fits = false;
};

class crowded_learner : public learner {
public:
  crowded_learner(const learner_context& ctx,
                  std::shared_ptr<pretend_device> device)
      : inner_(make_builtin_learner(ctx)), id_(ctx.spec.id),
        device_(std::move(device)) {}

  double train_step(const torch::Tensor& x, const torch::Tensor& y) override {
    struct stepping {
      std::atomic<int>& n;
      int now;
      explicit stepping(std::atomic<int>& n) : n(n), now(++n) {}
      ~stepping() {
        --n;
      }
    } guard{device_->stepping};
    if ((device_->crowded && guard.now > 1) ||
        (device_->network_0_never_fits && id_ == 0)) {
      ++device_->out_of_memory;
      throw c10::OutOfMemoryError({__func__, __FILE__, __LINE__},
                                  "pretend GPU out of memory. Tried to "
                                  "allocate 2.00 GiB");
    }
    // Long enough that two slots' steps overlap.
    std::this_thread::sleep_for(1ms);
    return inner_->train_step(x, y);
  }
  torch::Tensor predict(const torch::Tensor& x) override {
    return inner_->predict(x);
  }
  std::vector<std::pair<std::string, torch::Tensor>> state() override {
    return inner_->state();
  }
  bool can_checkpoint() const override {
    return inner_->can_checkpoint();
  }
  void save(torch::serialize::OutputArchive& a) override {
    inner_->save(a);
  }
  void load(torch::serialize::InputArchive& a) override {
    inner_->load(a);
  }
  void scale_learning_rate(double f) override {
    inner_->scale_learning_rate(f);
  }

private:
  std::unique_ptr<learner> inner_;
  uint64_t id_;
  std::shared_ptr<pretend_device> device_;
};

caf::expected<run_result> run_on(const experiment& exp, const std::string& dir,
                                 std::shared_ptr<pretend_device> device) {
  run_options opts;
  opts.output_dir = dir;
  opts.make_learner = [device](const learner_context& ctx) {
    return std::make_unique<crowded_learner>(ctx, device);
  };
  return run(exp, opts);
}

} // namespace admission

TEST_CASE("a network out of memory beside others waits for a device to "
          "itself and ends with the bits it would have had") {
  auto exp = test::tiny_experiment(4, 3);
  exp.scheduler.slots = 2;
  test::temp_dir dir;
  auto calm = std::make_shared<admission::pretend_device>();
  calm->crowded = false;
  auto reference = admission::run_on(exp, dir / "calm", calm);
  REQUIRE_MESSAGE(static_cast<bool>(reference),
                  to_string_pretty(reference.error()));
  CHECK(calm->out_of_memory == 0);

  auto crowded = std::make_shared<admission::pretend_device>();
  auto result = admission::run_on(exp, dir / "crowded", crowded);
  REQUIRE_MESSAGE(static_cast<bool>(result), to_string_pretty(result.error()));
  // Two slots stepping at once: some step ran out of memory.
  CHECK(crowded->out_of_memory > 0);
  CHECK(result->count(network_status::finished) == 4);
  // Nothing of a quantum that ran out was kept: the same bits.
  CHECK(test::stored_weights(dir / "crowded") ==
        test::stored_weights(dir / "calm"));
  for (size_t i = 0; i < 4; ++i) {
    CAPTURE(i);
    CHECK(result->networks[i].test_loss == reference->networks[i].test_loss);
  }
  // Each time is on record, with where it continues from.
  auto store = results_store::open((dir / "crowded") + "/results.db");
  REQUIRE(static_cast<bool>(store));
  auto errors = (*store)->errors();
  REQUIRE(static_cast<bool>(errors));
  for (const auto& e : *errors) {
    CHECK(test::contains(e.message, "out of memory on cpu"));
    CHECK(test::contains(e.message, "waits for memory, then continues"));
  }
  CHECK(static_cast<int64_t>(errors->size()) == crowded->out_of_memory);
}

TEST_CASE("a network that does not fit its device even alone fails with the "
          "reason, and the others finish") {
  auto exp = test::tiny_experiment(3, 2);
  exp.scheduler.slots = 2;
  test::temp_dir dir;
  auto device = std::make_shared<admission::pretend_device>();
  device->crowded = false;
  device->network_0_never_fits = true;
  auto result = admission::run_on(exp, dir / "out", device);
  REQUIRE_MESSAGE(static_cast<bool>(result), to_string_pretty(result.error()));
  CHECK(result->count(network_status::finished) == 2);
  const auto& failed = result->networks[0];
  CHECK(failed.status == network_status::failed);
  CHECK(test::contains(failed.error, "out of memory on cpu with the device to "
                                     "itself"));
  CHECK(test::contains(failed.error, "does not fit this device"));
  // Once beside the others (or alone already), then alone: at most twice.
  CHECK(device->out_of_memory >= 1);
  CHECK(device->out_of_memory <= 2);
}

TEST_CASE("a trainer goes back to a free slot on its own GPU rather than "
          "moving to another") {
  caf::actor_system sys{test::actor_config()};
  // Two fake GPUs of 2 slots each on one node; two trainers, so whenever
  // one comes back, slots on both devices are free.
  std::vector<slot_grant> slots;
  for (uint32_t i = 0; i < 4; ++i) {
    slot_info info;
    info.id = i;
    auto exec = sys.spawn<caf::detached>(slot_executor, info);
    info.device = i < 2 ? "cuda:0" : "cuda:1";
    slots.push_back(slot_grant{info, exec, {}});
  }
  auto sched = admission::fake_scheduler(sys, slots);
  auto log = std::make_shared<admission::device_log>();
  admission::run_scripts(sys, sched, {{0, 0, 12}, {1, 0, 12}}, 0, log);
  // Taking the first free slot would have moved them between the GPUs (a
  // released slot goes to the back of the free list).
  CHECK(log->device_changes == 0);
  CHECK(admission::status_of(sys, sched).device_moves == 0);
  // Three trainers taking turns (round robin) on one slot of each GPU: a
  // trainer takes the slot that is free, on whichever device (a GPU never
  // idles for affinity), and the scheduler counts each such move.
  std::vector<slot_grant> two{slots[0], slots[2]};
  two[1].slot.id = 1;
  auto crowded = admission::fake_scheduler(sys, two, policy_kind::round_robin);
  auto log3 = std::make_shared<admission::device_log>();
  admission::run_scripts(sys, crowded, {{0, 0, 12}, {1, 0, 12}, {2, 0, 12}}, 0,
                         log3);
  CHECK(log3->device_changes > 0);
  auto status = admission::status_of(sys, crowded);
  CHECK(status.device_moves == log3->device_changes);
  CHECK(status.busy == 0);
  caf::scoped_actor self{sys};
  for (auto& s : slots)
    self->send_exit(s.executor, caf::exit_reason::user_shutdown);
  self->send_exit(sched, caf::exit_reason::user_shutdown);
  self->send_exit(crowded, caf::exit_reason::user_shutdown);
}
