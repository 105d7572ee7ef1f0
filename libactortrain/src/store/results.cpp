#include "actortrain/results.hpp"

#include <algorithm>

#include "actortrain/run.hpp"

namespace actortrain {

std::string to_string(network_status x) {
  switch (x) {
  case network_status::pending:
    return "pending";
  case network_status::finished:
    return "finished";
  case network_status::failed:
    return "failed";
  case network_status::cancelled:
    return "cancelled";
  }
  return "unknown";
}

std::string to_string(stop_reason x) {
  switch (x) {
  case stop_reason::none:
    return "";
  case stop_reason::epochs:
    return "epochs";
  case stop_reason::max_seconds:
    return "max_seconds";
  case stop_reason::target:
    return "target";
  case stop_reason::early_stopping:
    return "early_stopping";
  case stop_reason::search:
    return "search";
  }
  return "unknown";
}

std::optional<stop_reason> parse_stop_reason(const std::string& text) {
  for (auto x :
       {stop_reason::none, stop_reason::epochs, stop_reason::max_seconds,
        stop_reason::target, stop_reason::early_stopping, stop_reason::search})
    if (to_string(x) == text)
      return x;
  return std::nullopt;
}

int64_t run_result::count(network_status status) const {
  return std::count_if(networks.begin(), networks.end(),
                       [&](const auto& n) { return n.status == status; });
}

const network_result* run_result::best() const {
  const network_result* best = nullptr;
  for (const auto& n : networks) {
    if (n.status != network_status::finished || std::isnan(n.test_loss))
      continue;
    if (best == nullptr || n.test_loss < best->test_loss)
      best = &n;
  }
  return best;
}

const ensemble_result* run_result::overall_ensemble() const {
  for (const auto& e : ensembles)
    if (e.group < 0)
      return &e;
  return nullptr;
}

double run_status::eta_seconds() const {
  if (steps_done <= 0 || elapsed_seconds <= 0 || steps_total <= 0)
    return -1;
  auto rate = static_cast<double>(steps_done) / elapsed_seconds;
  return static_cast<double>(steps_total - steps_done) / rate;
}

} // namespace actortrain
