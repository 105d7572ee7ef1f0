// TorchScript models (model.kind = "torchscript"): a module from a file,
// re-initialised per network from its seed, trained like a built-in model;
// and every way a module can fail to fit, named before training.

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include "actortrain/error.hpp"
#include "actortrain/learner.hpp"
#include "actortrain/run.hpp"
#include "actortrain/store.hpp"
#include "models/torchscript_learner.hpp"

#include "scripted_models.hpp"
#include "test_support.hpp"

using namespace actortrain;
using actortrain::test::temp_dir;
namespace fs = std::filesystem;

namespace {

/// tiny_experiment (8 features, 3 classes, MLP 8-16-3, unfused) with a
/// scripted module of that shape in its place.
experiment scripted(const std::string& path, int64_t networks = 4) {
  auto exp = test::tiny_experiment(networks, 2);
  exp.base.train.fuse = train_options::fuse_off;
  exp.base.model.kind = model_kind::torchscript;
  exp.base.model.path = path;
  return exp;
}

/// A network's learner state right after it is built from `exp`'s spec
/// `index` (the initial weights).
std::vector<std::pair<std::string, torch::Tensor>>
initial_state(const experiment& exp, size_t index) {
  auto data = load_dataset(exp.data);
  REQUIRE(data);
  auto models = load_script_models(exp, **data);
  REQUIRE_MESSAGE(models, to_string_pretty(models.error()));
  auto specs = expand(exp);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(specs.at(index).seed);
  learner_context ctx{specs[index], **data, torch::Device{torch::kCPU}, gen};
  auto model = script_for(*models, specs[index].config);
  REQUIRE(model);
  auto l = make_torchscript_learner(ctx, *model);
  auto state = l->state();
  for (auto& [name, t] : state)
    t = t.detach().clone();
  return state;
}

bool same_tensors(const std::vector<std::pair<std::string, torch::Tensor>>& a,
                  const std::vector<std::pair<std::string, torch::Tensor>>& b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].first != b[i].first || !torch::equal(a[i].second, b[i].second))
      return false;
  return true;
}

} // namespace

TEST_CASE("a TorchScript MLP trains to the built-in MLP's weights from the "
          "same seed") {
  temp_dir dir;
  test::write_scripted_mlp(dir / "mlp.pt", {{8, 16, 3}});
  auto builtin = test::tiny_experiment(4, 2);
  builtin.base.train.fuse = train_options::fuse_off;
  SUBCASE("adam") {
    builtin.base.optimizer.kind = optimizer_kind::adam;
    builtin.base.optimizer.lr = 0.01;
  }
  SUBCASE("sgd with momentum") {
    builtin.base.optimizer.momentum = 0.9;
  }
  auto script = builtin;
  script.base.model.kind = model_kind::torchscript;
  script.base.model.path = dir / "mlp.pt";
  auto a = test::run_ok(builtin, dir / "builtin");
  auto b = test::run_ok(script, dir / "script");
  REQUIRE(a.networks.size() == 4);
  REQUIRE(b.networks.size() == 4);
  auto wa = test::decoded_weights(dir / "builtin");
  auto wb = test::decoded_weights(dir / "script");
  REQUIRE(wa.size() == 4);
  REQUIRE(wb.size() == 4);
  double worst = 0;
  for (auto& [name, tensors] : wa) {
    const auto& other = wb[name];
    REQUIRE(other.size() == tensors.size());
    // Position by position: the built-in Sequential names its layers 0 and
    // 2, the script fc0 and fc1.
    for (size_t i = 0; i < tensors.size(); ++i) {
      REQUIRE(other[i].second.sizes() == tensors[i].second.sizes());
      worst = std::max(
          worst, test::relative_error(other[i].second, tensors[i].second));
    }
    CHECK(other[0].first == "fc0.weight");
  }
  MESSAGE("largest relative difference from the built-in MLP: ", worst);
  CHECK(worst <= 1e-6);
  for (size_t i = 0; i < 4; ++i)
    CHECK(std::abs(a.networks[i].test_accuracy - b.networks[i].test_accuracy) <
          1e-6);
}

