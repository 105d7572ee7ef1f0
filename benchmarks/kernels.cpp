// actortrain's own CPU kernels beside LibTorch's, on one thread as a slot
// runs them: the 2x2 max pooling, alone and inside a small CNN's training
// step (W3/W4's CNN: conv 4, conv 8, fc 16, batch 64), and the one-pass
// Adam, alone and inside MLPs' training steps (W2's and W4's shapes, batch
// 64). Each gives LibTorch's bits (tests/test_learner.cpp); this measures
// only the time. Prints one JSON line.
//
// usage: bench_kernels [repeats=300]

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>

#include <actortrain/learner.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "libtorch_layers.hpp"
#include "models/max_pool.hpp"
#include "models/one_pass_adam.hpp"

using namespace actortrain;
using json = nlohmann::json;

namespace {

/// Microseconds per call of `f`, after a warm-up.
double micros(int repeats, const std::function<void()>& f) {
  for (int i = 0; i < repeats / 10 + 1; ++i)
    f();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < repeats; ++i)
    f();
  return std::chrono::duration<double, std::micro>(
             std::chrono::steady_clock::now() - t0)
             .count() /
         repeats;
}

/// The CNN with actortrain's pooling (`ours`) or LibTorch's MaxPool2d.
torch::nn::Sequential cnn(const model_plan& plan, bool ours) {
  torch::manual_seed(0);
  return ours ? build_builtin_model(plan) : libtorch_layers(plan);
}

} // namespace

int main(int argc, char** argv) {
  int repeats = argc > 1 ? std::stoi(argv[1]) : 300;
  torch::set_num_threads(1);
  json result;
  for (auto shape : {std::vector<int64_t>{64, 4, 28, 28},
                     std::vector<int64_t>{64, 8, 14, 14}}) {
    auto x = torch::relu(torch::randn(shape)).requires_grad_();
    auto name =
        fmt::format("{}x{}x{}x{}", shape[0], shape[1], shape[2], shape[3]);
    result["pool_" + name] = {
        {"libtorch_us", micros(repeats, [&] { torch::max_pool2d(x, 2); })},
        {"actortrain_us", micros(repeats, [&] { max_pool_2x2(x); })}};
  }
  model_options m;
  m.kind = model_kind::cnn;
  m.channels = {4, 8};
  m.hidden = {16};
  auto plan = plan_model(m, {1, 28, 28}, 10);
  if (!plan)
    return 1;
  auto x = torch::rand({64, 1, 28, 28});
  auto y = torch::randint(0, 10, {64});
  for (bool ours : {false, true}) {
    auto net = cnn(*plan, ours);
    torch::optim::Adam opt(net->parameters(), 1e-3);
    auto step = micros(repeats, [&] {
      opt.zero_grad();
      torch::nn::functional::cross_entropy(net->forward(x), y).backward();
      opt.step();
    });
    auto forward = micros(repeats, [&] {
      torch::NoGradGuard no_grad;
      net->forward(x);
    });
    result[ours ? "cnn_actortrain" : "cnn_libtorch"] = {
        {"step_ms", step / 1e3}, {"no_grad_forward_ms", forward / 1e3}};
  }
  result["cnn_step_speedup"] =
      result["cnn_libtorch"]["step_ms"].get<double>() /
      result["cnn_actortrain"]["step_ms"].get<double>();
  result["one_pass_adam_active"] = one_pass_adam::active();
  for (auto hidden : {std::vector<int64_t>{128}, std::vector<int64_t>{256},
                      std::vector<int64_t>{128, 64}}) {
    model_options mlp;
    mlp.hidden = hidden;
    auto mlp_plan = plan_model(mlp, {784}, 10);
    if (!mlp_plan)
      return 1;
    auto inputs = torch::rand({64, 784});
    json row;
    for (bool ours : {false, true}) {
      torch::manual_seed(0);
      auto net = build_builtin_model(*mlp_plan);
      auto options = torch::optim::AdamOptions(1e-3);
      std::unique_ptr<torch::optim::Optimizer> opt;
      if (ours)
        opt = std::make_unique<one_pass_adam>(net->parameters(), options);
      else
        opt = std::make_unique<torch::optim::Adam>(net->parameters(), options);
      auto step = micros(repeats, [&] {
        opt->zero_grad();
        torch::nn::functional::cross_entropy(net->forward(inputs), y)
            .backward();
        opt->step();
      });
      auto update = micros(repeats, [&] { opt->step(); });
      row[ours ? "actortrain" : "libtorch"] = {{"step_ms", step / 1e3},
                                               {"adam_ms", update / 1e3}};
    }
    row["step_speedup"] = row["libtorch"]["step_ms"].get<double>() /
                          row["actortrain"]["step_ms"].get<double>();
    result[fmt::format("mlp_784-{}-10", fmt::join(hidden, "-"))] = row;
  }
  std::printf("%s\n", result.dump().c_str());
  return 0;
}
