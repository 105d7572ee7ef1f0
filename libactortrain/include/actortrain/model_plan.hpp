#pragma once

// The built-in model's layers, planned once per data shape. Building the
// LibTorch model, fusing it, sizing fused groups, the scheduler's cost hint
// and the check that a model fits its data all read this plan.

#include <cstdint>
#include <vector>

#include <caf/expected.hpp>

#include "actortrain/options.hpp"

namespace actortrain {

/// One module of a built-in model, in the order its Sequential holds them.
struct planned_layer {
  /// conv: 3x3, stride 1, padding 1, with a bias; pool: 2x2 max-pool;
  /// flatten: a view; linear: with a bias; activation: the model's.
  enum kind_t : uint8_t { conv, activation, pool, flatten, linear };
  kind_t kind;
  /// Shape of one sample entering and leaving: {channels, height, width}
  /// or {features}.
  std::vector<int64_t> in;
  std::vector<int64_t> out;
  /// Weights and biases.
  int64_t parameters = 0;
  /// Multiply-adds of the forward pass, per sample.
  double macs = 0;
};

/// A built-in MLP or CNN for samples of one shape.
struct model_plan {
  std::vector<int64_t> input;
  activation_kind activation = activation_kind::relu;
  std::vector<planned_layer> layers;

  int64_t parameters() const;
  /// Multiply-adds of one forward pass for one sample.
  double macs() const;
  /// Values per sample the backward pass keeps: the input and each layer's
  /// output (a flatten is a view and keeps nothing).
  double activations() const;
  /// Bytes training on batches of `batch_size` needs: weights, gradients and
  /// two optimizer buffers, and the activations twice (forward values and
  /// their gradients). An estimate, for sizing fused groups.
  double training_bytes(int64_t batch_size) const;
};

/// Plans model `m` for samples of shape `sample` with `outputs` outputs. A
/// CNN needs image samples (channels, height, width) large enough for its
/// pooling; the error names the key.
caf::expected<model_plan> plan_model(const model_options& m,
                                     const std::vector<int64_t>& sample,
                                     int64_t outputs);

} // namespace actortrain
