#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <vector>

#include <fmt/format.h>

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
  CHECK(exp->data.partition == partition_scheme::stratified);
  CHECK(exp->scheduler.slots == 2);
  REQUIRE(exp->variants.size() == 4);
  CHECK(exp->total_networks() == 128);
  std::set<std::pair<double, int64_t>> points;
  for (const auto& v : exp->variants) {
    points.emplace(v.optimizer.lr, v.model.hidden.at(0));
    CHECK(v.train.epochs == 3);
    CHECK(v.model.activation == activation_kind::relu);
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
  // Below the workers' heartbeat, a live worker would count as lost.
  CHECK(parse_error("[cluster]\nworker_timeout_seconds = 1.5\n")
            .find("cluster.worker_timeout_seconds: 1.5 is below 2 s") !=
        std::string::npos);
  CHECK(parse_error("[cluster]\nworker_timeout_seconds = -1\n")
            .find("cluster.worker_timeout_seconds") != std::string::npos);
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
  exp.data.format = data_format::synthetic;
  CHECK_FALSE(exp.validate());
  exp.base.train.batch_size = 0;
  auto err = exp.validate();
  REQUIRE(err);
  CHECK(to_string_pretty(err).find("train.batch_size") != std::string::npos);
  exp.base.train.batch_size = 8;
  exp.data.format = data_format::idx;
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
  CHECK(exp->scheduler.policy == policy_kind::longest_remaining);
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
  base.data.format = data_format::synthetic;
  auto fp = fingerprint(base);
  auto changed = [&](auto edit) {
    auto exp = base;
    edit(exp);
    return fingerprint(exp) != fp;
  };
  CHECK(changed([](experiment& e) { e.base.optimizer.lr *= 2; }));
  CHECK(changed(
      [](experiment& e) { e.base.model.activation = activation_kind::tanh; }));
  CHECK(changed(
      [](experiment& e) { e.base.train.fuse = train_options::fuse_off; }));
  CHECK(changed([](experiment& e) { e.base.train.fuse = 4; }));
  // The threads a slot splits operations into round differently.
  CHECK(changed([](experiment& e) { e.scheduler.threads_per_slot = 2; }));
  CHECK_FALSE(changed([](experiment& e) { e.scheduler.slots = 7; }));
  CHECK_FALSE(changed([](experiment& e) { e.base.train.priority = 3; }));
}

namespace {

/// A different value of the same type: enough to see whether a key matters.
template <class T> T nudged(const T& x) {
  if constexpr (is_choice<T>::value)
    return static_cast<T>((static_cast<size_t>(x) + 1) %
                          choice_names<T>::names.size());
  else if constexpr (std::is_same_v<T, bool>)
    return !x;
  else if constexpr (std::is_same_v<T, std::string>)
    return x + "x";
  else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
    auto y = x;
    y.push_back(3);
    return y;
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    auto y = x;
    y.push_back("h:1");
    return y;
  } else
    return static_cast<T>(x + 1);
}

/// Calls f(key, edit) for every row of every section that a network's
/// experiment holds; edit(e) nudges that key's field in e.
template <class F> void for_each_key_edit(F&& f) {
  auto sections = [&](auto member_of) {
    return [&f, member_of](auto tag) {
      using S = typename decltype(tag)::type;
      keys::for_each_row<S>([&](const auto& row) {
        auto key = std::string{keys::section<S>::name} + "." + row.name;
        f(key, row.changes, [member_of, row](experiment& e) {
          auto& field = (*member_of(e, static_cast<S*>(nullptr))).*(row.member);
          field = nudged(field);
        });
      });
    };
  };
  struct {
    data_options* operator()(experiment& e, data_options*) const {
      return &e.data;
    }
    model_options* operator()(experiment& e, model_options*) const {
      return &e.base.model;
    }
    optimizer_options* operator()(experiment& e, optimizer_options*) const {
      return &e.base.optimizer;
    }
    train_options* operator()(experiment& e, train_options*) const {
      return &e.base.train;
    }
    scheduler_options* operator()(experiment& e, scheduler_options*) const {
      return &e.scheduler;
    }
    cluster_options* operator()(experiment& e, cluster_options*) const {
      return &e.cluster;
    }
    output_options* operator()(experiment& e, output_options*) const {
      return &e.output;
    }
  } member_of;
  keys::for_each_section(sections(member_of));
}

} // namespace

