// Benchmark 1 of the scheduling work: a heterogeneous, growing workload
// (after seed 001: 1,660 networks whose epochs take longer and longer). Runs
// the same workload under a static pre-split (as a multiprocessing.Pool with
// fixed chunks does) and under every actortrain policy, side by side, and
// reports each makespan as a ratio to the lower bound
// max(total work / slots, longest network), plus mean completion time.
//
// usage: bench_scheduling_makespan [networks=1660] [work_seconds=20] [slots=2]

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <actortrain/actortrain.hpp>
#include <fmt/format.h>

#include "spin_learner.hpp"

using namespace actortrain;
namespace fs = std::filesystem;

namespace {

constexpr int64_t epochs = 5;
constexpr int64_t steps_per_epoch = 4; // 128 samples, batch 32
constexpr double growth = 0.25;        // epoch e costs (1 + 0.25 e) x base

struct workload {
  std::vector<double> base; // seconds per step in epoch 0, per network
  double step_cost(uint64_t id, int64_t step) const {
    return base[id] *
           (1 + growth * static_cast<double>(step / steps_per_epoch));
  }
  double network_work(uint64_t id) const {
    double w = 0;
    for (int64_t s = 0; s < epochs * steps_per_epoch; ++s)
      w += step_cost(id, s);
    return w;
  }
};

/// Heavy-tailed sizes (log-normal, sigma 1.5) in a seed-shuffled order,
/// scaled to `total` seconds of work.
workload make_workload(size_t n, double total) {
  std::mt19937_64 rng{1660};
  std::lognormal_distribution<double> size{0.0, 1.5};
  workload w;
  for (size_t i = 0; i < n; ++i)
    w.base.push_back(size(rng));
  std::shuffle(w.base.begin(), w.base.end(), rng);
  double sum = 0;
  for (size_t i = 0; i < n; ++i)
    sum += w.network_work(i);
  for (auto& b : w.base)
    b *= total / sum;
  return w;
}

struct outcome {
  std::string name;
  double makespan = 0;
  double mean_completion = 0;
  /// Time the slots spent inside quanta over slots x makespan: what is not
  /// busy is gaps between quanta or an idle tail.
  double busy = 1;
};

/// Each slot thread runs a fixed list of networks, one after another.
outcome run_static(const workload& w, int64_t slots, bool contiguous) {
  auto n = w.base.size();
  std::vector<std::vector<uint64_t>> lists(static_cast<size_t>(slots));
  for (uint64_t i = 0; i < n; ++i) {
    auto k = contiguous ? i * static_cast<uint64_t>(slots) / n
                        : i % static_cast<uint64_t>(slots);
    lists[k].push_back(i);
  }
  std::vector<double> done(n);
  auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
        .count();
  };
  std::vector<std::thread> threads;
  for (auto& list : lists)
    threads.emplace_back([&, &list = list] {
      for (auto id : list) {
        for (int64_t s = 0; s < epochs * steps_per_epoch; ++s)
          bench::spin_for(w.step_cost(id, s));
        done[id] = elapsed();
      }
    });
  for (auto& t : threads)
    t.join();
  outcome o;
  o.name = contiguous ? "static split, contiguous chunks"
                      : "static split, round-robin";
  o.makespan = *std::max_element(done.begin(), done.end());
  o.mean_completion =
      std::accumulate(done.begin(), done.end(), 0.0) / static_cast<double>(n);
  double work = 0;
  for (uint64_t i = 0; i < n; ++i)
    work += w.network_work(i);
  o.busy = work / (static_cast<double>(slots) * o.makespan);
  return o;
}

outcome run_policy(const workload& w, int64_t slots, policy_kind kind,
                   const fs::path& dir) {
  std::string policy = name_of(kind);
  experiment exp;
  exp.name = "makespan-" + policy;
  exp.data.format = data_format::synthetic;
  exp.data.samples = steps_per_epoch * 32;
  exp.data.test_samples = 8;
  exp.data.features = 4;
  exp.base.train.networks = 1;
  exp.base.train.epochs = epochs;
  exp.base.train.batch_size = 32;
  exp.base.train.eval_every = 0;
  exp.scheduler.slots = slots;
  exp.scheduler.policy = kind;
  // One configuration per network, so "priority" can carry the size the
  // user knows (the sweep's model size); other policies ignore it.
  for (size_t i = 0; i < w.base.size(); ++i) {
    auto cfg = exp.base;
    cfg.train.priority = w.base[i];
    exp.variants.push_back(cfg);
  }
  run_options opts;
  opts.output_dir = (dir / policy).string();
  opts.make_learner = [&w](const learner_context& ctx) {
    return std::make_unique<bench::spin_learner>(
        ctx, [&w](uint64_t id, int64_t s) { return w.step_cost(id, s); });
  };
  auto result = run(exp, opts);
  if (!result) {
    fmt::print(stderr, "{}: {}\n", policy, to_string_pretty(result.error()));
    std::exit(1);
  }
  auto store = results_store::open(result->database_path);
  auto grants = (*store)->grants();
  std::vector<double> done(w.base.size(), 0);
  double first = 1e300;
  double busy = 0;
  for (const auto& g : *grants) {
    first = std::min(first, g.start);
    done[g.network_id] = std::max(done[g.network_id], g.end);
    busy += g.end - g.start;
  }
  outcome o;
  o.name = policy;
  o.makespan = *std::max_element(done.begin(), done.end()) - first;
  double sum = 0;
  for (auto d : done)
    sum += d - first;
  o.mean_completion = sum / static_cast<double>(done.size());
  o.busy = busy / (static_cast<double>(slots) * o.makespan);
  return o;
}

} // namespace

int main(int argc, char** argv) {
  size_t n = argc > 1 ? std::stoul(argv[1]) : 1660;
  double total = argc > 2 ? std::stod(argv[2]) : 20.0;
  int64_t slots = argc > 3 ? std::stoll(argv[3]) : 2;
  // Optional: the policies to run (comma-separated), e.g. to profile one.
  std::string only = argc > 4 ? argv[4] : "";
  auto w = make_workload(n, total);
  double longest = 0;
  for (size_t i = 0; i < n; ++i)
    longest = std::max(longest, w.network_work(i));
  auto bound = std::max(total / static_cast<double>(slots), longest);
  fmt::print("{} networks, {:.1f} s of work, {} slots; longest network "
             "{:.3f} s; lower bound {:.2f} s\n",
             n, total, slots, longest, bound);
  auto dir = fs::temp_directory_path() / "actortrain-bench-makespan";
  fs::remove_all(dir);
  std::vector<outcome> outcomes;
  auto wanted = [&](const std::string& name) {
    return only.empty() ||
           ("," + only + ",").find("," + name + ",") != std::string::npos;
  };
  if (wanted("static")) {
    outcomes.push_back(run_static(w, slots, true));
    outcomes.push_back(run_static(w, slots, false));
  }
  for (auto policy : all_choices<policy_kind>())
    if (wanted(name_of(policy)))
      outcomes.push_back(run_policy(w, slots, policy, dir));
  fs::remove_all(dir);
  fmt::print("| schedule | makespan (s) | makespan / lower bound | mean "
             "completion (s) | slots busy |\n|---|---|---|---|---|\n");
  for (const auto& o : outcomes)
    fmt::print("| {} | {:.2f} | {:.3f} | {:.2f} | {:.1f}% |\n", o.name,
               o.makespan, o.makespan / bound, o.mean_completion, 100 * o.busy);
  return 0;
}
