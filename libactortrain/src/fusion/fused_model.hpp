#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "actortrain/choices.hpp"
#include "models/step_losses.hpp"

namespace actortrain {

class builtin_learner;
struct fused_layer;

/// K built-in networks of one shape trained as one batched model: weights
/// stacked along a leading member dimension, linear layers as batched
/// matrix products (baddbmm), activations, pooling and the loss as one
/// operation each, one backward pass for the sum of the members' losses
/// (each member's gradient is its own), and an optimizer (SGD with momentum,
/// Adam, AdamW) that applies each member's learning rate, momentum and weight
/// decay, and keeps each member's step count. Convolutions stay one per
/// member: LibTorch's grouped convolution is slower than K small ones on CPU.
/// A member gets the same bits in a fused model of any size and any
/// composition (alone included), and what its unfused network gets up to
/// rounding (LibTorch's optimizers and sigmoid round a little differently).
class fused_model {
public:
  /// Stacks the weights and optimizer state of `members` (built-in learners
  /// of one shape and optimizer kind; they are left as they are). Throws
  /// std::invalid_argument naming what differs.
  explicit fused_model(const std::vector<builtin_learner*>& members);
  ~fused_model();

  int64_t size() const noexcept {
    return k_;
  }

  /// One optimizer step of every member on its own batch: `inputs`
  /// [K, B, sample...], `targets` [K, B]. Returns each member's mean loss.
  std::vector<double> train_step(const torch::Tensor& inputs,
                                 const torch::Tensor& targets);
  /// The same step, its losses left on the device to be read later.
  step_losses train_step_on_device(const torch::Tensor& inputs,
                                   const torch::Tensor& targets);

  /// Member k's outputs for `inputs` [N, sample...], as its unfused network
  /// computes them in evaluation mode.
  torch::Tensor predict(int64_t k, const torch::Tensor& inputs) const;

  /// Member k's weights (views), named like its unfused network's.
  std::vector<std::pair<std::string, torch::Tensor>> state(int64_t k) const;

  /// Writes member k's weights and optimizer state into `target`, a
  /// built-in learner of the same network: it then continues exactly where
  /// the member is.
  void unstack(int64_t k, builtin_learner& target) const;

  /// Multiplies member k's learning rate by `factor`.
  void scale_learning_rate(int64_t k, double factor);

  /// Whether `member`'s network is made of layers fusion knows.
  static bool can_fuse(builtin_learner& member);

  /// Whether the one-pass Adam (models/one_pass_adam) gives this model's
  /// tensor formula's bits for members with their own steps, rates and
  /// decays drawn from `seed`: checked once per process (seed 23) before
  /// Adam steps go through it; false where one_pass_adam is not active.
  static bool one_pass_adam_agrees(uint64_t seed);

private:
  using method = optimizer_kind;

  torch::Tensor forward(const torch::Tensor& inputs) const;
  void optimizer_step();
  /// A [K] tensor of `xs`, in the parameters' type and on their device.
  torch::Tensor per_member(const std::vector<double>& xs) const;
  /// `values` [K] viewed as [K, 1, ...] to broadcast against `like`.
  static torch::Tensor broadcast(const torch::Tensor& values,
                                 const torch::Tensor& like);

  /// The optimizer's per-member values that change only with the learning
  /// rate, as [K] tensors.
  struct hyperparameters {
    torch::Tensor neg_lr;
    torch::Tensor momentum;
    torch::Tensor weight_decay;
    /// AdamW's 1 - lr * weight_decay.
    torch::Tensor decay;
  };
  std::optional<hyperparameters> hyper_;

  int64_t k_ = 0;
  std::vector<fused_layer> layers_;
  std::vector<std::string> names_;
  /// Stacked parameters [K, ...] and their optimizer buffers (momentum or
  /// first moment; second moment).
  std::vector<torch::Tensor> params_;
  std::vector<torch::Tensor> moment1_;
  std::vector<torch::Tensor> moment2_;
  bool classification_ = true;
  method method_ = method::sgd;
  std::vector<double> lr_;
  std::vector<double> momentum_;
  std::vector<double> weight_decay_;
  std::vector<int64_t> steps_;
};

} // namespace actortrain
