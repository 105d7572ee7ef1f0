// Issue 20's benchmark 2: many networks over many worker processes. One
// program is both sides: `worker` serves as a worker node, `run` is the
// coordinator. Every network's steps sleep a known time (a learner that
// computes nothing), so 32 slots on a 2-core machine really run at once
// and what limits the run is the runtime: grants, messages, the store.
//
// usage: bench_cluster_scale worker --port P
//        bench_cluster_scale run --workers-file F | --local-slots K
//                            [--networks N] [--step-ms M] [--steps S]
//                            [--epochs E] [--hop-share H]
// (--epochs E: E quanta of S steps a network; --hop-share 0: quanta on
// workers are not lengthened, so every quantum is a round trip)
// Prints one line: key=value pairs (see benchmarks/run_cluster_scale.py).

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>

#include <actortrain/actortrain.hpp>
#include <actortrain/learner.hpp>

#include "spin_learner.hpp"
#include <fmt/format.h>

namespace fs = std::filesystem;
using namespace actortrain;

namespace {

/// Steps that sleep `seconds`: known cost, no CPU.
learner_factory sleeper(double seconds) {
  return [seconds](const learner_context& ctx) {
    return std::make_unique<bench::spin_learner>(
        ctx, [seconds](uint64_t, int64_t) { return seconds; }, true);
  };
}

std::shared_ptr<std::atomic<bool>> stop_flag;

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::string arg(const std::vector<std::string>& args, const std::string& name,
                const std::string& fallback) {
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == name)
      return args[i + 1];
  return fallback;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::fprintf(stderr, "usage: bench_cluster_scale worker|run ...\n");
    return 2;
  }
  // Every step sleeps this long; the worker must be told the same.
  auto step_ms = std::stod(arg(args, "--step-ms", "1"));
  if (args[0] == "worker") {
    worker_options opts;
    opts.port = static_cast<uint16_t>(std::stoi(arg(args, "--port", "0")));
    opts.slots = 1;
    opts.make_learner = sleeper(step_ms / 1e3);
    opts.on_listening = [](uint16_t port) {
      fmt::print("listening on 127.0.0.1:{}\n", port);
      std::fflush(stdout);
    };
    stop_flag = std::make_shared<std::atomic<bool>>(false);
    opts.stop = stop_flag;
    std::signal(SIGTERM, [](int) { stop_flag->store(true); });
    auto err = run_worker(std::move(opts));
    return err ? 1 : 0;
  }
  auto networks = std::stoll(arg(args, "--networks", "10000"));
  auto steps = std::stoll(arg(args, "--steps", "8"));
  experiment exp;
  exp.name = "cluster-scale";
  exp.data.format = data_format::synthetic;
  exp.data.samples = 32 * steps;
  exp.data.test_samples = 8;
  exp.data.features = 4;
  exp.data.classes = 2;
  exp.data.partition = partition_scheme::all;
  exp.base.train.networks = networks;
  exp.base.train.epochs = std::stoll(arg(args, "--epochs", "1"));
  exp.base.train.batch_size = 32;
  exp.base.train.fuse = train_options::fuse_off;
  auto file = arg(args, "--workers-file", "");
  if (!file.empty()) {
    auto workers = read_workers_file(file);
    if (!workers) {
      fmt::print(stderr, "{}\n", to_string_pretty(workers.error()));
      return 1;
    }
    exp.cluster.workers = *workers;
    exp.cluster.local = false;
    exp.cluster.queue_ahead = arg(args, "--queue-ahead", "true") == "true";
    exp.cluster.hop_share = std::stod(arg(args, "--hop-share", "0.05"));
  } else {
    exp.scheduler.slots = std::stoll(arg(args, "--local-slots", "32"));
  }
  auto slots = file.empty() ? exp.scheduler.slots
                            : static_cast<int64_t>(exp.cluster.workers.size());
  auto dir = fs::temp_directory_path() /
             fmt::format("bench-cluster-scale-{}", ::getpid());
  run_options opts;
  opts.output_dir = dir.string();
  opts.make_learner = sleeper(step_ms / 1e3);
  auto cpu0 = cpu_seconds();
  auto t0 = std::chrono::steady_clock::now();
  auto r = run(exp, opts);
  auto wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  auto cpu = cpu_seconds() - cpu0;
  if (!r) {
    fmt::print(stderr, "{}\n", to_string_pretty(r.error()));
    return 1;
  }
  auto store = results_store::open((dir / results_store::file_name).string());
  auto grants = (*store)->grants();
  double first = 1e300, last = 0;
  int64_t moved = 0, moves = 0;
  for (const auto& g : *grants) {
    first = std::min(first, g.start);
    last = std::max(last, g.end);
    moved += g.moved_bytes;
    moves += g.moved_bytes > 0 ? 1 : 0;
  }
  auto makespan = last - first;
  auto bound = static_cast<double>(networks * steps * exp.base.train.epochs) *
               step_ms / 1e3 / static_cast<double>(slots);
  fmt::print("slots={} networks={} finished={} grants={} wall_s={:.2f} "
             "makespan_s={:.2f} bound_s={:.2f} ratio={:.3f} "
             "grants_per_s={:.0f} coordinator_cpu_s={:.2f} "
             "coordinator_cpu_share={:.2f} moves={} moved_bytes={}\n",
             slots, networks, r->count(network_status::finished),
             grants->size(), wall, makespan, bound, makespan / bound,
             static_cast<double>(grants->size()) / makespan, cpu, cpu / wall,
             moves, moved);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
