// Horizontal fusion: a fused network computes what it computes alone, keeps
// its own checkpoints and weights, and leaves its group without disturbing
// the others.

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include "actortrain/error.hpp"
#include "actortrain/learner.hpp"
#include "actortrain/run.hpp"
#include "actortrain/store.hpp"
#include "fusion/fused_model.hpp"
#include "fusion/grouping.hpp"
#include "models/builtin_learner.hpp"
#include "test_support.hpp"
#include "training/network_group.hpp"

using namespace actortrain;
using actortrain::test::max_relative_error;
using actortrain::test::relative_error;
using actortrain::test::temp_dir;

namespace {

/// Random images (1 x 12 x 12, 3 classes) or table rows (10 features).
std::shared_ptr<dataset> fusion_data(bool images, int64_t n, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto d = std::make_shared<dataset>();
  d->feature_shape =
      images ? std::vector<int64_t>{1, 12, 12} : std::vector<int64_t>{10};
  std::vector<int64_t> shape{n};
  shape.insert(shape.end(), d->feature_shape.begin(), d->feature_shape.end());
  d->train_x = torch::randn(shape, gen);
  d->train_y = torch::randint(0, 3, {n}, gen);
  shape[0] = n / 2;
  d->test_x = torch::randn(shape, gen);
  d->test_y = torch::randint(0, 3, {n / 2}, gen);
  d->classes = 3;
  return d;
}

network_spec make_spec(uint64_t id, const network_config& cfg) {
  network_spec s;
  s.id = id;
  s.name = fmt::format("net-{:04}", id);
  s.seed = derive_seed(42, id);
  s.config = cfg;
  return s;
}

std::unique_ptr<builtin_learner> make_learner(const network_spec& spec,
                                              const dataset& data) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(spec.seed);
  learner_context ctx{spec, data, torch::kCPU, gen};
  return std::make_unique<builtin_learner>(ctx);
}

network_config config_for(const std::string& model,
                          const std::string& optimizer) {
  network_config cfg;
  cfg.model.kind = parse_choice<model_kind>(model).value();
  cfg.model.hidden = {24, 16};
  cfg.model.channels = {4, 6};
  cfg.optimizer.kind = parse_choice<optimizer_kind>(optimizer).value();
  cfg.optimizer.lr = optimizer == "sgd" ? 0.05 : 0.003;
  cfg.optimizer.momentum = optimizer == "sgd" ? 0.9 : 0;
  cfg.optimizer.weight_decay = optimizer == "adam" ? 0 : 0.01;
  cfg.train.batch_size = 16;
  return cfg;
}

