#pragma once

#include <string>
#include <vector>

#include <caf/expected.hpp>
#include <nlohmann/json_fwd.hpp>

#include "actortrain/results.hpp"
#include "actortrain/store.hpp"

namespace actortrain::app {

/// Everything a report is drawn from, read from a run's store.
struct report_inputs {
  run_result run;
  results_store::provenance_entry provenance;
  std::vector<epoch_metrics> epochs;
  std::vector<grant_record> grants;
  std::vector<ensemble_point> ensemble_curve;
  std::vector<results_store::error_entry> errors;
  /// The adaptive search's decisions (none without scheduler.search).
  std::vector<decision_record> decisions;
};

/// Reads a run folder's store for a report (through the WAL: a run in
/// progress is never blocked).
caf::expected<report_inputs> read_report_inputs(const std::string& dir);

/// Individual learning curves drawn when a run has at most this many
/// networks; above it, each configuration shows its median, its band and
/// its best few.
constexpr size_t all_curves_limit = 64;

/// The data a report page draws, as JSON (docs/report.md lists the fields):
/// summaries (per configuration: median and 10th-90th percentile band per
/// epoch; never one series per network of a large run), the final metrics
/// and schedule as columns, numbers rounded to what a chart can show.
nlohmann::json report_data(const report_inputs& in);

} // namespace actortrain::app
