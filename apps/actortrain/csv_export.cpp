#include "csv_export.hpp"

#include <cmath>
#include <initializer_list>

#include <fmt/format.h>

namespace actortrain::app {

namespace {

/// A field, quoted when it holds a separator, a quote or a line break.
std::string field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos)
    return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"')
      out += '"';
    out += c;
  }
  return out + '"';
}

/// A number (fmt's shortest round-trip form), or empty when missing.
std::string number(double x) {
  return std::isfinite(x) ? fmt::format("{}", x) : std::string{};
}

void row(std::string& out, std::initializer_list<std::string> fields) {
  bool first = true;
  for (const auto& f : fields) {
    if (!first)
      out += ',';
    out += field(f);
    first = false;
  }
  out += "\r\n";
}

} // namespace

std::string format_csv(const run_result& r) {
  std::string out;
  row(out,
      {"id", "name", "group", "group_label", "seed", "status", "stop_reason",
       "error", "epochs", "steps", "train_loss", "test_loss", "test_accuracy",
       "seconds_per_step", "train_seconds", "weights"});
  bool classes = r.task == task_kind::classification;
  for (const auto& n : r.networks)
    row(out,
        {std::to_string(n.id), n.name, std::to_string(n.group), n.group_label,
         std::to_string(n.seed), to_string(n.status),
         n.stop_reason == stop_reason::none ? std::string{}
                                            : to_string(n.stop_reason),
         n.error, std::to_string(n.epochs), std::to_string(n.steps),
         number(n.train_loss), number(n.test_loss),
         classes ? number(n.test_accuracy) : std::string{},
         number(n.seconds_per_step), number(n.train_seconds), n.weights_path});
  return out;
}

std::string format_epochs_csv(
    const run_result& r,
    const std::unordered_map<uint64_t, std::vector<epoch_metrics>>& epochs) {
  std::string out;
  row(out, {"network_id", "name", "group_label", "epoch", "steps", "train_loss",
            "validation_loss", "validation_accuracy", "test_loss",
            "test_accuracy", "seconds"});
  for (const auto& n : r.networks) {
    auto it = epochs.find(n.id);
    if (it == epochs.end())
      continue;
    for (const auto& e : it->second)
      row(out,
          {std::to_string(n.id), n.name, n.group_label, std::to_string(e.epoch),
           std::to_string(e.steps), number(e.train_loss),
           number(e.validation_loss), number(e.validation_accuracy),
           number(e.test_loss), number(e.test_accuracy), number(e.seconds)});
  }
  return out;
}

} // namespace actortrain::app
