// End-to-end tests of the `actortrain` app, run as a real process.

#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "actortrain/dataset.hpp"
#include "actortrain/error.hpp"
#include "actortrain/learner.hpp"
#include "actortrain/store.hpp"
#include "test_support.hpp"

using namespace actortrain;
using actortrain::test::app;
using actortrain::test::run_app;
using actortrain::test::run_process;
using actortrain::test::temp_dir;
using actortrain::test::write_text;
namespace fs = std::filesystem;

namespace {

constexpr const char* synthetic_toml = R"(name = "synthetic-e2e"
[data]
format = "synthetic"
samples = 512
test_samples = 256
features = 10
classes = 4
partition = "stratified"
[model]
hidden = [32]
[optimizer]
kind = "adam"
lr = 0.01
[train]
networks = 6
epochs = 3
batch_size = 32
seed = 3
# One trainer per network, so the schedule has one grant per epoch each.
fuse = "off"
[scheduler]
slots = 2
)";

nlohmann::json results_json(const std::string& dir) {
  auto res =
      run_process(fmt::format("{} results {} --format json", app(), dir));
  REQUIRE_MESSAGE(res.exit_code == 0, res.output);
  return nlohmann::json::parse(res.output);
}

} // namespace

TEST_CASE("actortrain run and results, end to end on synthetic data") {
  temp_dir dir;
  write_text(dir / "exp.toml", synthetic_toml);
  auto res =
      run_app(fmt::format("run {} --output {}", dir / "exp.toml", dir / "out"));
  REQUIRE_MESSAGE(res.exit_code == 0, res.output);
  CHECK(res.output.find("6 networks: 6 finished, 0 failed") !=
        std::string::npos);
  CHECK(res.output.find("ensemble [all] of 6 networks: test accuracy") !=
        std::string::npos);
  CHECK(res.output.find("best network: net-") != std::string::npos);
  auto j = results_json(dir / "out");
  REQUIRE(j["networks"].size() == 6);
  for (auto& n : j["networks"]) {
    CHECK(n["status"] == "finished");
    CHECK(n["metrics"]["train_loss"].is_number());
    CHECK(n["metrics"]["test_loss"].is_number());
    CHECK(n["metrics"]["test_accuracy"].get<double>() > 0.5);
    CHECK(n["timings"]["seconds_per_step"].get<double>() > 0);
    // Kept in the store by default (output.layout): no file to name.
    CHECK(n["weights"].is_null());
    CHECK(n["weights_in"] == "database");
  }
  CHECK(j["networks"][2]["id"] == 2);
  CHECK(j["ensemble"]["accuracy"].get<double>() > 0.5);
  CHECK(j["ensemble"]["networks"] == 6);
  // The schedule: both slots were used, and busy fractions are fractions.
  REQUIRE(j["slots"].size() == 2);
  int64_t grants = 0;
  for (auto& slot : j["slots"]) {
    grants += slot["grants"].get<int64_t>();
    CHECK(slot["device"] == "cpu");
    CHECK(slot["node"] == "");
    CHECK(slot["busy_fraction"].get<double>() > 0);
    CHECK(slot["busy_fraction"].get<double>() <= 1.0 + 1e-9);
  }
  CHECK(grants == 6 * 3); // one quantum per epoch
  CHECK(j["networks"][0]["stop_reason"] == "epochs");
  auto table = run_app(fmt::format("results {}", dir / "out"));
  CHECK(table.exit_code == 0);
  CHECK(table.output.find("slot utilisation") != std::string::npos);
  CHECK(table.output.find("    0 cpu") != std::string::npos);
  CHECK(table.output.find("net-0005") != std::string::npos);
  CHECK(table.output.find("ensembles") != std::string::npos);
  // The finished run's folder holds one database file: no write-ahead log
  // or shared memory left beside it by the run or by its readers.
  CHECK(fs::exists(dir / "out/results.db"));
  CHECK_FALSE(fs::exists(dir / "out/results.db-wal"));
  CHECK_FALSE(fs::exists(dir / "out/results.db-shm"));
}