TEST_CASE("every key that changes numbers changes the fingerprint, no other") {
  experiment base;
  auto fp = fingerprint(base);
  size_t numbers = 0;
  for_each_key_edit(
      [&](const std::string& key, keys::effect changes, auto edit) {
        CAPTURE(key);
        auto exp = base;
        edit(exp);
        if (changes == keys::effect::numbers) {
          ++numbers;
          CHECK(fingerprint(exp) != fp);
        } else {
          CHECK(fingerprint(exp) == fp);
        }
      });
  // The table says train.fuse changes numbers (a resumed run keeps its
  // fusion), as do the optimizer and model keys.
  CHECK(numbers > 20);
}

template <class S> bool rows_equal(const S& x, const S& y) {
  bool same = true;
  keys::for_each_row<S>([&](const auto& row) {
    same = same && x.*(row.member) == y.*(row.member);
  });
  return same;
}

TEST_CASE("every key crosses the wire: an experiment survives CAF "
          "serialization field for field") {
  for_each_key_edit([&](const std::string& key, keys::effect, auto edit) {
    CAPTURE(key);
    experiment sent;
    sent.name = "wire";
    edit(sent);
    auto arrived = test::through_the_wire(sent);
    REQUIRE(static_cast<bool>(arrived));
    auto& got = *arrived;
    CHECK(got.name == "wire");
    CHECK(rows_equal(got.data, sent.data));
    CHECK(rows_equal(got.base.model, sent.base.model));
    CHECK(rows_equal(got.base.optimizer, sent.base.optimizer));
    CHECK(rows_equal(got.base.train, sent.base.train));
    CHECK(rows_equal(got.scheduler, sent.scheduler));
    CHECK(rows_equal(got.cluster, sent.cluster));
    CHECK(rows_equal(got.output, sent.output));
    // The nudge itself reached the far side.
    experiment untouched;
    CHECK_FALSE((rows_equal(got.data, untouched.data) &&
                 rows_equal(got.base.model, untouched.base.model) &&
                 rows_equal(got.base.optimizer, untouched.base.optimizer) &&
                 rows_equal(got.base.train, untouched.base.train) &&
                 rows_equal(got.scheduler, untouched.scheduler) &&
                 rows_equal(got.cluster, untouched.cluster) &&
                 rows_equal(got.output, untouched.output)));
  });
}

TEST_CASE("every key is in the keys reference of docs/experiment.md, and "
          "every key there exists") {
  std::ifstream in{std::string{ACTORTRAIN_SOURCE_DIR} + "/docs/experiment.md"};
  REQUIRE(in);
  std::set<std::string> documented;
  std::regex key_re{"`([a-z_]+(\\.[a-z_]+)?)`"};
  for (std::string line; std::getline(in, line);) {
    // The reference is the table whose rows start with a key.
    if (line.rfind("| `", 0) != 0)
      continue;
    auto first = line.substr(0, line.find('|', 1));
    for (std::sregex_iterator i{first.begin(), first.end(), key_re}, end;
         i != end; ++i)
      documented.insert((*i)[1]);
  }
  auto keys = experiment_keys();
  REQUIRE(keys.size() > 40);
  for (const auto& key : keys) {
    CAPTURE(key);
    CHECK(documented.count(key) == 1);
  }
  std::set<std::string> known{keys.begin(), keys.end()};
  for (const auto& key : documented) {
    CAPTURE(key);
    CHECK(known.count(key) == 1);
  }
}

