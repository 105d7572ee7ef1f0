// Nothing lost: checkpoints, resume after SIGKILL and SIGINT, retries, and
// corrupt checkpoints. Real `actortrain run` processes, on synthetic data.

#include <doctest/doctest.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <mutex>
#include <random>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sqlite3.h>

#include "actors/aggregator.hpp"
#include "actortrain/error.hpp"
#include "actortrain/learner.hpp"
#include "actortrain/run.hpp"
#include "actortrain/session.hpp"
#include "actortrain/store.hpp"
#include "protocol/interfaces.hpp"
#include "protocol/type_ids.hpp"
#include "scripted_models.hpp"
#include "setup/run_context.hpp"
#include "store/atomic_files.hpp"
#include "test_support.hpp"

using namespace actortrain;
using namespace std::chrono_literals;
using actortrain::test::count_in_store;
using actortrain::test::file_bytes;
using actortrain::test::temp_dir;
namespace fs = std::filesystem;

namespace {

constexpr const char* resumable_toml = R"(name = "resumable"
[data]
format = "synthetic"
samples = 4096
test_samples = 256
features = 16
classes = 4
[model]
hidden = [128, 64]
[optimizer]
kind = "adam"
lr = 0.003
[train]
networks = 6
epochs = 8
batch_size = 32
seed = 5
[scheduler]
slots = 2
policy = "round_robin"
)";

