// Synchronous data-parallel replicas (train.replicas): one network on R
// slots computes what one slot computes with the whole batch, to rounding;
// the same bits wherever its slots are; bad settings refused before
// anything trains.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <future>
#include <map>
#include <thread>

#include <ATen/CPUGeneratorImpl.h>

#include <fmt/format.h>

#include "actortrain/error.hpp"
#include "actortrain/learner.hpp"
#include "actortrain/run.hpp"
#include "actortrain/session.hpp"
#include "actortrain/store.hpp"
#include "models/builtin_learner.hpp"
#include "test_support.hpp"
#include "training/data_parallel.hpp"
#include "training/parameter_server.hpp"

using namespace actortrain;
using actortrain::test::max_relative_error;
using actortrain::test::temp_dir;

namespace {

/// Two networks of a small MLP on synthetic data, 3 epochs of 24-sample
/// batches (the last batch of each epoch is shorter: 16 of 256), on 3
/// slots, with `replicas` replicas each.
experiment replicated(int64_t replicas, optimizer_kind opt) {
  auto exp = test::tiny_experiment(2, 3);
  exp.base.model.hidden = {32, 16};
  exp.base.optimizer.kind = opt;
  exp.base.optimizer.lr = opt == optimizer_kind::sgd ? 0.1 : 0.01;
  exp.base.optimizer.momentum = opt == optimizer_kind::sgd ? 0.9 : 0;
  exp.base.train.batch_size = 24;
  exp.base.train.replicas = replicas;
  // One slot, one learner: the plain step the replicas must match.
  exp.base.train.fuse = train_options::fuse_off;
  exp.scheduler.slots = 3;
  return exp;
}

/// The error `run` gives `exp`; nothing may be created for it.
std::string refusal(const experiment& exp, run_options opts = {}) {
  temp_dir dir;
  opts.output_dir = dir / "out";
  auto r = run(exp, opts);
  REQUIRE_FALSE(static_cast<bool>(r));
  CHECK_FALSE(std::filesystem::exists(dir / "out/results.db"));
  return to_string_pretty(r.error());
}

} // namespace

TEST_CASE("a batch splits into equal parts, the first ones larger when it "
          "does not divide") {
  using parts = std::vector<int64_t>;
  CHECK(data_parallel_step::part_sizes(24, 3) == parts{8, 8, 8});
  CHECK(data_parallel_step::part_sizes(16, 3) == parts{6, 5, 5});
  CHECK(data_parallel_step::part_sizes(1, 2) == parts{1, 0});
}

TEST_CASE("synchronous replicas train what one slot trains with the whole "
          "batch") {
  temp_dir dir;
  for (auto opt : {optimizer_kind::sgd, optimizer_kind::adam}) {
    auto name = std::string{name_of(opt)};
    test::run_ok(replicated(1, opt), dir / (name + "-1"));
    auto one = test::decoded_weights(dir / (name + "-1"));
    REQUIRE(one.size() == 2);
    for (int64_t r : {2, 3}) {
      auto out = dir / fmt::format("{}-{}", name, r);
      auto result = test::run_ok(replicated(r, opt), out);
      CHECK(result.count(network_status::finished) == 2);
      auto many = test::decoded_weights(out);
      REQUIRE(many.size() == one.size());
      for (auto& [file, w] : many) {
        auto err = max_relative_error(w, one.at(file));
        MESSAGE(fmt::format("{} R = {} {}: max relative error {:.2e}", name, r,
                            file, err));
        // 3 epochs of 11 steps: float32 sums of R partial gradients round
        // differently from one batch's (measured: 1.2e-7 to 3.8e-7 on an
        // Intel CPU, up to 1.1e-6 with Adam on an AMD EPYC, whose OpenBLAS
        // kernels differ): the bound catches a wrong sum, not rounding.
        CHECK(err <= 5e-6);
      }
      // The run held R slots at once for each quantum.
      auto grants = 0;
      for (const auto& s : result.slots)
        grants += static_cast<int>(s.grants);
      CHECK(grants % r == 0);
    }
  }
}

