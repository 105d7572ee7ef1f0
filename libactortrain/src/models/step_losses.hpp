#pragma once

#include <vector>

#include <torch/types.h>

namespace actortrain {

/// One step's losses as the step left them, on its device: a GPU step does
/// not wait for the host to read its loss (no `.item()` per step); the
/// runtime reads a run of steps back at once (read_losses).
struct step_losses {
  /// [k] mean losses (one per member of a cohort; a lone network's may be
  /// a one-element tensor of any shape), or, with `per_sample`,
  /// [k, b] per-sample cross-entropies whose means the host takes the way
  /// LibTorch's nll_loss sums them, so a fused member reports the loss its
  /// unfused network would, to the last bit.
  torch::Tensor values;
  bool per_sample = false;
};

/// Each step's members' mean losses, in order: one copy to the host (and
/// one wait for the device) for all of `steps`, which come from one cohort
/// (the same shape, dtype and kind each).
std::vector<std::vector<double>>
read_losses(const std::vector<step_losses>& steps);

} // namespace actortrain
