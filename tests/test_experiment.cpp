#include <doctest/doctest.h>

#include <set>

#include "actortrain/error.hpp"
#include "actortrain/experiment.hpp"
#include "actortrain/network_spec.hpp"

using namespace actortrain;

namespace {

const char* issue_example = R"(
name = "fashion-ensemble"
[data]
format = "idx"            # idx (plain or .gz) | csv | synthetic
train = "/data/train-images-idx3-ubyte.gz"
train_labels = "/data/train-labels-idx1-ubyte.gz"
test = "/data/t10k-images-idx3-ubyte.gz"
test_labels = "/data/t10k-labels-idx1-ubyte.gz"
partition = "stratified"
[model]
kind = "mlp"
hidden = [128]
activation = "relu"
[optimizer]
kind = "adam"
lr = 1e-3
[train]
networks = 32
epochs = 3
batch_size = 64
seed = 7
[scheduler]
slots = 2
quantum_epochs = 1
[sweep]
"optimizer.lr" = [1e-3, 3e-4]
"model.hidden" = [[64], [256]]
)";

std::string parse_error(const std::string& text) {
  auto exp = parse_experiment(text, "exp.toml");
  REQUIRE_FALSE(exp);
  CHECK(is(exp.error(), errc::invalid_experiment));
  return to_string_pretty(exp.error());
}

} // namespace

TEST_CASE("the issue's example parses, and its sweep is a 2 x 2 grid") {
  auto exp = parse_experiment(issue_example, "exp.toml");
  REQUIRE_MESSAGE(exp, to_string_pretty(exp.error()));
  CHECK(exp->name == "fashion-ensemble");
  CHECK(exp->data.partition == "stratified");
  CHECK(exp->scheduler.slots == 2);
  REQUIRE(exp->variants.size() == 4);
  CHECK(exp->total_networks() == 128);
  std::set<std::pair<double, int64_t>> points;
  for (const auto& v : exp->variants) {
    points.emplace(v.optimizer.lr, v.model.hidden.at(0));
    CHECK(v.train.epochs == 3);
    CHECK(v.model.activation == "relu");
  }
  CHECK(points == std::set<std::pair<double, int64_t>>{
                      {1e-3, 64}, {1e-3, 256}, {3e-4, 64}, {3e-4, 256}});
  // Axes are ordered by key.
  CHECK(exp->variants[0].label == "model.hidden=[64] optimizer.lr=0.001");
}

TEST_CASE("expansion gives every network a distinct, reproducible seed") {
  auto exp = parse_experiment(issue_example, "exp.toml");
  REQUIRE(exp);
  auto specs = expand(*exp);
  REQUIRE(specs.size() == 128);
  std::set<uint64_t> seeds;
  for (size_t i = 0; i < specs.size(); ++i) {
    CHECK(specs[i].id == i);
    CHECK(specs[i].group == static_cast<int64_t>(i / 32));
    CHECK(specs[i].index_in_group == static_cast<int64_t>(i % 32));
    seeds.insert(specs[i].seed);
  }
  CHECK(seeds.size() == specs.size());
  CHECK(specs[5].name == "net-0005");
  auto again = expand(*exp);
  CHECK(again[77].seed == specs[77].seed);
  CHECK(derive_seed(7, 3) != derive_seed(8, 3));
}

TEST_CASE("relative data paths are relative to the experiment file") {
  auto exp = parse_experiment(R"(
[data]
format = "csv"
train = "iris.csv"
)",
                              "/some/dir/exp.toml");
  REQUIRE(exp);
  CHECK(exp->data.train == "/some/dir/iris.csv");
}

TEST_CASE("malformed TOML names the line and column") {
  auto msg = parse_error("name = \"x\"\n[train]\nepochs = = 3\n");
  CHECK(msg.find("exp.toml:3:") != std::string::npos);
  CHECK(msg.find("malformed TOML") != std::string::npos);
}

TEST_CASE("unknown keys are named with where they are") {
  auto msg = parse_error("[train]\nepochs = 2\nepoch = 3\n");
  CHECK_MESSAGE(msg.find("exp.toml:3:") != std::string::npos, msg);
  CHECK(msg.find("unknown key 'train.epoch'") != std::string::npos);
  auto top = parse_error("nmae = \"x\"\n");
  CHECK(top.find("unknown key 'nmae'") != std::string::npos);
}

TEST_CASE("wrong types are named") {
  auto msg = parse_error("[optimizer]\nlr = \"fast\"\n");
  CHECK(msg.find("optimizer.lr must be a number") != std::string::npos);
  CHECK(msg.find("exp.toml:2:") != std::string::npos);
  auto hidden = parse_error("[model]\nhidden = [64, \"x\"]\n");
  CHECK(hidden.find("model.hidden must be an array of integers") !=
        std::string::npos);
  auto section = parse_error("train = 3\n");
  CHECK(section.find("'train' must be a table") != std::string::npos);
}