TEST_CASE("actortrain run on a small slice of Fashion-MNIST") {
  temp_dir dir;
  const std::string src = "/usr/share/datasets/fashion-mnist/";
  auto slice = [&](const std::string& name, int64_t n) {
    auto t = read_idx(src + name);
    REQUIRE_MESSAGE(t, to_string_pretty(t.error()));
    test::write_idx(dir / name, t->slice(0, 0, n).contiguous(), true);
  };
  slice("train-images-idx3-ubyte.gz", 3000);
  slice("train-labels-idx1-ubyte.gz", 3000);
  slice("t10k-images-idx3-ubyte.gz", 1000);
  slice("t10k-labels-idx1-ubyte.gz", 1000);
  write_text(dir / "exp.toml", R"(name = "fashion-slice"
[data]
format = "idx"
train = "train-images-idx3-ubyte.gz"
train_labels = "train-labels-idx1-ubyte.gz"
test = "t10k-images-idx3-ubyte.gz"
test_labels = "t10k-labels-idx1-ubyte.gz"
partition = "bootstrap"
[model]
kind = "mlp"
hidden = [64]
[train]
networks = 4
epochs = 2
batch_size = 64
seed = 1
[scheduler]
slots = 2
)");
  auto res =
      run_app(fmt::format("run {} --output {}", dir / "exp.toml", dir / "out"));
  REQUIRE_MESSAGE(res.exit_code == 0, res.output);
  auto j = results_json(dir / "out");
  CHECK(j["networks"].size() == 4);
  // Ten classes: chance is 0.1; 4 small MLPs on 3,000 images do far better.
  CHECK(j["ensemble"]["accuracy"].get<double>() > 0.7);
}

TEST_CASE("a diverging network fails alone and the exit code says so") {
  temp_dir dir;
  std::string toml = synthetic_toml;
  toml += "[sweep]\n\"optimizer.lr\" = [0.01, 1e30]\n";
  write_text(dir / "exp.toml", toml);
  auto res = run_app(
      fmt::format("run {} --output {} --quiet", dir / "exp.toml", dir / "out"));
  CHECK_MESSAGE(res.exit_code == 1, res.output);
  auto j = results_json(dir / "out");
  REQUIRE(j["networks"].size() == 12);
  int finished = 0;
  for (auto& n : j["networks"]) {
    if (n["status"] == "finished") {
      ++finished;
      CHECK(n["group_label"] == "optimizer.lr=0.01");
    } else {
      CHECK(n["error"].get<std::string>().find("non-finite") !=
            std::string::npos);
      CHECK(n["metrics"]["test_loss"].is_null());
    }
  }
  CHECK(finished == 6);
  CHECK(j["ensemble"]["networks"] == 6);
}

TEST_CASE("bad input exits non-zero with a clear message and trains nothing") {
  temp_dir dir;
  auto expect = [&](const std::string& toml, int code,
                    const std::string& text) {
    write_text(dir / "exp.toml", toml);
    auto res = run_app(
        fmt::format("run {} --output {}", dir / "exp.toml", dir / "out"));
    CHECK_MESSAGE(res.exit_code == code, res.output);
    CHECK_MESSAGE(res.output.find(text) != std::string::npos, res.output);
    CHECK_FALSE(fs::exists(dir / "out/results.db"));
  };
  expect("name = \"x\"\n[train]\nepochs = [\n", 3, "exp.toml:3:");
  expect("[trian]\nepochs = 2\n", 3, "unknown key 'trian'");
  expect("[data]\nformat = \"synthetic\"\n[optimizer]\nlr = 0\n", 3,
         "optimizer.lr: must be > 0, got 0");
  expect("[data]\nformat = \"idx\"\ntrain = \"nope.gz\"\ntrain_labels = "
         "\"a\"\ntest = \"b\"\ntest_labels = \"c\"\n",
         3, "nope.gz: cannot open IDX file");
  write_text(dir / "bad.idx", "not an idx file at all");
  expect(fmt::format("[data]\nformat = \"idx\"\ntrain = \"{0}\"\n"
                     "train_labels = \"{0}\"\ntest = \"{0}\"\n"
                     "test_labels = \"{0}\"\n",
                     dir / "bad.idx"),
         3, "wrong magic number");
  write_text(dir / "ragged.csv", "1,2,0\n1,2\n");
  expect(fmt::format("[data]\nformat = \"csv\"\ntrain = \"{}\"\n",
                     dir / "ragged.csv"),
         3, "ragged.csv:2: ragged row");
  expect("[data]\nformat = \"synthetic\"\nfeatures = 5\n[model]\ninput = 6\n",
         3, "model.input = 6 does not match the data's 5 features");
}

