// Devices of slots (scheduler.devices, --devices): parsing, the errors a
// bad list gets before anything trains, and the device path on the CPU,
// which runs through the same code as a GPU slot (its stream guard empty).
// What needs a GPU is skipped at run time where LibTorch sees none.

#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>

#include <ATen/Context.h>
#include <fmt/format.h>
#include <torch/cuda.h>

#include "actortrain/error.hpp"
#include "actortrain/experiment.hpp"
#include "actortrain/run.hpp"
#include "data/dataset_on_device.hpp"
#include "platform/device_memory.hpp"
#include "setup/devices.hpp"
#include "test_support.hpp"
#include "training/slot_stream.hpp"

using namespace actortrain;
using actortrain::test::contains;
using actortrain::test::temp_dir;

namespace {

bool has_gpu() {
  return torch::cuda::device_count() > 0;
}

std::string device_error(const std::vector<std::string>& devices) {
  auto slots = slot_devices(devices, 2, 2);
  REQUIRE_FALSE(static_cast<bool>(slots));
  return to_string_pretty(slots.error());
}

} // namespace

TEST_CASE("slot devices: the CPU's slots, every GPU's streams, and lists "
          "that name no device refused") {
  auto gpus = static_cast<int64_t>(torch::cuda::device_count());
  auto automatic = slot_devices({}, 3, 2);
  REQUIRE(static_cast<bool>(automatic));
  if (gpus == 0) {
    CHECK(*automatic == std::vector<std::string>(3, "cpu"));
  } else {
    CHECK(automatic->size() == static_cast<size_t>(2 * gpus));
    CHECK(automatic->front() == "cuda:0");
  }
  CHECK(*slot_devices({"auto"}, 3, 2) == *automatic);
  CHECK(*slot_devices({"cpu"}, 3, 2) == std::vector<std::string>(3, "cpu"));
  CHECK(describe_slots(*slot_devices({"cpu"}, 3, 2)) == "3 slots: 3 on cpu");
  CHECK(contains(device_error({"tpu"}),
                 "scheduler.devices: 'tpu' is not a device: expected"));
  CHECK(contains(device_error({"cuda:x"}), "'cuda:x' is not a device"));
  CHECK(contains(device_error({"cpu", "cpu"}), "'cpu' is named twice"));
  CHECK(contains(device_error({"auto", "cpu"}), "'auto' stands alone"));
  CHECK(contains(
      device_error({fmt::format("cuda:{}", gpus + 7)}),
      fmt::format("is not a GPU of this machine: LibTorch sees {}", gpus)));
  if (gpus == 0) {
    CHECK(contains(device_error({"cuda"}), "LibTorch sees none here"));
    return;
  }
  // With GPUs: a list may mix them with the CPU.
  auto mixed = slot_devices({"cuda:0", "cpu"}, 1, 3);
  REQUIRE(static_cast<bool>(mixed));
  CHECK(*mixed ==
        std::vector<std::string>{"cuda:0", "cuda:0", "cuda:0", "cpu"});
}

TEST_CASE("devices in an experiment file: a string or a list") {
  for (const auto* text : {R"(devices = "auto")", R"(devices = ["cpu"])"}) {
    auto exp = parse_experiment(fmt::format("name = \"d\"\n[data]\nformat = "
                                            "\"synthetic\"\n[scheduler]\n{}\n"
                                            "streams_per_gpu = 3\n",
                                            text),
                                "exp.toml");
    REQUIRE_MESSAGE(static_cast<bool>(exp), to_string_pretty(exp.error()));
    CHECK(exp->scheduler.devices.size() == 1);
    CHECK(exp->scheduler.streams_per_gpu == 3);
  }
  auto bad = parse_experiment("name = \"d\"\n[data]\nformat = \"synthetic\"\n"
                              "[scheduler]\nstreams_per_gpu = 0\n",
                              "exp.toml");
  REQUIRE_FALSE(static_cast<bool>(bad));
  CHECK(contains(to_string_pretty(bad.error()), "streams_per_gpu"));
  for (const auto* fraction : {"0", "1.5", "-0.1"}) {
    CAPTURE(fraction);
    auto refused = parse_experiment(
        fmt::format("name = \"d\"\n[data]\nformat = \"synthetic\"\n"
                    "[scheduler]\ngpu_memory_fraction = {}\n",
                    fraction),
        "exp.toml");
    REQUIRE_FALSE(static_cast<bool>(refused));
    CHECK(contains(to_string_pretty(refused.error()), "gpu_memory_fraction"));
  }
}