/// Trains K networks alone and fused on the same batches; every fused
/// network must end within 1e-5 (relative) of itself alone.
void check_fused_matches_alone(const std::string& model,
                               const std::string& optimizer,
                               bool per_network_lr) {
  CAPTURE(model);
  CAPTURE(optimizer);
  CAPTURE(per_network_lr);
  auto data = fusion_data(model == "cnn", 96, 7);
  constexpr int64_t k = 3;
  constexpr int64_t steps = 12;
  std::vector<network_spec> specs;
  std::vector<std::unique_ptr<builtin_learner>> alone;
  std::vector<std::unique_ptr<builtin_learner>> to_fuse;
  std::vector<builtin_learner*> members;
  for (int64_t i = 0; i < k; ++i) {
    auto cfg = config_for(model, optimizer);
    if (per_network_lr)
      cfg.optimizer.lr *= static_cast<double>(i + 1);
    specs.push_back(make_spec(static_cast<uint64_t>(i), cfg));
  }
  for (const auto& s : specs) {
    alone.push_back(make_learner(s, *data));
    to_fuse.push_back(make_learner(s, *data));
    members.push_back(to_fuse.back().get());
  }
  REQUIRE(fused_model::can_fuse(*members.front()));
  fused_model fused{members};
  for (int64_t step = 0; step < steps; ++step) {
    // Each network its own batch; the last step's batch is smaller.
    auto b = step + 1 == steps ? 5 : 16;
    std::vector<torch::Tensor> xs;
    std::vector<torch::Tensor> ys;
    std::vector<double> losses_alone;
    for (int64_t i = 0; i < k; ++i) {
      auto idx = torch::arange(b) + (step * 7 + i * 13) % 60;
      xs.push_back(data->train_x.index_select(0, idx));
      ys.push_back(data->train_y.index_select(0, idx));
      losses_alone.push_back(
          alone[static_cast<size_t>(i)]->train_step(xs.back(), ys.back()));
    }
    auto losses = fused.train_step(torch::stack(xs), torch::stack(ys));
    for (int64_t i = 0; i < k; ++i)
      CHECK(
          losses[static_cast<size_t>(i)] ==
          doctest::Approx(losses_alone[static_cast<size_t>(i)]).epsilon(1e-5));
  }
  for (int64_t i = 0; i < k; ++i) {
    auto& ref = *alone[static_cast<size_t>(i)];
    CHECK(max_relative_error(fused.state(i), ref.state()) <= 1e-5);
    // Predictions are the network's own.
    auto x = data->test_x.slice(0, 0, 20);
    CHECK(relative_error(fused.predict(i, x), ref.predict(x)) <= 1e-5);
  }
  // Unstacked, a network continues exactly as if it had never been fused:
  // the optimizer state (momentum, moments, step counts) came along.
  auto blank = make_learner(make_spec(99, specs[1].config), *data);
  fused.unstack(1, *blank);
  for (int64_t step = 0; step < 4; ++step) {
    auto idx = torch::arange(16) + step * 3;
    auto x = data->train_x.index_select(0, idx);
    auto y = data->train_y.index_select(0, idx);
    CHECK(blank->train_step(x, y) ==
          doctest::Approx(alone[1]->train_step(x, y)).epsilon(1e-5));
  }
  CHECK(max_relative_error(blank->state(), alone[1]->state()) <= 1e-5);
}

} // namespace

TEST_CASE("a fused MLP network matches itself trained alone") {
  for (auto opt : {"sgd", "adam", "adamw"})
    for (bool per_network_lr : {false, true})
      check_fused_matches_alone("mlp", opt, per_network_lr);
}

TEST_CASE("a fused CNN network matches itself trained alone") {
  for (auto opt : {"sgd", "adam", "adamw"})
    for (bool per_network_lr : {false, true})
      check_fused_matches_alone("cnn", opt, per_network_lr);
}

namespace {

/// Trains networks `specs` in fused models split as `split` (sizes that add
/// up to specs.size()) on fixed batches; returns every network's final
/// weights, in order.
std::vector<std::vector<std::pair<std::string, torch::Tensor>>>
train_split(const std::vector<network_spec>& specs, const dataset& data,
            const std::vector<size_t>& split, int64_t steps) {
  std::vector<std::vector<std::pair<std::string, torch::Tensor>>> result;
  size_t at = 0;
  for (auto k : split) {
    std::vector<std::unique_ptr<builtin_learner>> learners;
    std::vector<builtin_learner*> members;
    for (size_t i = at; i < at + k; ++i) {
      learners.push_back(make_learner(specs[i], data));
      members.push_back(learners.back().get());
    }
    fused_model fused{members};
    for (int64_t step = 0; step < steps; ++step) {
      // An odd batch size, smaller at the last step.
      auto b = step + 1 == steps ? 3 : 11;
      std::vector<torch::Tensor> xs;
      std::vector<torch::Tensor> ys;
      for (size_t i = at; i < at + k; ++i) {
        auto idx =
            torch::arange(b) + static_cast<int64_t>(step * 5 + i * 7) % 40;
        xs.push_back(data.train_x.index_select(0, idx));
        ys.push_back(data.train_y.index_select(0, idx));
      }
      fused.train_step(torch::stack(xs), torch::stack(ys));
    }
    for (int64_t j = 0; j < static_cast<int64_t>(k); ++j)
      result.push_back(fused.state(j));
    at += k;
  }
  return result;
}

} // namespace

