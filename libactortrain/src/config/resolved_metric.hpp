#pragma once

#include "actortrain/choices.hpp"

namespace actortrain {

struct experiment;

/// The metric scheduler.metric = "auto" stands for in `exp`: the validation
/// accuracy for classification, the validation loss for regression (the
/// metric itself otherwise).
search_metric resolved_metric(const experiment& exp);

} // namespace actortrain
