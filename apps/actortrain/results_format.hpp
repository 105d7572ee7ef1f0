#pragma once

#include <string>

#include "actortrain/results.hpp"

namespace actortrain::app {

/// The results as an aligned text table (networks, then ensembles).
std::string format_table(const run_result& r);

/// The results as JSON: {run, networks: [{id, name, status, metrics, ...}],
/// ensemble: {accuracy, loss, networks}, ensembles: [...]}. Missing metrics
/// are null.
std::string format_json(const run_result& r);

/// The short summary printed at the end of `actortrain run`.
std::string format_summary(const run_result& r);

} // namespace actortrain::app
