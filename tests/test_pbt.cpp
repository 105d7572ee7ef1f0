// PBT's exploit below the scheduler: a donor's state kept at an interval
// epoch, copied into another network bit for bit, and a donor's trainer
// refusing a version it does not hold.

#include <doctest/doctest.h>

#include <chrono>

#include <ATen/CPUGeneratorImpl.h>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <fmt/format.h>

#include "actors/trainer.hpp"
#include "actortrain/error.hpp"
#include "actortrain/learner.hpp"
#include "models/builtin_learner.hpp"
#include "protocol/type_ids.hpp"
#include "scheduling/scheduler.hpp"
#include "training/network_group.hpp"

using namespace actortrain;

namespace {

std::shared_ptr<const dataset> table_data() {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  auto d = std::make_shared<dataset>();
  d->feature_shape = {10};
  d->train_x = torch::randn({96, 10}, gen);
  d->train_y = torch::randint(0, 3, {96}, gen);
  d->test_x = torch::randn({48, 10}, gen);
  d->test_y = torch::randint(0, 3, {48}, gen);
  d->classes = 3;
  return d;
}

network_spec spec_of(uint64_t id, double lr) {
  network_spec s;
  s.id = id;
  s.name = fmt::format("net-{:04}", id);
  s.seed = derive_seed(42, id);
  s.config.model.hidden = {12};
  s.config.optimizer.kind = optimizer_kind::adam;
  s.config.optimizer.lr = lr;
  s.config.train.epochs = 4;
  s.config.train.batch_size = 16;
  return s;
}

struct one_network {
  network_runner* runner = nullptr;
  std::unique_ptr<network_group> group;
};

one_network make_one(const network_spec& spec,
                     std::shared_ptr<const dataset> data, bool fuse = true) {
  auto runner = std::make_unique<network_runner>(
      spec, data, torch::arange(data->train_x.size(0)), learner_factory{});
  one_network result;
  result.runner = runner.get();
  std::vector<std::unique_ptr<network_runner>> members;
  members.push_back(std::move(runner));
  result.group = std::make_unique<network_group>(std::move(members), fuse);
  return result;
}

} // namespace

