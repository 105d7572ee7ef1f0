#pragma once

#include <torch/optim/optimizer.h>
#include <torch/version.h>

namespace actortrain {

/// The key LibTorch's optimizers keep parameter `p`'s state under: its
/// TensorImpl's address, as a string in LibTorch 1.x, as a pointer in 2.x.
inline auto state_key(const torch::Tensor& p) {
#if TORCH_VERSION_MAJOR >= 2
  return static_cast<void*>(p.unsafeGetTensorImpl());
#else
  return c10::guts::to_string(p.unsafeGetTensorImpl());
#endif
}

/// The optimizer state LibTorch keeps for parameter `p`, or null.
inline torch::optim::OptimizerParamState* state_of(torch::optim::Optimizer& opt,
                                                   const torch::Tensor& p) {
  auto it = opt.state().find(state_key(p));
  return it == opt.state().end() ? nullptr : it->second.get();
}

} // namespace actortrain
