#include "progress_display.hpp"

#include <cmath>
#include <string>
#include <unistd.h>

#include <fmt/format.h>

namespace actortrain::app {

std::string format_duration(double seconds) {
  if (seconds < 0 || !std::isfinite(seconds))
    return "?";
  auto s = static_cast<int64_t>(std::lround(seconds));
  if (s >= 3600)
    return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  if (s >= 60)
    return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

progress_display::progress_display(std::FILE* out)
    : out_(out), tty_(::isatty(::fileno(out)) != 0) {}

void progress_display::update(const run_status& s) {
  auto done = s.finished + s.failed;
  auto pct = s.steps_total > 0 ? 100.0 * static_cast<double>(s.steps_done) /
                                     static_cast<double>(s.steps_total)
                               : 0.0;
  auto line = fmt::format(
      "networks {}/{} done ({} failed), {} running, {} waiting | slots {}/{} "
      "busy | {:.0f}% of steps | {} elapsed, ETA {}",
      done, s.networks, s.failed, s.running, s.waiting, s.busy_slots, s.slots,
      pct, format_duration(s.elapsed_seconds),
      format_duration(s.eta_seconds()));
  auto now = std::chrono::steady_clock::now();
  if (tty_) {
    fmt::print(out_, "\r\x1b[K{}", line);
    std::fflush(out_);
    drawn_ = true;
    return;
  }
  // Plain output: a line when networks finish, but at most every 5 s, and
  // always the last one.
  bool changed = done != last_done_;
  bool due = now - last_line_ >= std::chrono::seconds{5};
  if ((changed && due) || done == s.networks) {
    if (done == s.networks && last_done_ == done)
      return;
    fmt::print(out_, "{}\n", line);
    std::fflush(out_);
    last_done_ = done;
    last_line_ = now;
  }
}

void progress_display::close() {
  if (drawn_) {
    fmt::print(out_, "\n");
    drawn_ = false;
  }
}

} // namespace actortrain::app
