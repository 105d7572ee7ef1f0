#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "actortrain/results.hpp"

namespace actortrain::app {

/// The results as an aligned text table (networks, then ensembles).
std::string format_table(const run_result& r);

/// The results as JSON: {run, networks: [{id, name, status, metrics, ...}],
/// ensemble: {accuracy, loss, networks}, ensembles: [...]}. Missing metrics
/// are null; with `decisions`, also decisions: [{time, network, name, epoch,
/// rung, action, reason}].
std::string format_json(const run_result& r,
                        const std::vector<decision_record>& decisions = {});

/// The adaptive search's decisions as text: how many of each action, the
/// best network's configuration, then one line per decision ("" without a
/// search).
std::string format_decisions(const run_result& r,
                             const std::vector<decision_record>& decisions);

/// Each node's row of a run with worker nodes (`nodes` of format_json and
/// of the report): node ("this process" for the coordinator's own slots),
/// slots, grants, queued grants, busy seconds and fraction, moves in, bytes
/// of state and of data received.
nlohmann::json node_rows(const run_result& r);

/// The short summary printed at the end of `actortrain run`.
std::string format_summary(const run_result& r);

} // namespace actortrain::app