TEST_CASE("each TorchScript network draws its own initial weights from its "
          "seed") {
  temp_dir dir;
  SUBCASE("by the default rule, as the built-in MLP draws them") {
    test::write_scripted_mlp(dir / "m.pt", {{8, 16, 3}});
    auto exp = scripted(dir / "m.pt");
    auto first = initial_state(exp, 0);
    CHECK(same_tensors(first, initial_state(exp, 0)));
    CHECK_FALSE(same_tensors(first, initial_state(exp, 1)));
    // The built-in model of the same shape starts from the same numbers.
    auto data = load_dataset(exp.data);
    REQUIRE(data);
    auto builtin = test::tiny_experiment(4, 2);
    auto spec = expand(builtin).front();
    auto gen = at::make_generator<at::CPUGeneratorImpl>(spec.seed);
    learner_context ctx{spec, **data, torch::Device{torch::kCPU}, gen};
    auto reference = make_builtin_learner(ctx)->state();
    REQUIRE(reference.size() == first.size());
    for (size_t i = 0; i < first.size(); ++i)
      CHECK(torch::equal(first[i].second, reference[i].second));
    // Not the file's values (zeros).
    CHECK(first[0].second.abs().sum().item<double>() > 0);
  }
  SUBCASE("by the module's own reset_parameters, with the network's "
          "generator as the global one") {
    test::write_scripted_mlp(dir / "m.pt", {{8, 16, 3}, 0, 0.05});
    auto exp = scripted(dir / "m.pt");
    auto first = initial_state(exp, 0);
    CHECK(same_tensors(first, initial_state(exp, 0)));
    CHECK_FALSE(same_tensors(first, initial_state(exp, 1)));
    for (const auto& [name, t] : first) {
      INFO(name);
      CHECK(t.abs().max().item<double>() <= 0.05);
      CHECK(t.abs().max().item<double>() > 0);
    }
    // The global generator is left as it was.
    auto before = at::detail::getDefaultCPUGenerator().get_state();
    initial_state(exp, 2);
    CHECK(
        torch::equal(before, at::detail::getDefaultCPUGenerator().get_state()));
  }
}

TEST_CASE("a TorchScript model with dropout gives the same weights on 1 and 3 "
          "slots") {
  temp_dir dir;
  test::write_scripted_mlp(dir / "drop.pt", {{8, 32, 3}, 0.3});
  auto exp = scripted(dir / "drop.pt", 6);
  exp.scheduler.slots = 1;
  test::run_ok(exp, dir / "one");
  exp.scheduler.slots = 3;
  exp.scheduler.quantum_steps = 3;
  exp.scheduler.policy = policy_kind::round_robin;
  test::run_ok(exp, dir / "three");
  auto a = test::stored_weights(dir / "one");
  auto b = test::stored_weights(dir / "three");
  REQUIRE(a.size() == 6);
  CHECK(a == b);
  // Dropout draws differ per network: no two end alike.
  CHECK(a["net-0000.pt"] != a["net-0001.pt"]);
}

TEST_CASE("a TorchScript model that does not fit is refused before training, "
          "naming the file and the shapes") {
  temp_dir dir;
  auto out = dir / "out";
  auto exp = scripted(dir / "m.pt");
  std::string expected;
  SUBCASE("a missing file") {
    expected = "cannot open a TorchScript module";
  }
  SUBCASE("a file that is not TorchScript") {
    test::write_text(dir / "m.pt", "PK not a zip archive at all");
    expected = "is not a TorchScript module";
  }
  SUBCASE("a forward that does not take the data's samples") {
    test::write_scripted_mlp(dir / "m.pt", {{10, 3}});
    expected = "does not take a batch of shape [2, 8]";
  }
  SUBCASE("an output that does not match the classes") {
    test::write_scripted_mlp(dir / "m.pt", {{8, 5}});
    expected = "returns shape [2, 5] for a batch of shape [2, 8]; the data "
               "needs [2, 3]";
  }
  SUBCASE("a module without parameters") {
    test::write_scripted_module(dir / "m.pt", "    return x * 2.0", {});
    expected = "has no parameters to train";
  }
  SUBCASE("a module with nothing to draw per network") {
    test::write_scripted_module(dir / "m.pt", "    return x[:, 0:3] * self.s",
                                {{"s", {3}}});
    expected = "every network would start from the same values";
  }
  SUBCASE("a forward that returns no tensor") {
    test::write_scripted_module(dir / "m.pt",
                                "    y = torch.addmm(self.b, x, self.w)\n"
                                "    return (y, y)",
                                {{"w", {8, 3}}, {"b", {3}}});
    expected = "not a tensor";
  }
  SUBCASE("an input_shape of another size") {
    test::write_scripted_mlp(dir / "m.pt", {{8, 16, 3}});
    exp.base.model.input_shape = {1, 3, 3};
    expected = "model.input_shape = [1, 3, 3] holds 9 values per sample, but "
               "the data's samples have 8";
  }
  SUBCASE("no model.path") {
    exp.base.model.path.clear();
    expected = "model.path: model.kind = 'torchscript' needs the module's file";
  }
  SUBCASE("model.path on a built-in model") {
    exp.base.model.kind = model_kind::mlp;
    expected = "model.path: only a TorchScript model";
  }
  SUBCASE("cross-entropy for regression") {
    test::write_scripted_mlp(dir / "m.pt", {{8, 1}});
    exp.data.task = task_kind::regression;
    exp.base.model.loss = loss_kind::cross_entropy;
    expected = "model.loss: 'cross_entropy' needs a classification task";
  }
  run_options opts;
  opts.output_dir = out;
  auto result = run(exp, opts);
  REQUIRE_FALSE(result);
  auto msg = to_string_pretty(result.error());
  INFO(msg);
  CHECK(msg.find(expected) != std::string::npos);
  CHECK(is(result.error(), errc::invalid_experiment));
  // Refused before anything trains: no run folder.
  CHECK_FALSE(fs::exists(out + "/results.db"));
}

