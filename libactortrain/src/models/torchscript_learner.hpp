#pragma once

#include <memory>

#include "actortrain/learner.hpp"
#include "models/script_model.hpp"

namespace actortrain {

/// A network's own copy of a TorchScript module (loaded from `model`'s
/// bytes), re-initialised from the network's generator, with the optimizer
/// and loss of its configuration.
std::unique_ptr<learner> make_torchscript_learner(const learner_context& ctx,
                                                  const script_model& model);

} // namespace actortrain
