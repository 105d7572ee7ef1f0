#include "fusion/grouping.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "actortrain/learner.hpp"
#include "actortrain/network_spec.hpp"

namespace actortrain {

fusion_candidate fusion_profile(const network_spec& spec, const dataset& data,
                                int64_t train_samples, bool custom_learner) {
  fusion_candidate f;
  const auto& c = spec.config;
  f.fuse = c.train.fuse;
  // A TorchScript module is opaque: there is no plan to stack. A
  // replicated network spreads over slots instead of stacking on one.
  if (custom_learner || c.model.kind == model_kind::torchscript ||
      c.train.replicas > 1)
    return f;
  f.signature = fmt::format(
      "{}|{}|{}|{}|{}|{}|{}|{}", name_of(c.model.kind),
      fmt::join(c.model.hidden, ","), fmt::join(c.model.channels, ","),
      name_of(c.model.activation), name_of(c.optimizer.kind),
      c.train.batch_size, train_samples, c.train.fuse);
  // One plan for both figures (each wrapper would plan the model again).
  auto plan = builtin_model_plan(c.model, data);
  f.bytes = plan.training_bytes(c.train.batch_size);
  f.parameters = static_cast<double>(plan.parameters());
  f.convolutional = c.model.kind == model_kind::cnn;
  return f;
}

bool trains_fused(const fusion_candidate& n) {
  if (n.signature.empty() || n.fuse == 1)
    return false;
  bool not_worth_it = n.fuse == 0 && (n.parameters > auto_fuse_max_parameters ||
                                      n.convolutional);
  return !not_worth_it;
}

std::vector<std::vector<size_t>>
plan_groups(const std::vector<fusion_candidate>& nets, int64_t slots,
            double slot_bytes, int64_t max_group) {
  std::vector<std::vector<size_t>> groups;
  // Networks of one signature, in order of their first appearance.
  std::map<std::string, size_t> index;
  std::vector<std::vector<size_t>> kinds;
  for (size_t i = 0; i < nets.size(); ++i) {
    const auto& n = nets[i];
    if (!trains_fused(n)) {
      groups.push_back({i});
      continue;
    }
    auto [it, added] = index.emplace(n.signature, kinds.size());
    if (added)
      kinds.emplace_back();
    kinds[it->second].push_back(i);
  }
  for (const auto& members : kinds) {
    auto n = static_cast<int64_t>(members.size());
    int64_t count = 0;
    auto fuse = nets[members.front()].fuse;
    if (fuse > 1) {
      count = (n + fuse - 1) / fuse;
    } else {
      auto bytes = std::max(1.0, nets[members.front()].bytes);
      auto fits = std::min(std::max<int64_t>(1, max_group),
                           std::max<int64_t>(1, static_cast<int64_t>(std::floor(
                                                    slot_bytes / bytes))));
      count = std::max(std::min(std::max<int64_t>(1, slots), n),
                       (n + fits - 1) / fits);
    }
    // Sizes differ by at most one: base, and one more for the first `extra`.
    auto base = fuse > 1 ? fuse : n / count;
    auto extra = fuse > 1 ? 0 : n % count;
    size_t at = 0;
    for (int64_t g = 0; g < count && at < members.size(); ++g) {
      auto size = static_cast<size_t>(base + (g < extra ? 1 : 0));
      size = std::min(size, members.size() - at);
      groups.emplace_back(members.begin() + static_cast<std::ptrdiff_t>(at),
                          members.begin() +
                              static_cast<std::ptrdiff_t>(at + size));
      at += size;
    }
  }
  std::sort(groups.begin(), groups.end(),
            [](const auto& a, const auto& b) { return a.front() < b.front(); });
  return groups;
}

} // namespace actortrain
