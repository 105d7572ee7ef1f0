#include "models/step_losses.hpp"

#include <torch/types.h>

namespace actortrain {

namespace {

/// LibTorch's mean cross-entropy of one batch from its per-sample losses,
/// summed in the same order (nll_loss's cascade of partial sums, 16 per
/// level) so the reported loss is the unfused network's to the last bit.
double mean_like_nll_loss(const float* losses, int64_t n) {
  constexpr int levels = 8;
  constexpr int64_t power = 4;
  constexpr int64_t mask = (int64_t{1} << power) - 1;
  float partial[levels] = {0};
  for (int64_t b = 0; b < n; ++b) {
    partial[0] += losses[b];
    for (int j = 0; j + 1 < levels; ++j) {
      if ((b & (mask << (j * power))) != 0)
        break;
      partial[j + 1] += partial[j];
      partial[j] = 0;
    }
  }
  float total = 0;
  for (auto x : partial)
    total += x;
  return static_cast<double>(total / static_cast<float>(n));
}

} // namespace

std::vector<std::vector<double>>
read_losses(const std::vector<step_losses>& steps) {
  std::vector<std::vector<double>> result;
  if (steps.empty())
    return result;
  // One step read at once (every step on a CPU): as few operations as
  // reading it always took, since a tiny network's step is a few of them.
  if (steps.size() == 1 && !steps.front().per_sample &&
      steps.front().values.numel() == 1) {
    result.push_back({steps.front().values.item<double>()});
    return result;
  }
  std::vector<torch::Tensor> values;
  values.reserve(steps.size());
  for (const auto& s : steps)
    values.push_back(s.values.detach());
  auto n = static_cast<int64_t>(steps.size());
  if (steps.front().per_sample) {
    auto host =
        torch::stack(values).to(torch::kCPU, torch::kFloat32).contiguous();
    auto k = host.size(1);
    auto b = host.size(2);
    const auto* p = host.data_ptr<float>();
    for (int64_t i = 0; i < n; ++i) {
      auto& row = result.emplace_back(static_cast<size_t>(k));
      for (int64_t j = 0; j < k; ++j)
        row[static_cast<size_t>(j)] =
            mean_like_nll_loss(p + (i * k + j) * b, b);
    }
    return result;
  }
  auto host = torch::stack(values)
                  .to(torch::kCPU, torch::kFloat64)
                  .contiguous()
                  .view({n, -1});
  auto k = host.size(1);
  const auto* p = host.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i)
    result.emplace_back(p + i * k, p + (i + 1) * k);
  return result;
}

} // namespace actortrain