TEST_CASE("every key is read from TOML") {
  // One file that sets every key away from its default.
  auto exp = parse_experiment(R"(
name = "every-key"
[data]
format = "csv"
train = "/d/train.csv"
train_labels = "/d/train-labels"
test = "/d/test.csv"
test_labels = "/d/test-labels"
partition = "strided"
label_column = 2
header = "yes"
test_fraction = 0.3
task = "regression"
classes = 3
normalize = false
samples = 100
test_samples = 50
features = 8
noise = 0.5
seed = 9
[model]
kind = "torchscript"
hidden = [7]
channels = [3]
activation = "gelu"
input = 12
path = "/m/model.pt"
loss = "mse"
input_shape = [2, 6]
[optimizer]
kind = "sgd"
lr = 0.5
momentum = 0.9
weight_decay = 0.01
[train]
networks = 2
epochs = 3
batch_size = 8
seed = 5
eval_every = 2
max_seconds = 60
target_accuracy = 0.9
target_loss = 0.1
patience = 2
validation_fraction = 0.1
priority = 4
max_retries = 3
retry_lr_factor = 0.5
checkpoint_every = 2
fuse = 4
replicas = 2
sync = "async"
staleness = 2
[scheduler]
slots = 3
devices = ["cpu"]
streams_per_gpu = 3
gpu_memory_fraction = 0.75
threads_per_slot = 2
quantum_epochs = 2
quantum_steps = 10
quantum_seconds = 1.5
stall_report_seconds = 5
policy = "priority"
search = "hyperband"
asha_mode = "promotion"
metric = "test_loss"
grace_epochs = 2
reduction_factor = 4
brackets = 2
min_samples = 5
deterministic = true
interval_epochs = 3
quantile = 0.3
resample_probability = 0.5
perturb_down = 0.7
perturb_up = 1.3
[cluster]
workers = ["127.0.0.1:4242"]
local = false
handshake_seconds = 3
hop_share = 0.1
queue_ahead = false
worker_timeout_seconds = 30
[output]
layout = "files"
final_state = false
unwritten_mb = 5
)",
                              "every-key.toml");
  REQUIRE_MESSAGE(exp, to_string_pretty(exp.error()));
  experiment defaults;
  auto differs = [](const auto& x, const auto& y, auto tag) {
    using S = typename decltype(tag)::type;
    keys::for_each_row<S>([&](const auto& row) {
      CAPTURE(std::string{keys::section<S>::name} + "." + row.name);
      CHECK_FALSE(x.*(row.member) == y.*(row.member));
    });
  };
  differs(exp->data, defaults.data, keys::section_tag<data_options>{});
  differs(exp->base.model, defaults.base.model,
          keys::section_tag<model_options>{});
  differs(exp->base.optimizer, defaults.base.optimizer,
          keys::section_tag<optimizer_options>{});
  differs(exp->base.train, defaults.base.train,
          keys::section_tag<train_options>{});
  differs(exp->scheduler, defaults.scheduler,
          keys::section_tag<scheduler_options>{});
  differs(exp->cluster, defaults.cluster, keys::section_tag<cluster_options>{});
  differs(exp->output, defaults.output, keys::section_tag<output_options>{});
  CHECK(exp->base.optimizer.kind == optimizer_kind::sgd);
  CHECK(exp->scheduler.policy == policy_kind::priority);
  CHECK(exp->data.task == task_kind::regression);
  CHECK(exp->base.train.fuse == 4);
}

TEST_CASE("an unknown choice names the key, the value and the choices") {
  auto msg = [](const std::string& text) {
    auto exp = parse_experiment(text, "c.toml");
    REQUIRE_FALSE(exp);
    return to_string_pretty(exp.error());
  };
  auto opt = msg("[optimizer]\nkind = \"lbfgs\"\n");
  CHECK(opt.find("c.toml:2:8: optimizer.kind: unknown optimizer 'lbfgs' "
                 "(expected sgd, adam or adamw)") != std::string::npos);
  auto task = msg("[data]\nformat = \"csv\"\ntrain = \"x.csv\"\n"
                  "task = \"ranking\"\n");
  CHECK(task.find("data.task: unknown task 'ranking' (expected "
                  "classification or regression)") != std::string::npos);
  // A number in quotes where a word or a number may stand says so.
  auto quoted = msg("[train]\nfuse = \"8\"\n");
  CHECK(quoted.find("train.fuse must be \"auto\", \"off\" or an integer in "
                    "[1, 1000000], got \"8\" (a string: write the number "
                    "without quotes)") != std::string::npos);
  auto word = msg("[train]\nfuse = \"on\"\n");
  CHECK(word.find("got \"on\"") != std::string::npos);
  CHECK(word.find("without quotes") == std::string::npos);
  auto kind = msg("[model]\nkind = 3\n");
  CHECK(kind.find("model.kind must be a string: mlp, cnn or torchscript") !=
        std::string::npos);
  // An enum value made by a cast in C++ is named too.
  experiment exp;
  exp.data.format = data_format::synthetic;
  exp.base.optimizer.kind = static_cast<optimizer_kind>(7);
  auto err = exp.validate();
  REQUIRE(err);
  CHECK(to_string_pretty(err).find("optimizer.kind: unknown optimizer #7") !=
        std::string::npos);
}