TEST_CASE("a fused network gets the same bits in a group of any size") {
  // Odd layer sizes put a member's last elements in the vector kernels'
  // remainder loops in some groups and not in others.
  for (std::string model : {"mlp", "cnn"})
    for (std::string activation : {"relu", "tanh", "sigmoid", "gelu"})
      for (std::string opt : {"sgd", "adam", "adamw"}) {
        CAPTURE(model);
        CAPTURE(activation);
        CAPTURE(opt);
        auto data = fusion_data(model == "cnn", 64, 11);
        std::vector<network_spec> specs;
        for (uint64_t i = 0; i < 5; ++i) {
          auto cfg = config_for(model, opt);
          cfg.model.hidden = {7, 5};
          cfg.model.channels = {3};
          cfg.model.activation =
              parse_choice<activation_kind>(activation).value();
          // Members 0 and 1 share their hyperparameters; the others differ.
          cfg.optimizer.lr *= 1.0 + 0.5 * static_cast<double>(i / 2);
          specs.push_back(make_spec(i, cfg));
        }
        auto together = train_split(specs, *data, {5}, 6);
        for (const auto& split : std::vector<std::vector<size_t>>{
                 {1, 1, 1, 1, 1}, {2, 2, 1}, {3, 2}, {1, 4}}) {
          auto apart = train_split(specs, *data, split, 6);
          for (size_t i = 0; i < specs.size(); ++i) {
            CAPTURE(i);
            CAPTURE(split.size());
            REQUIRE(apart[i].size() == together[i].size());
            for (size_t t = 0; t < apart[i].size(); ++t)
              CHECK(torch::equal(apart[i][t].second, together[i][t].second));
          }
        }
      }
}

TEST_CASE("networks of different shapes are not fused") {
  auto data = fusion_data(false, 64, 1);
  auto a = make_learner(make_spec(0, config_for("mlp", "adam")), *data);
  auto cfg = config_for("mlp", "adam");
  cfg.model.hidden = {24, 8};
  auto b = make_learner(make_spec(1, cfg), *data);
  auto sgd = make_learner(make_spec(2, config_for("mlp", "sgd")), *data);
  CHECK_THROWS_AS(fused_model(std::vector<builtin_learner*>{a.get(), b.get()}),
                  std::invalid_argument);
  CHECK_THROWS_AS(
      fused_model(std::vector<builtin_learner*>{a.get(), sgd.get()}),
      std::invalid_argument);
}

namespace {

/// Runs `group` quantum by quantum to the end; returns every network's
/// outcomes by id (epochs appended across quanta).
/// `device_of(i)` names the device of quantum i's slot.
std::map<uint64_t, quantum_outcome>
run_to_end(network_group& group, quantum_limits limits = {},
           const std::function<std::string(int)>& device_of = {}) {
  std::map<uint64_t, quantum_outcome> result;
  slot_info slot;
  slot.device = "cpu";
  for (int i = 0; i < 1000; ++i) {
    if (device_of)
      slot.device = device_of(i);
    auto report = group.run_quantum(slot, limits);
    for (auto& out : report.networks) {
      auto& acc = result[out.progress.network_id];
      acc.epochs.insert(acc.epochs.end(), out.epochs.begin(), out.epochs.end());
      acc.failures.insert(acc.failures.end(), out.failures.begin(),
                          out.failures.end());
      if (!out.checkpoint.empty())
        acc.checkpoint = out.checkpoint;
      if (out.progress.finished)
        acc.outcome = out.outcome;
      acc.progress = out.progress;
    }
    if (report.progress.finished)
      return result;
  }
  FAIL("the group did not finish");
  return result;
}

std::unique_ptr<network_runner>
make_runner(const network_spec& spec, std::shared_ptr<const dataset> data) {
  auto n = data->train_x.size(0);
  return std::make_unique<network_runner>(spec, data, torch::arange(n),
                                          learner_factory{});
}

/// Networks 0..n-1: MLPs trained with Adam for `epochs` epochs.
std::vector<network_spec> adam_mlps(uint64_t n, int64_t epochs) {
  std::vector<network_spec> specs;
  for (uint64_t i = 0; i < n; ++i) {
    auto cfg = config_for("mlp", "adam");
    cfg.train.epochs = epochs;
    specs.push_back(make_spec(i, cfg));
  }
  return specs;
}

network_group make_group(const std::vector<network_spec>& specs,
                         std::shared_ptr<const dataset> data, bool fuse) {
  std::vector<std::unique_ptr<network_runner>> members;
  for (const auto& s : specs)
    members.push_back(make_runner(s, data));
  return network_group{std::move(members), fuse};
}

} // namespace

