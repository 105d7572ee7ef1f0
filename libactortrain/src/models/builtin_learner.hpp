#pragma once

#include <memory>

#include <torch/torch.h>

#include "actortrain/learner.hpp"

namespace actortrain {

/// LibTorch's optimizer archives hold the state but not the param groups'
/// options: loading one keeps the learning rate the optimizer had. These
/// write the learning rate beside them and restore it, so a checkpoint, a
/// retry or a PBT copy continues with the rate it was saved with.
void write_learning_rate(torch::serialize::OutputArchive& archive,
                         torch::optim::Optimizer& optimizer);
void read_learning_rate(torch::serialize::InputArchive& archive,
                        torch::optim::Optimizer& optimizer);

/// The built-in learner: an MLP or CNN (a Sequential of Conv2d / activation /
/// MaxPool2d blocks, Flatten, Linear / activation layers), its optimizer, and
/// cross-entropy (classification) or mean squared error (regression).
/// Internal: fusion stacks and unstacks these.
class builtin_learner : public learner {
public:
  explicit builtin_learner(const learner_context& ctx);

  double train_step(const torch::Tensor& inputs,
                    const torch::Tensor& targets) override;
  torch::Tensor train_step_on_device(const torch::Tensor& inputs,
                                     const torch::Tensor& targets) override;
  torch::Tensor predict(const torch::Tensor& inputs) override;
  std::vector<std::pair<std::string, torch::Tensor>> state() override;
  bool can_checkpoint() const override;
  void scale_learning_rate(double factor) override;
  void save(torch::serialize::OutputArchive& archive) override;
  void load(torch::serialize::InputArchive& archive) override;

  const model_plan& plan() const noexcept {
    return plan_;
  }

  torch::nn::Sequential& net() noexcept {
    return net_;
  }

  torch::optim::Optimizer& optimizer() noexcept {
    return *optimizer_;
  }

  const optimizer_options& options() const noexcept {
    return options_;
  }

  task_kind task() const noexcept {
    return task_;
  }

  /// The current learning rate (the configured one, scaled by retries).
  double learning_rate() const;

  /// The mean loss of outputs `out` for targets `y`.
  torch::Tensor loss_of(const torch::Tensor& out, const torch::Tensor& y) const;

private:
  model_plan plan_;
  torch::nn::Sequential net_;
  task_kind task_;
  optimizer_options options_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
};

} // namespace actortrain