TEST_CASE("a device's memory budget: a share of a GPU's less the data, "
          "none on a CPU") {
  CHECK(memory_budget("cpu", 0.9) == 0);
  CHECK(memory_budget("cpu", 0.9, 1000) == 0);
  // 80 GB at 0.9, less 250 MB of data copied there.
  constexpr int64_t gb = 1000 * 1000 * 1000;
  CHECK(memory_budget_of(80 * gb, 0.9, 0) == 72 * gb);
  CHECK(memory_budget_of(80 * gb, 0.9, gb / 4) == 72 * gb - gb / 4);
  // Data that fills the budget leaves a budget of one byte (each network
  // then has the device to itself), never none (no limit).
  CHECK(memory_budget_of(gb, 0.5, gb) == 1);
  // A copy on a device takes the bytes of every tensor of the data.
  dataset d;
  d.train_x = torch::zeros({10, 4});
  d.train_y = torch::zeros({10}, torch::kInt64);
  d.test_x = torch::zeros({5, 4});
  d.test_y = torch::zeros({5}, torch::kInt64);
  CHECK(device_bytes(d) == 10 * 4 * 4 + 10 * 8 + 5 * 4 * 4 + 5 * 8);
  if (!has_gpu()) {
    MESSAGE("no GPU: the GPU half is skipped");
    return;
  }
  auto budget = memory_budget("cuda:0", 0.5);
  auto total = device_memory_total("cuda:0");
  REQUIRE(total.has_value());
  CHECK(budget == static_cast<int64_t>(0.5 * static_cast<double>(*total)));
  CHECK(budget > 0);
}

TEST_CASE("a CPU slot's stream is none, a GPU slot's its own") {
  slot_stream cpu{"cpu"};
  CHECK_FALSE(cpu.on_gpu());
  CHECK_FALSE(cpu.enter().has_value());
  if (!has_gpu()) {
    MESSAGE("no GPU: the GPU half is skipped");
    return;
  }
  slot_stream gpu{"cuda:0"};
  CHECK(gpu.on_gpu());
  auto guard = gpu.enter();
  CHECK(guard.has_value());
}

TEST_CASE("a run on devices = [\"cpu\"] trains the bits of the default, and "
          "a device this machine lacks is refused before anything trains") {
  temp_dir dir;
  auto exp = test::tiny_experiment(3, 2);
  auto plain = test::run_ok(exp, dir / "plain");
  exp.scheduler.devices = {"cpu"};
  auto cpu = test::run_ok(exp, dir / "cpu");
  CHECK(cpu.count(network_status::finished) == 3);
  CHECK(test::stored_weights(dir / "plain") ==
        test::stored_weights(dir / "cpu"));
  for (const auto* bad : {"tpu", "cuda:63"}) {
    exp.scheduler.devices = {bad};
    run_options opts;
    opts.output_dir = dir / "bad";
    auto r = run(exp, opts);
    REQUIRE_FALSE(static_cast<bool>(r));
    CHECK(contains(to_string_pretty(r.error()),
                   fmt::format("scheduler.devices: '{}'", bad)));
    CHECK_FALSE(std::filesystem::exists(dir / "bad/results.db"));
  }
}

TEST_CASE("the app and a worker take --devices, and name a bad one") {
  temp_dir dir;
  test::write_text(dir / "exp.toml",
                   "name = \"d\"\n[data]\nformat = \"synthetic\"\nsamples = "
                   "128\ntest_samples = 64\nfeatures = 4\nclasses = 2\n"
                   "[train]\nnetworks = 2\nepochs = 1\n[scheduler]\nslots = "
                   "2\n");
  auto ok = test::run_app(fmt::format("run {} --output {} --devices cpu",
                                      dir / "exp.toml", dir / "ok"));
  CHECK_MESSAGE(ok.exit_code == 0, ok.output);
  CHECK(contains(ok.output, "this process: 2 slots: 2 on cpu"));
  auto bad = test::run_app(fmt::format("run {} --output {} --devices cuda:63",
                                       dir / "exp.toml", dir / "bad"));
  CHECK(bad.exit_code != 0);
  CHECK_MESSAGE(contains(bad.output, "'cuda:63' is not a GPU of this machine"),
                bad.output);
  auto worker = test::run_app("worker --port 0 --devices tpu");
  CHECK(worker.exit_code != 0);
  CHECK_MESSAGE(contains(worker.output, "'tpu' is not a device"),
                worker.output);
}