TEST_CASE("a replicated network gets the same bits wherever its slots are") {
  temp_dir dir;
  // One replicated network among ordinary ones: 2 slots (it waits for both,
  // its replicas on slots 0 and 1) against 5 slots with quanta of 3 steps
  // and another policy (its replicas on whichever slots are free).
  auto exp = test::tiny_experiment(3, 2);
  exp.base.train.batch_size = 32;
  auto solo = exp.base;
  solo.label = "replicated";
  solo.train.networks = 1;
  solo.train.replicas = 2;
  auto plain = exp.base;
  plain.label = "plain";
  exp.variants = {solo, plain};
  exp.scheduler.slots = 2;
  auto a = test::run_ok(exp, dir / "a");
  CHECK(a.count(network_status::finished) == 4);
  exp.scheduler.slots = 5;
  exp.scheduler.quantum_steps = 3;
  exp.scheduler.policy = policy_kind::longest_remaining;
  auto b = test::run_ok(exp, dir / "b");
  auto wa = test::stored_weights(dir / "a");
  auto wb = test::stored_weights(dir / "b");
  REQUIRE(wa.size() == 4);
  CHECK(wa == wb);
  CHECK(a.networks.front().status == network_status::finished);
}

namespace {

/// One network of 3 synchronous replicas beside two plain ones, long
/// enough (10 epochs of 2,048 samples) that a worker can be killed mid-run.
experiment replicated_across_nodes() {
  auto exp = test::tiny_experiment(2, 10);
  exp.data.samples = 2048;
  exp.base.model.hidden = {64, 32};
  exp.base.train.batch_size = 30;
  exp.base.train.fuse = train_options::fuse_off;
  auto solo = exp.base;
  solo.label = "replicated";
  solo.train.networks = 1;
  solo.train.replicas = 3;
  auto plain = exp.base;
  plain.label = "plain";
  exp.variants = {solo, plain};
  exp.scheduler.slots = 3;
  return exp;
}

/// How many of network `id`'s grants were workers' slots.
int64_t worker_grants_of(const std::string& out, uint64_t id = 0) {
  auto store = results_store::open(out + "/" + results_store::file_name);
  REQUIRE(static_cast<bool>(store));
  auto grants = (*store)->grants();
  REQUIRE(static_cast<bool>(grants));
  return std::count_if(grants->begin(), grants->end(), [&](const auto& g) {
    return g.network_id == id && !g.node.empty();
  });
}

} // namespace

TEST_CASE("synchronous replicas on two worker processes: the bits of one "
          "process") {
  temp_dir dir;
  auto exp = replicated_across_nodes();
  auto here = test::run_ok(exp, dir / "here");
  // One slot here (the leader's), one on each worker: the replicated
  // network's other two parts are computed there, sent as values.
  test::worker_process w1{"--slots 1", dir / "w1.log"};
  test::worker_process w2{"--slots 1", dir / "w2.log"};
  exp.scheduler.slots = 1;
  exp.cluster.workers = {w1.address(), w2.address()};
  auto spread = test::run_ok(exp, dir / "spread");
  CHECK(spread.count(network_status::finished) == 3);
  CHECK(worker_grants_of(dir / "spread") > 0);
  auto a = test::stored_weights(dir / "here");
  REQUIRE(a.size() == 3);
  CHECK(a == test::stored_weights(dir / "spread"));
}

TEST_CASE("two replicated networks share a worker's slots: each leader "
          "here, its other replica there while the other waits") {
  temp_dir dir;
  auto exp = replicated_across_nodes();
  exp.variants.front().train.networks = 2;
  exp.variants.front().train.replicas = 2;
  exp.scheduler.slots = 4;
  auto here = test::run_ok(exp, dir / "here");
  // Two slots here, two on the worker: with both local slots taken by one
  // network, the other would wait with the worker's slots idle.
  test::worker_process w{"--slots 2", dir / "w.log"};
  exp.scheduler.slots = 2;
  exp.cluster.workers = {w.address()};
  auto spread = test::run_ok(exp, dir / "spread");
  CHECK(spread.count(network_status::finished) == 4);
  CHECK(worker_grants_of(dir / "spread", 0) > 0);
  CHECK(worker_grants_of(dir / "spread", 1) > 0);
  CHECK(test::stored_weights(dir / "here") ==
        test::stored_weights(dir / "spread"));
}

