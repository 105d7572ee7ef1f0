#pragma once

// TorchScript modules built from C++ (Module::define), saved as Python's
// torch.jit.save would: test input for model.kind = "torchscript" without
// Python at test time.

#include <cstdint>
#include <string>
#include <vector>

namespace actortrain::test {

struct scripted_mlp {
  /// Layer widths, input first: {16, 32, 4} is 16-32-4 with a ReLU between.
  std::vector<int64_t> widths;
  /// Dropout after each hidden activation (in training mode): draws random
  /// numbers in forward.
  double dropout = 0;
  /// A top-level reset_parameters that draws every weight and bias from
  /// U(-bound, bound) with the global generator (0: none).
  double reset_bound = 0;
};

/// Saves a scripted MLP whose submodules fc0, fc1, ... hold `weight` and
/// `bias` like torch.nn.Linear (so the default initialisation applies).
void write_scripted_mlp(const std::string& path, const scripted_mlp& spec);

/// Saves a scripted module whose forward is `forward_body` (TorchScript,
/// one statement per line, indented by four spaces) with the parameters
/// `params` (name, shape; none for a module without parameters).
void write_scripted_module(
    const std::string& path, const std::string& forward_body,
    const std::vector<std::pair<std::string, std::vector<int64_t>>>& params);

} // namespace actortrain::test
