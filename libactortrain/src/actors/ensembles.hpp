#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "actortrain/dataset.hpp"
#include "actortrain/network_spec.hpp"
#include "actortrain/results.hpp"
#include "actortrain/store.hpp"

namespace actortrain {

/// The ensembles of a run that ended: each sweep point's and the overall one,
/// and how their accuracy grows with the number of members.
struct ensemble_evaluation {
  std::vector<ensemble_result> ensembles;
  std::vector<ensemble_point> curve;
  /// One message per finished network whose predictions are missing or
  /// damaged: it is left out of every ensemble.
  std::vector<std::string> missing;
};

/// The member counts at which a curve of `n` members is evaluated: every one
/// up to 20, then about 20% apart, always ending with `n`.
std::vector<int64_t> ensemble_curve_points(int64_t n);

/// Evaluates the ensembles of the `finished` networks from the predictions
/// they left in `store` (its rows or the files it names), in network id
/// order, so the result is a function of the specs and seeds only, never of
/// the order in which the networks finished. A group's ensemble is left out
/// when the run has one group (its ensemble is the overall one). Reads each
/// network's predictions once and holds one running sum per group whose
/// networks are still to come.
ensemble_evaluation
evaluate_ensembles(const dataset& data, const std::vector<network_spec>& specs,
                   const std::vector<std::string>& group_labels,
                   std::vector<uint64_t> finished, const results_store& store);

} // namespace actortrain