TEST_CASE("a worker killed under a synchronous replica: its part is computed "
          "elsewhere, the result unchanged") {
  temp_dir dir;
  auto exp = replicated_across_nodes();
  auto here = test::run_ok(exp, dir / "here");
  test::worker_process w1{"--slots 1", dir / "w1.log"};
  test::worker_process w2{"--slots 1 --verbose", dir / "w2.log"};
  exp.scheduler.slots = 1;
  exp.cluster.workers = {w1.address(), w2.address()};
  // The killed worker is not tried again for long: the run goes on with
  // the two slots left.
  auto done = std::async(std::launch::async,
                         [&] { return test::run_ok(exp, dir / "spread"); });
  REQUIRE_MESSAGE(w2.process().wait_for("replica parts of network 0", 120),
                  w2.process().output());
  std::this_thread::sleep_for(std::chrono::milliseconds{200});
  // Killed while the run still trains.
  REQUIRE(done.wait_for(std::chrono::seconds{0}) != std::future_status::ready);
  w2.process().stop(SIGKILL, 10);
  auto spread = done.get();
  CHECK(worker_grants_of(dir / "spread") > 0);
  CHECK(spread.count(network_status::finished) == 3);
  CHECK(test::stored_weights(dir / "here") ==
        test::stored_weights(dir / "spread"));
}

TEST_CASE("bad replica settings are refused before anything trains") {
  auto exp = test::tiny_experiment(1, 1);
  exp.scheduler.slots = 2;
  SUBCASE("none") {
    exp.base.train.replicas = 0;
    CHECK(refusal(exp).find("train.replicas") != std::string::npos);
  }
  SUBCASE("a batch that does not divide") {
    exp.base.train.replicas = 2;
    exp.base.train.batch_size = 31;
    CHECK(refusal(exp).find("train.batch_size = 31 does not divide over "
                            "train.replicas = 2") != std::string::npos);
  }
  SUBCASE("asynchronous settings for a network on one slot") {
    exp.base.train.sync = sync_kind::async;
    CHECK(refusal(exp).find("train.sync: only replicated networks") !=
          std::string::npos);
  }
  SUBCASE("more replicas than the run has slots") {
    exp.base.train.replicas = 4;
    CHECK(refusal(exp).find("train.replicas = 4 needs 4 slots at once") !=
          std::string::npos);
  }
  SUBCASE("asynchronous replicas beyond this process's slots, workers or "
          "not") {
    exp.base.train.replicas = 4;
    exp.base.train.sync = sync_kind::async;
    exp.cluster.workers = {"127.0.0.1:1"};
    CHECK(refusal(exp).find("asynchronous replicas all train in this "
                            "process") != std::string::npos);
  }
  SUBCASE("no slots of its own") {
    exp.base.train.replicas = 2;
    exp.cluster.local = false;
    exp.cluster.workers = {"127.0.0.1:1"};
    CHECK(refusal(exp).find("cluster.local = false") != std::string::npos);
  }
  SUBCASE("a learner of one's own") {
    exp.base.train.replicas = 2;
    run_options opts;
    opts.make_learner = [](const learner_context& ctx) {
      return make_builtin_learner(ctx);
    };
    CHECK(refusal(exp, opts).find("a learner of your own trains on one slot") !=
          std::string::npos);
  }
  SUBCASE("a TorchScript module") {
    exp.base.train.replicas = 2;
    exp.base.model.kind = model_kind::torchscript;
    exp.base.model.path = "model.pt";
    CHECK(refusal(exp).find("replicas need a built-in model") !=
          std::string::npos);
  }
}

TEST_CASE("a session refuses a submission with more replicas than slots") {
  temp_dir dir;
  auto setup = test::tiny_experiment(1, 1);
  setup.scheduler.slots = 2;
  session_options opts;
  opts.output_dir = dir / "out";
  auto s = session::open(setup, opts);
  REQUIRE_MESSAGE(static_cast<bool>(s), to_string_pretty(s.error()));
  auto cfg = setup.base;
  cfg.train.replicas = 3;
  auto refused = (*s)->submit(cfg);
  REQUIRE_FALSE(static_cast<bool>(refused));
  CHECK(to_string_pretty(refused.error()).find("needs 3 slots") !=
        std::string::npos);
  cfg.train.replicas = 2;
  auto ids = (*s)->submit(cfg);
  REQUIRE_MESSAGE(static_cast<bool>(ids), to_string_pretty(ids.error()));
  auto result = (*s)->close();
  REQUIRE_MESSAGE(static_cast<bool>(result), to_string_pretty(result.error()));
  CHECK(result->count(network_status::finished) == 1);
}

