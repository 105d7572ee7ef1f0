#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "protocol/slot.hpp"

namespace actortrain {

/// Says what a run that stopped making progress waits on: a quantum that
/// never returns (a learner that hangs), a worker lost with no other slot,
/// a store that does not keep up, or a trainer the scheduler lost track of.
/// Without it such a run is silent until someone kills it.
class stall_watch {
public:
  /// Names a slot's holder for the report ("net-0004").
  using namer = std::function<std::string(const slot_holder&)>;

  /// `limit`: seconds without a quantum starting or ending before a report
  /// (scheduler.stall_report_seconds; 0: never).
  explicit stall_watch(double limit) : limit_(limit) {}

  /// The line to report for the scheduler's status `s`, or nothing: once
  /// the run has been quiet for `limit` seconds, or three times its longest
  /// quantum if that is longer, and again each time the quiet doubles.
  /// `stopping`: the run is stopping and waits only for its quanta in
  /// flight (what waits for a slot no longer matters).
  std::optional<std::string> look(const scheduler_status& s, const namer& name,
                                  bool stopping = false);

  /// A report was made and the run has not made progress since.
  bool stalled() const {
    return next_ > 0;
  }

private:
  double limit_;
  /// The quiet, in seconds, the next report waits for (0: none made yet).
  double next_ = 0;
};

} // namespace actortrain
