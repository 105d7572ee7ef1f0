#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "actortrain/error.hpp"
#include "actortrain/learner.hpp"
#include "actortrain/run.hpp"
#include "actortrain/store.hpp"
#include "actortrain/version.hpp"

#include "test_support.hpp"
#include <sqlite3.h>

using namespace actortrain;
using actortrain::test::file_bytes;
using actortrain::test::temp_dir;
namespace fs = std::filesystem;

namespace {

run_result run_ok(const experiment& exp, run_options opts) {
  auto result = run(exp, std::move(opts));
  REQUIRE_MESSAGE(result, to_string_pretty(result.error()));
  return std::move(*result);
}

/// The built-in learner with a fault injected into chosen networks.
class faulty_learner : public test::forwarding_learner {
public:
  enum mode { none, throws, nan_loss };

  faulty_learner(const learner_context& ctx, mode m, int at_step)
      : forwarding_learner(ctx, false), mode_(m), at_step_(at_step) {}

  double train_step(const torch::Tensor& x, const torch::Tensor& y) override {
    ++steps_;
    if (mode_ == throws && steps_ == at_step_)
      throw std::runtime_error("injected fault");
    auto loss = forwarding_learner::train_step(x, y);
    return mode_ == nan_loss && steps_ >= at_step_ ? std::nan("") : loss;
  }

private:
  mode mode_;
  int at_step_;
  int steps_ = 0;
};

} // namespace

