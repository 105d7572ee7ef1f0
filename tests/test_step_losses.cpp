// Losses read back from the device a few steps at a time (what a GPU slot
// does instead of one `.item()` a step) give exactly the results of reading
// each step's loss at once. ACTORTRAIN_DEFER_LOSSES=1 makes CPU slots defer
// like GPU ones, so the GPU's bookkeeping is tested on every machine.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <string>

#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "actortrain/run.hpp"
#include "models/step_losses.hpp"

#include "test_support.hpp"

using namespace actortrain;
using actortrain::test::temp_dir;

namespace {

/// Sets ACTORTRAIN_DEFER_LOSSES to `value` for the scope.
struct deferred_losses {
  explicit deferred_losses(const char* value) {
    ::setenv("ACTORTRAIN_DEFER_LOSSES", value, 1);
  }
  ~deferred_losses() {
    ::unsetenv("ACTORTRAIN_DEFER_LOSSES");
  }
};

/// Runs `exp` into dir/name, once booking each step's loss at once and once
/// deferred, and checks that results, errors and weights are the same bits.
void check_deferred_same(const std::string& dir, const experiment& exp) {
  run_result at_once;
  {
    deferred_losses scope{"0"};
    at_once = test::run_ok(exp, dir + "/at-once");
  }
  run_result deferred;
  {
    deferred_losses scope{"1"};
    deferred = test::run_ok(exp, dir + "/deferred");
  }
  REQUIRE(at_once.networks.size() == deferred.networks.size());
  for (size_t i = 0; i < at_once.networks.size(); ++i) {
    CAPTURE(i);
    const auto& a = at_once.networks[i];
    const auto& b = deferred.networks[i];
    CHECK(a.status == b.status);
    CHECK(a.error == b.error);
    CHECK(a.steps == b.steps);
    if (std::isfinite(a.train_loss))
      CHECK(a.train_loss == b.train_loss);
    if (std::isfinite(a.test_loss))
      CHECK(a.test_loss == b.test_loss);
  }
  auto weights = test::stored_weights(dir + "/at-once");
  CHECK(weights == test::stored_weights(dir + "/deferred"));
}

/// `networks` tiny MLPs whose epochs have 80 steps (1,280 samples in
/// batches of 16), more than a slot runs before reading their losses; each
/// on its own bootstrap sample of one size, so they fuse.
experiment long_epochs(int64_t networks, int64_t epochs) {
  auto exp = test::tiny_experiment(networks, epochs);
  exp.data.samples = 1280;
  exp.base.train.batch_size = 16;
  exp.data.partition = partition_scheme::bootstrap;
  return exp;
}

} // namespace

TEST_CASE("read_losses gives each step's mean losses in order") {
  torch::manual_seed(3);
  // Means, one per member.
  std::vector<step_losses> means{{torch::tensor({0.5f, 1.25f})},
                                 {torch::tensor({2.0f, -1.0f})}};
  auto got = read_losses(means);
  REQUIRE(got.size() == 2);
  CHECK(got[0] == std::vector<double>{0.5, 1.25});
  CHECK(got[1] == std::vector<double>{2.0, -1.0});
  // A lone network's losses, as its learner leaves them (0-dim): one step
  // read at once, or several together.
  auto lone = read_losses({{torch::tensor(0.1f)}});
  CHECK(lone == std::vector<std::vector<double>>{{static_cast<double>(0.1f)}});
  auto lones = read_losses({{torch::tensor(0.1f)}, {torch::tensor(0.2f)}});
  CHECK(lones == std::vector<std::vector<double>>{{static_cast<double>(0.1f)},
                                                  {static_cast<double>(0.2f)}});
  // Per-sample cross-entropies: each member's mean is LibTorch's own mean
  // cross-entropy of its batch, to the bit.
  namespace F = torch::nn::functional;
  auto logits = torch::randn({3, 2, 37, 5});
  auto targets = torch::randint(5, {3, 2, 37});
  std::vector<step_losses> per_sample;
  for (int64_t s = 0; s < 3; ++s)
    per_sample.push_back(
        {F::cross_entropy(logits[s].reshape({74, 5}), targets[s].reshape({74}),
                          F::CrossEntropyFuncOptions().reduction(torch::kNone))
             .view({2, 37}),
         true});
  auto means_of = read_losses(per_sample);
  REQUIRE(means_of.size() == 3);
  for (int64_t s = 0; s < 3; ++s)
    for (int64_t k = 0; k < 2; ++k) {
      CAPTURE(s);
      CAPTURE(k);
      CHECK(means_of[static_cast<size_t>(s)][static_cast<size_t>(k)] ==
            F::cross_entropy(logits[s][k], targets[s][k]).item<double>());
    }
  CHECK(read_losses({}).empty());
}

TEST_CASE("losses read a few steps at a time give the bits of reading each "
          "step, fused or not, whatever the quantum") {
  temp_dir dir;
  auto exp = long_epochs(5, 2);
  for (auto fuse : {train_options::fuse_auto, train_options::fuse_off})
    for (int64_t quantum_steps : {0, 45}) {
      CAPTURE(fuse);
      CAPTURE(quantum_steps);
      exp.base.train.fuse = fuse;
      exp.scheduler.quantum_steps = quantum_steps;
      check_deferred_same(
          fmt::format("{}/{}-{}", dir.path(), fuse, quantum_steps), exp);
    }
}

TEST_CASE("a non-finite loss found among deferred steps is the same failure "
          "at the same step, and its retry the same bits") {
  temp_dir dir;
  auto exp = long_epochs(4, 3);
  // Diverges within the first steps; one network of each fused group keeps
  // a rate that trains, so its group goes on past the others' failure.
  auto diverging = exp.base;
  diverging.optimizer.lr = 1e30;
  diverging.train.networks = 2;
  diverging.label = "diverging";
  auto stable = exp.base;
  stable.train.networks = 2;
  stable.label = "stable";
  exp.variants = {diverging, stable};
  exp.scheduler.slots = 1;
  for (auto fuse : {train_options::fuse_auto, train_options::fuse_off}) {
    CAPTURE(fuse);
    exp.base.train.fuse = fuse;
    for (auto& v : exp.variants)
      v.train.fuse = fuse;
    // Without a lower rate on retry: the diverging networks fail, naming
    // the step.
    for (auto& v : exp.variants) {
      v.train.max_retries = 1;
      v.train.retry_lr_factor = 1;
    }
    check_deferred_same(fmt::format("{}/fail-{}", dir.path(), fuse), exp);
    auto failed = test::run_ok(exp, dir / fmt::format("check-{}", fuse));
    CHECK(failed.count(network_status::failed) == 2);
    CHECK(failed.count(network_status::finished) == 2);
    // With one: the retry trains at 0.1 and every network finishes.
    for (auto& v : exp.variants)
      v.train.retry_lr_factor = 1e-31;
    exp.variants[1].train.retry_lr_factor = 1;
    check_deferred_same(fmt::format("{}/retry-{}", dir.path(), fuse), exp);
  }
}

TEST_CASE("on a GPU, losses read a few steps at a time give the bits of "
          "reading each step") {
  if (torch::cuda::device_count() == 0) {
    MESSAGE("no GPU: skipped");
    return;
  }
  temp_dir dir;
  auto exp = long_epochs(6, 2);
  exp.scheduler.devices = {"cuda:0"};
  for (auto fuse : {train_options::fuse_auto, train_options::fuse_off}) {
    CAPTURE(fuse);
    exp.base.train.fuse = fuse;
    check_deferred_same(fmt::format("{}/gpu-{}", dir.path(), fuse), exp);
  }
}