TEST_CASE("the app trains a TorchScript model named relative to the "
          "experiment file, and exits 3 on one that is not TorchScript") {
  temp_dir dir;
  fs::create_directories(dir / "models");
  test::write_scripted_mlp(dir / "models/mlp.pt", {{16, 32, 4}});
  auto toml = std::string{R"(name = "scripted"
[data]
format = "synthetic"
samples = 512
test_samples = 128
features = 16
classes = 4
[model]
kind = "torchscript"
path = "models/mlp.pt"
[train]
networks = 3
epochs = 2
[scheduler]
slots = 2
)"};
  test::write_text(dir / "exp.toml", toml);
  auto ok = test::run_process(fmt::format("cd / && {} run {} --output {} "
                                          "--quiet",
                                          test::app(), dir / "exp.toml",
                                          dir / "out"));
  REQUIRE_MESSAGE(ok.exit_code == 0, ok.output);
  auto result = read_results(dir / "out");
  REQUIRE(result);
  CHECK(result->count(network_status::finished) == 3);
  CHECK(result->networks[0].test_accuracy > 0.5);
  test::write_text(dir / "models/bad.pt", "not a module");
  auto bad_toml = toml;
  bad_toml.replace(bad_toml.find("models/mlp.pt"), 13, "models/bad.pt");
  test::write_text(dir / "bad.toml", bad_toml);
  auto bad = test::run_process(fmt::format("{} run {} --output {} --quiet",
                                           test::app(), dir / "bad.toml",
                                           dir / "bad-out"));
  CHECK(bad.exit_code == 3);
  CHECK(bad.output.find(dir / "models/bad.pt") != std::string::npos);
  CHECK(bad.output.find("is not a TorchScript module") != std::string::npos);
}

TEST_CASE("a TorchScript CNN with batch norm written in Python trains, and "
          "Python loads its weights and buffers back") {
  temp_dir dir;
  test::write_text(dir / "make.py", R"(import sys, torch
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4 * 4 * 4, 3)
    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        return self.fc(torch.flatten(x, 1))
torch.jit.script(Net()).save(sys.argv[1])
)");
  auto made = test::run_process(
      fmt::format("/usr/bin/python3 {} {}", dir / "make.py", dir / "cnn.pt"));
  REQUIRE_MESSAGE(made.exit_code == 0, made.output);
  test::write_text(dir / "exp.toml", R"(name = "bn"
[data]
format = "synthetic"
samples = 256
test_samples = 64
features = 16
classes = 3
[model]
kind = "torchscript"
path = "cnn.pt"
input_shape = [1, 4, 4]
[train]
networks = 2
epochs = 2
batch_size = 32
)");
  auto ran = test::run_process(fmt::format("{} run {} --output {} --quiet",
                                           test::app(), dir / "exp.toml",
                                           dir / "out"));
  REQUIRE_MESSAGE(ran.exit_code == 0, ran.output);
  auto exported = test::run_process(fmt::format(
      "{} export {} --weights {}", test::app(), dir / "out", dir / "w"));
  REQUIRE_MESSAGE(exported.exit_code == 0, exported.output);
  // 256 samples in batches of 32 for 2 epochs: 16 batch-norm updates.
  test::write_text(dir / "load.py", R"(import sys, torch
states = []
for name in ("net-0000.pt", "net-0001.pt"):
    m = torch.jit.load(sys.argv[1])
    state = torch.load(sys.argv[2] + "/" + name)
    m.load_state_dict(state, strict=True)
    assert int(m.bn.num_batches_tracked) == 16, int(m.bn.num_batches_tracked)
    assert m.bn.running_mean.abs().sum() > 0, "running mean never updated"
    assert not torch.allclose(m.bn.running_var, torch.ones(4)), "running var"
    m.eval()
    out = m(torch.zeros(5, 1, 4, 4))
    assert out.shape == (5, 3), out.shape
    states.append(state)
assert not torch.equal(states[0]["conv.weight"], states[1]["conv.weight"])
print("loaded", sorted(states[0].keys()))
)");
  auto loaded = test::run_process(fmt::format(
      "/usr/bin/python3 {} {} {}", dir / "load.py", dir / "cnn.pt", dir / "w"));
  INFO(loaded.output);
  CHECK(loaded.exit_code == 0);
  CHECK(loaded.output.find("bn.running_mean") != std::string::npos);
}