/// Starts `program` in the background, with `env` added to its
/// environment; returns its pid.
pid_t start_program(
    std::string program, const std::vector<std::string>& args,
    const std::string& log,
    const std::vector<std::pair<std::string, std::string>>& env = {}) {
  auto pid = fork();
  if (pid == 0) {
    for (const auto& [key, value] : env)
      ::setenv(key.c_str(), value.c_str(), 1);
    auto fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv;
    argv.push_back(program.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

/// Starts the app in the background; see start_program.
pid_t start_app(
    const std::vector<std::string>& args, const std::string& log,
    const std::vector<std::pair<std::string, std::string>>& env = {}) {
  return start_program(test::app(), args, log, env);
}

int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

/// Waits (10 s at most) until the run in folder `out` recorded a checkpoint
/// (a file or a row of its store).
bool wait_for_checkpoint(const std::string& out) {
  for (int i = 0; i < 2000; ++i) {
    if (count_in_store(out, "SELECT count(*) FROM checkpoints") > 0)
      return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

/// Counts the networks that have two checkpoints.
constexpr const char* two_checkpoints =
    "SELECT count(*) FROM (SELECT network_id FROM checkpoints GROUP BY "
    "network_id HAVING count(*) = 2)";

/// `toml` with its output kept as `layout` ("database" or "files").
std::string with_layout(const std::string& toml, const std::string& layout) {
  return toml + "[output]\nlayout = \"" + layout + "\"\n";
}

/// What the store in the run folder `out` holds.
run_result stored_result(const std::string& out) {
  auto store = results_store::open(out + "/results.db");
  REQUIRE(store);
  auto result = (*store)->read();
  REQUIRE_MESSAGE(result, to_string_pretty(result.error()));
  return *result;
}

/// The schedule the run in `out` recorded.
std::vector<grant_record> stored_grants(const std::string& out) {
  auto store = results_store::open(out + "/results.db");
  REQUIRE(store);
  auto grants = (*store)->grants();
  REQUIRE_MESSAGE(static_cast<bool>(grants), to_string_pretty(grants.error()));
  return *grants;
}

/// Checks that the attempt after the first `before` grants of `grants`
/// started where the attempts before stopped, and that no slot was busy for
/// more than its schedule's span.
void check_attempts_follow(const std::vector<grant_record>& grants,
                           size_t before, const run_result& result) {
  REQUIRE(before > 0);
  REQUIRE(grants.size() > before);
  double stopped = 0;
  for (size_t i = 0; i < before; ++i)
    stopped = std::max(stopped, grants[i].end);
  for (size_t i = before; i < grants.size(); ++i) {
    CAPTURE(i);
    CHECK(grants[i].start >= stopped);
  }
  REQUIRE_FALSE(result.slots.empty());
  for (const auto& u : result.slots) {
    CAPTURE(u.slot);
    CHECK(u.busy_fraction <= 1.0 + 1e-9);
  }
}

/// Checks that the run in `out` ended finished, with `expected`'s weights
/// bit for bit; returns what its store holds.
run_result
check_finished_as(const std::string& out,
                  const std::map<std::string, std::vector<char>>& expected,
                  const char* after) {
  auto got = test::stored_weights(out);
  REQUIRE(got.size() == expected.size());
  for (auto& [name, bytes] : expected)
    CHECK_MESSAGE(got[name] == bytes, name, " differs after ", after);
  auto result = stored_result(out);
  CHECK(result.count(network_status::finished) == 6);
  CHECK(result.status == "finished");
  return result;
}

/// An uninterrupted run of `toml`, to compare against.
std::map<std::string, std::vector<char>> reference(const temp_dir& dir) {
  auto res = test::run_process(fmt::format("{} run {} --output {} --quiet",
                                           test::app(), dir / "exp.toml",
                                           dir / "reference"));
  REQUIRE_MESSAGE(res.exit_code == 0, res.output);
  return test::stored_weights(dir / "reference");
}

/// Interrupts a run of resumable_toml (fused: fuse = "auto") with `signal`
/// and resumes it; the weights must be those of an uninterrupted run. The
/// interrupted run uses `slots` slots and the resumed one `resume_slots`
/// (0: the experiment's 2), so fused groups may differ between the runs.
void interrupt_and_resume(int signal, bool corrupt_newest, bool twice = false,
                          int slots = 0, int resume_slots = 0,
                          const std::string& layout = "database",
                          const std::string& toml = resumable_toml) {
  auto slot_args = [](int n) {
    return n > 0 ? std::vector<std::string>{"--slots", std::to_string(n)}
                 : std::vector<std::string>{};
  };
  temp_dir dir;
  test::write_text(dir / "exp.toml", with_layout(toml, layout));
  if (toml.find("mlp.pt") != std::string::npos)
    test::write_scripted_mlp(dir / "mlp.pt", {{16, 128, 64, 4}, 0.1});
  auto expected = reference(dir);
  REQUIRE(expected.size() == 6);
  auto out = dir / "out";
  std::vector<std::string> first{"run", dir / "exp.toml", "--output", out,
                                 "--quiet"};
  for (auto& a : slot_args(slots))
    first.push_back(a);
  auto pid = start_app(first, dir / "first.log");
  REQUIRE(wait_for_checkpoint(out));
  if (corrupt_newest) // a network must have two, the newest to be damaged
    for (int i = 0; i < 2000 && count_in_store(out, two_checkpoints) == 0; ++i)
      std::this_thread::sleep_for(5ms);
  ::kill(pid, signal);
  if (twice) {
    std::this_thread::sleep_for(20ms); // let the first signal be seen alone
    ::kill(pid, signal);
  }
  auto code = wait_exit(pid);
  if (signal == SIGKILL)
    CHECK(code == 128 + SIGKILL);
  else if (twice)
    CHECK_MESSAGE((code == 130 || code == 5 || code == 0), "exit code ", code);
  else
    CHECK_MESSAGE((code == 5 || code == 0), "exit code ", code);
  if (code == 5) {
    // A graceful stop closes the store as interrupted.
    auto stopped = test::run_process(
        fmt::format("{} results {} --format json", test::app(), out));
    CHECK(stopped.output.find("\"status\": \"interrupted\"") !=
          std::string::npos);
  }
  if (corrupt_newest && layout == "database") {
    // The same inside the store: the newest of two loses half its bytes.
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open((out + "/results.db").c_str(), &db) == SQLITE_OK);
    char* error = nullptr;
    auto rc = sqlite3_exec(
        db,
        "UPDATE stored_checkpoints SET data = substr(data, 1, length(data) / "
        "2) WHERE (network_id, step) IN (SELECT network_id, max(step) FROM "
        "stored_checkpoints GROUP BY network_id HAVING count(*) = 2)",
        nullptr, nullptr, &error);
    CHECK_MESSAGE(rc == SQLITE_OK, (error ? error : ""));
    CHECK(sqlite3_changes(db) > 0);
    sqlite3_free(error);
    sqlite3_close(db);
  } else if (corrupt_newest) {
    // Truncate the newest checkpoint of every network that has two: the
    // previous one must be used instead.
    std::map<std::string, std::vector<fs::path>> by_network;
    int truncated = 0;
    for (auto& e : fs::directory_iterator(out + "/checkpoints"))
      if (e.path().extension() == ".ckpt")
        by_network[e.path().stem().string().substr(0, 8)].push_back(e.path());
    for (auto& [net, paths] : by_network) {
      if (paths.size() < 2)
        continue;
      auto newest = *std::max_element(
          paths.begin(), paths.end(), [](const fs::path& a, const fs::path& b) {
            auto step = [](const fs::path& p) {
              auto s = p.stem().string();
              return std::stoll(s.substr(s.find("step") + 4));
            };
            return step(a) < step(b);
          });
      fs::resize_file(newest, fs::file_size(newest) / 2);
      ++truncated;
    }
    CHECK(truncated > 0);
  }
  // A graceful stop records its schedule; after SIGKILL it may have none.
  auto before = stored_grants(out).size();
  auto again = test::run_process(fmt::format(
      "{} run {} --output {} --quiet {}", test::app(), dir / "exp.toml", out,
      fmt::join(slot_args(resume_slots), " ")));
  REQUIRE_MESSAGE(again.exit_code == 0, again.output);
  auto resumed = check_finished_as(out, expected, "resuming");
  CHECK(resumed.resumes == 1);
  if (code == 5)
    check_attempts_follow(stored_grants(out), before, resumed);
}

} // namespace

TEST_CASE("a run killed with SIGKILL resumes to bit-identical weights") {
  interrupt_and_resume(SIGKILL, false);
}

TEST_CASE("a fused run killed on 1 slot resumes on 3 to bit-identical "
          "weights") {
  // One fused group of 6 before the kill, groups of 2 after it; the
  // reference ran groups of 3.
  interrupt_and_resume(SIGKILL, false, false, 1, 3);
}

TEST_CASE("a run of replicated networks killed on 2 slots resumes on 3 to "
          "bit-identical weights") {
  // Each network on 2 slots at a time (synchronous replicas): their
  // checkpoints are the network's own, whichever slots held the replicas.
  std::string toml = resumable_toml;
  toml.replace(toml.find("seed = 5"), 8, "seed = 5\nreplicas = 2");
  interrupt_and_resume(SIGKILL, false, false, 2, 3, "database", toml);
}

TEST_CASE("a TorchScript run (with dropout) killed with SIGKILL resumes to "
          "bit-identical weights") {
  std::string toml = resumable_toml;
  toml.replace(toml.find("hidden = [128, 64]"), 18,
               "kind = \"torchscript\"\npath = \"mlp.pt\"");
  interrupt_and_resume(SIGKILL, false, false, 0, 3, "database", toml);
}

namespace {

/// Deterministic ASHA with promotion over nine learning rates: 9 networks
/// wait at rung 1, 3 go on to rung 3, 1 trains its 9 epochs.
constexpr const char* asha_toml = R"(name = "asha-resume"
[data]
format = "synthetic"
samples = 16384
test_samples = 256
features = 16
classes = 4
partition = "bootstrap"
[model]
hidden = [128, 64]
[optimizer]
kind = "adam"
lr = 0.003
[train]
networks = 1
epochs = 9
batch_size = 32
seed = 5
validation_fraction = 0.25
[scheduler]
slots = 2
search = "asha"
asha_mode = "promotion"
deterministic = true
[sweep]
"optimizer.lr" = [0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001, 3e-5, 1e-5, 3e-6]
)";

/// Runs the experiment `toml` uninterrupted, then killed with SIGKILL once
/// `epochs` holds each count of stored epochs in turn (each kill resumes the
/// run before), then to its end: the search must have replayed, and the
/// weights and decisions must be the uninterrupted run's. `decisions_ok`
/// checks the reference's decisions, `store_ok` the store before the last
/// resume.
void killed_search_resumes(
    const std::string& toml, const std::vector<int>& epochs,
    const std::function<void(const std::vector<std::string>&)>& decisions_ok,
    const std::function<void(const std::string&)>& store_ok) {
  temp_dir dir;
  test::write_text(dir / "exp.toml", toml);
  auto expected = reference(dir);
  auto expected_decisions = test::stored_decisions(dir / "reference");
  decisions_ok(expected_decisions);
  auto out = dir / "out";
  for (int kill_after : epochs) {
    CAPTURE(kill_after);
    auto pid = start_app({"run", dir / "exp.toml", "--output", out, "--quiet"},
                         dir / fmt::format("run-{}.log", kill_after));
    for (int i = 0; i < 12000; ++i) {
      if (count_in_store(out, "SELECT count(*) FROM epoch_metrics") >=
          kill_after)
        break;
      std::this_thread::sleep_for(5ms);
    }
    ::kill(pid, SIGKILL);
    REQUIRE(wait_exit(pid) == 128 + SIGKILL);
  }
  store_ok(out);
  auto again = test::run_process(
      fmt::format("{} run {} --output {}", test::app(), dir / "exp.toml", out));
  REQUIRE_MESSAGE(again.exit_code == 0, again.output);
  CHECK(again.output.find("the search replays the epochs of") !=
        std::string::npos);
  auto got = test::stored_weights(out);
  REQUIRE(got.size() == expected.size());
  for (auto& [name, bytes] : expected)
    CHECK_MESSAGE(got[name] == bytes, name, " differs after resuming");
  CHECK(test::stored_decisions(out) == expected_decisions);
}

} // namespace

TEST_CASE("deterministic ASHA killed with SIGKILL resumes with the decisions "
          "and weights of an uninterrupted run") {
  // Killed past rung 1's barrier (11 epochs stored), then again past rung
  // 3's: the second resume replays a resumed run's store.
  killed_search_resumes(
      asha_toml, {11, 16},
      [](const std::vector<std::string>& ds) {
        REQUIRE(ds.size() >= 9 + 3 + 3 + 1);
      },
      [](const std::string&) {});
}

TEST_CASE("deterministic PBT killed with SIGKILL resumes with the copies, "
          "decisions and weights of an uninterrupted run") {
  // Nine learning rates, 8 epochs, a copy round every 2: the bottom 3 copy
  // one of the top 3 at epochs 2, 4 and 6. The donors' states at those
  // epochs are in the store, so a copy due when the run died is made again.
  std::string toml = asha_toml;
  auto edit = [&](const std::string& from, const std::string& to) {
    toml.replace(toml.find(from), from.size(), to);
  };
  edit("samples = 16384", "samples = 4096");
  edit("epochs = 9", "epochs = 8");
  edit("search = \"asha\"\nasha_mode = \"promotion\"",
       "search = \"pbt\"\ninterval_epochs = 2");
  // Killed past the first copy round (18 epochs at 2), then past the
  // second (36 at 4).
  killed_search_resumes(
      toml, {20, 41},
      [](const std::vector<std::string>& ds) {
        REQUIRE(std::count_if(ds.begin(), ds.end(), [](const std::string& d) {
                  return d.find("exploit") != std::string::npos;
                }) == 9);
      },
      [](const std::string& out) {
        CHECK(count_in_store(out, "SELECT count(*) FROM kept_states") > 0);
      });
}

TEST_CASE("a run stopped with SIGINT resumes to bit-identical weights") {
  interrupt_and_resume(SIGINT, false);
}

TEST_CASE("SIGINT ends the quanta in flight at their next step: a run of "
          "whole-budget quanta stops mid-quantum and resumes to bit-identical "
          "weights") {
  // Each network's one quantum is its whole budget (8,192 steps, seconds of
  // compute): a stop that waited for it would find both finished.
  temp_dir dir;
  std::string toml = resumable_toml;
  toml.replace(toml.find("samples = 4096"), 14, "samples = 32768");
  toml.replace(toml.find("hidden = [128, 64]"), 18, "hidden = [256, 256]");
  toml.replace(toml.find("networks = 6"), 12, "networks = 2");
  toml += "quantum_epochs = 8\n";
  test::write_text(dir / "exp.toml", toml);
  auto expected = reference(dir);
  REQUIRE(expected.size() == 2);
  auto out = dir / "out";
  auto pid = start_app({"run", dir / "exp.toml", "--output", out, "--quiet"},
                       dir / "first.log");
  // Training has begun once the process has used more CPU than setting up
  // takes; both quanta are then well short of their end.
  for (int i = 0; i < 3000 && test::cpu_seconds_of(pid) < 1.5; ++i)
    std::this_thread::sleep_for(10ms);
  ::kill(pid, SIGINT);
  CHECK(wait_exit(pid) == 5);
  // Each network stopped after some of its steps, with a checkpoint there.
  CHECK(count_in_store(out, "SELECT count(DISTINCT network_id) FROM "
                            "checkpoints WHERE step > 0 AND step < 8192") == 2);
  CHECK(count_in_store(out, "SELECT count(*) FROM networks WHERE status = "
                            "'finished'") == 0);
  auto resumed = test::run_process(fmt::format(
      "{} run {} --output {} --quiet", test::app(), dir / "exp.toml", out));
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  CHECK(test::stored_weights(out) == expected);
}

TEST_CASE("a second SIGINT exits at once and the run still resumes") {
  interrupt_and_resume(SIGINT, false, true);
}

TEST_CASE("a truncated checkpoint is detected and the previous one used") {
  SUBCASE("in the store") {
    interrupt_and_resume(SIGKILL, true);
  }
  SUBCASE("as a file (output.layout = files)") {
    interrupt_and_resume(SIGKILL, true, false, 0, 0, "files");
  }
}

TEST_CASE("resuming with a changed experiment is refused") {
  temp_dir dir;
  test::write_text(dir / "exp.toml", resumable_toml);
  auto out = dir / "out";
  // An unfinished run: killed once its first checkpoint is written.
  auto pid = start_app({"run", dir / "exp.toml", "--output", out, "--quiet"},
                       dir / "first.log");
  REQUIRE(wait_for_checkpoint(out));
  ::kill(pid, SIGKILL);
  REQUIRE(wait_exit(pid) == 128 + SIGKILL);
  auto resume_with = [&](const std::string& from, const std::string& to) {
    std::string changed = resumable_toml;
    changed.replace(changed.find(from), from.size(), to);
    test::write_text(dir / "exp.toml", changed);
    return test::run_process(fmt::format("{} run {} --output {} --quiet",
                                         test::app(), dir / "exp.toml", out));
  };
  // Keys that change a network's numbers: the learning rate, fusion (fused
  // and unfused steps round differently) and the threads a slot's
  // operations split into (so do 1 and 2 threads).
  for (auto [from, to] :
       {std::pair{"lr = 0.003", "lr = 0.01"},
        std::pair{"seed = 5", "seed = 5\nfuse = \"off\""},
        std::pair{"slots = 2", "slots = 2\nthreads_per_slot = 2"}}) {
    CAPTURE(to);
    auto again = resume_with(from, to);
    CHECK(again.exit_code == 3);
    CHECK(again.output.find("holds a run of a different experiment") !=
          std::string::npos);
  }
  // Scheduling settings do not change results: resuming with them is fine,
  // and the run finishes.
  auto resumed = resume_with("slots = 2", "slots = 1");
  CHECK_MESSAGE(resumed.exit_code == 0, resumed.output);
  auto store = results_store::open(out + "/results.db");
  REQUIRE(store);
  auto result = (*store)->read();
  REQUIRE(result);
  CHECK(result->count(network_status::finished) == 6);
  CHECK(result->resumes == 1);
}

namespace {

/// The built-in learner (checkpointing); throws once, at `at_step`, in the
/// first learner built for network 1 (a transient fault), or every time.
class flaky_learner : public test::forwarding_learner {
public:
  flaky_learner(const learner_context& ctx, bool fail, int at_step)
      : forwarding_learner(ctx, true), fail_(fail), at_step_(at_step) {}
  double train_step(const torch::Tensor& x, const torch::Tensor& y) override {
    if (fail_ && ++steps_ == at_step_)
      throw std::runtime_error("transient fault");
    return forwarding_learner::train_step(x, y);
  }

private:
  bool fail_;
  int at_step_;
  int steps_ = 0;
};

run_result run_with(const experiment& exp, const std::string& out,
                    learner_factory factory) {
  run_options opts;
  opts.output_dir = out;
  opts.make_learner = std::move(factory);
  auto result = run(exp, opts);
  REQUIRE_MESSAGE(result, to_string_pretty(result.error()));
  return *result;
}

} // namespace

TEST_CASE("a transient fault is retried from the last checkpoint and leaves "
          "no trace in the weights") {
  temp_dir dir;
  auto exp = test::tiny_experiment(3, 4); // 8 steps per epoch
  auto clean = run_with(exp, dir / "clean", [](const learner_context& ctx) {
    return std::make_unique<flaky_learner>(ctx, false, 0);
  });
  auto builds = std::make_shared<std::map<uint64_t, int>>();
  auto mtx = std::make_shared<std::mutex>();
  auto flaky = run_with(exp, dir / "flaky", [=](const learner_context& ctx) {
    std::lock_guard<std::mutex> guard{*mtx};
    // Network 1's first learner fails in its second epoch.
    bool fail = ctx.spec.id == 1 && (*builds)[ctx.spec.id]++ == 0;
    return std::make_unique<flaky_learner>(ctx, fail, 12);
  });
  REQUIRE(flaky.count(network_status::finished) == 3);
  for (size_t i = 0; i < 3; ++i) {
    std::ifstream a{clean.networks[i].weights_path, std::ios::binary};
    std::ifstream b{flaky.networks[i].weights_path, std::ios::binary};
    std::vector<char> x{std::istreambuf_iterator<char>{a}, {}};
    std::vector<char> y{std::istreambuf_iterator<char>{b}, {}};
    CHECK(x == y);
  }
  // The failure and its retry are on record.
  auto store = results_store::open(dir / "flaky/results.db");
  REQUIRE(store);
  CHECK((*builds)[1] == 2);
}

TEST_CASE("a network that always fails ends failed after max_retries") {
  temp_dir dir;
  auto exp = test::tiny_experiment(2, 3);
  exp.base.train.max_retries = 2;
  auto builds = std::make_shared<std::map<uint64_t, int>>();
  auto mtx = std::make_shared<std::mutex>();
  auto result = run_with(exp, dir / "out", [=](const learner_context& ctx) {
    std::lock_guard<std::mutex> guard{*mtx};
    ++(*builds)[ctx.spec.id];
    return std::make_unique<flaky_learner>(ctx, ctx.spec.id == 0, 3);
  });
  CHECK(result.networks[0].status == network_status::failed);
  CHECK(result.networks[0].error.find("transient fault") != std::string::npos);
  CHECK(result.networks[0].error.find("after 2 retries") != std::string::npos);
  CHECK((*builds)[0] == 3); // the first try and two retries
  CHECK(result.networks[1].status == network_status::finished);
}

TEST_CASE("a folder in use by a running run is refused") {
  temp_dir dir;
  // Long enough that the first run is still going when the second starts.
  std::string toml = resumable_toml;
  toml.replace(toml.find("epochs = 8"), 10, "epochs = 500");
  test::write_text(dir / "exp.toml", toml);
  auto out = dir / "out";
  auto pid = start_app({"run", dir / "exp.toml", "--output", out, "--quiet"},
                       dir / "first.log");
  REQUIRE(wait_for_checkpoint(out));
  auto second = test::run_process(fmt::format(
      "{} run {} --output {} --quiet", test::app(), dir / "exp.toml", out));
  ::kill(pid, SIGKILL);
  wait_exit(pid);
  CHECK(second.exit_code == 4);
  CHECK(second.output.find("is in use by another actortrain run") !=
        std::string::npos);
}

TEST_CASE("an empty results.db (a crash before the first commit) starts the "
          "run afresh") {
  temp_dir dir;
  test::write_text(dir / "exp.toml", resumable_toml);
  auto out = dir / "out";
  fs::create_directories(out);
  SUBCASE("zero bytes") {
    test::write_text(out + "/results.db", "");
  }
  SUBCASE("a database with no run in it (killed while it was created)") {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open((out + "/results.db").c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE t (x);",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  auto res = test::run_process(fmt::format("{} run {} --output {} --quiet",
                                           test::app(), dir / "exp.toml", out));
  CHECK_MESSAGE(res.exit_code == 0, res.output);
  // The same bits as a run in a fresh folder.
  auto expected = reference(dir);
  auto got = test::stored_weights(out);
  REQUIRE(got.size() == expected.size());
  for (auto& [name, bytes] : expected) {
    CAPTURE(name);
    CHECK(got[name] == bytes);
  }
}

TEST_CASE("retries can lower the learning rate until training is stable") {
  temp_dir dir;
  auto exp = test::tiny_experiment(2, 3);
  exp.base.optimizer.lr = 1e30; // diverges at once
  exp.base.train.max_retries = 1;
  exp.base.train.retry_lr_factor = 1e-31; // the retry trains at 0.1
  run_options opts;
  opts.output_dir = dir / "out";
  auto result = run(exp, opts);
  REQUIRE_MESSAGE(result, to_string_pretty(result.error()));
  for (const auto& n : result->networks) {
    CHECK(n.status == network_status::finished);
    CHECK(n.test_accuracy > 0.5);
  }
  // Without the lower rate, the same networks fail.
  exp.base.train.retry_lr_factor = 1;
  opts.output_dir = dir / "plain";
  auto plain = run(exp, opts);
  REQUIRE(plain);
  CHECK(plain->count(network_status::failed) == 2);
  CHECK(plain->networks[0].error.find("non-finite loss") != std::string::npos);
}

TEST_CASE("files written together: each whole, one failing names its path") {
  temp_dir dir;
  std::vector<char> a(1000, 'a');
  std::vector<char> b(3, 'b');
  auto errors = write_files_atomically(
      {{dir / "a.bin", &a}, {dir / "missing/b.bin", &b}, {dir / "c.bin", &b}});
  REQUIRE(errors.size() == 3);
  CHECK_FALSE(errors[0]);
  CHECK_FALSE(errors[2]);
  REQUIRE(errors[1]);
  CHECK(to_string_pretty(errors[1]).find("missing/b.bin") != std::string::npos);
  std::ifstream in{dir / "a.bin", std::ios::binary};
  CHECK(std::vector<char>{std::istreambuf_iterator<char>{in}, {}} == a);
  CHECK(fs::file_size(dir / "c.bin") == 3);
  // No temporary files are left behind.
  for (auto& e : fs::directory_iterator(dir.path()))
    CHECK(e.path().extension() != ".tmp");
}

namespace {

/// Every finished network's test predictions in the run folder `out`, by
/// network name, read through its store.
std::map<std::string, std::vector<char>>
stored_predictions(const std::string& out) {
  auto store = results_store::open(out + "/results.db");
  REQUIRE(store);
  std::map<std::string, std::vector<char>> result;
  for (uint64_t id = 0; id < 6; ++id) {
    auto bytes = (*store)->file_bytes(id, file_kind::predictions);
    REQUIRE_MESSAGE(bytes, to_string_pretty(bytes.error()));
    result[fmt::format("net-{:04}", id)] = std::move(*bytes);
  }
  return result;
}

/// Runs `sql` on the store of the run folder `out`; checks it changed a row.
void change_store(const std::string& out, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((out + "/results.db").c_str(), &db) == SQLITE_OK);
  char* error = nullptr;
  auto rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  CHECK_MESSAGE(rc == SQLITE_OK, (error ? error : ""));
  CHECK(sqlite3_changes(db) == 1);
  sqlite3_free(error);
  sqlite3_close(db);
}

/// A garbled prediction (same size), lost weights, lost predictions,
/// truncated weights of a finished run in `out`; net-0000 and net-0005
/// stay. Returns what the resumed run must say about each damaged network.
std::vector<std::pair<std::string, std::string>>
damage_finished_files(const std::string& out, const std::string& layout) {
  if (layout == "database") {
    change_store(out, "UPDATE stored_files SET data = zeroblob(length(data)) "
                      "WHERE network_id = 1 AND kind = 'predictions'");
    change_store(out, "DELETE FROM stored_files WHERE network_id = 2 AND "
                      "kind = 'weights'");
    change_store(out, "DELETE FROM stored_files WHERE network_id = 3 AND "
                      "kind = 'predictions'");
    change_store(out, "UPDATE stored_files SET data = substr(data, 1, "
                      "length(data) / 2) WHERE network_id = 4 AND kind = "
                      "'weights'");
    return {{"net-0001", "the predictions of net-0001 in "},
            {"net-0002", "the weights of net-0002 in "},
            {"net-0003", "the predictions of net-0003 in "},
            {"net-0004", "the weights of net-0004 in "}};
  }
  auto garbled = file_bytes(out + "/weights/net-0001.predictions");
  for (size_t i = 0; i < garbled.size(); i += 7)
    garbled[i] = static_cast<char>(garbled[i] ^ 0x5a);
  {
    std::ofstream f{out + "/weights/net-0001.predictions", std::ios::binary};
    f.write(garbled.data(), static_cast<std::streamsize>(garbled.size()));
  }
  fs::remove(out + "/weights/net-0002.pt");
  fs::remove(out + "/weights/net-0003.predictions");
  fs::resize_file(out + "/weights/net-0004.pt",
                  fs::file_size(out + "/weights/net-0004.pt") / 2);
  return {{"net-0001", "net-0001.predictions is damaged"},
          {"net-0002", "net-0002.pt is missing"},
          {"net-0003", "net-0003.predictions is missing"},
          {"net-0004", "net-0004.pt has "}};
}

void check_damaged_files_trained_again(const std::string& layout) {
  temp_dir dir;
  test::write_text(dir / "exp.toml", with_layout(resumable_toml, layout));
  auto expected = reference(dir);
  auto out = dir / "reference";
  auto before = stored_result(out);
  auto predictions = stored_predictions(out);
  auto damage = damage_finished_files(out, layout);
  auto again = [&] {
    return test::run_process(fmt::format("{} run {} --output {} --quiet",
                                         test::app(), dir / "exp.toml", out));
  };
  auto res = again();
  REQUIRE_MESSAGE(res.exit_code == 0, res.output);
  INFO(res.output);
  for (const auto& [name, what] : damage) {
    CAPTURE(name);
    CHECK(res.output.find(what) != std::string::npos);
    CHECK(res.output.find(fmt::format("{} finished before, but", name)) !=
          std::string::npos);
  }
  for (const auto* kept : {"net-0000", "net-0005"})
    CHECK(res.output.find(fmt::format("{} finished before", kept)) ==
          std::string::npos);
  // Everything as the uninterrupted run left it: files, metrics, ensemble.
  auto got = test::stored_weights(out);
  REQUIRE(got.size() == expected.size());
  for (auto& [name, bytes] : expected) {
    CAPTURE(name);
    CHECK(got[name] == bytes);
  }
  CHECK(stored_predictions(out) == predictions);
  auto after = stored_result(out);
  REQUIRE(after.ensembles.size() == before.ensembles.size());
  for (size_t i = 0; i < after.ensembles.size(); ++i) {
    CHECK(after.ensembles[i].accuracy == before.ensembles[i].accuracy);
    CHECK(after.ensembles[i].loss == before.ensembles[i].loss);
  }
  REQUIRE(after.networks.size() == before.networks.size());
  for (size_t i = 0; i < after.networks.size(); ++i) {
    CAPTURE(after.networks[i].name);
    CHECK(after.networks[i].status == network_status::finished);
    CHECK(after.networks[i].test_accuracy == before.networks[i].test_accuracy);
    CHECK(after.networks[i].epochs == before.networks[i].epochs);
    auto epochs = results_store::open(out + "/results.db");
    REQUIRE(epochs);
    CHECK((*epochs)->epochs(after.networks[i].id)->size() == 8);
  }
  // Now intact: a further run reuses everything.
  res = again();
  CHECK_MESSAGE(res.exit_code == 0, res.output);
  CHECK(res.output.find("finished before") == std::string::npos);
}

} // namespace

TEST_CASE("finished networks' damaged or lost files are found on resume and "
          "trained again to the same bits") {
  SUBCASE("kept in the store") {
    check_damaged_files_trained_again("database");
  }
  SUBCASE("kept as files (output.layout = files)") {
    check_damaged_files_trained_again("files");
  }
}

TEST_CASE("a run killed inside its final ensemble ends on resume with the "
          "same ensembles, training nothing again") {
  temp_dir dir;
  test::write_text(dir / "exp.toml", resumable_toml);
  auto expected = reference(dir);
  auto out = dir / "reference";
  auto before = stored_result(out);
  std::vector<ensemble_point> curve;
  {
    auto store = results_store::open(out + "/results.db");
    REQUIRE(store);
    auto c = (*store)->ensemble_curve();
    REQUIRE(static_cast<bool>(c));
    curve = *c;
  }
  REQUIRE_FALSE(curve.empty());
  auto grants = count_in_store(out, "SELECT count(*) FROM grants");
  // What a kill while the ensembles were evaluated leaves (their records
  // are written in one transaction): every network finished, no ensemble,
  // the run not closed.
  change_store(out, "UPDATE run SET status = 'running', finished_at = NULL");
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((out + "/results.db").c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "DELETE FROM ensembles; DELETE FROM ensemble_curve",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto res = test::run_process(fmt::format("{} run {} --output {} --quiet",
                                           test::app(), dir / "exp.toml", out));
  REQUIRE_MESSAGE(res.exit_code == 0, res.output);
  auto after = check_finished_as(out, expected, "the final ensemble");
  CHECK(after.resumes == 1);
  // Nothing trained: no new grant.
  CHECK(count_in_store(out, "SELECT count(*) FROM grants") == grants);
  REQUIRE(after.ensembles.size() == before.ensembles.size());
  for (size_t i = 0; i < after.ensembles.size(); ++i) {
    CHECK(after.ensembles[i].accuracy == before.ensembles[i].accuracy);
    CHECK(after.ensembles[i].loss == before.ensembles[i].loss);
  }
  auto store = results_store::open(out + "/results.db");
  REQUIRE(store);
  auto again = (*store)->ensemble_curve();
  REQUIRE(static_cast<bool>(again));
  REQUIRE(again->size() == curve.size());
  for (size_t i = 0; i < curve.size(); ++i) {
    CHECK((*again)[i].members == curve[i].members);
    CHECK((*again)[i].accuracy == curve[i].accuracy);
  }
}

namespace {

/// Kills a run with SIGKILL at 20 moments drawn from a fixed seed over the
/// life of a run (at start-up, between and during checkpoints, during the
/// final ensemble, after it), each time on 1 to 3 slots, then lets it
/// finish: the weights are those of an uninterrupted run, every network is
/// finished once, and the folder holds nothing but the store and the
/// finished networks' files.
void crash_storm(std::string toml, bool files) {
  if (files)
    toml = with_layout(toml, "files");
  // Twice the epochs of resumable_toml, and moments within a quarter of an
  // uninterrupted run: each attempt makes a little progress, so the kills
  // fall all along the run, and the last ones on a run that is done.
  toml.replace(toml.find("epochs = 8"), 10, "epochs = 16");
  temp_dir dir;
  test::write_text(dir / "exp.toml", toml);
  auto started = std::chrono::steady_clock::now();
  auto expected = reference(dir);
  auto span =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
          .count();
  auto out = dir / "out";
  std::mt19937 rng{2024};
  std::uniform_real_distribution<double> moment{0.05, span / 4};
  int killed = 0;
  int finished_before_kill = 0;
  for (int attempt = 0; attempt < 20; ++attempt) {
    auto slots = std::to_string(1 + attempt % 3);
    auto pid = start_app(
        {"run", dir / "exp.toml", "--output", out, "--quiet", "--slots", slots},
        dir / fmt::format("attempt{}.log", attempt));
    auto until = std::chrono::steady_clock::now() +
                 std::chrono::duration<double>(moment(rng));
    int status = 0;
    pid_t done = 0;
    while (std::chrono::steady_clock::now() < until &&
           (done = waitpid(pid, &status, WNOHANG)) == 0)
      std::this_thread::sleep_for(2ms);
    if (done == pid) {
      // It finished (or failed) before its moment came.
      INFO(test::run_process("cat " +
                             dir / fmt::format("attempt{}.log", attempt))
               .output);
      CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
      ++finished_before_kill;
      continue;
    }
    ::kill(pid, SIGKILL);
    auto code = wait_exit(pid);
    INFO("attempt ", attempt);
    if (code == 0) {
      // It exited between the last poll and the kill.
      ++finished_before_kill;
      continue;
    }
    CHECK(code == 128 + SIGKILL);
    ++killed;
  }
  MESSAGE(fmt::format("{} runs killed, {} finished before their moment", killed,
                      finished_before_kill));
  CHECK(killed >= 10);
  auto last = test::run_process(fmt::format(
      "{} run {} --output {} --quiet", test::app(), dir / "exp.toml", out));
  REQUIRE_MESSAGE(last.exit_code == 0, last.output);
  auto result = check_finished_as(out, expected, "the storm");
  auto store = results_store::open(out + "/results.db");
  REQUIRE(store);
  for (const auto& n : result.networks) {
    auto epochs = (*store)->epochs(n.id);
    REQUIRE(static_cast<bool>(epochs));
    CHECK(epochs->size() == 16);
  }
  std::vector<std::string> stray;
  for (const auto& e : fs::recursive_directory_iterator{out}) {
    if (e.is_directory())
      continue;
    auto rel = fs::relative(e.path(), out).string();
    // report.html: rewritten at the end of every run (a .tmp a kill left is
    // renamed over by the next write).
    // A finished network's final state: its one checkpoint, at its last
    // step (16 epochs of 128 steps).
    bool known = rel == ".lock" || rel == "report.html" ||
                 rel.rfind("results.db", 0) == 0 ||
                 (rel.rfind("weights/net-", 0) == 0 &&
                  (e.path().extension() == ".pt" ||
                   e.path().extension() == ".predictions")) ||
                 (rel.rfind("checkpoints/net-", 0) == 0 &&
                  rel.find("step2048") != std::string::npos);
    if (!known)
      stray.push_back(rel);
  }
  CHECK_MESSAGE(stray.empty(), fmt::format("{}", fmt::join(stray, ", ")));
  // Finished networks keep one checkpoint each, their final state (what a
  // larger train.epochs continues from), in the folder or the store.
  CHECK(count_in_store(out, "SELECT count(*) FROM checkpoints") == 6);
  CHECK(count_in_store(out, "SELECT count(*) FROM checkpoints WHERE step = "
                            "(SELECT steps FROM networks WHERE id = "
                            "network_id)") == 6);
  CHECK(count_in_store(out, "SELECT count(*) FROM stored_checkpoints") ==
        (files ? 0 : 6));
  if (files)
    CHECK(std::distance(fs::directory_iterator{out + "/checkpoints"},
                        fs::directory_iterator{}) == 6);
  else // nothing but the store, its lock and the report
    CHECK_FALSE(fs::exists(out + "/weights"));
}

} // namespace

TEST_CASE("crash storm: 20 SIGKILLs at random moments, unfused, files, end "
          "bit-identical with no stray files") {
  std::string toml = resumable_toml;
  toml.replace(toml.find("seed = 5"), 8, "seed = 5\nfuse = \"off\"");
  crash_storm(toml, true);
}

TEST_CASE("crash storm: 20 SIGKILLs at random moments, fused, in the store, "
          "end bit-identical with no stray files") {
  crash_storm(resumable_toml, false);
}

namespace {

/// A tmpfs of `size` mounted at `path` while it lives (needs root: mount).
class small_file_system {
public:
  small_file_system(const std::string& path, const std::string& size)
      : path_(path) {
    fs::create_directories(path);
    mounted_ = std::system(fmt::format("mount -t tmpfs -o size={} tmpfs {} "
                                       "2>/dev/null",
                                       size, path)
                               .c_str()) == 0;
  }
  ~small_file_system() {
    if (mounted_)
      std::system(fmt::format("umount {}", path_).c_str());
  }
  bool mounted() const {
    return mounted_;
  }
  bool resize(const std::string& size) {
    return std::system(fmt::format("mount -o remount,size={} {}", size, path_)
                           .c_str()) == 0;
  }

private:
  std::string path_;
  bool mounted_ = false;
};

std::string integrity_of(const std::string& db_path) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  std::string result;
  sqlite3_exec(
      db, "PRAGMA integrity_check",
      [](void* out, int, char** values, char**) {
        *static_cast<std::string*>(out) += values[0] ? values[0] : "";
        return 0;
      },
      &result, nullptr);
  sqlite3_close(db);
  return result;
}

/// After a run in `out` stopped because its storage failed: the database is
/// consistent, no half-written file stays, no network failed (the storage
/// did); `resume` (once the storage works again) must end with `expected`'s
/// weights.
void check_storage_failure_recovers(
    const std::string& out, const std::string& resume,
    const std::map<std::string, std::vector<char>>& expected) {
  CHECK(integrity_of(out + "/results.db") == "ok");
  for (const auto& e : fs::recursive_directory_iterator{out})
    CHECK_MESSAGE(e.path().extension() != ".tmp", e.path().string());
  CHECK(stored_result(out).count(network_status::failed) == 0);
  auto resumed = test::run_process(resume);
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  check_finished_as(out, expected, "the storage failure");
  CHECK(integrity_of(out + "/results.db") == "ok");
}

} // namespace

TEST_CASE("a file system turning read-only mid-run stops the run with a "
          "clear error, and once writable it resumes to the same weights") {
  // The shim fails every write under the run folder once the trigger file
  // exists, as a remount read-only would (the kernel refuses one while a
  // run holds files open for writing).
  std::string layout = "database";
  SUBCASE("kept in the store") {}
  SUBCASE("kept as files") {
    layout = "files";
  }
  CAPTURE(layout);
  temp_dir dir;
  test::write_text(dir / "exp.toml", with_layout(resumable_toml, layout));
  auto expected = reference(dir);
  auto out = dir / "out";
  auto trigger = dir / "read-only-now";
  auto pid = start_app({"run", dir / "exp.toml", "--output", out, "--quiet"},
                       dir / "first.log",
                       {{"LD_PRELOAD", ACTORTRAIN_FAULT_READ_ONLY},
                        {"ACTORTRAIN_FAULT_DIR", out},
                        {"ACTORTRAIN_FAULT_TRIGGER", trigger}});
  REQUIRE(wait_for_checkpoint(out));
  test::write_text(trigger, "");
  // Bounded: a run that ignored the fault would train on for seconds.
  int status = 0;
  pid_t done = 0;
  for (int i = 0; i < 3000 && (done = waitpid(pid, &status, WNOHANG)) == 0; ++i)
    std::this_thread::sleep_for(10ms);
  if (done == 0) {
    ::kill(pid, SIGKILL);
    wait_exit(pid);
  }
  REQUIRE_MESSAGE(done == pid, "the run did not stop within 30 s");
  auto log = test::run_process("cat " + dir / "first.log").output;
  INFO(log);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 4));
  CHECK(log.find("stopping the run") != std::string::npos);
  CHECK((log.find("Read-only file system") != std::string::npos ||
         log.find("disk I/O error") != std::string::npos ||
         log.find("readonly database") != std::string::npos));
  CHECK(stored_result(out).count(network_status::finished) < 6);
  check_storage_failure_recovers(out,
                                 fmt::format("{} run {} --output {} --quiet",
                                             test::app(), dir / "exp.toml",
                                             out),
                                 expected);
}

