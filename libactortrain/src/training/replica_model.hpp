#pragma once

// Includes LibTorch: only the replicated steps' sources include it.

#include <vector>

#include <torch/torch.h>

namespace actortrain {

class builtin_learner;

/// A copy of a built-in network's model in which one replica computes its
/// gradients (synchronous and asynchronous replicas alike): built from the
/// network's plan, it takes the network's weights before each pass.
class replica_model {
public:
  replica_model(const builtin_learner& net, torch::Device device);

  /// Copies `weights` (the network's parameters, in order) in and clears
  /// the gradients. Reading them while the network computes with them is
  /// safe: a forward and backward pass only read the weights.
  void take_weights(const std::vector<torch::Tensor>& weights);

  torch::Tensor forward(const torch::Tensor& x) {
    return net_->forward(x);
  }

  /// Its parameters, in the network's order (their gradients after a pass).
  const std::vector<torch::Tensor>& params() const noexcept {
    return params_;
  }

private:
  torch::nn::Sequential net_;
  std::vector<torch::Tensor> params_;
};

} // namespace actortrain