TEST_CASE("abusive sizes are refused up front with the bound, not a hang") {
  temp_dir dir;
  auto run_with = [&](const std::string& toml, const std::string& flags) {
    write_text(dir / "exp.toml", "[data]\nformat = \"synthetic\"\n" + toml);
    return run_app(fmt::format("run {} --output {} {}", dir / "exp.toml",
                               dir / "out", flags));
  };
  auto expect = [&](const test::process_result& res, const std::string& text) {
    CHECK_MESSAGE(res.exit_code == 3, res.output);
    CHECK_MESSAGE(res.output.find(text) != std::string::npos, res.output);
    CHECK_FALSE(fs::exists(dir / "out/results.db"));
  };
  expect(run_with("", "--slots 100000"),
         "scheduler.slots: must be in [0, 1024], got 100000");
  expect(run_with("[scheduler]\nthreads_per_slot = 4096\n", ""),
         "scheduler.threads_per_slot: must be in [1, 256], got 4096");
  expect(run_with("[train]\nepochs = 9223372036854775807\n", ""),
         "train.epochs: must be in [1, 1000000000], got 9223372036854775807");
  expect(run_with("[train]\nnetworks = 1000000000000\n", ""),
         "train.networks: must be in [1, 1000000], got 1000000000000");
  // A sweep of a million points and more is refused before it is expanded.
  std::string axis = "[";
  for (int i = 0; i < 1001; ++i)
    axis += fmt::format("{}{}", i ? "," : "", i + 1);
  axis += "]";
  expect(run_with(fmt::format("[sweep]\n\"train.epochs\" = {0}\n"
                              "\"train.batch_size\" = {0}\n",
                              axis),
                  ""),
         "the sweep has 1002001 points; one run trains at most 1000000");
  // An experiment file that is not a regular file is refused, not read.
  auto dev = run_app(fmt::format("run /dev/zero --output {}", dir / "out"));
  CHECK(dev.exit_code == 3);
  CHECK_MESSAGE(dev.output.find("/dev/zero: not a regular file") !=
                    std::string::npos,
                dev.output);
}

TEST_CASE("usage errors exit with 2, unreadable results with 4") {
  CHECK(run_app("").exit_code == 2);
  CHECK(run_app("frobnicate").exit_code == 2);
  CHECK(run_app("run").exit_code == 2);
  CHECK(run_app("run x.toml --slots zero").exit_code == 2);
  CHECK(run_app("results /tmp --format xml").exit_code == 2);
  auto missing = run_app("results /nonexistent-actortrain-dir");
  CHECK(missing.exit_code == 4);
  CHECK(missing.output.find("/nonexistent-actortrain-dir: no such folder") !=
        std::string::npos);
  CHECK(run_app("version").output.find("actortrain 0.") != std::string::npos);
}