TEST_CASE("a full disk stops the run with a clear error, and after space is "
          "freed it resumes to the uninterrupted run's weights") {
  // Both layouts: SQLite's and the file writer's errors differ.
  std::string layout = "database";
  SUBCASE("kept in the store") {}
  SUBCASE("kept as files") {
    layout = "files";
  }
  CAPTURE(layout);
  temp_dir dir;
  test::write_text(dir / "exp.toml", with_layout(resumable_toml, layout));
  auto expected = reference(dir);
  auto mount_point = dir / "small";
  small_file_system small{mount_point, "1m"};
  if (!small.mounted()) {
    MESSAGE("skipped: mounting a tmpfs needs root");
    return;
  }
  auto out = mount_point + "/out";
  auto cmd = fmt::format("{} run {} --output {} --quiet", test::app(),
                         dir / "exp.toml", out);
  auto full = test::run_process(cmd);
  CHECK(full.exit_code == 4);
  CHECK_MESSAGE(
      (full.output.find("No space left on device") != std::string::npos ||
       full.output.find("database or disk is full") != std::string::npos),
      full.output);
  CHECK(full.output.find("stopping the run") != std::string::npos);
  // The folder's own mount grows: the same command resumes.
  if (small.resize("64m"))
    check_storage_failure_recovers(out, cmd, expected);
  else
    FAIL("cannot grow the tmpfs");
}