TEST_CASE("a run's size is bounded: networks over all sweep points") {
  experiment exp;
  exp.data.format = data_format::synthetic;
  auto a = exp.base;
  a.train.networks = 600000;
  exp.variants = {a, a};
  auto err = exp.validate();
  REQUIRE(err);
  CHECK(to_string_pretty(err).find("the experiment asks for 1200000 networks "
                                   "(2 configurations); one run trains at "
                                   "most 1000000") != std::string::npos);
  exp.variants = {a};
  CHECK_FALSE(exp.validate());
}

namespace {

const char* const search_toml = R"(name = "search"
[data]
format = "synthetic"
[train]
seed = {}
[sweep]
{}
[search]
samples = {}
"optimizer.lr" = {{ loguniform = [1e-4, 1e-1] }}
"optimizer.weight_decay" = {{ uniform = [0.0, 0.01] }}
"train.batch_size" = {{ int = [16, 19] }}
"model.hidden" = {{ choice = [[16], [32, 16], [64]] }}
)";

caf::expected<experiment> search_experiment(uint64_t seed, int samples,
                                            const std::string& sweep = "") {
  return parse_experiment(fmt::format(search_toml, seed, sweep, samples),
                          "search.toml");
}

} // namespace

TEST_CASE("a search space draws each configuration's hyperparameters from "
          "its distributions, the same for the same seed") {
  auto exp = search_experiment(3, 400);
  REQUIRE_MESSAGE(exp, to_string_pretty(exp.error()));
  REQUIRE(exp->variants.size() == 400);
  double log_sum = 0;
  std::set<int64_t> batches;
  std::set<std::vector<int64_t>> widths;
  for (size_t i = 0; i < exp->variants.size(); ++i) {
    const auto& v = exp->variants[i];
    CAPTURE(v.label);
    CHECK(v.optimizer.lr >= 1e-4);
    CHECK(v.optimizer.lr < 1e-1);
    CHECK(v.optimizer.weight_decay >= 0);
    CHECK(v.optimizer.weight_decay < 0.01);
    CHECK(v.train.batch_size >= 16);
    CHECK(v.train.batch_size <= 19);
    log_sum += std::log10(v.optimizer.lr);
    batches.insert(v.train.batch_size);
    widths.insert(v.model.hidden);
    CHECK(v.label.find(fmt::format("sample={}", i)) != std::string::npos);
    CHECK(v.label.find("optimizer.lr=") != std::string::npos);
  }
  // Log-uniform: log10(lr) is uniform on [-4, -1], mean -2.5 (the mean of
  // 400 has a standard deviation of 0.043).
  CHECK(std::abs(log_sum / 400 + 2.5) < 0.2);
  CHECK(batches == std::set<int64_t>{16, 17, 18, 19});
  CHECK(widths.size() == 3);
  // The same file draws the same; another seed draws others.
  auto again = search_experiment(3, 400);
  REQUIRE(again);
  auto other = search_experiment(4, 400);
  REQUIRE(other);
  CHECK(fingerprint(*again) == fingerprint(*exp));
  CHECK(fingerprint(*other) != fingerprint(*exp));
  CHECK(again->variants[7].optimizer.lr == exp->variants[7].optimizer.lr);
  CHECK(other->variants[7].optimizer.lr != exp->variants[7].optimizer.lr);
}

