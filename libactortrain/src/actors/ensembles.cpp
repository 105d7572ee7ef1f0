#include "actors/ensembles.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>

#include <fmt/format.h>
#include <torch/torch.h>

#include "actortrain/error.hpp"

namespace actortrain {

namespace {

/// The accuracy and loss of the mean of `count` members' predictions.
std::pair<double, double>
evaluate_mean(const dataset& d, const torch::Tensor& sum, int64_t count) {
  auto mean = sum / static_cast<double>(count);
  if (d.task == task_kind::classification) {
    auto accuracy =
        mean.argmax(1).eq(d.test_y).to(torch::kFloat64).mean().item<double>();
    auto p = mean.gather(1, d.test_y.unsqueeze(1)).clamp_min(1e-12);
    return {accuracy, -p.log().mean().item<double>()};
  }
  return {no_metric,
          torch::mse_loss(mean.reshape({-1}), d.test_y).item<double>()};
}

/// Test predictions' bytes as float64 [rows x outputs], or nothing when they
/// do not fill whole rows.
std::optional<torch::Tensor> as_predictions(const std::vector<char>& bytes,
                                            int64_t rows) {
  auto row_bytes = sizeof(float) * static_cast<size_t>(rows);
  if (bytes.empty() || bytes.size() % row_bytes != 0)
    return std::nullopt;
  auto cols = static_cast<int64_t>(bytes.size() / row_bytes);
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), bytes.size());
  return torch::from_blob(values.data(), {rows, cols}, torch::kFloat32)
      .to(torch::kFloat64);
}

/// A running ensemble: the sum of its members' predictions so far, and the
/// member counts still to evaluate.
struct running_ensemble {
  int64_t group = -1;
  std::string label;
  torch::Tensor sum;
  int64_t members = 0;
  int64_t expected = 0;
  std::vector<int64_t> points;
  size_t next_point = 0;

  void add(const torch::Tensor& p, const dataset& d,
           std::vector<ensemble_point>& curve) {
    sum = sum.defined() ? sum + p : p.clone();
    ++members;
    if (next_point < points.size() && points[next_point] == members) {
      ++next_point;
      auto [accuracy, loss] = evaluate_mean(d, sum, members);
      curve.push_back({group, members, accuracy, loss});
    }
  }

  ensemble_result result(const dataset& d) const {
    ensemble_result e;
    e.group = group;
    e.label = label;
    e.networks = members;
    if (members > 0)
      std::tie(e.accuracy, e.loss) = evaluate_mean(d, sum, members);
    return e;
  }
};

} // namespace

std::vector<int64_t> ensemble_curve_points(int64_t n) {
  std::vector<int64_t> points;
  for (int64_t k = 1; k <= n; ++k) {
    if (k > 20)
      k = std::max(k, static_cast<int64_t>(
                          std::ceil(static_cast<double>(points.back()) * 1.2)));
    points.push_back(std::min(k, n));
    if (points.back() == n)
      break;
  }
  return points;
}

ensemble_evaluation
evaluate_ensembles(const dataset& data, const std::vector<network_spec>& specs,
                   const std::vector<std::string>& group_labels,
                   std::vector<uint64_t> finished, const results_store& store) {
  ensemble_evaluation out;
  std::sort(finished.begin(), finished.end());
  finished.erase(std::unique(finished.begin(), finished.end()), finished.end());
  auto rows = data.test_x.size(0);
  auto row_bytes = static_cast<int64_t>(sizeof(float)) * rows;
  auto unusable = [&](const network_spec& spec, const std::string& why) {
    out.missing.push_back(fmt::format("{}: test predictions of {} unusable "
                                      "({}); its ensemble cannot be rebuilt",
                                      store.path(), spec.name, why));
  };
  // First pass, from the recorded sizes: which predictions are usable, so
  // that every ensemble knows its final size (and its curve points) before
  // the sums start.
  std::vector<uint64_t> usable;
  std::map<int64_t, int64_t> per_group;
  for (auto id : finished) {
    const auto& spec = specs.at(id);
    auto entries = store.files(id);
    if (!entries) {
      unusable(spec, to_string_pretty(entries.error()));
      continue;
    }
    auto entry = std::find_if(entries->begin(), entries->end(), [](auto& e) {
      return e.kind == file_kind::predictions;
    });
    // Without a record (finished before files were recorded) the bytes
    // are checked when they are read.
    if (entry != entries->end() &&
        (entry->bytes <= 0 || entry->bytes % row_bytes != 0)) {
      unusable(spec, fmt::format("{} bytes are not whole rows of {} test "
                                 "samples",
                                 entry->bytes, rows));
      continue;
    }
    usable.push_back(id);
    ++per_group[spec.group];
  }
  bool one_group = group_labels.size() <= 1;
  running_ensemble all;
  all.label = "all";
  all.expected = static_cast<int64_t>(usable.size());
  all.points = ensemble_curve_points(all.expected);
  std::map<int64_t, running_ensemble> groups;
  for (auto id : usable) {
    const auto& spec = specs.at(id);
    auto bytes = store.file_bytes(id, file_kind::predictions);
    auto p = bytes ? as_predictions(*bytes, rows) : std::nullopt;
    if (!p) { // left out of every ensemble: the counts still hold it
      unusable(spec,
               bytes ? "not whole rows" : to_string_pretty(bytes.error()));
      continue;
    }
    all.add(*p, data, out.curve);
    if (one_group)
      continue;
    auto it = groups.find(spec.group);
    if (it == groups.end()) {
      running_ensemble g;
      g.group = spec.group;
      g.label = group_labels.at(static_cast<size_t>(spec.group));
      g.expected = per_group[spec.group];
      g.points = ensemble_curve_points(g.expected);
      it = groups.emplace(spec.group, std::move(g)).first;
    }
    it->second.add(*p, data, out.curve);
    // A group whose networks have all come gives back its sum at once.
    if (it->second.members == it->second.expected) {
      out.ensembles.push_back(it->second.result(data));
      it->second.sum = torch::Tensor{};
    }
  }
  for (auto& [group, g] : groups)
    if (g.members > 0 && g.members < g.expected)
      out.ensembles.push_back(g.result(data));
  if (all.members > 0)
    out.ensembles.push_back(all.result(data));
  std::sort(out.ensembles.begin(), out.ensembles.end(),
            [](const auto& a, const auto& b) { return a.group < b.group; });
  return out;
}

} // namespace actortrain