TEST_CASE("a run trains every network and stores it durably") {
  temp_dir dir;
  auto exp = test::tiny_experiment(6, 3);
  run_options opts;
  opts.output_dir = dir / "out";
  std::vector<run_status> progress;
  opts.on_progress = [&](const run_status& s) {
    progress.push_back(s);
  };
  opts.progress_interval_seconds = 0.01;
  auto result = run_ok(exp, opts);
  // A few files however many networks: the store (its log folded back in
  // when the run ended) and the lock.
  std::set<std::string> entries;
  for (const auto& e : fs::directory_iterator{dir / "out"})
    entries.insert(e.path().filename().string());
  CHECK(entries == std::set<std::string>{".lock", "results.db"});
  CHECK(result.count(network_status::finished) == 6);
  REQUIRE(result.networks.size() == 6);
  for (const auto& n : result.networks) {
    CHECK(n.epochs == 3);
    CHECK(n.test_accuracy > 0.5);
    // Kept in the store (output.layout = "database"): no file to name.
    CHECK(n.weights_path.empty());
  }
  auto* ens = result.overall_ensemble();
  REQUIRE(ens != nullptr);
  CHECK(ens->networks == 6);
  CHECK(ens->accuracy > 0.6);
  REQUIRE_FALSE(progress.empty());
  CHECK(progress.back().finished == 6);
  CHECK(progress.back().steps_done == progress.back().steps_total);
  for (const auto& p : progress)
    CHECK(p.busy_slots <= 2);
  // Reopened from disk, the store holds every network and its epochs.
  auto store = results_store::open(dir / "out/results.db");
  REQUIRE(store);
  auto again = (*store)->read();
  REQUIRE(again);
  CHECK(again->networks.size() == 6);
  CHECK(again->count(network_status::finished) == 6);
  for (const auto& n : again->networks) {
    auto epochs = (*store)->epochs(n.id);
    REQUIRE(static_cast<bool>(epochs));
    REQUIRE(epochs->size() == 3);
    CHECK((*epochs)[2].test_loss == doctest::Approx(n.test_loss));
    auto weights = (*store)->file_bytes(n.id, file_kind::weights);
    REQUIRE_MESSAGE(static_cast<bool>(weights),
                    to_string_pretty(weights.error()));
    CHECK(decode_weights(*weights).size() == 4);
  }

  auto read = read_results(dir / "out");
  REQUIRE(read);
  CHECK(read->overall_ensemble()->accuracy == doctest::Approx(ens->accuracy));
  // Provenance: what ran, and with which versions.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2((dir / "out/results.db").c_str(), &db,
                          SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db,
                             "SELECT experiment_hash, actortrain_version, "
                             "libtorch_version, caf_version, status FROM run",
                             -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  auto text = [&](int i) {
    return std::string{
        reinterpret_cast<const char*>(sqlite3_column_text(st, i))};
  };
  CHECK(text(0) == fingerprint(exp));
  CHECK(text(1) == version());
  CHECK(text(2).rfind("1.13", 0) == 0);
  CHECK(text(3) == "0.17.6");
  CHECK(text(4) == "finished");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_CASE("output.layout = files keeps a file per network, the same bytes "
          "the store keeps by default") {
  temp_dir dir;
  auto exp = test::tiny_experiment(4, 2);
  exp.scheduler.slots = 2;
  run_options db_opts;
  db_opts.output_dir = dir / "db";
  auto in_db = run_ok(exp, db_opts);
  exp.output.layout = output_layout::files;
  run_options files_opts;
  files_opts.output_dir = dir / "files";
  auto in_files = run_ok(exp, files_opts);
  auto stored = test::stored_weights(dir / "db");
  REQUIRE(stored.size() == 4);
  CHECK(test::stored_weights(dir / "files") == stored);
  CHECK_FALSE(fs::exists(dir / "db/weights"));
  CHECK_FALSE(fs::exists(dir / "db/checkpoints"));
  auto db = results_store::open(dir / "db/results.db");
  REQUIRE(static_cast<bool>(db));
  for (const auto& n : in_files.networks) {
    CHECK(n.weights_path == dir / ("files/weights/" + n.name + ".pt"));
    CHECK(file_bytes(n.weights_path) == stored[n.name + ".pt"]);
    auto predictions = (*db)->file_bytes(n.id, file_kind::predictions);
    REQUIRE(static_cast<bool>(predictions));
    CHECK(file_bytes(dir / ("files/weights/" + n.name + ".predictions")) ==
          *predictions);
  }
  // A finished network keeps one checkpoint, its final state, in both
  // layouts.
  CHECK(std::distance(fs::directory_iterator{dir / "files/checkpoints"},
                      fs::directory_iterator{}) ==
        static_cast<long>(in_files.networks.size()));
  CHECK(in_db.overall_ensemble()->accuracy ==
        in_files.overall_ensemble()->accuracy);
  CHECK(in_db.overall_ensemble()->loss == in_files.overall_ensemble()->loss);
  db->reset();
  // A store from before files were recorded: the files are found where such
  // runs left them.
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open((dir / "files/results.db").c_str(), &raw) == SQLITE_OK);
  REQUIRE(sqlite3_exec(raw, "DELETE FROM files WHERE network_id = 2", nullptr,
                       nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(raw);
  {
    auto old = results_store::open(dir / "files/results.db");
    REQUIRE(static_cast<bool>(old));
    auto bytes = (*old)->file_bytes(2, file_kind::weights);
    REQUIRE(static_cast<bool>(bytes));
    CHECK(*bytes == stored[in_files.networks[2].name + ".pt"]);
  }
  // Bytes damaged inside the store are named, never handed out.
  REQUIRE(sqlite3_open((dir / "db/results.db").c_str(), &raw) == SQLITE_OK);
  REQUIRE(sqlite3_exec(raw,
                       "UPDATE stored_files SET data = zeroblob(length(data)) "
                       "WHERE network_id = 1 AND kind = 'weights'",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(raw);
  db = results_store::open(dir / "db/results.db");
  REQUIRE(static_cast<bool>(db));
  auto damaged = (*db)->file_bytes(1, file_kind::weights);
  REQUIRE_FALSE(static_cast<bool>(damaged));
  auto why = to_string_pretty(damaged.error());
  CHECK_MESSAGE(why.find("the weights of " + in_db.networks[1].name + " in ") !=
                    std::string::npos,
                why);
  CHECK_MESSAGE(why.find("is damaged") != std::string::npos, why);
}

/// Runs `exp` on 1 slot with epoch quanta into dir/a, then on each of
/// `layouts` (slots, quantum steps; 0: epochs) into dir/b0, dir/b1, ...;
/// checks that every network's losses and weights file are bit-identical to
/// the first run's.
void check_same_bits_on_any_slots(
    const std::string& dir, experiment exp,
    const std::vector<std::pair<int64_t, int64_t>>& layouts) {
  exp.scheduler.slots = 1;
  run_options a_opts;
  a_opts.output_dir = dir + "/a";
  auto a = run_ok(exp, a_opts);
  for (size_t l = 0; l < layouts.size(); ++l) {
    auto [slots, quantum_steps] = layouts[l];
    CAPTURE(slots);
    CAPTURE(quantum_steps);
    exp.scheduler.slots = slots;
    exp.scheduler.quantum_steps = quantum_steps;
    run_options b_opts;
    b_opts.output_dir = fmt::format("{}/b{}", dir, l);
    auto b = run_ok(exp, b_opts);
    REQUIRE(a.networks.size() == b.networks.size());
    for (size_t i = 0; i < a.networks.size(); ++i) {
      CAPTURE(i);
      CHECK(a.networks[i].test_loss == b.networks[i].test_loss);
      CHECK(a.networks[i].train_loss == b.networks[i].train_loss);
    }
    // Bit-identical weights.
    CHECK(test::stored_weights(dir + "/a") ==
          test::stored_weights(b_opts.output_dir));
  }
  // Different networks did get different weights.
  auto weights = test::stored_weights(dir + "/a");
  REQUIRE(weights.size() >= 2);
  CHECK(weights.begin()->second != std::next(weights.begin())->second);
}

TEST_CASE("results do not depend on the number of slots or the quantum") {
  temp_dir dir;
  auto exp = test::tiny_experiment(5, 3);
  exp.data.partition = partition_scheme::stratified;
  exp.base.train.fuse = train_options::fuse_off;
  // Quanta of 3 steps end mid-epoch.
  check_same_bits_on_any_slots(dir.path(), exp, {{3, 3}});
}

TEST_CASE("fused results do not depend on the slot count, the quantum or "
          "the groups") {
  // fuse = "auto" groups by the slot count: one group of 5 on 1 slot, groups
  // of 3 and 2 on 2 slots, of 2, 2 and 1 on 3; quanta of 2 or 3 steps end
  // mid-epoch. A member's bits do not
  // depend on its group, nor on members that leave it early.
  temp_dir dir;
  auto exp = test::tiny_experiment(5, 3);
  // Bootstrap samples: every network its own data, all of one size, so all
  // five share one fusion signature.
  exp.data.partition = partition_scheme::bootstrap;
  for (auto activation : {activation_kind::relu, activation_kind::sigmoid}) {
    CAPTURE(name_of(activation));
    exp.base.model.activation = activation;
    exp.name = fmt::format("fused-{}", name_of(activation));
    // Two configurations of one shape, fused together: the second's two
    // networks have another learning rate and leave after 2 epochs.
    auto longer = exp.base;
    longer.train.networks = 3;
    longer.label = "long";
    auto shorter = exp.base;
    shorter.train.networks = 2;
    shorter.train.epochs = 2;
    shorter.optimizer.lr = 0.05;
    shorter.label = "short";
    exp.variants = {longer, shorter};
    check_same_bits_on_any_slots(dir / name_of(activation), exp,
                                 {{2, 0}, {3, 0}, {2, 3}, {3, 2}});
  }
}

TEST_CASE("a run whose store writes more slowly than it trains waits for "
          "the store, with the same results") {
  temp_dir dir;
  auto exp = test::tiny_experiment(4, 3);
  // Checkpoints of 2.4 MB: each one alone is more than a limit of 1 MB, so
  // no quantum starts before the one before was written.
  exp.base.model.hidden = {768, 768};
  exp.output.unwritten_mb = 0;
  run_options free;
  free.output_dir = dir / "free";
  run_ok(exp, free);
  exp.output.unwritten_mb = 1;
  std::mutex mutex;
  std::vector<std::string> events;
  run_options held;
  held.output_dir = dir / "held";
  held.on_event = [&](const std::string& line) {
    std::lock_guard<std::mutex> guard{mutex};
    events.push_back(line);
  };
  auto result = run_ok(exp, held);
  CHECK(result.count(network_status::finished) == 4);
  CHECK(test::stored_weights(dir / "held") ==
        test::stored_weights(dir / "free"));
  std::string waited;
  for (const auto& e : events)
    if (e.find("the store wrote more slowly") != std::string::npos)
      waited = e;
  INFO(fmt::format("{}", fmt::join(events, "\n")));
  CHECK(waited.find("output.unwritten_mb = 1)") != std::string::npos);
  CHECK(waited.find("MB unwritten") != std::string::npos);
}

namespace {

/// The built-in learner, except that network 1's fifth step waits until
/// `go` is set: a learner that hangs, as a user's own may (for at most 30
/// s, so that a test whose run never says so fails instead of hanging).
class hanging_learner : public test::forwarding_learner {
public:
  hanging_learner(const learner_context& ctx, const std::atomic<bool>& go)
      : forwarding_learner(ctx, true), hangs_(ctx.spec.id == 1), go_(go) {}

  double train_step(const torch::Tensor& x, const torch::Tensor& y) override {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds{30};
    if (hangs_ && ++steps_ == 5)
      while (!go_.load() && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds{5});
    return forwarding_learner::train_step(x, y);
  }

private:
  bool hangs_;
  const std::atomic<bool>& go_;
  int steps_ = 0;
};

/// The last of `events` that contains `text` ("" when none does).
std::string last_with(const std::vector<std::string>& events,
                      const std::string& text) {
  for (auto e = events.rbegin(); e != events.rend(); ++e)
    if (e->find(text) != std::string::npos)
      return *e;
  return {};
}

} // namespace

TEST_CASE("a run whose quantum hangs says what it waits on, and finishes "
          "with the same results once it goes on") {
  temp_dir dir;
  auto exp = test::tiny_experiment(3, 2);
  exp.scheduler.slots = 2;
  exp.scheduler.stall_report_seconds = 0.5;
  std::atomic<bool> go{true};
  auto learners = [&](const learner_context& ctx) {
    return std::make_unique<hanging_learner>(ctx, go);
  };
  run_options free;
  free.output_dir = dir / "free";
  free.make_learner = learners;
  auto free_result = run_ok(exp, free);
  go = false;
  std::mutex mutex;
  std::vector<std::string> events;
  run_options hung;
  hung.output_dir = dir / "hung";
  hung.make_learner = learners;
  hung.progress_interval_seconds = 0.05;
  hung.on_event = [&](const std::string& line) {
    std::lock_guard<std::mutex> guard{mutex};
    events.push_back(line);
    // Told what it waits on, the user lets it go on.
    if (line.find("no quantum has started or ended") != std::string::npos)
      go = true;
  };
  auto result = run_ok(exp, hung);
  CHECK(result.count(network_status::finished) == 3);
  CHECK(test::stored_weights(dir / "hung") ==
        test::stored_weights(dir / "free"));
  INFO(fmt::format("{}", fmt::join(events, "\n")));
  REQUIRE(go.load());
  auto said = last_with(events, "no quantum has started or ended");
  // The other networks finished meanwhile: only the hung one is left, on
  // its slot since the report's wait began.
  CHECK(said.find("(scheduler.stall_report_seconds = 0.5): net-0001 has held "
                  "slot ") != std::string::npos);
  CHECK(said.find(" (cpu) for ") != std::string::npos);
  CHECK(said.find("wait") == std::string::npos);
  // The store keeps what it said, on the schedule's clock: the result, the
  // report and `actortrain results` show it after the run.
  CHECK(free_result.stalls.empty());
  REQUIRE_FALSE(result.stalls.empty());
  const auto& kept = result.stalls.back();
  CHECK(kept.report == said);
  CHECK_FALSE(kept.stopping);
  CHECK(kept.quiet_seconds >= 0.5);
  CHECK(kept.time >= kept.quiet_seconds);
  auto store = results_store::open(dir / "hung/results.db");
  REQUIRE(static_cast<bool>(store));
  auto stored = (*store)->stalls();
  REQUIRE(static_cast<bool>(stored));
  CHECK(stored->size() == result.stalls.size());
  // A resumed attempt's clock starts after it.
  auto clock = (*store)->schedule_seconds();
  REQUIRE(static_cast<bool>(clock));
  CHECK(*clock >= kept.time);
}

TEST_CASE("a run stopped while a quantum hangs says that it waits for it") {
  temp_dir dir;
  auto exp = test::tiny_experiment(3, 2);
  exp.scheduler.slots = 2;
  exp.scheduler.stall_report_seconds = 0.3;
  std::atomic<bool> go{false};
  std::mutex mutex;
  std::vector<std::string> events;
  run_options opts;
  opts.output_dir = dir / "out";
  opts.make_learner = [&](const learner_context& ctx) {
    return std::make_unique<hanging_learner>(ctx, go);
  };
  opts.progress_interval_seconds = 0.05;
  opts.stop = std::make_shared<std::atomic<bool>>(false);
  opts.on_event = [&, stop = opts.stop](const std::string& line) {
    std::lock_guard<std::mutex> guard{mutex};
    events.push_back(line);
    // Told the run is stuck, the user stops it; told it waits for the hung
    // quantum, the user lets that go on.
    if (line.find("no quantum has started or ended") == std::string::npos)
      return;
    if (line.find("is stopping") == std::string::npos)
      *stop = true;
    else
      go = true;
  };
  auto result = run(exp, opts);
  INFO(fmt::format("{}", fmt::join(events, "\n")));
  REQUIRE_FALSE(result);
  CHECK(is(result.error(), errc::run_aborted));
  REQUIRE(go.load());
  auto said = last_with(events, "is stopping");
  CHECK(said.find("(scheduler.stall_report_seconds = 0.3): net-0001 has held "
                  "slot ") != std::string::npos);
  CHECK(said.find("; the run is stopping and waits for its quanta in flight "
                  "to end") != std::string::npos);
  // Both reports are kept in the stopped run's store, the stopping one
  // last.
  auto store = results_store::open(dir / "out/results.db");
  REQUIRE(static_cast<bool>(store));
  auto stored = (*store)->stalls();
  REQUIRE(static_cast<bool>(stored));
  REQUIRE(stored->size() >= 2);
  CHECK_FALSE(stored->front().stopping);
  CHECK(stored->back().stopping);
  CHECK(stored->back().report == said);
}

TEST_CASE("1,000 tiny trainers in one process all finish") {
  temp_dir dir;
  auto exp = test::tiny_experiment(1000, 1);
  exp.data.samples = 64;
  exp.data.test_samples = 32;
  exp.base.model.hidden = {4};
  run_options opts;
  opts.output_dir = dir / "out";
  auto result = run_ok(exp, opts);
  CHECK(result.networks.size() == 1000);
  CHECK(result.count(network_status::finished) == 1000);
  CHECK(result.overall_ensemble()->networks == 1000);
}

TEST_CASE("a failing network is recorded with its reason, and the others "
          "finish") {
  temp_dir dir;
  auto exp = test::tiny_experiment(5, 2);
  run_options opts;
  opts.output_dir = dir / "out";
  opts.make_learner = [](const learner_context& ctx) {
    auto m = ctx.spec.id == 1   ? faulty_learner::throws
             : ctx.spec.id == 3 ? faulty_learner::nan_loss
                                : faulty_learner::none;
    return std::make_unique<faulty_learner>(ctx, m, 4);
  };
  auto result = run_ok(exp, opts);
  CHECK(result.count(network_status::finished) == 3);
  CHECK(result.count(network_status::failed) == 2);
  const auto& thrown = result.networks[1];
  CHECK(thrown.status == network_status::failed);
  CHECK(thrown.error.find("injected fault") != std::string::npos);
  CHECK(thrown.error.find("step 3") != std::string::npos);
  CHECK(thrown.weights_path.empty());
  const auto& nan = result.networks[3];
  CHECK(nan.status == network_status::failed);
  CHECK(nan.error.find("non-finite loss (nan) at epoch 1, step 4") !=
        std::string::npos);
  CHECK(result.overall_ensemble()->networks == 3);
  auto weights = test::stored_weights(dir / "out");
  CHECK(weights.size() == 3);
  for (auto i : {0, 2, 4})
    CHECK(weights.count(result.networks[static_cast<size_t>(i)].name + ".pt") ==
          1);
}

TEST_CASE("a learner factory that throws fails its network only") {
  temp_dir dir;
  auto exp = test::tiny_experiment(3, 1);
  run_options opts;
  opts.output_dir = dir / "out";
  opts.make_learner =
      [](const learner_context& ctx) -> std::unique_ptr<learner> {
    if (ctx.spec.id == 0)
      throw std::invalid_argument("bad architecture");
    return make_builtin_learner(ctx);
  };
  auto result = run_ok(exp, opts);
  CHECK(result.networks[0].status == network_status::failed);
  CHECK(result.networks[0].error.find("bad architecture") != std::string::npos);
  CHECK(result.count(network_status::finished) == 2);
}

TEST_CASE("regression runs report losses and no accuracy") {
  temp_dir dir;
  auto exp = test::tiny_experiment(3, 3);
  exp.data.task = task_kind::regression;
  exp.data.classes = 0;
  run_options opts;
  opts.output_dir = dir / "out";
  auto result = run_ok(exp, opts);
  CHECK(result.task == task_kind::regression);
  CHECK(result.count(network_status::finished) == 3);
  CHECK(std::isnan(result.networks[0].test_accuracy));
  auto* ens = result.overall_ensemble();
  REQUIRE(ens != nullptr);
  CHECK(std::isnan(ens->accuracy));
  CHECK(ens->loss < result.networks[0].test_loss * 1.5);
}

TEST_CASE("sweeps store one ensemble per configuration and one overall") {
  temp_dir dir;
  auto exp = test::tiny_experiment(2, 1);
  for (double lr : {0.1, 0.05}) {
    auto cfg = exp.base;
    cfg.optimizer.lr = lr;
    cfg.label = "lr=" + std::to_string(lr);
    exp.variants.push_back(cfg);
  }
  run_options opts;
  opts.output_dir = dir / "out";
  auto result = run_ok(exp, opts);
  CHECK(result.networks.size() == 4);
  REQUIRE(result.ensembles.size() == 3);
  CHECK(result.ensembles[0].group == -1);
  CHECK(result.ensembles[1].networks == 2);
  CHECK(result.networks[3].group == 1);
}

TEST_CASE("bad input is rejected before anything trains") {
  temp_dir dir;
  auto exp = test::tiny_experiment(2, 1);
  run_options opts;
  opts.output_dir = dir / "out";
  auto expect_error = [&](const experiment& e, const std::string& text) {
    auto result = run(e, opts);
    REQUIRE_FALSE(result);
    auto msg = to_string_pretty(result.error());
    CHECK_MESSAGE(msg.find(text) != std::string::npos, msg);
    CHECK_FALSE(fs::exists(dir / "out/results.db"));
  };
  SUBCASE("model input does not match the data") {
    exp.base.model.input = 784;
    expect_error(exp, "model.input = 784 does not match the data's 8 features");
  }
  SUBCASE("a CNN on tabular data") {
    exp.base.model.kind = model_kind::cnn;
    expect_error(exp, "needs image data");
  }
  SUBCASE("more shards than samples") {
    exp.data.samples = 4;
    exp.base.train.networks = 6;
    exp.data.partition = partition_scheme::contiguous;
    expect_error(exp, "leaves net-0000 without training samples");
  }
  SUBCASE("missing data file") {
    exp.data.format = data_format::csv;
    exp.data.train = dir / "missing.csv";
    expect_error(exp, dir / "missing.csv");
  }
}

TEST_CASE("an output folder that holds a run is never overwritten") {
  temp_dir dir;
  auto exp = test::tiny_experiment(2, 1);
  run_options opts;
  opts.output_dir = dir / "out";
  auto first = run_ok(exp, opts);
  // The same experiment again: everything is done, nothing is retrained.
  auto again = run_ok(exp, opts);
  CHECK(again.count(network_status::finished) == 2);
  CHECK(again.overall_ensemble()->accuracy ==
        doctest::Approx(first.overall_ensemble()->accuracy));
  // Another experiment is refused, and the stored run stays as it was.
  exp.base.optimizer.lr = 0.05;
  auto other = run(exp, opts);
  REQUIRE_FALSE(other);
  CHECK(to_string_pretty(other.error()).find("different experiment") !=
        std::string::npos);
  auto read = read_results(dir / "out");
  REQUIRE(read);
  CHECK(read->count(network_status::finished) == 2);
}

TEST_CASE("a finished run continues to a larger train.epochs with the bits of "
          "one longer run") {
  for (auto fuse : {train_options::fuse_off, train_options::fuse_auto}) {
    CAPTURE(fuse);
    temp_dir dir;
    auto exp = test::tiny_experiment(3, 2);
    exp.base.train.fuse = fuse;
    auto longer = exp;
    longer.base.train.epochs = 4;
    run_options ro;
    ro.output_dir = dir / "reference";
    auto reference = run_ok(longer, ro);
    ro.output_dir = dir / "out";
    run_ok(exp, ro);
    std::vector<std::string> events;
    ro.on_event = [&](const std::string& line) {
      events.push_back(line);
    };
    auto continued = run_ok(longer, ro);
    CHECK(continued.count(network_status::finished) == 3);
    for (const auto& n : continued.networks)
      CHECK(n.epochs == 4);
    CHECK(test::stored_weights(dir / "out") ==
          test::stored_weights(dir / "reference"));
    auto store = results_store::open((dir / "out") + "/results.db");
    auto ref_store = results_store::open((dir / "reference") + "/results.db");
    REQUIRE(store);
    REQUIRE(ref_store);
    for (uint64_t id = 0; id < 3; ++id) {
      auto got = (*store)->epochs(id);
      auto want = (*ref_store)->epochs(id);
      REQUIRE(static_cast<bool>(got));
      REQUIRE(static_cast<bool>(want));
      REQUIRE(got->size() == 4);
      REQUIRE(want->size() == 4);
      for (size_t e = 0; e < 4; ++e) {
        CHECK((*got)[e].epoch == static_cast<int64_t>(e + 1));
        CHECK((*got)[e].train_loss == (*want)[e].train_loss);
        CHECK((*got)[e].test_accuracy == (*want)[e].test_accuracy);
      }
    }
    CHECK(continued.overall_ensemble()->accuracy ==
          reference.overall_ensemble()->accuracy);
    auto recorded = (*store)->continuations();
    REQUIRE(static_cast<bool>(recorded));
    REQUIRE(recorded->size() == 1);
    CHECK(recorded->front().find("'all' 2 -> 4") != std::string::npos);
    REQUIRE(events.size() == 1);
    CHECK(events.front().find("3 finished networks continue") !=
          std::string::npos);
    // Again with the same budget: nothing to continue, nothing retrained.
    auto again = run_ok(longer, ro);
    CHECK(again.count(network_status::finished) == 3);
    CHECK(test::stored_weights(dir / "out") ==
          test::stored_weights(dir / "reference"));
  }
}

TEST_CASE("a finished run refuses any other change, naming the keys") {
  temp_dir dir;
  auto exp = test::tiny_experiment(2, 2);
  run_options ro;
  ro.output_dir = dir / "out";
  run_ok(exp, ro);
  auto changed = exp;
  changed.base.train.epochs = 4;
  changed.base.optimizer.lr = 0.05;
  changed.base.model.hidden = {8};
  auto refused = run(changed, ro);
  REQUIRE_FALSE(refused);
  auto message = to_string_pretty(refused.error());
  CHECK(message.find("holds a run of a different experiment") !=
        std::string::npos);
  CHECK(message.find("optimizer.lr 0.1 -> 0.05") != std::string::npos);
  CHECK(message.find("model.hidden [16] -> [8]") != std::string::npos);
  auto smaller = exp;
  smaller.base.train.epochs = 1;
  auto down = run(smaller, ro);
  REQUIRE_FALSE(down);
  CHECK(to_string_pretty(down.error()).find("went down from 2 to 1") !=
        std::string::npos);
  // The stored run is as it was.
  auto read = read_results(dir / "out");
  REQUIRE(read);
  CHECK(read->count(network_status::finished) == 2);
  for (const auto& n : read->networks)
    CHECK(n.epochs == 2);

  // A run that kept no final states cannot continue, and says why.
  auto lean = exp;
  lean.output.final_state = false;
  run_options lean_opts;
  lean_opts.output_dir = dir / "lean";
  run_ok(lean, lean_opts);
  auto store = results_store::open((dir / "lean") + "/results.db");
  REQUIRE(store);
  for (uint64_t id = 0; id < 2; ++id) {
    auto kept = (*store)->checkpoints(id);
    REQUIRE(static_cast<bool>(kept));
    CHECK(kept->empty());
  }
  store->reset();
  auto lean_longer = lean;
  lean_longer.base.train.epochs = 4;
  auto no_state = run(lean_longer, lean_opts);
  REQUIRE_FALSE(no_state);
  CHECK(to_string_pretty(no_state.error()).find("kept no intact final state") !=
        std::string::npos);
}
