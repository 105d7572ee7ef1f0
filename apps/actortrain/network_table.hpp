#pragma once

#include <cstdint>
#include <string>

#include "actortrain/run.hpp"

namespace actortrain::app {

/// The table's columns for a terminal `width` columns wide (0: no limit):
/// below 100 columns the name column goes, then the configuration column
/// shrinks, so rows fit 80 columns whole.
class network_table {
public:
  network_table(size_t width, bool with_slot);

  std::string header() const;
  /// A network's row (`epochs` 0: its budget is not shown; `slot` empty:
  /// none).
  std::string row(const network_progress& r) const;

private:
  std::string format(const std::string& id, const std::string& name,
                     const std::string& configuration, const std::string& epoch,
                     const std::string& train_loss,
                     const std::string& test_loss,
                     const std::string& test_accuracy,
                     const std::string& slot) const;

  size_t configuration_width_;
  bool with_slot_;
  bool with_name_;
};

/// A number as the tables and summaries show it: `precision` decimals,
/// in scientific notation from a magnitude of 1e6 on (a diverged loss), "-"
/// when NaN (not measured), "inf" when infinite.
std::string metric_text(double x, int precision = 4);

/// `text` cut to `width` columns (ASCII; 0: no limit), marked "..." when
/// cut, never wrapped.
std::string fit_line(std::string text, size_t width);

} // namespace actortrain::app
