// Benchmark 3 of the scheduling work: runtime overhead on real-length work.
// 1,000 networks each needing 0.1 s of compute (10 steps of 10 ms, spun on
// the slot's thread) on 2 slots: at least 50 s. Side by side: a hand-written
// C++ loop (2 threads, each running half the networks back to back) and
// actortrain's whole run() (data, store, actors, scheduling, results).
//
// usage: bench_runtime_overhead [networks=1000] [step_ms=10] [slots=2]

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <actortrain/actortrain.hpp>
#include <fmt/format.h>

#include "spin_learner.hpp"

using namespace actortrain;
namespace fs = std::filesystem;

namespace {

constexpr int64_t steps = 10; // per network: one epoch of 10 batches

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
      .count();
}

double hand_written(int64_t networks, double step, int64_t slots) {
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int64_t k = 0; k < slots; ++k)
    threads.emplace_back([=] {
      for (int64_t i = k; i < networks; i += slots)
        for (int64_t s = 0; s < steps; ++s)
          bench::spin_for(step);
    });
  for (auto& t : threads)
    t.join();
  return seconds_since(t0);
}

double with_actortrain(int64_t networks, double step, int64_t slots) {
  experiment exp;
  exp.name = "overhead";
  exp.data.format = data_format::synthetic;
  exp.data.samples = steps * 16;
  exp.data.test_samples = 8;
  exp.data.features = 4;
  exp.base.train.networks = networks;
  exp.base.train.epochs = 1;
  exp.base.train.batch_size = 16;
  exp.scheduler.slots = slots;
  auto dir = fs::temp_directory_path() / "actortrain-bench-overhead";
  fs::remove_all(dir);
  run_options opts;
  opts.output_dir = dir.string();
  opts.make_learner = [step](const learner_context& ctx) {
    return std::make_unique<bench::spin_learner>(
        ctx, [step](uint64_t, int64_t) { return step; });
  };
  auto t0 = std::chrono::steady_clock::now();
  auto result = run(exp, opts);
  auto secs = seconds_since(t0);
  if (!result || result->count(network_status::finished) != networks) {
    fmt::print(stderr, "run failed\n");
    std::exit(1);
  }
  fs::remove_all(dir);
  return secs;
}

} // namespace

int main(int argc, char** argv) {
  int64_t networks = argc > 1 ? std::stoll(argv[1]) : 1000;
  double step = (argc > 2 ? std::stod(argv[2]) : 10.0) / 1000.0;
  int64_t slots = argc > 3 ? std::stoll(argv[3]) : 2;
  auto minimum =
      static_cast<double>(networks * steps) * step / static_cast<double>(slots);
  fmt::print("{} networks x {:.3f} s of compute on {} slots: minimum {:.2f} "
             "s\n",
             networks, steps * step, slots, minimum);
  auto hand = hand_written(networks, step, slots);
  auto ours = with_actortrain(networks, step, slots);
  fmt::print("| system | seconds | over the minimum |\n|---|---|---|\n");
  fmt::print("| hand-written C++ loop, {} threads | {:.2f} | {:+.2f}% |\n",
             slots, hand, 100 * (hand / minimum - 1));
  fmt::print("| actortrain run() | {:.2f} | {:+.2f}% |\n", ours,
             100 * (ours / minimum - 1));
  fmt::print("actortrain / hand-written: {:.4f}\n", ours / hand);
  return 0;
}
