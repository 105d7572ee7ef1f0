#include "network_table.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace actortrain::app {

namespace {

/// Columns of everything but the configuration: id, name, epoch, the three
/// metrics, the slot and the spaces between them.
constexpr size_t fixed_width = 6 + 2 + 1 + 7 + 1 + 10 + 1 + 10 + 1 + 8;
constexpr size_t name_width = 10;
constexpr size_t slot_width = 2 + 9;
/// Below this width the name column (net-NNNN, the id's twin) is left out.
constexpr size_t name_from = 100;

} // namespace

network_table::network_table(size_t width, bool with_slot)
    : configuration_width_(24), with_slot_(with_slot),
      with_name_(width == 0 || width >= name_from) {
  auto fixed = fixed_width + (with_slot ? slot_width : 0) +
               (with_name_ ? name_width : 0);
  if (width > 0)
    configuration_width_ = std::clamp<size_t>(width > fixed ? width - fixed : 0,
                                              8, configuration_width_);
}

std::string network_table::format(
    const std::string& id, const std::string& name,
    const std::string& configuration, const std::string& epoch,
    const std::string& train_loss, const std::string& test_loss,
    const std::string& test_accuracy, const std::string& slot) const {
  auto config = configuration;
  if (config.size() > configuration_width_)
    config = config.substr(0, configuration_width_ - 2) + "..";
  auto line = fmt::format("{:>6}  ", id);
  if (with_name_)
    line += fmt::format("{:<9} ", name);
  line += fmt::format("{:<{}} {:>7} {:>10} {:>10} {:>8}", config,
                      configuration_width_, epoch, train_loss, test_loss,
                      test_accuracy);
  if (with_slot_)
    line += fmt::format("  {:<9}", slot);
  while (!line.empty() && line.back() == ' ')
    line.pop_back();
  return line;
}

std::string network_table::header() const {
  return format("id", "name", "configuration", "epoch", "train_loss",
                "test_loss", "test_acc", "slot");
}

std::string network_table::row(const network_progress& r) const {
  auto epoch = r.epochs > 0 ? fmt::format("{}/{}", r.epoch, r.epochs)
                            : fmt::format("{}", r.epoch);
  return format(fmt::format("{}", r.id), r.name, r.configuration, epoch,
                metric_text(r.train_loss), metric_text(r.test_loss),
                metric_text(r.test_accuracy), r.slot);
}

std::string metric_text(double x, int precision) {
  if (std::isnan(x))
    return "-";
  if (std::isinf(x))
    return x > 0 ? "inf" : "-inf";
  // A diverged loss in fixed notation would be 30 digits wide and push the
  // row's other columns out of line.
  if (std::abs(x) >= 1e6)
    return fmt::format("{:.{}e}", x, precision);
  return fmt::format("{:.{}f}", x, precision);
}

std::string fit_line(std::string text, size_t width) {
  if (width >= 4 && text.size() > width)
    text = text.substr(0, width - 3) + "...";
  else if (width > 0 && text.size() > width)
    text.resize(width);
  return text;
}

} // namespace actortrain::app