TEST_CASE("the TorchScript example: a CNN saved by its Python script trains "
          "32 times on Fashion-MNIST") {
  // As its README says to run it, but with the module written into a
  // folder of the test's own (the experiment names it relative to itself).
  temp_dir dir;
  const std::string example =
      std::string{ACTORTRAIN_SOURCE_DIR} + "/examples/torchscript_cnn";
  fs::copy_file(example + "/experiment.toml", dir / "experiment.toml");
  auto made = test::run_process(fmt::format(
      "/usr/bin/python3 {}/make_model.py {}", example, dir / "cnn.pt"));
  REQUIRE_MESSAGE(made.exit_code == 0, made.output);
  auto ran = test::run_process(fmt::format("{} run {} --output {} --quiet",
                                           test::app(), dir / "experiment.toml",
                                           dir / "out"));
  REQUIRE_MESSAGE(ran.exit_code == 0, ran.output);
  auto result = read_results(dir / "out");
  REQUIRE(result);
  CHECK(result->count(network_status::finished) == 32);
  REQUIRE(result->overall_ensemble());
  MESSAGE("ensemble accuracy: ", result->overall_ensemble()->accuracy);
  CHECK(result->overall_ensemble()->accuracy > 0.75);
}

TEST_CASE("resuming after the TorchScript module's file changed is refused") {
  temp_dir dir;
  test::write_scripted_mlp(dir / "m.pt", {{8, 16, 3}});
  auto exp = scripted(dir / "m.pt", 2);
  test::run_ok(exp, dir / "out");
  // The same file again: the finished run is kept as it is.
  test::run_ok(exp, dir / "out");
  // Another module of the same shape: the checkpoints would load, and mix.
  test::write_scripted_mlp(dir / "m.pt", {{8, 16, 3}, 0.5});
  run_options opts;
  opts.output_dir = dir / "out";
  auto again = run(exp, opts);
  REQUIRE_FALSE(again);
  auto msg = to_string_pretty(again.error());
  INFO(msg);
  CHECK(msg.find("holds a run of a different experiment") != std::string::npos);
  CHECK(msg.find("TorchScript module's file") != std::string::npos);
}

TEST_CASE("a sweep over TorchScript files and learning rates trains each "
          "point with its own module") {
  temp_dir dir;
  test::write_scripted_mlp(dir / "narrow.pt", {{8, 16, 3}});
  test::write_scripted_mlp(dir / "wide.pt", {{8, 32, 3}});
  test::write_text(dir / "exp.toml", R"(name = "sweep"
[data]
format = "synthetic"
samples = 256
test_samples = 64
features = 8
classes = 3
[model]
kind = "torchscript"
path = "narrow.pt"
[train]
networks = 2
epochs = 1
[sweep]
"model.path" = ["narrow.pt", "wide.pt"]
"optimizer.lr" = [0.01, 0.001]
)");
  auto exp = load_experiment(dir / "exp.toml");
  REQUIRE_MESSAGE(exp, to_string_pretty(exp.error()));
  REQUIRE(exp->variants.size() == 4);
  // Relative to the experiment file, in every sweep point.
  CHECK(exp->variants[0].model.path == dir / "narrow.pt");
  CHECK(exp->variants[3].model.path == dir / "wide.pt");
  auto result = test::run_ok(*exp, dir / "out");
  CHECK(result.count(network_status::finished) == 8);
  auto weights = test::decoded_weights(dir / "out");
  REQUIRE(weights.size() == 8);
  for (const auto& n : result.networks) {
    INFO(n.name);
    auto wide = exp->variants[static_cast<size_t>(n.group)].model.path ==
                dir / "wide.pt";
    const auto& first = weights[n.name + ".pt"].front();
    CHECK(first.first == "fc0.weight");
    CHECK(first.second.size(0) == (wide ? 32 : 16));
  }
}
