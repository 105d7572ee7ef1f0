#include "status_view.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include <fmt/format.h>

#include "network_table.hpp"

namespace actortrain::app {

namespace {

/// Rows of each list shown; the rest are counted.
constexpr size_t max_rows = 10;

std::string fit(std::string line, size_t width) {
  return fit_line(std::move(line), width) + "\n";
}

network_progress row(const network_result& n, int64_t epoch, double train_loss,
                     double test_loss, double test_accuracy) {
  network_progress p;
  p.id = n.id;
  p.name = n.name;
  p.configuration = n.group_label;
  p.epoch = epoch;
  p.train_loss = train_loss;
  p.test_loss = test_loss;
  p.test_accuracy = test_accuracy;
  return p;
}

/// An unfinished run's latest stall report, when no quantum ended after it:
/// what it waits on, a line each (a terminal would cut the one line).
std::string stalled(const run_result& r, size_t width) {
  if (r.stalls.empty() || r.status != "running" ||
      !std::isnan(r.stalls.back().ended))
    return {};
  const auto& s = r.stalls.back();
  // "no quantum has started or ended for 64 s (...): part; part"
  auto colon = s.report.find("): ");
  auto head =
      colon == std::string::npos ? s.report : s.report.substr(0, colon + 2);
  std::string out = fit(fmt::format("stalled (reported {:.1f} s into the "
                                    "schedule, nothing ended since): {}",
                                    s.time, head),
                        width);
  if (colon == std::string::npos)
    return out;
  auto rest = s.report.substr(colon + 3);
  for (size_t at = 0; at <= rest.size();) {
    auto end = rest.find("; ", at);
    if (end == std::string::npos)
      end = rest.size();
    out += fit("  " + rest.substr(at, end - at), width);
    at = end + 2;
  }
  return out;
}

} // namespace

std::string format_status(const run_result& r,
                          const std::vector<epoch_metrics>& latest,
                          const run_liveness& live, size_t width) {
  std::unordered_map<uint64_t, const epoch_metrics*> last;
  for (const auto& e : latest)
    last[e.network_id] = &e;
  auto finished = r.count(network_status::finished);
  auto failed = r.count(network_status::failed);
  auto total = static_cast<int64_t>(r.networks.size());
  std::string state;
  if (live.writer_alive)
    state = "running";
  else if (r.status == "running")
    state = "not running: its process ended before the run did (run the "
            "same command to resume)";
  else
    state = r.status;
  network_table table{width, false};
  std::string out;
  out += fit(fmt::format("run {}: {}", r.name, state), width);
  out += fit(fmt::format("networks: {} finished, {} failed, {} to go, of {}",
                         finished, failed, total - finished - failed, total),
             width);
  out += stalled(r, width);
  // In progress: unfinished networks that have trained at least one epoch.
  std::vector<const network_result*> going;
  for (const auto& n : r.networks)
    if (n.status != network_status::finished &&
        n.status != network_status::failed && last.count(n.id) > 0)
      going.push_back(&n);
  if (!going.empty()) {
    out += fit(fmt::format("in progress ({}), latest epoch:", going.size()),
               width);
    out += fit(table.header(), width);
    for (size_t i = 0; i < going.size() && i < max_rows; ++i) {
      const auto& e = *last[going[i]->id];
      out += fit(table.row(row(*going[i], e.epoch, e.train_loss, e.test_loss,
                               e.test_accuracy)),
                 width);
    }
    if (going.size() > max_rows)
      out +=
          fit(fmt::format("  ... and {} more", going.size() - max_rows), width);
  }
  // The best finished so far: by test accuracy, or test loss for
  // regression.
  std::vector<const network_result*> done;
  for (const auto& n : r.networks)
    if (n.status == network_status::finished)
      done.push_back(&n);
  bool by_accuracy = r.task == task_kind::classification;
  auto score = [&](const network_result* n) {
    double x = by_accuracy ? -n->test_accuracy : n->test_loss;
    return std::isfinite(x) ? x : INFINITY;
  };
  std::stable_sort(done.begin(), done.end(),
                   [&](auto* a, auto* b) { return score(a) < score(b); });
  if (!done.empty()) {
    out += fit(fmt::format("best finished so far (by {}):",
                           by_accuracy ? "test accuracy" : "test loss"),
               width);
    out += fit(table.header(), width);
    for (size_t i = 0; i < done.size() && i < 5; ++i)
      out += fit(table.row(row(*done[i], done[i]->epochs, done[i]->train_loss,
                               done[i]->test_loss, done[i]->test_accuracy)),
                 width);
  }
  size_t shown = 0;
  for (const auto& n : r.networks)
    if (n.status == network_status::failed && shown++ < max_rows)
      out += fit(fmt::format("failed: {}: {}", n.name, n.error), width);
  if (shown > max_rows)
    out +=
        fit(fmt::format("  ... and {} more failed", shown - max_rows), width);
  return out;
}

} // namespace actortrain::app