TEST_CASE("networks leave a fused group without changing the others") {
  std::shared_ptr<const dataset> data = fusion_data(false, 120, 3);
  std::vector<network_spec> specs;
  for (uint64_t i = 0; i < 5; ++i) {
    auto cfg = config_for("mlp", "adam");
    cfg.train.epochs = 2 + static_cast<int64_t>(i % 3); // leave at 2, 3, 4
    cfg.train.checkpoint_every = 1;
    if (i == 3)
      cfg.optimizer.lr = 1e12; // diverges: retried, then fails
    if (i == 4) {
      cfg.train.validation_fraction = 0.2; // stops early or not, alone too
      cfg.train.target_accuracy = 0.34;
    }
    specs.push_back(make_spec(i, cfg));
  }
  // Same shard sizes for fusion: member 4's validation split makes it a
  // cohort of one, trained alone inside the group.
  auto fused_group = make_group(specs, data, true);
  auto alone_group = make_group(specs, data, false);
  auto fused = run_to_end(fused_group);
  auto alone = run_to_end(alone_group);
  REQUIRE(fused.size() == specs.size());
  for (const auto& s : specs) {
    CAPTURE(s.id);
    const auto& f = fused[s.id];
    const auto& a = alone[s.id];
    CHECK(f.outcome.status == a.outcome.status);
    CHECK(f.outcome.stop_reason == a.outcome.stop_reason);
    CHECK(f.outcome.error == a.outcome.error);
    CHECK(f.failures == a.failures);
    REQUIRE(f.epochs.size() == a.epochs.size());
    for (size_t e = 0; e < a.epochs.size(); ++e) {
      CHECK(f.epochs[e].train_loss ==
            doctest::Approx(a.epochs[e].train_loss).epsilon(1e-5));
      CHECK(f.epochs[e].test_loss ==
            doctest::Approx(a.epochs[e].test_loss).epsilon(1e-5));
    }
    if (a.outcome.status == network_status::finished) {
      CHECK(max_relative_error(decode_weights(f.outcome.weights),
                               decode_weights(a.outcome.weights)) <= 1e-5);
      CHECK(f.outcome.test_predictions.size() ==
            a.outcome.test_predictions.size());
    }
  }
  CHECK(fused[3].outcome.status == network_status::failed);
  CHECK(fused[0].outcome.epochs == 2);
  CHECK(fused[2].outcome.epochs == 4);
}

TEST_CASE("a checkpoint taken fused resumes unfused, and the other way") {
  std::shared_ptr<const dataset> data = fusion_data(false, 96, 5);
  std::vector<network_spec> specs;
  for (uint64_t i = 0; i < 3; ++i) {
    auto cfg = config_for("mlp", "sgd");
    cfg.train.epochs = 3;
    cfg.train.checkpoint_every = 1;
    specs.push_back(make_spec(i, cfg));
  }
  auto reference_group = make_group(specs, data, false);
  auto reference = run_to_end(reference_group);
  slot_info slot;
  slot.device = "cpu";
  // One epoch fused; then network 1 continues alone from its checkpoint.
  auto fused_group = make_group(specs, data, true);
  auto first = fused_group.run_quantum(slot, {});
  REQUIRE(first.networks.size() == 3);
  REQUIRE_FALSE(first.networks[1].checkpoint.empty());
  auto runner = make_runner(specs[1], data);
  REQUIRE_FALSE(runner->resume_from(first.networks[1].checkpoint));
  std::vector<std::unique_ptr<network_runner>> one;
  one.push_back(std::move(runner));
  network_group alone{std::move(one), false};
  auto rest = run_to_end(alone);
  CHECK(max_relative_error(decode_weights(rest[1].outcome.weights),
                           decode_weights(reference[1].outcome.weights)) <=
        1e-5);
  // And the other way: checkpoints taken alone, continued fused.
  auto alone_group = make_group(specs, data, false);
  auto first_alone = alone_group.run_quantum(slot, {});
  std::vector<std::unique_ptr<network_runner>> members;
  for (size_t i = 0; i < 3; ++i) {
    auto r = make_runner(specs[i], data);
    REQUIRE_FALSE(r->resume_from(first_alone.networks[i].checkpoint));
    members.push_back(std::move(r));
  }
  network_group resumed{std::move(members), true};
  auto fused_rest = run_to_end(resumed);
  for (uint64_t i = 0; i < 3; ++i)
    CHECK(max_relative_error(decode_weights(fused_rest[i].outcome.weights),
                             decode_weights(reference[i].outcome.weights)) <=
          1e-5);
}