TEST_CASE("a live session killed with SIGKILL and reopened resumes what was "
          "submitted, to bit-identical weights") {
  temp_dir dir;
  // Two configurations, each submitted on its own by the child process.
  auto toml = std::string{resumable_toml} +
              "[sweep]\n\"optimizer.lr\" = [0.003, 0.001]\n";
  auto replace = [&](const std::string& from, const std::string& to) {
    auto pos = toml.find(from);
    REQUIRE(pos != std::string::npos);
    toml.replace(pos, from.size(), to);
  };
  replace("networks = 6", "networks = 3");
  // Unfused, and each network to its end before the next starts: a wide
  // window in which some networks are done and others are not.
  replace("seed = 5", "seed = 5\nfuse = \"off\"");
  replace("policy = \"round_robin\"", "policy = \"fifo\"");
  test::write_text(dir / "exp.toml", toml);
  auto expected = reference(dir);
  REQUIRE(expected.size() == 6);
  auto out = dir / "out";
  auto pid = start_program(ACTORTRAIN_SESSION_CHILD, {dir / "exp.toml", out},
                           dir / "child.log");
  // Killed once a network is done and others are on their way.
  bool finished_one = false;
  for (int i = 0; i < 6000 && !finished_one; ++i) {
    finished_one = count_in_store(out, "SELECT count(*) FROM networks WHERE "
                                       "status = 'finished'") > 0;
    if (!finished_one)
      std::this_thread::sleep_for(5ms);
  }
  REQUIRE(finished_one);
  ::kill(pid, SIGKILL);
  REQUIRE(wait_exit(pid) == 128 + SIGKILL);
  auto before = stored_result(out);
  REQUIRE(before.networks.size() == 6);
  auto done_before = before.count(network_status::finished);
  INFO("finished before the kill: ", done_before);
  REQUIRE(done_before < 6);

  auto exp = load_experiment(dir / "exp.toml");
  REQUIRE(static_cast<bool>(exp));
  session_options opts;
  opts.output_dir = out;
  auto s = session::open(*exp, opts);
  REQUIRE_MESSAGE(static_cast<bool>(s), to_string_pretty(s.error()));
  auto handles = (*s)->networks();
  REQUIRE(handles.size() == 6);
  size_t done_at_open = 0;
  for (const auto& h : handles)
    done_at_open += h.done() ? 1 : 0;
  // Networks finished before the kill are not trained again.
  CHECK(done_at_open >= static_cast<size_t>(done_before));
  auto results = wait_all(handles);
  REQUIRE_MESSAGE(static_cast<bool>(results),
                  to_string_pretty(results.error()));
  for (const auto& r : *results)
    CHECK(r.status == network_status::finished);
  // New submissions continue the ids.
  auto more = (*s)->submit(exp->configs().front());
  REQUIRE(static_cast<bool>(more));
  REQUIRE(more->size() == 3);
  CHECK(more->front().id() == 6);
  auto closed = (*s)->close();
  REQUIRE_MESSAGE(static_cast<bool>(closed), to_string_pretty(closed.error()));
  CHECK(closed->networks.size() == 9);
  CHECK(closed->status == "finished");
  CHECK(closed->resumes == 1);
  auto got = test::stored_weights(out);
  for (const auto& [name, bytes] : expected)
    CHECK_MESSAGE(got[name] == bytes, name, " differs after reopening");
  // The reopened networks' grants: none for those finished before.
  for (const auto& n : before.networks)
    if (n.status == network_status::finished) {
      auto r =
          std::find_if(closed->networks.begin(), closed->networks.end(),
                       [&](const network_result& x) { return x.id == n.id; });
      REQUIRE(r != closed->networks.end());
      CHECK(r->train_seconds == n.train_seconds);
    }
}

