#pragma once

#include <array>
#include <cstdint>
#include <unordered_map>

#include "protocol/messages.hpp"

namespace actortrain {

/// Estimates each network's remaining compute time from what it reports.
///
/// For a network that has run, the cost of a step is modelled as a line in
/// the step index, t(s) = a + b s, fitted by least squares to the seconds
/// per step of its last `window` quanta (each placed at its middle step).
/// The remaining time is the integral of t from the steps done to the steps
/// in its budget: a (T - D) + b (T^2 - D^2) / 2. A falling trend (b < 0) is
/// not extrapolated (b = 0, a = the recent mean), so an estimate never turns
/// negative. With one quantum the cost is taken as constant.
///
/// A network that has not run yet is guessed from its cost hint: its steps
/// times its hint times the mean seconds-per-hint of the networks that have
/// run (0 before any has, which ties them).
class remaining_time_estimator {
public:
  static constexpr size_t window = 8;

  void add(const trainer_info& info);
  void report(const progress_report& p);
  void remove(uint64_t network_id);

  /// Estimated compute seconds left for `network_id`.
  double remaining(uint64_t network_id) const;

  /// Steps left times the cost hint: the unscaled guess for a network that
  /// has not run (`remaining` multiplies it by the current scale).
  double cost_guess(uint64_t network_id) const;

private:
  struct network {
    int64_t steps_total = 0;
    int64_t steps_done = 0;
    double cost_hint = 1;
    /// Ring of (middle step, seconds per step) of the recent quanta.
    std::array<std::pair<double, double>, window> samples{};
    size_t count = 0;
    size_t next = 0;
    /// This network's term in `ratio_sum_` (seconds per step per hint).
    double ratio = 0;
  };

  std::unordered_map<uint64_t, network> networks_;
  double ratio_sum_ = 0;
  int64_t ratio_count_ = 0;
};

} // namespace actortrain