TEST_CASE("groups: auto spreads each shape over the slots, K caps groups") {
  std::vector<fusion_candidate> same(64, {"mlp", 0, 1000});
  auto groups = plan_groups(same, 2, 1e9);
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].size() == 32);
  CHECK(groups[1].size() == 32);
  CHECK(groups[1].front() == 32);
  // At most 32 per group.
  same.assign(256, {"mlp", 0, 1000});
  groups = plan_groups(same, 2, 1e9);
  CHECK(groups.size() == 8);
  // Fewer networks than slots: one each.
  CHECK(plan_groups({{"a", 0, 1}, {"a", 0, 1}}, 4, 1e9).size() == 2);
  // A group must fit the slot's memory.
  CHECK(plan_groups(same, 2, 1000.0 * 16).size() == 16);
  // On a GPU, far larger groups (still within the slot's memory).
  CHECK(plan_groups(same, 2, 1e12, auto_fuse_max_group_gpu).size() == 2);
  CHECK(plan_groups(same, 2, 1000.0 * 64, auto_fuse_max_group_gpu).size() == 4);
  // An explicit K.
  std::vector<fusion_candidate> ten(10, {"mlp", 4, 1000});
  groups = plan_groups(ten, 2, 1e9);
  REQUIRE(groups.size() == 3);
  CHECK(groups[0].size() == 4);
  CHECK(groups[2].size() == 2);
  // Auto leaves large and convolutional networks alone; an explicit K fuses
  // them.
  CHECK(plan_groups({{"a", 0, 1, 1e5}, {"a", 0, 1, 1e5}}, 1, 1e9).size() == 2);
  CHECK(plan_groups({{"c", 0, 1, 10, true}, {"c", 0, 1, 10, true}}, 1, 1e9)
            .size() == 2);
  CHECK(plan_groups({{"a", 2, 1, 1e5}, {"a", 2, 1, 1e5}}, 1, 1e9).size() == 1);
  // Off, a learner of the user's own (no signature), and mixed shapes.
  std::vector<fusion_candidate> mixed{
      {"a", 0, 1}, {"b", 0, 1}, {"a", 0, 1}, {"", 0, 1}, {"a", 1, 1}};
  groups = plan_groups(mixed, 1, 1e9);
  REQUIRE(groups.size() == 4);
  CHECK(groups[0] == std::vector<size_t>{0, 2});
  CHECK(groups[1] == std::vector<size_t>{1});
  CHECK(groups[2] == std::vector<size_t>{3});
  CHECK(groups[3] == std::vector<size_t>{4});
}

TEST_CASE("train.fuse reads auto, off and a group size, and names bad values") {
  auto parse = [](const std::string& value) {
    return parse_experiment(
        fmt::format("[data]\nformat = \"synthetic\"\n[train]\nfuse = {}\n",
                    value),
        "fuse.toml");
  };
  CHECK(parse("\"auto\"")->base.train.fuse == train_options::fuse_auto);
  CHECK(parse("\"off\"")->base.train.fuse == train_options::fuse_off);
  CHECK(parse("8")->base.train.fuse == 8);
  for (auto bad : {"0", "\"fast\"", "1.5", "-2"}) {
    auto exp = parse(bad);
    REQUIRE_FALSE(exp);
    CHECK(to_string_pretty(exp.error()).find("fuse.toml:4:8: train.fuse") !=
          std::string::npos);
  }
}