TEST_CASE("actortrain continue DIR --epochs N trains a finished run on to the "
          "bits of one longer run") {
  temp_dir dir;
  auto toml = std::string{resumable_toml};
  auto pos = toml.find("epochs = 8");
  REQUIRE(pos != std::string::npos);
  test::write_text(dir / "exp.toml", toml);
  auto expected = reference(dir); // 8 epochs in one run
  auto short_toml = toml;
  short_toml.replace(pos, 10, "epochs = 3");
  test::write_text(dir / "short.toml", short_toml);
  auto out = dir / "out";
  auto first = test::run_process(fmt::format(
      "{} run {} --output {} --quiet", test::app(), dir / "short.toml", out));
  REQUIRE_MESSAGE(first.exit_code == 0, first.output);
  auto first_grants = stored_grants(out).size();
  auto more = test::run_process(
      fmt::format("{} continue {} --epochs 8 --quiet", test::app(), out));
  REQUIRE_MESSAGE(more.exit_code == 0, more.output);
  CHECK(more.output.find("6 finished networks continue") != std::string::npos);
  check_finished_as(out, expected, "continuing");
  // The continuation's grants follow the first run's on the schedule's
  // clock: busy fractions stay fractions.
  check_attempts_follow(stored_grants(out), first_grants, stored_result(out));
  for (const auto& n : stored_result(out).networks)
    CHECK(n.epochs == 8);
  // Continued, not resumed: the run was never interrupted.
  CHECK(stored_result(out).continuations == 1);
  auto results =
      test::run_process(fmt::format("{} results {}", test::app(), out));
  REQUIRE_MESSAGE(results.exit_code == 0, results.output);
  CHECK(results.output.find(", continued 1x)") != std::string::npos);
  CHECK(results.output.find("resumed") == std::string::npos);
  // Fewer epochs, no --epochs, no run there: each named.
  auto down = test::run_process(
      fmt::format("{} continue {} --epochs 2 --quiet", test::app(), out));
  CHECK(down.exit_code == 3);
  CHECK(down.output.find("went down from 8 to 2") != std::string::npos);
  auto no_epochs =
      test::run_process(fmt::format("{} continue {}", test::app(), out));
  CHECK(no_epochs.exit_code == 2);
  CHECK(no_epochs.output.find("--epochs N") != std::string::npos);
  auto nothing = test::run_process(
      fmt::format("{} continue {} --epochs 9", test::app(), dir / "nowhere"));
  CHECK(nothing.exit_code == 4);
  CHECK(nothing.output.find("no results store here") != std::string::npos);
}

