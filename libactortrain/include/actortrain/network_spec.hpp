#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "actortrain/experiment.hpp"

namespace actortrain {

/// One network of an experiment: everything that determines its result.
struct network_spec {
  /// Unique within the run, dense from 0.
  uint64_t id = 0;
  /// "net-0017"-style name, stable across runs of the same experiment.
  std::string name;
  /// Index of the configuration (sweep point) it belongs to.
  int64_t group = 0;
  /// Index within its group; selects the data shard.
  int64_t index_in_group = 0;
  /// Seeds initial weights, data order and bootstrap samples.
  uint64_t seed = 0;
  network_config config;
};

/// Derives a network's seed from the root seed and the network id
/// (SplitMix64, so neighbouring ids give unrelated seeds).
uint64_t derive_seed(uint64_t root_seed, uint64_t network_id);

/// Expands an experiment into its networks: `train.networks` for every
/// configuration, in configuration order.
///
/// Ids start at `first_id` and groups at `first_group` (a live session's
/// later submissions continue its run's numbering); a network's seed
/// derives from its id either way.
std::vector<network_spec> expand(const experiment& exp, uint64_t first_id = 0,
                                 int64_t first_group = 0);

} // namespace actortrain