TEST_CASE("a fused run stores what an unfused run stores") {
  temp_dir dir;
  auto exp = test::tiny_experiment(6, 3);
  exp.base.train.checkpoint_every = 1;
  exp.base.train.fuse = train_options::fuse_off;
  run_options a_opts;
  a_opts.output_dir = dir / "off";
  auto off = run(exp, a_opts);
  REQUIRE(off);
  exp.base.train.fuse = train_options::fuse_auto;
  run_options b_opts;
  b_opts.output_dir = dir / "auto";
  auto fused = run(exp, b_opts);
  REQUIRE(fused);
  REQUIRE(fused->networks.size() == 6);
  for (size_t i = 0; i < 6; ++i) {
    const auto& f = fused->networks[i];
    const auto& o = off->networks[i];
    CHECK(f.status == network_status::finished);
    CHECK(f.epochs == o.epochs);
    CHECK(f.test_loss == doctest::Approx(o.test_loss).epsilon(1e-5));
    // Its own weights, in the unfused format.
    auto fb = test::stored_weights(dir / "auto").at(f.name + ".pt");
    auto ob = test::stored_weights(dir / "off").at(o.name + ".pt");
    CHECK(max_relative_error(decode_weights(fb), decode_weights(ob)) <= 1e-5);
  }
  CHECK(fused->ensembles.front().accuracy ==
        doctest::Approx(off->ensembles.front().accuracy).epsilon(1e-5));
  // Two trainers (one per slot) instead of six: fewer, larger quanta.
  auto store = results_store::open(dir / "auto/results.db");
  REQUIRE(store);
  auto grants = (*store)->grants();
  REQUIRE(static_cast<bool>(grants));
  CHECK(grants->size() == 2 * 3);
}

TEST_CASE("the examples parse, and the fused digits swarm trains") {
  namespace fs = std::filesystem;
  const std::string examples = std::string{ACTORTRAIN_SOURCE_DIR} + "/examples";
  for (const auto& e : fs::directory_iterator(examples)) {
    auto toml = e.path() / "experiment.toml";
    if (!fs::exists(toml))
      continue;
    auto exp = load_experiment(toml.string());
    CHECK_MESSAGE(static_cast<bool>(exp), toml.string());
  }
  auto exp = load_experiment(examples + "/digits_swarm/experiment.toml");
  REQUIRE(static_cast<bool>(exp));
  for (auto& v : exp->variants)
    v.train.epochs = 2;
  temp_dir dir;
  run_options opts;
  opts.output_dir = dir / "out";
  auto result = run(*exp, opts);
  REQUIRE(static_cast<bool>(result));
  CHECK(result->count(network_status::finished) == 256);
  CHECK(result->overall_ensemble()->accuracy > 0.85);
  // 8 fused groups of 32 (learning rates mixed), one quantum per epoch.
  auto store = results_store::open(dir / "out/results.db");
  REQUIRE(static_cast<bool>(store));
  auto grants = (*store)->grants();
  REQUIRE(static_cast<bool>(grants));
  CHECK(grants->size() == 8 * 2);
}

namespace {

/// Every network's final weights in `outs`, by id.
std::map<uint64_t, std::vector<char>>
final_weights(const std::map<uint64_t, quantum_outcome>& outs) {
  std::map<uint64_t, std::vector<char>> result;
  for (const auto& [id, o] : outs)
    result[id] = o.outcome.weights;
  return result;
}

} // namespace

