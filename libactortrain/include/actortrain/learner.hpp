#pragma once

// Includes LibTorch: only code that implements a learner needs this header.

#include <memory>
#include <string>

#include <torch/torch.h>

#include "actortrain/dataset.hpp"
#include "actortrain/learner_fwd.hpp"
#include "actortrain/model_plan.hpp"
#include "actortrain/network_spec.hpp"

namespace actortrain {

/// What a learner is built from. The generator is seeded from the network's
/// seed: draw all randomness (initial weights, dropout) from it, never from
/// the global generator, so results do not depend on which slot ran them.
struct learner_context {
  const network_spec& spec;
  const dataset& data;
  torch::Device device;
  torch::Generator& generator;
};

/// The training step of one network: a model, its optimizer and its loss.
/// A learner is only ever used by one thread at a time.
class learner {
public:
  virtual ~learner();

  /// Trains on one batch and returns the batch's mean loss.
  virtual double train_step(const torch::Tensor& inputs,
                            const torch::Tensor& targets) = 0;

  /// The same step, its loss left where it was computed: a one-element
  /// tensor that a GPU may still be working on. The runtime reads a run of
  /// steps' losses back at once instead of waiting for each step; the
  /// default wraps train_step's value (a learner on a GPU overrides it).
  virtual torch::Tensor train_step_on_device(const torch::Tensor& inputs,
                                             const torch::Tensor& targets);

  /// Returns the model's outputs in evaluation mode: class logits
  /// [batch, classes] for classification, values [batch] or [batch, 1] for
  /// regression.
  virtual torch::Tensor predict(const torch::Tensor& inputs) = 0;

  /// Names and tensors of the weights to save (parameters and buffers).
  virtual std::vector<std::pair<std::string, torch::Tensor>> state() = 0;

  /// The cost of the last `train_step` in seconds, when the learner knows
  /// it better than a clock (simulations, scripted tests, benchmarks);
  /// negative (the default) lets the runtime measure it.
  virtual double last_step_seconds() const;

  /// Whether `save` and `load` are implemented. A learner that cannot save
  /// starts over on resume and on retry instead of continuing from a
  /// checkpoint.
  virtual bool can_checkpoint() const;

  /// Writes everything needed to continue training exactly: weights and
  /// optimizer state (and any generator a training step draws from).
  virtual void save(torch::serialize::OutputArchive& archive);

  /// Restores what `save` wrote, into a learner freshly built for the same
  /// network.
  virtual void load(torch::serialize::InputArchive& archive);

  /// Multiplies the learning rate by `factor` (retries with
  /// `train.retry_lr_factor`); the default does nothing.
  virtual void scale_learning_rate(double factor);
};

/// Fills a module's parameters like PyTorch's defaults (Kaiming-uniform
/// weights, uniform biases in +-1/sqrt(fan_in)) from `generator`.
void init_parameters(torch::nn::Module& module, torch::Generator& generator);

/// Builds the built-in MLP / CNN learner for `ctx.spec.config`.
std::unique_ptr<learner> make_builtin_learner(const learner_context& ctx);

/// The built-in model's plan for `data`'s samples. For a model the data
/// cannot take (check_builtin_model says why), the plan of its dense layers.
model_plan builtin_model_plan(const model_options& m, const dataset& data);

/// The LibTorch Sequential of a plan, in the plan's order (its parameters
/// uninitialised: init_parameters draws them).
torch::nn::Sequential build_builtin_model(const model_plan& plan);

/// Multiply-adds of one forward pass of the built-in model for one sample:
/// a cost hint for scheduling networks that have not run yet.
double builtin_model_cost(const model_options& m, const dataset& data);

/// Builds an optimizer for `params` from `opts`.
std::unique_ptr<torch::optim::Optimizer>
make_optimizer(const optimizer_options& opts,
               std::vector<torch::Tensor> params);

/// Encodes named tensors as a LibTorch pickle that Python's `torch.load`
/// reads as a dict (a state dict).
std::vector<char>
encode_weights(const std::vector<std::pair<std::string, torch::Tensor>>& w);

/// Decodes a file written by `encode_weights`.
std::vector<std::pair<std::string, torch::Tensor>>
decode_weights(const std::vector<char>& bytes);

} // namespace actortrain

namespace actortrain {

/// Checks that the built-in model described by `m` can take `data`'s samples
/// (a CNN needs images large enough for its pooling); the error names the
/// key.
caf::error check_builtin_model(const model_options& m, const dataset& data);

} // namespace actortrain
