#pragma once

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "actortrain/run.hpp"

namespace actortrain::app {

/// Shows a run's progress. On a terminal: a summary line and a table of the
/// networks training now and the best so far, redrawn in place (one write
/// per frame, every line cut to the terminal's width and the frame to its
/// height). Otherwise plain lines: when a network ends, at most every few
/// seconds.
class progress_display {
public:
  explicit progress_display(std::FILE* out);

  void update(const run_status& s);

  /// Leaves the last frame on screen and moves below it.
  void close();

  /// The frame shown for `s` on a terminal of `width` x `height` (0: no
  /// limit), one string per line.
  static std::vector<std::string> frame(const run_status& s, size_t width,
                                        size_t height);

  /// The one-line summary of `s`.
  static std::string summary(const run_status& s);

private:
  std::FILE* out_;
  bool tty_;
  /// Lines of the frame on screen (the cursor is at the end of its last).
  size_t drawn_ = 0;
  int64_t last_done_ = -1;
  std::chrono::steady_clock::time_point last_line_;
};

/// "1h02m", "3m05s" or "12s".
std::string format_duration(double seconds);

} // namespace actortrain::app
