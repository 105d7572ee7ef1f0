#include "report/report_data.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "actortrain/run.hpp"
#include "results_format.hpp"

namespace actortrain::app {

namespace {

using nlohmann::json;

/// `x` with 5 significant digits (null when not finite): a chart shows no
/// more, and 10^4 networks' numbers stay small.
json rounded(double x, int digits = 5) {
  if (!std::isfinite(x))
    return nullptr;
  if (x == 0)
    return 0.0;
  auto scale = std::pow(
      10.0,
      digits - 1 - static_cast<int>(std::floor(std::log10(std::fabs(x)))));
  return std::round(x * scale) / scale;
}

/// Seconds, to the millisecond.
json seconds(double x) {
  return std::isfinite(x) ? json(std::round(x * 1000) / 1000) : json(nullptr);
}

/// The `q`-quantile (0..1) of sorted `v`, linearly interpolated.
double quantile(const std::vector<double>& v, double q) {
  auto pos = q * static_cast<double>(v.size() - 1);
  auto lo = static_cast<size_t>(std::floor(pos));
  auto hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

/// The per-epoch metrics a report draws, with how each is read.
struct metric {
  const char* key;
  double epoch_metrics::*field;
};

constexpr metric metrics[] = {
    {"train_loss", &epoch_metrics::train_loss},
    {"validation_loss", &epoch_metrics::validation_loss},
    {"test_loss", &epoch_metrics::test_loss},
    {"validation_accuracy", &epoch_metrics::validation_accuracy},
    {"test_accuracy", &epoch_metrics::test_accuracy},
};

/// Lower is better for losses, higher for accuracies.
double score(const network_result& n, task_kind task) {
  double x = task == task_kind::classification ? -n.test_accuracy : n.test_loss;
  return std::isfinite(x) ? x : INFINITY;
}

json run_summary(const report_inputs& in) {
  const auto& r = in.run;
  const auto& p = in.provenance;
  auto slots = json::array();
  for (const auto& s : r.slots)
    slots.push_back({{"slot", s.slot},
                     {"device", s.device},
                     {"node", s.node},
                     {"grants", s.grants},
                     {"busy_seconds", seconds(s.busy_seconds)},
                     {"busy_fraction", rounded(s.busy_fraction, 3)}});
  int64_t steps = 0;
  for (const auto& n : r.networks)
    steps += n.steps;
  return {{"name", r.name},
          {"status", r.status},
          {"task", r.task == task_kind::classification ? "classification"
                                                       : "regression"},
          {"resumes", r.resumes},
          {"continuations", r.continuations},
          {"wall_seconds", seconds(r.wall_seconds)},
          {"networks", r.networks.size()},
          {"finished", r.count(network_status::finished)},
          {"failed", r.count(network_status::failed)},
          {"steps", steps},
          {"grants", in.grants.size()},
          {"slots", slots},
          {"nodes", node_rows(r)},
          {"experiment", p.experiment},
          {"experiment_path", p.experiment_path},
          {"experiment_hash", p.experiment_hash},
          {"actortrain_version", p.actortrain_version},
          {"libtorch_version", p.libtorch_version},
          {"blas", p.blas},
          {"caf_version", p.caf_version},
          {"started_at", p.started_at},
          {"finished_at", p.finished_at},
          {"output_dir", r.output_dir}};
}

} // namespace

caf::expected<report_inputs> read_report_inputs(const std::string& dir) {
  report_inputs in;
  auto run = read_results(dir);
  if (!run)
    return run.error();
  in.run = std::move(*run);
  auto store = results_store::open(in.run.database_path);
  if (!store)
    return store.error();
  auto& s = **store;
  auto provenance = s.provenance();
  if (!provenance)
    return provenance.error();
  in.provenance = std::move(*provenance);
  auto epochs = s.all_epochs();
  if (!epochs)
    return epochs.error();
  in.epochs = std::move(*epochs);
  auto grants = s.grants();
  if (!grants)
    return grants.error();
  in.grants = std::move(*grants);
  auto curve = s.ensemble_curve();
  if (!curve)
    return curve.error();
  in.ensemble_curve = std::move(*curve);
  auto errors = s.errors();
  if (!errors)
    return errors.error();
  in.errors = std::move(*errors);
  auto decisions = s.decisions();
  if (!decisions)
    return decisions.error();
  in.decisions = std::move(*decisions);
  return in;
}

json report_data(const report_inputs& in) {
  const auto& r = in.run;
  // Configurations in group order, with their networks.
  std::map<int64_t, std::string> labels;
  std::map<int64_t, std::vector<const network_result*>> members;
  std::unordered_map<uint64_t, const network_result*> by_id;
  for (const auto& n : r.networks) {
    // A run without a sweep has one unnamed configuration.
    labels[n.group] = n.group_label.empty() ? "all" : n.group_label;
    members[n.group].push_back(&n);
    by_id[n.id] = &n;
  }
  std::unordered_map<uint64_t, std::vector<const epoch_metrics*>> epochs_of;
  for (const auto& e : in.epochs)
    epochs_of[e.network_id].push_back(&e);
  // Which metrics the run recorded at all.
  std::vector<const metric*> present;
  for (const auto& m : metrics)
    for (const auto& e : in.epochs)
      if (std::isfinite(e.*m.field)) {
        present.push_back(&m);
        break;
      }
  auto metric_keys = json::array();
  for (auto* m : present)
    metric_keys.push_back(m->key);
  // Per configuration: counts, the median and band of each metric per
  // epoch, and its best networks.
  bool all_curves = r.networks.size() <= all_curves_limit;
  auto configs = json::array();
  auto individual = json::array();
  for (const auto& [group, nets] : members) {
    std::map<int64_t, std::vector<const epoch_metrics*>> at_epoch;
    for (auto* n : nets)
      for (auto* e : epochs_of[n->id])
        at_epoch[e->epoch].push_back(e);
    json curves = json::object();
    auto epoch_axis = json::array();
    for (const auto& [epoch, rows] : at_epoch)
      epoch_axis.push_back(epoch);
    for (auto* m : present) {
      json median = json::array(), low = json::array(), high = json::array();
      for (const auto& [epoch, rows] : at_epoch) {
        std::vector<double> v;
        for (auto* e : rows)
          if (std::isfinite(e->*m->field))
            v.push_back(e->*m->field);
        std::sort(v.begin(), v.end());
        if (v.empty()) {
          median.push_back(nullptr);
          low.push_back(nullptr);
          high.push_back(nullptr);
          continue;
        }
        median.push_back(rounded(quantile(v, 0.5)));
        low.push_back(rounded(quantile(v, 0.1)));
        high.push_back(rounded(quantile(v, 0.9)));
      }
      curves[m->key] = {{"median", median}, {"low", low}, {"high", high}};
    }
    std::vector<const network_result*> ranked;
    for (auto* n : nets)
      if (n->status == network_status::finished)
        ranked.push_back(n);
    std::stable_sort(ranked.begin(), ranked.end(), [&](auto* a, auto* b) {
      return score(*a, r.task) < score(*b, r.task);
    });
    if (all_curves)
      ranked.assign(nets.begin(), nets.end());
    else if (ranked.size() > 3)
      ranked.resize(3);
    for (auto* n : ranked) {
      json series = {{"id", n->id},
                     {"name", n->name},
                     {"group", group},
                     {"status", to_string(n->status)}};
      auto axis = json::array();
      for (auto* e : epochs_of[n->id])
        axis.push_back(e->epoch);
      series["epochs"] = axis;
      for (auto* m : present) {
        auto values = json::array();
        for (auto* e : epochs_of[n->id])
          values.push_back(rounded(e->*m->field));
        series[m->key] = values;
      }
      individual.push_back(std::move(series));
    }
    int64_t finished = 0, failed = 0;
    std::vector<double> finals;
    for (auto* n : nets) {
      finished += n->status == network_status::finished;
      failed += n->status == network_status::failed;
      double x =
          r.task == task_kind::classification ? n->test_accuracy : n->test_loss;
      if (n->status == network_status::finished && std::isfinite(x))
        finals.push_back(x);
    }
    std::sort(finals.begin(), finals.end());
    configs.push_back(
        {{"group", group},
         {"label", labels[group]},
         {"networks", nets.size()},
         {"finished", finished},
         {"failed", failed},
         {"final_median",
          finals.empty() ? json(nullptr) : rounded(quantile(finals, 0.5))},
         {"final_best",
          finals.empty()
              ? json(nullptr)
              : rounded(r.task == task_kind::classification ? finals.back()
                                                            : finals.front())},
         {"epochs", epoch_axis},
         {"curves", curves}});
  }
  // Final metrics and the schedule as columns: 10^4 rows stay compact.
  json final_cols = {
      {"id", json::array()},        {"group", json::array()},
      {"status", json::array()},    {"epochs", json::array()},
      {"test_loss", json::array()}, {"test_accuracy", json::array()}};
  for (const auto& n : r.networks) {
    final_cols["id"].push_back(n.id);
    final_cols["group"].push_back(n.group);
    final_cols["status"].push_back(to_string(n.status));
    final_cols["epochs"].push_back(n.epochs);
    final_cols["test_loss"].push_back(rounded(n.test_loss));
    final_cols["test_accuracy"].push_back(rounded(n.test_accuracy));
  }
  json schedule = {{"slot", json::array()},  {"start", json::array()},
                   {"end", json::array()},   {"network", json::array()},
                   {"group", json::array()}, {"steps", json::array()}};
  for (const auto& g : in.grants) {
    auto it = by_id.find(g.network_id);
    schedule["slot"].push_back(g.slot);
    schedule["start"].push_back(seconds(g.start));
    schedule["end"].push_back(seconds(g.end));
    schedule["network"].push_back(g.network_id);
    schedule["group"].push_back(it == by_id.end() ? json(nullptr)
                                                  : json(it->second->group));
    schedule["steps"].push_back(g.steps);
  }
  auto ensembles = json::array();
  for (const auto& e : r.ensembles)
    ensembles.push_back({{"group", e.group},
                         {"label", e.label},
                         {"networks", e.networks},
                         {"accuracy", rounded(e.accuracy)},
                         {"loss", rounded(e.loss)}});
  std::map<int64_t, json> curve_by_group;
  for (const auto& p : in.ensemble_curve) {
    auto& c = curve_by_group[p.group];
    if (c.is_null())
      c = {{"group", p.group},
           {"label", p.group < 0 ? std::string{"all"} : labels[p.group]},
           {"members", json::array()},
           {"accuracy", json::array()},
           {"loss", json::array()}};
    c["members"].push_back(p.members);
    c["accuracy"].push_back(rounded(p.accuracy));
    c["loss"].push_back(rounded(p.loss));
  }
  auto curve = json::array();
  for (auto& [group, c] : curve_by_group)
    curve.push_back(std::move(c));
  // Failures: the final ones with their reasons, and every retried one.
  constexpr size_t max_listed = 200;
  auto failures = json::array();
  int64_t failures_total = 0;
  for (const auto& n : r.networks) {
    if (n.status != network_status::failed)
      continue;
    if (failures.size() < max_listed)
      failures.push_back({{"id", n.id},
                          {"name", n.name},
                          {"configuration", labels[n.group]},
                          {"steps", n.steps},
                          {"error", n.error}});
    ++failures_total;
  }
  auto retries = json::array();
  int64_t retries_total = 0;
  for (const auto& e : in.errors) {
    auto it = by_id.find(e.network_id);
    if (retries.size() < max_listed)
      retries.push_back(
          {{"id", e.network_id},
           {"name", it == by_id.end() ? std::string{} : it->second->name},
           {"steps", e.steps},
           {"at", e.at},
           {"message", e.message}});
    ++retries_total;
  }
  // The search's decisions: how many of each kind at each rung, and the
  // first PBT copies (who copied whom, and what changed).
  std::map<int64_t, std::map<std::string, int64_t>> per_rung;
  auto exploits = json::array();
  int64_t exploits_total = 0;
  auto name_of = [&](int64_t id) {
    auto it = by_id.find(static_cast<uint64_t>(id));
    return it == by_id.end() ? fmt::format("network {}", id) : it->second->name;
  };
  for (const auto& d : in.decisions) {
    ++per_rung[d.rung][d.action];
    if (d.action != "exploit")
      continue;
    if (exploits.size() < max_listed)
      exploits.push_back(
          {{"network", name_of(static_cast<int64_t>(d.network_id))},
           {"epoch", d.epoch},
           {"donor", name_of(d.donor)},
           {"before", d.old_hyperparameters},
           {"after", d.new_hyperparameters},
           {"time", seconds(d.time)}});
    ++exploits_total;
  }
  auto rungs = json::array();
  for (const auto& [rung, actions] : per_rung)
    rungs.push_back({{"rung", rung}, {"actions", actions}});
  // Times the run made no progress for a while, and what it waited on.
  auto stalls = json::array();
  for (const auto& x : r.stalls) {
    if (stalls.size() >= max_listed)
      break;
    stalls.push_back({{"time", seconds(x.time)},
                      {"quiet_seconds", seconds(x.quiet_seconds)},
                      {"stopping", x.stopping},
                      {"report", x.report},
                      {"ended", seconds(x.ended)}});
  }
  json search = {{"decisions", in.decisions.size()},
                 {"rungs", rungs},
                 {"exploits", exploits},
                 {"exploits_total", exploits_total}};
  return {{"run", run_summary(in)},
          {"metrics", metric_keys},
          {"configs", configs},
          {"all_curves", all_curves},
          {"individual", individual},
          {"final", final_cols},
          {"schedule", schedule},
          {"ensembles", ensembles},
          {"ensemble_curve", curve},
          {"failures", failures},
          {"failures_total", failures_total},
          {"errors", retries},
          {"errors_total", retries_total},
          {"search", search},
          {"stalls", stalls},
          {"stalls_total", r.stalls.size()}};
}

} // namespace actortrain::app