TEST_CASE("a store written before grants recorded devices reads and gains "
          "the column") {
  temp_dir dir;
  auto exp = test::tiny_experiment(2, 1);
  run_options opts;
  opts.output_dir = dir / "out";
  REQUIRE(run(exp, opts));
  const std::string path = dir / "out/results.db";
  {
    auto store = results_store::open(path);
    REQUIRE(static_cast<bool>(store));
    auto grants = (*store)->grants();
    REQUIRE(static_cast<bool>(grants));
    REQUIRE_FALSE(grants->empty());
    for (const auto& g : *grants)
      CHECK(g.device == "cpu");
  }
  // As an older version wrote it: no device column.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "ALTER TABLE grants DROP COLUMN device", nullptr,
                       nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  {
    auto old = results_store::open(path);
    REQUIRE(static_cast<bool>(old));
    auto grants = (*old)->grants();
    REQUIRE_MESSAGE(static_cast<bool>(grants),
                    to_string_pretty(grants.error()));
    for (const auto& g : *grants)
      CHECK(g.device.empty());
  }
  // Opened for writing, the store gains the column (and new grants fill it).
  auto writable = results_store::open(path, true);
  REQUIRE(static_cast<bool>(writable));
  grant_record r;
  r.network_id = 0;
  r.device = "cuda:1";
  REQUIRE_FALSE((*writable)->add_grants({r}));
  auto after = (*writable)->grants();
  REQUIRE(static_cast<bool>(after));
  CHECK(std::count_if(after->begin(), after->end(),
                      [](const auto& g) { return g.device == "cuda:1"; }) == 1);
}

