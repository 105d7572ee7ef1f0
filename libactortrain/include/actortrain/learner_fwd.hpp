#pragma once

#include <functional>
#include <memory>

namespace actortrain {

class learner;
struct learner_context;

/// Builds a network's learner; called on the slot that first trains it.
using learner_factory =
    std::function<std::unique_ptr<learner>(const learner_context&)>;

} // namespace actortrain