TEST_CASE("Python's torch.load reads saved weights as a state dict, from "
          "the store or a file") {
  temp_dir dir;
  write_text(dir / "exp.toml", synthetic_toml);
  write_text(dir / "files.toml",
             std::string{synthetic_toml} + "[output]\nlayout = \"files\"\n");
  for (const auto* exp : {"exp", "files"}) {
    auto res =
        run_app(fmt::format("run {} --output {} --quiet",
                            dir / (std::string{exp} + ".toml"), dir / exp));
    REQUIRE_MESSAGE(res.exit_code == 0, res.output);
  }
  auto file = dir / "files/weights/net-0000.pt";
  REQUIRE(fs::exists(file));
  // The lines docs/interop.md gives, then a strict load into the
  // equivalent PyTorch model.
  write_text(dir / "load.py", fmt::format(R"(
import io, sqlite3, sys, torch
if sys.argv[1].endswith(".db"):
    db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
    (blob,) = db.execute(
        "SELECT data FROM stored_files JOIN networks ON networks.id = network_id "
        "WHERE networks.name = ? AND kind = 'weights'", ("net-0000",)).fetchone()
    sd = torch.load(io.BytesIO(blob))
else:
    sd = torch.load(sys.argv[1])
model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(10, 32),
                            torch.nn.ReLU(), torch.nn.Linear(32, 4))
model.load_state_dict(sd, strict=True)
print("keys", ",".join(sd.keys()))
print("sum %.6f" % sum(float(t.double().sum()) for t in sd.values()))
)"));
  auto store = results_store::open(dir / "exp/results.db");
  REQUIRE(static_cast<bool>(store));
  auto bytes = (*store)->file_bytes(0, file_kind::weights);
  REQUIRE(static_cast<bool>(bytes));
  double sum = 0;
  for (auto& [name, t] : decode_weights(*bytes))
    sum += t.to(torch::kDouble).sum().item<double>();
  // `export --weights` unpacks the store into the file layout, bit for bit.
  auto unpacked = run_app(
      fmt::format("export {} --weights {}", dir / "exp", dir / "unpacked"));
  REQUIRE_MESSAGE(unpacked.exit_code == 0, unpacked.output);
  CHECK(unpacked.output.find("6 weights files written") != std::string::npos);
  auto read = [](const std::string& path) {
    std::ifstream in{path, std::ios::binary};
    return std::vector<char>{std::istreambuf_iterator<char>{in}, {}};
  };
  for (int i = 0; i < 6; ++i) {
    auto name = fmt::format("net-{:04}.pt", i);
    CAPTURE(name);
    CHECK(read(dir / ("unpacked/" + name)) ==
          read(dir / ("files/weights/" + name)));
  }
  auto one = run_app(fmt::format("export {} --weights {} --network net-0003",
                                 dir / "exp", dir / "one"));
  CHECK(one.exit_code == 0);
  CHECK(fs::exists(dir / "one/net-0003.pt"));
  CHECK_FALSE(fs::exists(dir / "one/net-0000.pt"));
  auto unknown = run_app(fmt::format("export {} --weights {} --network nope",
                                     dir / "exp", dir / "none"));
  CHECK(unknown.exit_code == 4);
  CHECK(unknown.output.find("holds no network named 'nope'") !=
        std::string::npos);
  CHECK(run_app(fmt::format("export {} --network net-0000", dir / "exp"))
            .exit_code == 2);
  for (const auto& from :
       {dir / "exp/results.db", file, dir / "unpacked/net-0000.pt"}) {
    CAPTURE(from);
    auto py = run_process(
        fmt::format("/usr/bin/python3 {} {}", dir / "load.py", from));
    REQUIRE_MESSAGE(py.exit_code == 0, py.output);
    CHECK(py.output.find("keys 1.weight,1.bias,3.weight,3.bias") !=
          std::string::npos);
    // Either way the same bits: the layout never changes the numbers.
    CHECK(py.output.find(fmt::format("sum {:.6f}", sum)) != std::string::npos);
  }
}