TEST_CASE("a PBT copy takes the donor's weights and optimizer state bit for "
          "bit and keeps the recipient's own position") {
  auto data = table_data();
  auto donor = make_one(spec_of(0, 0.003), data);
  // Unfused, so its learner is its own between quanta; `fused` is the same
  // network taking the copy through a quantum, where a fused member is
  // unstacked for it.
  auto recipient = make_one(spec_of(1, 0.01), data, false);
  auto fused = make_one(spec_of(1, 0.01), data);
  slot_info slot;
  slot.device = "cpu";
  quantum_limits limits;
  limits.search.epoch_boundaries = true;
  limits.search.keep_every = 2;
  // Epoch 1 is no interval: nothing kept; epoch 2 is.
  auto first = donor.group->run_quantum(slot, limits);
  REQUIRE(first.networks.size() == 1);
  CHECK(first.networks[0].kept_state.empty());
  auto second = donor.group->run_quantum(slot, limits);
  const auto& kept = second.networks[0].kept_state;
  REQUIRE_FALSE(kept.empty());
  CHECK(second.networks[0].kept_epoch == 2);
  auto donor_weights = donor.runner->current_learner().state();
  // The recipient trained one epoch of its own.
  recipient.group->run_quantum(slot, limits);
  fused.group->run_quantum(slot, limits);
  auto step = recipient.runner->step();
  auto own = recipient.runner->current_learner().state();
  REQUIRE(own.size() == donor_weights.size());
  CHECK_FALSE(torch::equal(own[0].second, donor_weights[0].second));
  // Made at the start of its next quantum: after prepare, before any step.
  recipient.runner->transplant(kept, 2.0);
  recipient.runner->prepare(slot);
  auto copied = recipient.runner->current_learner().state();
  REQUIRE(copied.size() == donor_weights.size());
  for (size_t i = 0; i < copied.size(); ++i) {
    CAPTURE(copied[i].first);
    CHECK(copied[i].first == donor_weights[i].first);
    CHECK(torch::equal(copied[i].second, donor_weights[i].second));
  }
  CHECK(recipient.runner->step() == step);
  // Its learning rate is the donor's times the factor (LibTorch's optimizer
  // archive does not carry it: the learner's does).
  auto* b =
      dynamic_cast<builtin_learner*>(&recipient.runner->current_learner());
  REQUIRE(b != nullptr);
  CHECK(b->learning_rate() == doctest::Approx(0.003 * 2.0).epsilon(1e-12));
  // The optimizer state is the donor's but for the learning rate: what the
  // recipient saves now differs from the donor's bytes.
  CHECK(recipient.runner->learner_bytes() != kept);
  // It trains on from its own position, with the copied weights.
  auto after = recipient.group->run_quantum(slot, limits);
  REQUIRE(after.networks.size() == 1);
  CHECK(after.networks[0].epochs.size() == 1);
  CHECK(after.networks[0].epochs[0].epoch == 2);
  CHECK(after.networks[0].failures.empty());
  // The factor is applied: the same copy at the donor's own rate trains
  // to another loss.
  auto plain = make_one(spec_of(1, 0.01), data, false);
  plain.group->run_quantum(slot, limits);
  plain.runner->transplant(kept, 1.0);
  auto plain_after = plain.group->run_quantum(slot, limits);
  REQUIRE(plain_after.networks[0].epochs.size() == 1);
  CHECK(plain_after.networks[0].epochs[0].train_loss !=
        after.networks[0].epochs[0].train_loss);
  auto through = limits;
  through.search.transplants.push_back({1, kept, 2.0});
  auto fused_after = fused.group->run_quantum(slot, through);
  REQUIRE(fused_after.networks.size() == 1);
  CHECK(fused_after.networks[0].failures.empty());
  REQUIRE(fused_after.networks[0].epochs.size() == 1);
  CHECK(fused_after.networks[0].epochs[0].train_loss ==
        doctest::Approx(after.networks[0].epochs[0].train_loss).epsilon(1e-5));
}

TEST_CASE("a donor's trainer refuses a state it does not hold") {
  caf::actor_system_config cfg;
  cfg.add_message_types<caf::id_block::actortrain>();
  caf::actor_system sys{cfg};
  {
    auto data = table_data();
    std::vector<std::unique_ptr<network_runner>> members;
    members.push_back(std::make_unique<network_runner>(
        spec_of(4, 0.003), data, torch::arange(data->train_x.size(0)),
        learner_factory{}));
    auto group = std::make_shared<network_group>(std::move(members));
    // No slots: the trainer waits for a grant that never comes, and answers
    // copies meanwhile.
    search_settings search;
    search.kind = search_kind::pbt;
    auto sched = sys.spawn(
        scheduler, std::vector<slot_grant>{},
        std::shared_ptr<scheduling_policy>{make_policy(policy_kind::fifo)},
        aggregator_actor{}, size_t{1}, search, search_history{}, 0.0, nullptr);
    trainer_config tcfg;
    tcfg.scheduler = sched;
    auto t = sys.spawn(trainer, group, tcfg);
    caf::scoped_actor self{sys};
    std::string refused;
    self->request(t, std::chrono::seconds{10}, exploit_atom_v, uint64_t{4},
                  int64_t{2})
        .receive(
            [&](const std::vector<char>&) { refused = "answered"; },
            [&](const caf::error& err) { refused = to_string_pretty(err); });
    CHECK_MESSAGE(refused.find("network 4 has no state to copy") !=
                      std::string::npos,
                  refused);
    self->send_exit(t, caf::exit_reason::user_shutdown);
    self->send_exit(sched, caf::exit_reason::user_shutdown);
  }
}