TEST_CASE("the data goes to a device once, shared by its networks, and is "
          "let go when none uses it") {
  auto host = std::make_shared<dataset>();
  host->train_x = torch::rand({8, 3});
  host->train_y = torch::arange(8);
  host->test_x = torch::rand({4, 3});
  host->test_y = torch::arange(4);
  std::shared_ptr<const dataset> shared = host;
  // On the CPU, the data itself.
  CHECK(dataset_on(shared, torch::kCPU).get() == shared.get());
  // Another device (LibTorch's meta device stands in for a GPU here: it
  // has shapes and no memory): one copy, whoever asks.
  torch::Device meta{torch::kMeta};
  auto a = dataset_on(shared, meta);
  auto b = dataset_on(shared, meta);
  CHECK(a.get() == b.get());
  CHECK(a.get() != shared.get());
  CHECK(a->train_x.device() == meta);
  CHECK(a->test_y.device() == meta);
  CHECK(a->train_x.sizes() == host->train_x.sizes());
  // The copy keeps the host data alive; once nobody uses it, it goes.
  std::weak_ptr<const dataset> copy = a;
  std::weak_ptr<const dataset> original = shared;
  a.reset();
  b.reset();
  CHECK(copy.expired());
  shared.reset();
  host.reset();
  CHECK(original.expired());
  // Gone means made again when a network asks.
  auto again = std::make_shared<const dataset>();
  CHECK(dataset_on(again, meta) != nullptr);
  if (has_gpu()) {
    auto on_gpu = dataset_on(again, torch::Device{"cuda:0"});
    CHECK(on_gpu->train_x.is_cuda() == again->train_x.defined());
  }
}

TEST_CASE("GPU runs: the same bits on any stream count, fused close to "
          "unfused, near the CPU's, under a tiny budget, and resumed on the "
          "CPU") {
  if (!has_gpu()) {
    MESSAGE("no GPU: skipped (scripts/gpu-check.sh runs it on one)");
    return;
  }
  temp_dir dir;
  auto exp = test::tiny_experiment(4, 2);
  exp.base.optimizer.kind = optimizer_kind::adam;
  exp.base.optimizer.lr = 1e-2;
  exp.base.train.fuse = train_options::fuse_off;
  exp.scheduler.slots = 2;
  auto on = [&](const std::string& device, int64_t streams,
                const std::string& name) {
    auto e = exp;
    e.scheduler.devices = {device};
    e.scheduler.streams_per_gpu = streams;
    return test::run_ok(e, dir / name);
  };
  auto cpu = on("cpu", 1, "cpu");
  auto one = on("cuda:0", 1, "one-stream");
  auto three = on("cuda:0", 3, "three-streams");
  CHECK(at::globalContext().deterministicAlgorithms());
  // Deterministic on one GPU: the bits do not depend on the slots.
  CHECK(test::stored_weights(dir / "one-stream") ==
        test::stored_weights(dir / "three-streams"));
  // Against the CPU: other kernels, other rounding (the tolerance is
  // printed for docs/devices.md).
  double worst = 0;
  for (size_t i = 0; i < 4; ++i)
    worst = std::max(
        worst, std::abs(one.networks[i].test_loss - cpu.networks[i].test_loss) /
                   std::abs(cpu.networks[i].test_loss));
  MESSAGE("largest relative test-loss difference GPU vs CPU: " << worst);
  CHECK(worst < 1e-3);
  // Fused on the GPU.
  exp.base.train.fuse = train_options::fuse_auto;
  auto fused = on("cuda:0", 2, "fused");
  exp.base.train.fuse = train_options::fuse_off;
  for (size_t i = 0; i < 4; ++i)
    CHECK(fused.networks[i].test_loss ==
          doctest::Approx(one.networks[i].test_loss).epsilon(1e-4));
  // A budget no network fits beside another: each has the GPU alone, the
  // same bits.
  exp.scheduler.gpu_memory_fraction = 1e-9;
  on("cuda:0", 3, "tiny-budget");
  exp.scheduler.gpu_memory_fraction = 0.9;
  CHECK(test::stored_weights(dir / "tiny-budget") ==
        test::stored_weights(dir / "one-stream"));
  // The GPU run continued on the CPU, one epoch more: its checkpoints and
  // final states were written with CPU tensors.
  exp.base.train.epochs = 3;
  exp.scheduler.devices = {"cpu"};
  auto continued = test::run_ok(exp, dir / "one-stream");
  CHECK(continued.count(network_status::finished) == 4);
  for (const auto& n : continued.networks)
    CHECK(n.epochs == 3);
}
