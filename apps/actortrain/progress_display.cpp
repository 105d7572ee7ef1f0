#include "progress_display.hpp"

#include <cmath>
#include <string>
#include <sys/ioctl.h>
#include <unistd.h>

#include <fmt/format.h>

#include "network_table.hpp"

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

std::string progress_display::summary(const run_status& s) {
  auto done = s.finished + s.failed;
  auto pct = s.steps_total > 0 ? 100.0 * static_cast<double>(s.steps_done) /
                                     static_cast<double>(s.steps_total)
                               : 0.0;
  // Fits 80 columns up to 10^5 networks and 10^3 slots.
  return fmt::format(
      "networks {}/{} done ({} failed) | {} run, {} wait | slots {}/{} "
      "| {:.0f}% | {} ETA {}",
      done, s.networks, s.failed, s.running, s.waiting, s.busy_slots, s.slots,
      pct, format_duration(s.elapsed_seconds),
      format_duration(s.eta_seconds()));
}

std::vector<std::string> progress_display::frame(const run_status& s,
                                                 size_t width, size_t height) {
  std::vector<std::string> lines{summary(s)};
  network_table table{width, true};
  auto list = [&](const char* title,
                  const std::vector<network_progress>& rows) {
    if (rows.empty())
      return;
    lines.push_back(fmt::format("{}:", title));
    lines.push_back(table.header());
    for (const auto& r : rows)
      lines.push_back(table.row(r));
  };
  list("training now", s.training);
  list("best finished so far", s.best);
  // The frame never scrolls the terminal: the table gives way first.
  if (height > 0 && lines.size() > height - 1)
    lines.resize(height > 1 ? height - 1 : 1);
  for (auto& line : lines)
    line = fit_line(std::move(line), width);
  return lines;
}

void progress_display::update(const run_status& s) {
  auto done = s.finished + s.failed;
  auto now = std::chrono::steady_clock::now();
  if (tty_) {
    winsize ws{};
    size_t width = 0, height = 0;
    if (::ioctl(::fileno(out_), TIOCGWINSZ, &ws) == 0) {
      width = ws.ws_col;
      height = ws.ws_row;
    }
    // Back to the frame's first line, then every line rewritten and
    // cleared to its end, and whatever the last frame had below cleared:
    // one write, so the terminal never shows half a frame.
    std::string out = "\r";
    if (drawn_ > 1)
      out += fmt::format("\x1b[{}A", drawn_ - 1);
    auto lines = frame(s, width, height);
    for (size_t i = 0; i < lines.size(); ++i) {
      out += lines[i];
      out += "\x1b[K";
      if (i + 1 < lines.size())
        out += "\n";
    }
    out += "\x1b[J";
    std::fwrite(out.data(), 1, out.size(), out_);
    std::fflush(out_);
    drawn_ = lines.size();
    return;
  }
  // Plain output: a line when networks finish, but at most every 5 s, and
  // always the last one.
  bool changed = done != last_done_;
  bool due = now - last_line_ >= std::chrono::seconds{5};
  if ((changed && due) || done == s.networks) {
    if (done == s.networks && last_done_ == done)
      return;
    fmt::print(out_, "{}\n", summary(s));
    std::fflush(out_);
    last_done_ = done;
    last_line_ = now;
  }
}

void progress_display::close() {
  if (drawn_ > 0) {
    fmt::print(out_, "\n");
    drawn_ = 0;
  }
}

} // namespace actortrain::app
