#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "actortrain/results.hpp"

namespace actortrain::app {

/// The final results as CSV (RFC 4180, a header row, one row per network):
/// for pandas, R and spreadsheets. Missing metrics are empty fields; numbers
/// print in the shortest form that reads back to the same double.
std::string format_csv(const run_result& r);

/// Every epoch's metrics of every network as CSV, one row per (network,
/// epoch), networks in id order. `epochs` maps a network id to its epochs.
std::string format_epochs_csv(
    const run_result& r,
    const std::unordered_map<uint64_t, std::vector<epoch_metrics>>& epochs);

} // namespace actortrain::app