TEST_CASE("out-of-range values are named with the value") {
  auto parse_error = [](const std::string& text) {
    return ::parse_error("[data]\nformat = \"synthetic\"\n" + text);
  };
  CHECK(parse_error("[optimizer]\nlr = -1.0\n")
            .find("optimizer.lr: must be > "
                  "0, got -1") != std::string::npos);
  CHECK(parse_error("[train]\nnetworks = 0\n").find("train.networks") !=
        std::string::npos);
  CHECK(::parse_error("[data]\nformat = \"xml\"\n")
            .find("unknown format 'xml'") != std::string::npos);
  CHECK(
      ::parse_error("[data]\nformat = \"synthetic\"\npartition = \"halves\"\n")
          .find("data.partition: unknown scheme 'halves'") !=
      std::string::npos);
  CHECK(parse_error("[train]\nseed = -3\n").find("train.seed must be >= 0") !=
        std::string::npos);
  CHECK(parse_error("[model]\nactivation = \"swish\"\n").find("swish") !=
        std::string::npos);
}

TEST_CASE("sweeps reject keys outside model, optimizer and train") {
  auto msg = parse_error("[sweep]\n\"data.train\" = [\"a\", \"b\"]\n");
  CHECK(msg.find("sweep key 'data.train'") != std::string::npos);
  auto empty = parse_error("[sweep]\n\"optimizer.lr\" = []\n");
  CHECK(empty.find("non-empty array") != std::string::npos);
  auto bad_value =
      parse_error("[data]\nformat = \"synthetic\"\n[sweep]\n\"optimizer.lr\" "
                  "= [0.1, -2.0]\n");
  CHECK(bad_value.find("optimizer.lr: must be > 0, got -2") !=
        std::string::npos);
  CHECK(bad_value.find("sweep point optimizer.lr=-2") != std::string::npos);
  auto unknown = parse_error("[sweep]\n\"model.widths\" = [1, 2]\n");
  CHECK(unknown.find("unknown key 'model.widths'") != std::string::npos);
}

TEST_CASE("an experiment built in C++ is validated the same way") {
  experiment exp;
  exp.data.format = "synthetic";
  CHECK_FALSE(exp.validate());
  exp.base.train.batch_size = 0;
  auto err = exp.validate();
  REQUIRE(err);
  CHECK(to_string_pretty(err).find("train.batch_size") != std::string::npos);
  exp.base.train.batch_size = 8;
  exp.data.format = "idx";
  CHECK(to_string_pretty(exp.validate()).find("data.train: required") !=
        std::string::npos);
}

TEST_CASE("a missing experiment file is a clear error") {
  auto exp = load_experiment("/nonexistent/exp.toml");
  REQUIRE_FALSE(exp);
  CHECK(to_string_pretty(exp.error()).find("/nonexistent/exp.toml") !=
        std::string::npos);
}

TEST_CASE("scheduling and stopping keys parse and are checked") {
  auto exp = parse_experiment(R"(
[data]
format = "synthetic"
[train]
max_seconds = 30.5
target_accuracy = 0.9
patience = 3
validation_fraction = 0.1
priority = 2
[scheduler]
policy = "longest_remaining"
quantum_seconds = 0.5
[sweep]
"train.priority" = [1, 5]
)",
                              "exp.toml");
  REQUIRE_MESSAGE(exp, to_string_pretty(exp.error()));
  CHECK(exp->scheduler.policy == "longest_remaining");
  CHECK(exp->scheduler.quantum_seconds == 0.5);
  REQUIRE(exp->variants.size() == 2);
  CHECK(exp->variants[1].train.priority == 5);
  CHECK(exp->variants[1].train.patience == 3);
  CHECK(exp->variants[0].train.max_seconds == 30.5);
  auto policy = parse_error(
      "[data]\nformat = \"synthetic\"\n[scheduler]\npolicy = \"lottery\"\n");
  CHECK(policy.find("scheduler.policy: unknown policy 'lottery'") !=
        std::string::npos);
  auto target = parse_error(
      "[data]\nformat = \"synthetic\"\n[train]\ntarget_accuracy = 1.5\n");
  CHECK(target.find("train.target_accuracy: must be in [0, 1], got 1.5") !=
        std::string::npos);
}

TEST_CASE("the fingerprint covers what changes numbers, not scheduling") {
  experiment base;
  base.data.format = "synthetic";
  auto fp = fingerprint(base);
  auto changed = [&](auto edit) {
    auto exp = base;
    edit(exp);
    return fingerprint(exp) != fp;
  };
  CHECK(changed([](experiment& e) { e.base.optimizer.lr *= 2; }));
  CHECK(changed([](experiment& e) { e.base.model.activation = "tanh"; }));
  CHECK(changed(
      [](experiment& e) { e.base.train.fuse = train_options::fuse_off; }));
  CHECK(changed([](experiment& e) { e.base.train.fuse = 4; }));
  CHECK_FALSE(changed([](experiment& e) { e.scheduler.slots = 7; }));
  CHECK_FALSE(changed([](experiment& e) { e.base.train.priority = 3; }));
}