TEST_CASE("a cluster trainer's fall back: the aggregator reads back each "
          "network's newest intact checkpoint, stored or still pending") {
  temp_dir dir;
  write_text(dir / "exp.toml", resumable_toml);
  auto exp = load_experiment(dir / "exp.toml");
  REQUIRE(static_cast<bool>(exp));
  auto specs = expand(*exp);
  auto store = results_store::create(dir / "results.db");
  REQUIRE(static_cast<bool>(store));
  REQUIRE_FALSE((*store)->begin_run(*exp, specs, task_kind::classification));
  fs::create_directories(dir / "checkpoints");
  aggregator_config cfg;
  cfg.store = std::move(*store);
  cfg.specs = specs;
  cfg.group_labels = {"default"};
  cfg.output_dir = dir.path();
  cfg.layout = output_layout::files;
  caf::actor_system sys{test::actor_config()};
  auto agg = sys.spawn(aggregator, cfg);
  caf::scoped_actor self{sys};
  auto read_back = [&](std::vector<uint64_t> ids) {
    std::vector<runner_state> states;
    self->request(agg, caf::infinite, checkpoint_atom_v, std::move(ids))
        .receive([&](std::vector<runner_state>& s) { states = std::move(s); },
                 [&](caf::error& err) { FAIL(to_string_pretty(err)); });
    return states;
  };
  std::vector<char> older(1000, 'a');
  std::vector<char> newer(2000, 'b');
  // Sent just before the request, as a trainer does: not yet stored when
  // it arrives.
  self->send(agg, checkpoint_atom_v, uint64_t{1}, int64_t{30}, older);
  self->send(agg, checkpoint_atom_v, uint64_t{1}, int64_t{60}, newer);
  auto states = read_back({1, 2});
  REQUIRE(states.size() == 2);
  CHECK(states[0].network_id == 1);
  CHECK(states[0].last_good == newer);
  CHECK(states[0].last_good_step == 60);
  CHECK(states[0].live.empty());
  // Network 2 has none: it starts over.
  CHECK(states[1].network_id == 2);
  CHECK(states[1].last_good.empty());
  // A damaged newest file: the one before it.
  auto newest = dir / ("checkpoints/" + specs.at(1).name + "-step60.ckpt");
  REQUIRE(fs::exists(newest));
  write_text(newest, "damaged");
  states = read_back({1});
  REQUIRE(states.size() == 1);
  CHECK(states[0].last_good == older);
  CHECK(states[0].last_good_step == 30);
  self->send_exit(agg, caf::exit_reason::user_shutdown);
}
