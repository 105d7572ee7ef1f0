#include "scheduling/remaining_time_estimator.hpp"

#include <algorithm>

namespace actortrain {

void remaining_time_estimator::add(const trainer_info& info) {
  auto& n = networks_[info.network_id];
  n.steps_total = info.steps_total;
  n.cost_hint = info.cost_hint > 0 ? info.cost_hint : 1;
}

void remaining_time_estimator::report(const progress_report& p) {
  auto i = networks_.find(p.network_id);
  if (i == networks_.end())
    return;
  auto& n = i->second;
  n.steps_total = p.steps_total;
  n.steps_done = p.steps_done;
  if (p.quantum_steps <= 0)
    return;
  auto per_step = p.quantum_seconds / static_cast<double>(p.quantum_steps);
  auto middle = static_cast<double>(p.steps_done) -
                static_cast<double>(p.quantum_steps) / 2.0;
  n.samples[n.next] = {middle, per_step};
  n.next = (n.next + 1) % window;
  n.count = std::min(n.count + 1, window);
  auto ratio = per_step / n.cost_hint;
  if (n.count == 1)
    ++ratio_count_;
  ratio_sum_ += ratio - n.ratio;
  n.ratio = ratio;
}

void remaining_time_estimator::remove(uint64_t network_id) {
  auto i = networks_.find(network_id);
  if (i == networks_.end())
    return;
  if (i->second.count > 0) {
    ratio_sum_ -= i->second.ratio;
    --ratio_count_;
  }
  networks_.erase(i);
}

double remaining_time_estimator::cost_guess(uint64_t network_id) const {
  auto i = networks_.find(network_id);
  if (i == networks_.end())
    return 0;
  const auto& n = i->second;
  return static_cast<double>(
             std::max<int64_t>(0, n.steps_total - n.steps_done)) *
         n.cost_hint;
}

double remaining_time_estimator::remaining(uint64_t network_id) const {
  auto i = networks_.find(network_id);
  if (i == networks_.end())
    return 0;
  const auto& n = i->second;
  auto total = static_cast<double>(n.steps_total);
  auto done = static_cast<double>(n.steps_done);
  auto left = std::max(0.0, total - done);
  if (n.count == 0) {
    auto mean_ratio = ratio_count_ > 0 ? ratio_sum_ / ratio_count_ : 0.0;
    return left * n.cost_hint * mean_ratio;
  }
  double ms = 0;
  double mt = 0;
  for (size_t k = 0; k < n.count; ++k) {
    ms += n.samples[k].first;
    mt += n.samples[k].second;
  }
  ms /= static_cast<double>(n.count);
  mt /= static_cast<double>(n.count);
  double sst = 0;
  double ss = 0;
  for (size_t k = 0; k < n.count; ++k) {
    auto ds = n.samples[k].first - ms;
    sst += ds * (n.samples[k].second - mt);
    ss += ds * ds;
  }
  auto b = ss > 0 ? sst / ss : 0.0;
  if (b <= 0)
    return left * mt;
  auto a = mt - b * ms;
  auto result = a * (total - done) + b * (total * total - done * done) / 2.0;
  return std::max(0.0, result);
}

} // namespace actortrain