TEST_CASE("states exported after a quantum continue bit for bit in another "
          "group: fused, alone, and waiting for a retry") {
  std::shared_ptr<const dataset> data = fusion_data(false, 96, 9);
  std::vector<network_spec> specs;
  for (uint64_t i = 0; i < 4; ++i) {
    auto cfg = config_for("mlp", i == 3 ? "sgd" : "adam");
    cfg.train.epochs = 3;
    cfg.train.checkpoint_every = 1;
    if (i == 3) {
      // Diverges in its second epoch: its retry restarts from the epoch-1
      // checkpoint with a smaller learning rate, then fails again.
      cfg.optimizer.lr = 1e12;
      cfg.train.retry_lr_factor = 0.5;
    }
    specs.push_back(make_spec(i, cfg));
  }
  quantum_limits limits;
  limits.steps = 5; // ends mid-epoch
  auto reference_group = make_group(specs, data, true);
  auto reference = run_to_end(reference_group, limits);
  for (bool fuse : {true, false}) {
    CAPTURE(fuse);
    // Quantum by quantum, each in a fresh group that adopts the states the
    // previous one exported (as a worker node does).
    std::map<uint64_t, quantum_outcome> got;
    std::vector<uint64_t> unfinished{0, 1, 2, 3};
    std::vector<runner_state> states;
    slot_info slot;
    slot.device = "cpu";
    for (int q = 0; q < 100 && !unfinished.empty(); ++q) {
      auto group = make_group(specs, data, fuse);
      group.adopt(unfinished, std::move(states));
      auto report = group.run_quantum(slot, limits);
      states = group.export_states();
      unfinished = group.unfinished();
      REQUIRE(states.size() == unfinished.size());
      for (auto& out : report.networks) {
        auto& acc = got[out.progress.network_id];
        acc.failures.insert(acc.failures.end(), out.failures.begin(),
                            out.failures.end());
        if (out.progress.finished)
          acc.outcome = out.outcome;
      }
    }
    REQUIRE(unfinished.empty());
    for (const auto& s : specs) {
      CAPTURE(s.id);
      CHECK(got[s.id].outcome.status == reference[s.id].outcome.status);
      CHECK(got[s.id].failures == reference[s.id].failures);
    }
    if (fuse) // the reference is fused: bit for bit
      CHECK(final_weights(got) == final_weights(reference));
    else
      for (uint64_t i = 0; i < 3; ++i)
        CHECK(max_relative_error(
                  decode_weights(got[i].outcome.weights),
                  decode_weights(reference[i].outcome.weights)) <= 1e-5);
  }
  CHECK(reference[3].outcome.status == network_status::failed);
  CHECK(reference[3].failures.size() == 1);
}

TEST_CASE("a fused run with two threads per slot gets the same bits on 1 and "
          "3 slots") {
  // Groups of 6 on one slot, of 2 on three; each group's steps run on two
  // intra-op threads, as on a machine with more cores per slot.
  temp_dir dir;
  test::write_text(dir / "exp.toml", R"(name = "threads"
[data]
format = "synthetic"
samples = 2048
test_samples = 128
features = 96
classes = 5
[model]
hidden = [256, 128]
[optimizer]
kind = "adam"
lr = 0.003
[train]
networks = 6
epochs = 2
batch_size = 64
seed = 9
[scheduler]
threads_per_slot = 2
)");
  auto weights = [&](int slots) {
    auto out = dir / fmt::format("out{}", slots);
    auto res = test::run_process(
        fmt::format("{} run {} --output {} --slots {} --quiet", test::app(),
                    dir / "exp.toml", out, slots));
    REQUIRE_MESSAGE(res.exit_code == 0, res.output);
    return test::stored_weights(out);
  };
  auto one = weights(1);
  auto three = weights(3);
  REQUIRE(one.size() == 6);
  CHECK(one == three);
}

TEST_CASE("a fused group split after running out of memory steps in smaller "
          "cohorts with the same bits") {
  std::shared_ptr<const dataset> data = fusion_data(false, 96, 9);
  auto specs = adam_mlps(5, 3);
  quantum_limits limits;
  limits.steps = 5;
  auto reference_group = make_group(specs, data, true);
  auto reference = run_to_end(reference_group, limits);
  // Split once before it runs (cohorts of 3 and 2), and twice more midway
  // (2, 2, 1 then 1s): every member keeps its bits.
  auto split_group = make_group(specs, data, true);
  REQUIRE(split_group.split_fused());
  slot_info slot;
  slot.device = "cpu";
  std::map<uint64_t, quantum_outcome> got;
  for (int q = 0; q < 200; ++q) {
    if (q == 2 || q == 4)
      CHECK(split_group.split_fused());
    auto report = split_group.run_quantum(slot, limits);
    for (auto& out : report.networks)
      if (out.progress.finished)
        got[out.progress.network_id].outcome = out.outcome;
    if (report.progress.finished)
      break;
  }
  CHECK_FALSE(split_group.split_fused()); // every member steps alone now
  REQUIRE(got.size() == specs.size());
  CHECK(final_weights(got) == final_weights(reference));
}