TEST_CASE("a read-only run folder: results reads it, run says it cannot "
          "write there") {
  temp_dir dir;
  write_text(dir / "exp.toml", synthetic_toml);
  auto out = dir / "out";
  auto res =
      run_app(fmt::format("run {} --output {} --quiet", dir / "exp.toml", out));
  REQUIRE_MESSAGE(res.exit_code == 0, res.output);
  // Readable by anyone, writable by nobody. Root ignores permissions, so a
  // root test process runs the app as the unprivileged user nobody.
  auto as_user = ::geteuid() == 0
                     ? std::string{"setpriv --reuid=65534 --regid=65534 "
                                   "--clear-groups "}
                     : std::string{};
  REQUIRE(std::system(fmt::format("chmod a+rx {} && chmod -R a+rX,a-w {} {}",
                                  dir.path(), out, dir / "exp.toml")
                          .c_str()) == 0);
  if (!as_user.empty() &&
      run_process(fmt::format("{}test -x {}", as_user, app())).exit_code != 0) {
    // A checkout in a folder only root may enter, say.
    MESSAGE("skipped: user nobody cannot run ", app());
    std::system(fmt::format("chmod -R u+w {}", out).c_str());
    return;
  }
  res = run_process(fmt::format("{}{} results {}", as_user, app(), out));
  CHECK_MESSAGE(res.exit_code == 0, res.output);
  CHECK(res.output.find("6 networks: 6 finished, 0 failed") !=
        std::string::npos);
  res = run_process(fmt::format("{}{} run {} --output {}", as_user, app(),
                                dir / "exp.toml", out));
  CHECK(res.exit_code == 4);
  CHECK_MESSAGE(res.output.find("cannot write in the output folder") !=
                    std::string::npos,
                res.output);
  CHECK(res.output.find("in use by another") == std::string::npos);
  std::system(fmt::format("chmod -R u+w {}", out).c_str());
}