namespace {

/// A built-in MLP 8-16-3 learner and its data, for the parameter server.
struct served_network {
  served_network() {
    auto exp = test::tiny_experiment(1, 1);
    data = load_dataset(exp.data).value();
    spec.id = 7;
    spec.seed = 99;
    spec.config = exp.base;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(spec.seed);
    learner_context ctx{spec, *data, torch::kCPU, gen};
    master = std::make_unique<builtin_learner>(ctx);
  }

  /// Replica r computes the gradient of samples [at, at + 16) in its copy.
  void compute(parameter_server& ps, size_t r, int64_t at) {
    auto x = data->train_x.slice(0, at, at + 16);
    auto y = data->train_y.slice(0, at, at + 16);
    master->loss_of(ps.forward(r, x), y).backward();
  }

  std::shared_ptr<const dataset> data;
  network_spec spec;
  std::unique_ptr<builtin_learner> master;
};

} // namespace

TEST_CASE("the parameter server refuses a gradient staler than its bound, "
          "and applies a step once") {
  served_network n;
  parameter_server ps{2, 1};
  ps.attach(*n.master, torch::kCPU);
  using verdict = parameter_server::verdict;
  // Replica 1 is slow: it pulls version 0 and computes while replica 0
  // pushes three updates.
  auto slow = ps.pull(1);
  CHECK(slow == 0);
  n.compute(ps, 1, 0);
  for (int64_t step = 0; step < 3; ++step) {
    auto v = ps.pull(0);
    n.compute(ps, 0, 16 * (step + 1));
    CHECK(ps.push(0, step, v) == verdict::applied);
  }
  CHECK(ps.version() == 3);
  // A push answered `expected` that changes nothing: weights and version.
  auto changes_nothing = [&](size_t r, int64_t step, int64_t version,
                             verdict expected) {
    auto before = n.master->state().front().second.clone();
    auto was = ps.version();
    CHECK(ps.push(r, step, version) == expected);
    CHECK(ps.version() == was);
    CHECK(torch::equal(before, n.master->state().front().second));
  };
  // Three updates old, with a bound of 1: refused.
  changes_nothing(1, 3, slow, verdict::stale);
  // Computed again from fresh weights: applied.
  auto fresh = ps.pull(1);
  n.compute(ps, 1, 0);
  CHECK(ps.push(1, 3, fresh) == verdict::applied);
  CHECK(ps.version() == 4);
  // The same step pushed again (its reply was lost): not applied twice.
  changes_nothing(1, 3, fresh, verdict::duplicate);
  // One update old is within the bound.
  auto v = ps.pull(0);
  auto w = ps.pull(1);
  n.compute(ps, 0, 64);
  n.compute(ps, 1, 80);
  CHECK(ps.push(0, 4, v) == verdict::applied);
  CHECK(ps.push(1, 5, w) == verdict::applied);
  auto counts = ps.take_counts(7);
  REQUIRE(counts.size() == 3);
  CHECK(counts[0].staleness == 0);
  CHECK(counts[0].applied == 5);
  CHECK(counts[1].staleness == 1);
  CHECK(counts[1].applied == 1);
  CHECK(counts[2].staleness == 3);
  CHECK(counts[2].refused == 1);
  CHECK(ps.take_counts(7).empty());
}

TEST_CASE("asynchronous replicas train, never apply a gradient staler than "
          "the bound and record their staleness") {
  temp_dir dir;
  for (int64_t s : {0, 2}) {
    auto exp = replicated(3, optimizer_kind::adam);
    exp.base.train.sync = sync_kind::async;
    exp.base.train.staleness = s;
    exp.base.train.batch_size = 16; // any size: each replica a whole batch
    auto out = dir / fmt::format("s{}", s);
    auto result = test::run_ok(exp, out);
    CHECK(result.count(network_status::finished) == 2);
    auto store = results_store::open(out + "/results.db");
    REQUIRE(static_cast<bool>(store));
    auto counts = (*store)->staleness();
    REQUIRE(static_cast<bool>(counts));
    std::map<uint64_t, int64_t> applied;
    for (const auto& c : *counts) {
      CAPTURE(c.staleness);
      if (c.staleness > s)
        CHECK(c.applied == 0);
      else
        CHECK(c.refused == 0);
      applied[c.network_id] += c.applied;
    }
    for (const auto& net : result.networks) {
      // Every booked step is one applied push.
      CHECK(applied[net.id] == net.steps);
      CHECK(net.steps == 3 * 16); // 3 epochs of 256 / 16 steps
      // It learned: better than chance (3 classes).
      CHECK(net.test_accuracy > 0.4);
    }
  }
}