TEST_CASE("a search combines with the sweep grid: each grid point gets its "
          "samples") {
  auto exp =
      search_experiment(3, 3, "\"optimizer.kind\" = [\"sgd\", \"adam\"]");
  REQUIRE_MESSAGE(exp, to_string_pretty(exp.error()));
  REQUIRE(exp->variants.size() == 6);
  for (size_t i = 0; i < 6; ++i) {
    CAPTURE(exp->variants[i].label);
    CHECK(exp->variants[i].optimizer.kind ==
          (i < 3 ? optimizer_kind::sgd : optimizer_kind::adam));
    CHECK(exp->variants[i].label.rfind(
              fmt::format("optimizer.kind={} ", i < 3 ? "sgd" : "adam"), 0) ==
          0);
    CHECK(exp->variants[i].label.find(fmt::format("sample={}", i % 3)) !=
          std::string::npos);
  }
  // Each trial draws its own values.
  CHECK(exp->variants[0].optimizer.lr != exp->variants[3].optimizer.lr);
  CHECK(exp->total_networks() == 6);
}

TEST_CASE("bad search spaces are named before training") {
  auto msg = [](const std::string& search) {
    auto exp = parse_experiment(
        "name = \"s\"\n[data]\nformat = \"synthetic\"\n[search]\n" + search,
        "s.toml");
    REQUIRE_FALSE(exp);
    return to_string_pretty(exp.error());
  };
  auto has = [](const std::string& text, const std::string& part) {
    INFO(text);
    CHECK(text.find(part) != std::string::npos);
  };
  has(msg("samples = 2\n\"optimizer.lr\" = { uniform = [0.1, 0.01] }\n"),
      "s.toml:6:30: search 'optimizer.lr': the range [0.1, 0.01] is empty "
      "(needs low < high)");
  has(msg("samples = 2\n\"optimizer.lr\" = { loguniform = [0, 0.1] }\n"),
      "search 'optimizer.lr': loguniform needs bounds > 0 (the log of 0 is "
      "undefined)");
  has(msg("samples = 2\n\"data.samples\" = { int = [10, 20] }\n"),
      "search key 'data.samples' must name a model.*, optimizer.* or train.* "
      "hyperparameter");
  has(msg("samples = 2\n\"optimizer.lrr\" = { uniform = [0.1, 0.2] }\n"),
      "unknown key 'optimizer.lrr'");
  has(msg("\"optimizer.lr\" = { uniform = [0.1, 0.2] }\n"),
      "search.samples: required");
  has(msg("samples = 0\n\"optimizer.lr\" = { uniform = [0.1, 0.2] }\n"),
      "search.samples must be an integer in [1, 1000000]");
  has(msg("samples = 2\n\"optimizer.lr\" = { normal = [0.1, 0.2] }\n"),
      "search 'optimizer.lr': unknown distribution 'normal' (expected "
      "uniform, loguniform, int or choice)");
  has(msg("samples = 2\n\"optimizer.lr\" = 0.1\n"),
      "search 'optimizer.lr' must be one distribution");
  has(msg("samples = 2\n\"train.epochs\" = { int = [1.5, 3] }\n"),
      "search 'train.epochs': int takes two integers [low, high]");
  has(msg("samples = 2\n\"train.epochs\" = { uniform = [1, 3] }\n"),
      "train.epochs must be an integer");
  has(msg("samples = 2\n\"model.hidden\" = { choice = [] }\n"),
      "search 'model.hidden': choice must be a non-empty array");
  has(msg("samples = 2\n\"train.epochs\" = { int = [0, 3] }\n"),
      "train.epochs");
  has(msg("samples = 2\n"), "search: no key to draw");
  has(msg("samples = 600000\n\"optimizer.lr\" = { uniform = [0.1, 0.2] }\n"
          "[sweep]\n\"train.epochs\" = [1, 2]\n"),
      "2 sweep points x 600000 samples is 1200000 configurations");
}
