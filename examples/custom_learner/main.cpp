// Research code plugging its own torch::nn::Module and training step into
// actortrain: 8 residual MLPs with label smoothing and gradient clipping,
// trained as actors, results returned as C++ values.

#include <cstdio>

#include <actortrain/actortrain.hpp>
#include <actortrain/learner.hpp>

namespace atr = actortrain;

// A model actortrain knows nothing about: one residual block.
struct residual_mlp : torch::nn::Module {
  residual_mlp(int64_t in, int64_t width, int64_t out)
      : input(register_module("input", torch::nn::Linear(in, width))),
        block(register_module("block", torch::nn::Linear(width, width))),
        output(register_module("output", torch::nn::Linear(width, out))) {}
  torch::Tensor forward(torch::Tensor x) {
    auto h = torch::relu(input(x.flatten(1)));
    h = h + torch::relu(block(h)); // the residual connection
    return output(h);
  }
  torch::nn::Linear input, block, output;
};

// The training step: label smoothing and gradient clipping.
class residual_learner : public atr::learner {
public:
  explicit residual_learner(const atr::learner_context& ctx)
      : model_(std::make_shared<residual_mlp>(ctx.data.features(), 64,
                                              ctx.data.outputs())),
        optimizer_(model_->parameters(), torch::optim::AdamOptions(3e-3)) {
    // Draw initial weights from the network's own generator: results then
    // depend on the seed alone, not on which slot ran the network.
    atr::init_parameters(*model_, ctx.generator);
    model_->to(ctx.device);
  }

  double train_step(const torch::Tensor& x, const torch::Tensor& y) override {
    model_->train();
    optimizer_.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(
        model_->forward(x), y,
        torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(0.1));
    loss.backward();
    torch::nn::utils::clip_grad_norm_(model_->parameters(), 1.0);
    optimizer_.step();
    return loss.item<double>();
  }

  torch::Tensor predict(const torch::Tensor& x) override {
    model_->eval();
    torch::NoGradGuard no_grad;
    return model_->forward(x);
  }

  std::vector<std::pair<std::string, torch::Tensor>> state() override {
    std::vector<std::pair<std::string, torch::Tensor>> result;
    for (auto& p : model_->named_parameters())
      result.emplace_back(p.key(), p.value());
    return result;
  }

private:
  std::shared_ptr<residual_mlp> model_;
  torch::optim::Adam optimizer_;
};

int main() {
  atr::experiment exp;
  exp.name = "custom-learner";
  exp.data.format =
      atr::data_format::synthetic; // 6 Gaussian blobs in 20 dimensions
  exp.data.features = 20;
  exp.data.classes = 6;
  exp.data.noise = 4.0; // overlapping blobs: not trivially separable
  exp.data.partition = atr::partition_scheme::bootstrap;
  exp.base.train.networks = 8; // the ensemble's size
  exp.base.train.epochs = 5;
  exp.base.train.batch_size = 32;
  exp.base.train.seed = 42;
  exp.scheduler.slots = 2; // two CPU threads compute at once
  atr::run_options opts;
  // opts.output_dir stays empty: a fresh runs/custom-learner-<time> folder.
  opts.make_learner = [](const atr::learner_context& ctx) {
    return std::make_unique<residual_learner>(ctx);
  };
  auto result = atr::run(exp, opts);
  if (!result) {
    std::fprintf(stderr, "error: %s\n",
                 atr::to_string_pretty(result.error()).c_str());
    return 1;
  }
  for (const auto& n : result->networks)
    std::printf("%s  test accuracy %.3f\n", n.name.c_str(), n.test_accuracy);
  std::printf("ensemble of %lld: test accuracy %.3f\n",
              static_cast<long long>(result->overall_ensemble()->networks),
              result->overall_ensemble()->accuracy);
  std::printf("results: %s\n", result->database_path.c_str());
  return 0;
}