TEST_CASE("a network granted a slot on another device moves there and keeps "
          "its bits") {
  // Two names of this machine's CPU ("cpu" and "cpu:0") are two devices to
  // the runtime, so the move between devices (between GPUs of a node) runs
  // on any machine.
  std::shared_ptr<const dataset> data = fusion_data(false, 120, 9);
  auto specs = adam_mlps(4, 3);
  quantum_limits limits;
  limits.steps = 5; // quanta end inside epochs
  for (bool fuse : {false, true}) {
    CAPTURE(fuse);
    auto staying = make_group(specs, data, fuse);
    auto moving = make_group(specs, data, fuse);
    auto stay = run_to_end(staying, limits);
    auto move = run_to_end(moving, limits, [](int i) {
      return i % 3 == 2 ? std::string{"cpu"} : std::string{"cpu:0"};
    });
    CHECK(staying.device_moves() == 0);
    // Every network moved at least twice ("cpu:0" -> "cpu" -> "cpu:0").
    CHECK(moving.device_moves() >= 2 * static_cast<int64_t>(specs.size()));
    for (const auto& s : specs) {
      CAPTURE(s.id);
      REQUIRE(stay[s.id].outcome.status == network_status::finished);
      CHECK(move[s.id].outcome.status == network_status::finished);
      CHECK(move[s.id].outcome.weights == stay[s.id].outcome.weights);
      REQUIRE(move[s.id].epochs.size() == stay[s.id].epochs.size());
      for (size_t e = 0; e < stay[s.id].epochs.size(); ++e) {
        CHECK(move[s.id].epochs[e].train_loss ==
              stay[s.id].epochs[e].train_loss);
        CHECK(move[s.id].epochs[e].test_loss == stay[s.id].epochs[e].test_loss);
      }
    }
  }
}

TEST_CASE("fused groups' Adam in one pass gives the stacked tensors' bits") {
#if defined(__x86_64__) && defined(__GNUC__)
  // Where LibTorch's kernels fuse multiply-adds, the one pass is on, and
  // agrees for members with their own steps, rates and decays.
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    for (uint64_t seed : {1, 2, 3, 23, 99})
      CHECK(fused_model::one_pass_adam_agrees(seed));
#endif
  // Whole runs, fused and unfused, Adam and AdamW, with and without weight
  // decay: the same
  // weights to the byte with the one pass and with LibTorch's ops.
  temp_dir dir;
  for (std::string fuse : {"\"auto\"", "\"off\""}) {
    CAPTURE(fuse);
    const std::string exp = dir / "exp.toml";
    test::write_text(exp, "name = \"adam\"\n[data]\nformat = \"synthetic\"\n"
                          "samples = 600\ntest_samples = 100\nfeatures = 20\n"
                          "classes = 3\n[model]\nhidden = [16]\n[optimizer]\n"
                          "lr = 0.01\n[sweep]\n"
                          "\"optimizer.kind\" = [\"adam\", \"adamw\"]\n"
                          "\"optimizer.weight_decay\" = [0.0, 0.001]\n[train]\n"
                          "networks = 3\nepochs = 3\nbatch_size = 32\nfuse = " +
                              fuse + "\n[scheduler]\nslots = 2\n");
    auto run_with = [&](const std::string& env, const std::string& out) {
      auto res =
          test::run_process(fmt::format("{} {} run {} --output {} --quiet", env,
                                        test::app(), exp, dir / out));
      REQUIRE_MESSAGE(res.exit_code == 0, res.output);
      return test::stored_weights(dir / out);
    };
    auto one_pass = run_with("", "one-pass" + fuse.substr(1, 3));
    auto libtorch =
        run_with("ACTORTRAIN_ONE_PASS_ADAM=0", "libtorch" + fuse.substr(1, 3));
    CHECK(one_pass.size() == 12);
    CHECK(one_pass == libtorch);
  }
}