TEST_CASE("CSV exports round-trip through Python's csv module with the "
          "stored values") {
  temp_dir dir;
  // Two points of a two-key sweep: group labels hold commas and quotes
  // that CSV must quote.
  std::string toml = synthetic_toml;
  toml += "[sweep]\n\"optimizer.lr\" = [0.01, 0.003]\n"
          "\"model.hidden\" = [[32, 8]]\n";
  write_text(dir / "exp.toml", toml);
  auto out = dir / "out";
  auto res =
      run_app(fmt::format("run {} --output {} --quiet", dir / "exp.toml", out));
  REQUIRE_MESSAGE(res.exit_code == 0, res.output);
  auto csv = run_process(fmt::format("{} results {} --format csv > {}", app(),
                                     out, dir / "final.csv"));
  REQUIRE_MESSAGE(csv.exit_code == 0, csv.output);
  auto exported =
      run_app(fmt::format("export {} --epochs {}", out, dir / "epochs.csv"));
  REQUIRE_MESSAGE(exported.exit_code == 0, exported.output);
  // Python parses both files; it prints them back as JSON, whose numbers
  // (Python's repr) are exact doubles.
  write_text(dir / "read.py",
             fmt::format(R"(
import csv, json
def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
print(json.dumps({{"final": rows("{}"), "epochs": rows("{}")}}))
)",
                         dir / "final.csv", dir / "epochs.csv"));
  auto py = run_process(fmt::format("/usr/bin/python3 {}", dir / "read.py"));
  REQUIRE_MESSAGE(py.exit_code == 0, py.output);
  auto parsed = nlohmann::json::parse(py.output);
  auto j = results_json(out);
  auto& nets = j["networks"];
  auto& final_rows = parsed["final"];
  REQUIRE(final_rows.size() == nets.size());
  REQUIRE(nets.size() == 12);
  auto as_double = [](const nlohmann::json& text) {
    return std::stod(text.get<std::string>());
  };
  bool quoted_label = false;
  for (size_t i = 0; i < nets.size(); ++i) {
    auto& n = nets[i];
    auto& row = final_rows[i];
    CHECK(row["id"] == std::to_string(n["id"].get<int64_t>()));
    CHECK(row["name"] == n["name"]);
    CHECK(row["group_label"] == n["group_label"]);
    quoted_label |=
        n["group_label"].get<std::string>().find(',') != std::string::npos;
    CHECK(row["status"] == n["status"]);
    CHECK(row["stop_reason"] == n["stop_reason"]);
    CHECK(row["epochs"] == std::to_string(n["epochs"].get<int64_t>()));
    CHECK(as_double(row["train_loss"]) ==
          n["metrics"]["train_loss"].get<double>());
    CHECK(as_double(row["test_loss"]) ==
          n["metrics"]["test_loss"].get<double>());
    CHECK(as_double(row["test_accuracy"]) ==
          n["metrics"]["test_accuracy"].get<double>());
    CHECK(row["weights"] ==
          (n["weights"].is_null() ? nlohmann::json("") : n["weights"]));
  }
  CHECK(quoted_label);
  // Every epoch of every network exactly once, in order, with the values
  // the store holds.
  auto store = results_store::open(out + "/results.db");
  REQUIRE(static_cast<bool>(store));
  auto& epoch_rows = parsed["epochs"];
  size_t next = 0;
  for (auto& n : nets) {
    auto id = n["id"].get<uint64_t>();
    auto stored = (*store)->epochs(id);
    REQUIRE(static_cast<bool>(stored));
    REQUIRE(stored->size() == 3);
    for (const auto& e : *stored) {
      REQUIRE(next < epoch_rows.size());
      auto& row = epoch_rows[next++];
      CHECK(row["network_id"] == std::to_string(id));
      CHECK(row["name"] == n["name"]);
      CHECK(row["epoch"] == std::to_string(e.epoch));
      CHECK(as_double(row["train_loss"]) == e.train_loss);
      CHECK(as_double(row["test_loss"]) == e.test_loss);
      CHECK(as_double(row["test_accuracy"]) == e.test_accuracy);
      // No validation split in this experiment: the fields are empty.
      CHECK(row["validation_loss"] == "");
    }
  }
  CHECK(next == epoch_rows.size());
  // Asking for nothing, or a file that cannot be written, is an error.
  CHECK(run_app(fmt::format("export {}", out)).exit_code == 2);
  auto unwritable = run_app(
      fmt::format("export {} --epochs {}", out, dir / "no-such-dir/e.csv"));
  CHECK(unwritable.exit_code == 4);
  CHECK(unwritable.output.find("cannot write") != std::string::npos);
}

