#pragma once

#include <chrono>
#include <cstdio>

#include "actortrain/run.hpp"

namespace actortrain::app {

/// Shows a run's progress: one line redrawn in place on a terminal, or plain
/// lines (when a network ends, at most every few seconds) otherwise.
class progress_display {
public:
  explicit progress_display(std::FILE* out);

  void update(const run_status& s);

  /// Ends the in-place line, if any.
  void close();

private:
  std::FILE* out_;
  bool tty_;
  bool drawn_ = false;
  int64_t last_done_ = -1;
  std::chrono::steady_clock::time_point last_line_;
};

/// "1h02m", "3m05s" or "12s".
std::string format_duration(double seconds);

} // namespace actortrain::app
