// The machine's limit beside a fused MLP step: a float32 GEMM and a memory
// copy measured in the same process, then fused_model::train_step for K
// members of one MLP shape, its parts timed alone (gathering the batches,
// the first layer's products), all on one thread as a slot runs it.
// Prints one JSON line; benchmarks/run_efficiency.py puts it in a table.
//
// usage: bench_fused_step [members=32] [shape=784-16-10] [batch=64]
//                         [steps=200] [threads=1]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <actortrain/actortrain.hpp>
#include <actortrain/dataset.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fusion/fused_model.hpp"
#include "models/builtin_learner.hpp"

using namespace actortrain;
using json = nlohmann::json;

namespace {

/// The best of `repeats` timings of `f` (seconds): the least disturbed.
double best_seconds(int repeats, const std::function<void()>& f) {
  double best = 1e300;
  for (int i = 0; i < repeats; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(
                              std::chrono::steady_clock::now() - t0)
                              .count());
  }
  return best;
}

/// GFLOP/s of one n^3 float32 GEMM through LibTorch (its BLAS).
double gemm_gflops(int64_t n) {
  auto a = torch::randn({n, n});
  auto b = torch::randn({n, n});
  auto c = torch::empty({n, n});
  torch::mm_out(c, a, b); // warm-up: pages, BLAS buffers
  auto s = best_seconds(5, [&] { torch::mm_out(c, a, b); });
  return 2.0 * static_cast<double>(n * n * n) / s / 1e9;
}

/// GB/s of copying 256 MiB (read + write counted).
double copy_gbps() {
  auto a = torch::ones({64 << 20});
  auto b = torch::empty_like(a);
  b.copy_(a);
  auto s = best_seconds(5, [&] { b.copy_(a); });
  return 2.0 * static_cast<double>(a.nbytes()) / s / 1e9;
}

std::vector<int64_t> parse_shape(const std::string& s) {
  std::vector<int64_t> result;
  size_t start = 0;
  while (start <= s.size()) {
    auto end = s.find('-', start);
    result.push_back(std::stoll(s.substr(start, end - start)));
    if (end == std::string::npos)
      break;
    start = end + 1;
  }
  return result;
}

} // namespace

int main(int argc, char** argv) {
  int64_t k = argc > 1 ? std::stoll(argv[1]) : 32;
  auto shape = parse_shape(argc > 2 ? argv[2] : "784-16-10");
  int64_t batch = argc > 3 ? std::stoll(argv[3]) : 64;
  int steps = argc > 4 ? std::stoi(argv[4]) : 200;
  int threads = argc > 5 ? std::stoi(argv[5]) : 1;
  at::set_num_threads(threads);
  at::globalContext().setFlushDenormal(true);

  json out;
  out["threads"] = threads;
  out["gemm_gflops"] = gemm_gflops(2048);
  out["gemm_1024_gflops"] = gemm_gflops(1024);
  out["copy_gbps"] = copy_gbps();

  // Synthetic data of Fashion-MNIST's size: the step's cost does not depend
  // on the values.
  auto d = std::make_shared<dataset>();
  auto features = shape.front();
  d->feature_shape = {features};
  d->train_x = torch::rand({60000, features});
  d->train_y = torch::randint(0, shape.back(), {60000});
  d->test_x = d->train_x.slice(0, 0, 1000);
  d->test_y = d->train_y.slice(0, 0, 1000);
  d->classes = shape.back();

  network_config cfg;
  cfg.model.kind = model_kind::mlp;
  cfg.model.hidden.assign(shape.begin() + 1, shape.end() - 1);
  cfg.optimizer.kind = optimizer_kind::adam;
  cfg.optimizer.lr = 1e-3;
  cfg.train.batch_size = batch;
  std::vector<std::unique_ptr<builtin_learner>> learners;
  std::vector<builtin_learner*> members;
  for (int64_t i = 0; i < k; ++i) {
    network_spec spec;
    spec.id = static_cast<uint64_t>(i);
    spec.seed = derive_seed(7, spec.id);
    spec.config = cfg;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(spec.seed);
    learner_context ctx{spec, *d, torch::kCPU, gen};
    learners.push_back(std::make_unique<builtin_learner>(ctx));
    members.push_back(learners.back().get());
  }
  fused_model fused{members};

  // Each member's batch: random rows, as a shuffled shard gives.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  std::vector<torch::Tensor> idx;
  for (int i = 0; i < 16; ++i)
    idx.push_back(torch::randint(0, 60000, {k * batch}, gen));
  auto gather = [&](int i) {
    const auto& id = idx[static_cast<size_t>(i % 16)];
    return std::make_pair(
        d->train_x.index_select(0, id).view({k, batch, features}),
        d->train_y.index_select(0, id).view({k, batch}));
  };
  for (int i = 0; i < 5; ++i) {
    auto [x, y] = gather(i);
    fused.train_step(x, y);
  }
  auto step_s = best_seconds(3,
                             [&] {
                               for (int i = 0; i < steps; ++i) {
                                 auto [x, y] = gather(i);
                                 fused.train_step(x, y);
                               }
                             }) /
                steps;
  auto gather_s = best_seconds(3,
                               [&] {
                                 for (int i = 0; i < steps; ++i)
                                   gather(i);
                               }) /
                  steps;
  // The first layer's forward alone, as the fused model computes it.
  auto x = gather(0).first;
  auto w = torch::randn({k, shape[1], features});
  auto bias = torch::randn({k, shape[1]});
  auto first_s =
      best_seconds(3,
                   [&] {
                     for (int i = 0; i < steps; ++i)
                       torch::baddbmm(bias.unsqueeze(1), x, w.transpose(1, 2));
                   }) /
      steps;

  // Model FLOPs of a step: 2 per multiply-add forward, 4 backward (weight
  // and input gradients), the convention the figures use.
  double macs = 0;
  for (size_t i = 0; i + 1 < shape.size(); ++i)
    macs += static_cast<double>(shape[i] * shape[i + 1]);
  double flop = 6.0 * macs * static_cast<double>(batch * k);
  out["members"] = k;
  out["shape"] = argc > 2 ? argv[2] : "784-16-10";
  out["batch"] = batch;
  out["step_ms"] = step_s * 1e3;
  out["gather_ms"] = gather_s * 1e3;
  out["first_layer_forward_ms"] = first_s * 1e3;
  out["network_steps_per_s"] = static_cast<double>(k) / step_s;
  out["step_gflops"] = flop / step_s / 1e9;
  out["first_layer_forward_gflops"] =
      2.0 * static_cast<double>(shape[0] * shape[1] * batch * k) / first_s /
      1e9;
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
