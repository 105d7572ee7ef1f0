#pragma once

#include <memory>
#include <string>
#include <vector>

#include <caf/expected.hpp>
#include <torch/types.h>

#include "actortrain/dataset.hpp"
#include "actortrain/experiment.hpp"
#include "actortrain/learner_fwd.hpp"
#include "actortrain/network_spec.hpp"
#include "models/script_model.hpp"

namespace actortrain {

/// What an experiment expands into before anything trains: its data, its
/// networks and their shards. The coordinator and every worker derive it
/// from the same experiment, and get the same networks, seeds and shards.
struct run_context {
  experiment exp;
  std::shared_ptr<const dataset> data;
  std::vector<network_spec> specs;
  /// One shard per network (bootstrap samples are drawn here too).
  std::vector<torch::Tensor> shards;
  learner_factory make_learner;
  /// The TorchScript modules of model.kind = "torchscript" configurations
  /// (none with a custom learner: its factory builds every network).
  script_models scripts;
};

/// Validates `exp`, loads its data, checks that its models fit it, and
/// expands it. Errors name the key, file or value that is wrong.
caf::expected<std::shared_ptr<run_context>>
make_run_context(const experiment& exp, learner_factory make_learner);

/// A hash of a dataset's contents (every tensor's bytes and shape), to check
/// that two nodes train on the same data.
std::string content_hash(const dataset& data);

} // namespace actortrain
