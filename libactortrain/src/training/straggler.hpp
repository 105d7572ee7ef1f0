#pragma once

#include <chrono>
#include <cstddef>
#include <limits>

namespace actortrain {

/// A straggler on demand, for benchmarks and tests of replicated networks:
/// the environment variable ACTORTRAIN_SLOW_REPLICA="R:F" makes replica R
/// of every replicated network F times slower (after each of its passes it
/// waits F - 1 times as long as the pass took), as a replica on a slower or
/// busier slot would be. Unset (the default): nobody waits.
struct straggler {
  size_t replica = std::numeric_limits<size_t>::max();
  double factor = 1;

  /// Read once per process.
  static const straggler& from_environment();

  /// Called by replica `r` after a pass that began at `started`.
  void pace(size_t r, std::chrono::steady_clock::time_point started) const;
};

} // namespace actortrain