TEST_CASE("actortrain status reads a run another process is training, a "
          "killed one and a finished one") {
  temp_dir dir;
  std::string toml = R"(name = "status-e2e"
[data]
format = "synthetic"
samples = 512
test_samples = 128
features = 10
classes = 4
[train]
networks = 4
epochs = 600
batch_size = 32
fuse = "off"
[scheduler]
slots = 1
)";
  write_text(dir / "exp.toml", toml);
  auto out = dir / "out";
  auto run_cmd = fmt::format("{} run {} --output {} --quiet", app(),
                             dir / "exp.toml", out);
  std::string seen;
  {
    test::background_process training{run_cmd, dir / "run.log"};
    // Polls until the store shows a network in progress (seconds of
    // training: each status is a process that loads LibTorch, slow on a
    // loaded machine), not beyond the run's end.
    for (int i = 0; i < 600 && training.running(); ++i) {
      auto st = run_app(fmt::format("status {}", out));
      if (st.exit_code == 0 &&
          st.output.find("in progress") != std::string::npos) {
        seen = st.output;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{100});
    }
    REQUIRE_MESSAGE(!seen.empty(), training.output());
    CHECK(seen.find("run status-e2e: running") != std::string::npos);
    CHECK(seen.find("of 4") != std::string::npos);
    CHECK(seen.find("net-000") != std::string::npos);
    CHECK(training.stop(SIGKILL, 30) != -1);
  }
  // Killed: the store still says running, but no process holds the folder.
  auto killed = run_app(fmt::format("status {}", out));
  CHECK(killed.exit_code == 0);
  CHECK(killed.output.find("not running") != std::string::npos);
  CHECK(killed.output.find("stalled") == std::string::npos);
  // Killed while stalled: its last report, which never ended, says what
  // it waited on, a line each; one that ended says nothing.
  auto store = results_store::open(out + "/results.db", true);
  REQUIRE(static_cast<bool>(store));
  REQUIRE_FALSE((*store)->add_stall(
      {3, 62, false,
       "no quantum has started or ended for 62 s: 1 trainer "
       "waits for a slot"}));
  REQUIRE_FALSE((*store)->end_stall(3, 4));
  CHECK(run_app(fmt::format("status {}", out)).output.find("stalled") ==
        std::string::npos);
  REQUIRE_FALSE((*store)->add_stall(
      {64, 64, false,
       "no quantum has started or ended for 64 s "
       "(scheduler.stall_report_seconds = 60): net-0001 has held slot 0 "
       "(cpu) for 64 s; 3 trainers wait for a slot"}));
  store->reset();
  auto stalled = run_app(fmt::format("status {}", out));
  CHECK(stalled.exit_code == 0);
  CHECK_MESSAGE(
      stalled.output.find(" s into the schedule, nothing ended since): no "
                          "quantum has started or ended for 64 s "
                          "(scheduler.stall_report_seconds = 60):\n") !=
          std::string::npos,
      stalled.output);
  CHECK(stalled.output.find("\n  net-0001 has held slot 0 (cpu) for 64 s\n  "
                            "3 trainers wait for a slot\n") !=
        std::string::npos);
  // Resumed to the end: finished, and --watch returns at once.
  auto resumed = run_process(run_cmd);
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  auto done = run_app(fmt::format("status {} --watch", out));
  CHECK(done.exit_code == 0);
  CHECK(done.output.find("run status-e2e: finished") != std::string::npos);
  CHECK(done.output.find("4 finished, 0 failed, 0 to go") != std::string::npos);
  CHECK(done.output.find("best finished so far") != std::string::npos);
  CHECK(done.output.find("stalled") == std::string::npos);
  CHECK(run_app(fmt::format("status {}", dir / "nothing-here")).exit_code == 4);
}

TEST_CASE("a random search runs end to end and names the best configuration") {
  temp_dir dir;
  write_text(dir / "exp.toml", R"(name = "search"
[data]
format = "synthetic"
samples = 512
test_samples = 128
features = 8
classes = 3
[train]
networks = 2
epochs = 2
[search]
samples = 4
"optimizer.lr" = { loguniform = [1e-4, 1e-1] }
"model.hidden" = { choice = [[8], [32]] }
)");
  auto res =
      run_app(fmt::format("run {} --output {}", dir / "exp.toml", dir / "out"));
  REQUIRE_MESSAGE(res.exit_code == 0, res.output);
  CHECK(res.output.find("8 networks: 8 finished") != std::string::npos);
  std::smatch best;
  REQUIRE_MESSAGE(
      std::regex_search(res.output, best,
                        std::regex{R"(best network: net-\d+ \(.*\) of )"
                                   R"((model\.hidden=\[\d+\] )"
                                   R"(optimizer\.lr=[0-9.e-]+ sample=\d))"}),
      res.output);
  // One ensemble per drawn configuration, labelled as the best one is.
  CHECK(res.output.find("ensemble [" + best[1].str() + "] of 2 networks") !=
        std::string::npos);
  auto j = results_json(dir / "out");
  REQUIRE(j["networks"].size() == 8);
}

