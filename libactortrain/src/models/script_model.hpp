#pragma once

// TorchScript models (model.kind = "torchscript"): a module file written by
// Python's torch.jit.save, read once per run and checked on one batch before
// anything trains; every network then loads its own copy from the bytes and
// draws its own initial weights (docs/torchscript.md). Free of LibTorch's
// headers: the run's setup and the cluster code only pass these around.

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <caf/expected.hpp>

#include "actortrain/dataset.hpp"
#include "actortrain/experiment.hpp"

namespace actortrain {

/// One module file, as read when the run was set up.
struct script_model {
  /// model.path, resolved.
  std::string path;
  std::string bytes;
  /// CRC-32 and size of the bytes: two nodes must train the same module.
  std::string hash;
  /// Parameters (elements) of the module: the scheduler's cost hint.
  int64_t parameters = 0;
};

/// The run's module files by resolved path.
using script_models =
    std::map<std::string, std::shared_ptr<const script_model>>;

/// Reads the module file of every TorchScript configuration of `exp` and
/// checks it on a batch of `data`: the file must be TorchScript, have
/// parameters of its own for each network to draw, take the data's samples
/// (or model.input_shape) and return one output per class (or one value for
/// regression), and train for a step. Errors name the key, the file and the
/// shapes. A file in `files` (bytes by path; a worker's, sent by its
/// coordinator) is taken from there instead of read.
caf::expected<script_models>
load_script_models(const experiment& exp, const dataset& data,
                   const std::map<std::string, std::string>& files = {});

/// The module file of a network's configuration; null for built-in models.
std::shared_ptr<const script_model> script_for(const script_models& models,
                                               const network_config& config);

} // namespace actortrain
