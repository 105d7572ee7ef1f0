#pragma once

#include <string>
#include <vector>

#include "actortrain/results.hpp"

namespace actortrain::app {

/// What `actortrain status` knows about a run beyond its store.
struct run_liveness {
  /// A process holds the run folder's lock: it is training now.
  bool writer_alive = false;
};

/// The state of a run, in progress or done, for `actortrain status`: counts,
/// what an unfinished run that stalled waits on (its latest stall report,
/// when no quantum ended since), the networks in progress with their latest
/// epoch, the best finished ones so far and the failures. Lines fit `width`
/// columns (cut, never wrapped).
std::string format_status(const run_result& r,
                          const std::vector<epoch_metrics>& latest,
                          const run_liveness& live, size_t width);

} // namespace actortrain::app