TEST_CASE("PBT from TOML resamples from the search space, and results show "
          "each network's lineage") {
  temp_dir dir;
  write_text(dir / "exp.toml", R"(name = "pbt"
[data]
format = "synthetic"
samples = 512
test_samples = 128
features = 8
classes = 3
[train]
epochs = 4
validation_fraction = 0.2
[search]
samples = 8
"optimizer.lr" = { loguniform = [1e-4, 0.5] }
[scheduler]
slots = 2
search = "pbt"
deterministic = true
interval_epochs = 2
resample_probability = 1
)");
  auto res =
      run_app(fmt::format("run {} --output {}", dir / "exp.toml", dir / "out"));
  REQUIRE_MESSAGE(res.exit_code == 0, res.output);
  CHECK(res.output.find("8 networks: 8 finished") != std::string::npos);
  auto table = run_app(fmt::format("results {}", dir / "out"));
  REQUIRE_MESSAGE(table.exit_code == 0, table.output);
  CHECK_MESSAGE(table.output.find("PBT lineage") != std::string::npos,
                table.output);
  auto j = results_json(dir / "out");
  int64_t exploits = 0;
  for (const auto& d : j["decisions"]) {
    if (d["action"] != "exploit")
      continue;
    ++exploits;
    // Every copy drew its rate again from [1e-4, 0.5].
    auto text = d["new_hyperparameters"].get<std::string>();
    auto lr = std::stod(text.substr(text.find('=') + 1));
    CHECK(lr >= 1e-4);
    CHECK(lr <= 0.5);
    CHECK(d["donor"].is_number());
  }
  // ceil(8 x 0.25) = 2 at epoch 2.
  CHECK(exploits == 2);
  REQUIRE(j.contains("lineages"));
  CHECK(j["lineages"].size() == 2);
}

TEST_CASE("ASHA over a random search space, from TOML: results show the "
          "decisions") {
  temp_dir dir;
  write_text(dir / "exp.toml", R"(name = "asha"
[data]
format = "synthetic"
samples = 512
test_samples = 128
features = 8
classes = 3
[train]
epochs = 4
validation_fraction = 0.2
[search]
samples = 9
"optimizer.lr" = { loguniform = [1e-4, 0.5] }
[scheduler]
slots = 2
search = "asha"
metric = "validation_loss"
)");
  auto res =
      run_app(fmt::format("run {} --output {}", dir / "exp.toml", dir / "out"));
  REQUIRE_MESSAGE(res.exit_code == 0, res.output);
  CHECK(res.output.find("9 networks: 9 finished") != std::string::npos);
  auto table = run_app(fmt::format("results {}", dir / "out"));
  REQUIRE_MESSAGE(table.exit_code == 0, table.output);
  CHECK_MESSAGE(table.output.find("search decisions (") != std::string::npos,
                table.output);
  CHECK(table.output.find("best: net-") != std::string::npos);
  auto j = results_json(dir / "out");
  REQUIRE(j["decisions"].is_array());
  REQUIRE_FALSE(j["decisions"].empty());
  int64_t stops = 0;
  for (const auto& d : j["decisions"]) {
    auto action = d["action"].get<std::string>();
    CHECK((action == "continue" || action == "stop"));
    CHECK(d["reason"].get<std::string>().find("validation_loss") !=
          std::string::npos);
    stops += action == "stop" ? 1 : 0;
  }
  int64_t stopped = 0;
  for (const auto& n : j["networks"])
    stopped += n["stop_reason"] == "search" ? 1 : 0;
  CHECK(stopped == stops);
  // A bad key is named before anything trains.
  write_text(dir / "bad.toml", R"(name = "bad"
[data]
format = "synthetic"
[train]
epochs = 4
[scheduler]
search = "asha"
)");
  auto bad =
      run_app(fmt::format("run {} --output {}", dir / "bad.toml", dir / "bad"));
  CHECK(bad.exit_code != 0);
  CHECK_MESSAGE(bad.output.find("scheduler.metric: 'auto' "
                                "(validation_accuracy) is measured on a "
                                "validation split") != std::string::npos,
                bad.output);
}
