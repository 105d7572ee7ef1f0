#pragma once

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>

namespace actortrain {

/// The scalars of one parameter's Adam update as LibTorch's kernels see
/// them (its doubles converted to float).
struct adam_scalars {
  float beta1;
  float one_minus_beta1;
  float beta2;
  float one_minus_beta2;
  float sqrt_bias_correction2;
  float eps;
  float minus_step_size;
  float weight_decay;
  /// Whether the gradient gets p * weight_decay added (as LibTorch's Adam
  /// does only when weight_decay != 0).
  bool decays;
  /// AdamW: p is multiplied by `keep` (1 - lr * weight_decay) first.
  float keep = 1;
  bool shrinks = false;
};

/// The scalars of an update with these betas, eps, square root of the
/// second bias correction and -(lr / first bias correction), each rounded
/// from LibTorch's double to float as its kernels round it; no decay yet.
adam_scalars adam_scalars_of(double beta1, double beta2, double eps,
                             double sqrt_bias_correction2,
                             double minus_step_size);

/// Adam's weight decay: the gradient gets p * `weight_decay` added.
adam_scalars with_gradient_decay(adam_scalars s, double weight_decay);

/// AdamW's weight decay: p is multiplied by `keep` (1 - lr * weight decay)
/// first.
adam_scalars with_shrinking_weights(adam_scalars s, double keep);

/// One Adam update of `n` floats in one pass, each element rounded as
/// LibTorch's composite ops round it (see one_pass_adam). Only where
/// one_pass_adam::active().
void adam_in_one_pass(float* p, const float* grad, float* exp_avg,
                      float* exp_avg_sq, int64_t n, const adam_scalars& s);

/// LibTorch's Adam with its CPU update done in one pass over each
/// parameter instead of eight (mul_, add_, mul_, addcmul_, sqrt, div, add_,
/// addcdiv_, two of them allocating): the same state, options, save and
/// load, and the same bits. Each element is computed with the roundings
/// LibTorch's kernels give it (fused multiply-adds where its vectorized
/// kernels use them), which a check at first use confirms against
/// `torch::optim::Adam` itself; where it does not hold (another CPU
/// capability, no FMA, another LibTorch), or for tensors it does not take
/// (other devices or dtypes, amsgrad, sparse gradients), the step is
/// LibTorch's own. Adam was 30-50% of a 100k-200k-parameter MLP's step.
class one_pass_adam : public torch::optim::Adam {
public:
  using torch::optim::Adam::Adam;

  torch::Tensor step(LossClosure closure = nullptr) override;

  /// Whether this process updates in one pass (the check at first use
  /// passed, and ACTORTRAIN_ONE_PASS_ADAM is not 0); false makes every
  /// step LibTorch's.
  static bool active();
};

/// LibTorch's AdamW, its CPU update in one pass the same way (p scaled by
/// 1 - lr * weight_decay, then Adam's update without decay on the
/// gradient): the same state and bits, checked at first use.
class one_pass_adamw : public torch::optim::AdamW {
public:
  using torch::optim::AdamW::AdamW;

  torch::Tensor step(LossClosure closure = nullptr) override;

  static bool active();
};

} // namespace actortrain
