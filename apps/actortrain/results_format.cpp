#include "results_format.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "network_table.hpp"

namespace actortrain::app {

namespace {

nlohmann::json json_num(double x) {
  if (!std::isfinite(x))
    return nullptr;
  return x;
}

/// Networks' names by id.
std::map<uint64_t, std::string> names_of(const run_result& r) {
  std::map<uint64_t, std::string> result;
  for (const auto& n : r.networks)
    result[n.id] = n.name;
  return result;
}

/// PBT's exploits that were made, per recipient, in order: (decision,
/// refused later).
std::map<uint64_t, std::vector<const decision_record*>>
lineages(const std::vector<decision_record>& decisions) {
  std::map<uint64_t, std::vector<const decision_record*>> result;
  for (const auto& d : decisions) {
    auto& line = result[d.network_id];
    if (d.action == "exploit")
      line.push_back(&d);
    else if (d.action == "refused" && !line.empty() &&
             line.back()->rung == d.rung)
      line.pop_back();
  }
  for (auto i = result.begin(); i != result.end();)
    i = i->second.empty() ? result.erase(i) : std::next(i);
  return result;
}

} // namespace

std::string format_decisions(const run_result& r,
                             const std::vector<decision_record>& decisions) {
  if (decisions.empty())
    return "";
  std::map<std::string, int64_t> counts;
  for (const auto& d : decisions)
    ++counts[d.action];
  std::string tally;
  for (const auto& [action, n] : counts)
    tally += fmt::format("{}{} {}", tally.empty() ? "" : ", ", n, action);
  std::string out = fmt::format("\nsearch decisions ({}):\n", tally);
  if (const auto* best = r.best())
    out += fmt::format(
        "best: {} ({}), test loss {}, test accuracy {}\n", best->name,
        best->group_label.empty() ? "the only configuration"
                                  : best->group_label,
        metric_text(best->test_loss), metric_text(best->test_accuracy));
  out += fmt::format("{:>9}  {:<9} {:>5} {:>5} {:<8} {}\n", "time_s", "network",
                     "epoch", "rung", "action", "reason");
  auto names = names_of(r);
  for (const auto& d : decisions)
    out +=
        fmt::format("{:>9.3f}  {:<9} {:>5} {:>5} {:<8} {}\n", d.time,
                    names[d.network_id], d.epoch, d.rung, d.action, d.reason);
  auto lines = lineages(decisions);
  if (!lines.empty()) {
    out += "\nPBT lineage (each copy: epoch, donor, hyperparameters after):\n";
    for (const auto& [id, line] : lines) {
      out += fmt::format("{:<9}", names[id]);
      for (const auto* d : line)
        out += fmt::format(
            " <- epoch {} {} ({})", d->rung,
            d->donor >= 0 ? names[static_cast<uint64_t>(d->donor)] : "?",
            d->new_hyperparameters);
      out += "\n";
    }
  }
  return out;
}

namespace {

std::string node_name(const node_usage& n) {
  return n.node.empty() ? "this process" : n.node;
}

std::string format_nodes(const run_result& r) {
  if (r.nodes.empty())
    return {};
  std::string out = "\nnodes (from the recorded schedule):\n";
  out += fmt::format("{:<22} {:>5} {:>8} {:>8} {:>6} {:>8} {:>14} {:>13}\n",
                     "node", "slots", "grants", "queued", "busy", "moves in",
                     "state in (MB)", "data in (MB)");
  for (const auto& n : r.nodes)
    out += fmt::format("{:<22} {:>5} {:>8} {:>8} {:>5.1f}% {:>8} {:>14.2f} "
                       "{:>13.2f}\n",
                       node_name(n), n.slots, n.grants, n.queued_grants,
                       100 * n.busy_fraction, n.moves_in,
                       static_cast<double>(n.moved_bytes_in) / 1e6,
                       static_cast<double>(n.data_bytes_in) / 1e6);
  return out;
}

} // namespace

std::string format_table(const run_result& r) {
  std::string out;
  // A continuation to a larger budget is not an interruption: said apart.
  auto interrupted = r.resumes - r.continuations;
  auto resumed =
      (interrupted > 0 ? fmt::format(", resumed {}x", interrupted)
                       : std::string{}) +
      (r.continuations > 0 ? fmt::format(", continued {}x", r.continuations)
                           : std::string{});
  out += fmt::format("run {} ({}, {}{}), {} networks: {} finished, {} "
                     "failed\n",
                     r.name, name_of(r.task), r.status, resumed,
                     r.networks.size(), r.count(network_status::finished),
                     r.count(network_status::failed));
  out += fmt::format("{:>5}  {:<9} {:<24} {:<9} {:>6} {:>10} {:>10} {:>9} "
                     "{:>10}\n",
                     "id", "name", "group", "status", "epochs", "train_loss",
                     "test_loss", "test_acc", "ms/step");
  for (const auto& n : r.networks) {
    auto group = n.group_label.size() > 24 ? n.group_label.substr(0, 21) + "..."
                                           : n.group_label;
    out += fmt::format("{:>5}  {:<9} {:<24} {:<9} {:>6} {:>10} {:>10} {:>9} "
                       "{:>10}\n",
                       n.id, n.name, group, to_string(n.status), n.epochs,
                       metric_text(n.train_loss), metric_text(n.test_loss),
                       metric_text(n.test_accuracy),
                       metric_text(n.seconds_per_step * 1e3, 3));
    if (n.status == network_status::failed)
      out += fmt::format("       error: {}\n", n.error);
    else if (n.stop_reason != stop_reason::none &&
             n.stop_reason != stop_reason::epochs)
      out += fmt::format("       stopped: {}\n", to_string(n.stop_reason));
  }
  if (!r.slots.empty()) {
    out += "\nslot utilisation (from the recorded schedule):\n";
    out += fmt::format("{:>5} {:<12} {:>8} {:>12} {:>6}\n", "slot", "device",
                       "grants", "busy_s", "busy");
    for (const auto& u : r.slots)
      out += fmt::format("{:>5} {:<12} {:>8} {:>12.2f} {:>5.1f}%\n", u.slot,
                         u.device.empty() ? "-" : u.device, u.grants,
                         u.busy_seconds, 100 * u.busy_fraction);
  }
  out += format_nodes(r);
  if (!r.stalls.empty()) {
    out += fmt::format("\nstalls (no quantum started or ended for a while; "
                       "scheduler.stall_report_seconds):\n");
    for (const auto& x : r.stalls)
      out += fmt::format("  at {:.1f} s: {}{}\n", x.time, x.report,
                         std::isnan(x.ended)
                             ? std::string{}
                             : fmt::format(" (went on at {:.1f} s)", x.ended));
  }
  if (!r.ensembles.empty()) {
    out += "\nensembles (mean of predicted probabilities):\n";
    out += fmt::format("{:<40} {:>9} {:>10} {:>10}\n", "group", "networks",
                       "accuracy", "loss");
    for (const auto& e : r.ensembles)
      out += fmt::format("{:<40} {:>9} {:>10} {:>10}\n", e.label, e.networks,
                         metric_text(e.accuracy), metric_text(e.loss));
  }
  return out;
}

std::string format_json(const run_result& r,
                        const std::vector<decision_record>& decisions) {
  nlohmann::json j;
  j["run"] = {{"name", r.name},
              {"status", r.status},
              {"resumes", r.resumes},
              {"continuations", r.continuations},
              {"task", name_of(r.task)},
              {"output_dir", r.output_dir},
              {"database", r.database_path},
              {"wall_seconds", json_num(r.wall_seconds)}};
  auto nets = nlohmann::json::array();
  for (const auto& n : r.networks) {
    nlohmann::json metrics = {{"train_loss", json_num(n.train_loss)},
                              {"test_loss", json_num(n.test_loss)}};
    if (r.task == task_kind::classification)
      metrics["test_accuracy"] = json_num(n.test_accuracy);
    nets.push_back(
        {{"id", n.id},
         {"name", n.name},
         {"group", n.group},
         {"group_label", n.group_label},
         {"seed", n.seed},
         {"status", to_string(n.status)},
         {"stop_reason", n.stop_reason == stop_reason::none
                             ? nlohmann::json(nullptr)
                             : nlohmann::json(to_string(n.stop_reason))},
         {"error",
          n.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(n.error)},
         {"epochs", n.epochs},
         {"steps", n.steps},
         {"metrics", metrics},
         {"timings",
          {{"seconds_per_step", json_num(n.seconds_per_step)},
           {"train_seconds", json_num(n.train_seconds)}}},
         {"weights", n.weights_path.empty() ? nlohmann::json(nullptr)
                                            : nlohmann::json(n.weights_path)},
         // Where they are: "file" (`weights`), "database" (rows of
         // results.db: docs/interop.md), null when it did not finish.
         {"weights_in", n.status != network_status::finished
                            ? nlohmann::json(nullptr)
                        : n.weights_in_store ? nlohmann::json("database")
                                             : nlohmann::json("file")}});
  }
  j["networks"] = nets;
  auto ens = nlohmann::json::array();
  for (const auto& e : r.ensembles)
    ens.push_back({{"group", e.group},
                   {"label", e.label},
                   {"networks", e.networks},
                   {"accuracy", json_num(e.accuracy)},
                   {"loss", json_num(e.loss)}});
  j["ensembles"] = ens;
  auto slots = nlohmann::json::array();
  for (const auto& u : r.slots)
    slots.push_back({{"slot", u.slot},
                     {"device", u.device},
                     {"node", u.node},
                     {"grants", u.grants},
                     {"busy_seconds", u.busy_seconds},
                     {"busy_fraction", u.busy_fraction}});
  j["slots"] = slots;
  j["nodes"] = node_rows(r);
  auto stalls = nlohmann::json::array();
  for (const auto& x : r.stalls)
    stalls.push_back({{"time", x.time},
                      {"quiet_seconds", x.quiet_seconds},
                      {"stopping", x.stopping},
                      {"report", x.report},
                      {"ended", json_num(x.ended)}});
  j["stalls"] = stalls;
  if (auto* e = r.overall_ensemble())
    j["ensemble"] = {{"networks", e->networks},
                     {"accuracy", json_num(e->accuracy)},
                     {"loss", json_num(e->loss)}};
  else
    j["ensemble"] = {{"networks", 0}, {"accuracy", nullptr}, {"loss", nullptr}};
  if (!decisions.empty()) {
    auto names = names_of(r);
    auto ds = nlohmann::json::array();
    for (const auto& d : decisions)
      ds.push_back({{"time", d.time},
                    {"network", d.network_id},
                    {"name", names[d.network_id]},
                    {"epoch", d.epoch},
                    {"rung", d.rung},
                    {"action", d.action},
                    {"reason", d.reason},
                    {"donor", d.donor >= 0 ? nlohmann::json(d.donor)
                                           : nlohmann::json(nullptr)},
                    {"old_hyperparameters", d.old_hyperparameters},
                    {"new_hyperparameters", d.new_hyperparameters}});
    j["decisions"] = ds;
    auto ls = nlohmann::json::object();
    for (const auto& [id, line] : lineages(decisions)) {
      auto copies = nlohmann::json::array();
      for (const auto* d : line)
        copies.push_back({{"epoch", d->rung},
                          {"donor", d->donor},
                          {"hyperparameters", d->new_hyperparameters}});
      ls[names[id]] = copies;
    }
    if (!ls.empty())
      j["lineages"] = ls;
  }
  return j.dump(2) + "\n";
}

nlohmann::json node_rows(const run_result& r) {
  auto nodes = nlohmann::json::array();
  for (const auto& n : r.nodes)
    nodes.push_back({{"node", node_name(n)},
                     {"slots", n.slots},
                     {"grants", n.grants},
                     {"queued_grants", n.queued_grants},
                     {"busy_seconds", n.busy_seconds},
                     {"busy_fraction", n.busy_fraction},
                     {"moves_in", n.moves_in},
                     {"state_bytes_in", n.moved_bytes_in},
                     {"data_bytes_in", n.data_bytes_in}});
  return nodes;
}

std::string format_summary(const run_result& r) {
  std::string out;
  auto finished = r.count(network_status::finished);
  auto failed = r.count(network_status::failed);
  // Earlier attempts' time is not known (one killed never said).
  out += fmt::format("{} networks: {} finished, {} failed in {:.1f} s{}\n",
                     r.networks.size(), finished, failed, r.wall_seconds,
                     r.resumes > 0 ? " (the last attempt)" : "");
  if (auto* b = r.best())
    out += fmt::format("best network: {} (test loss {}{}){}\n", b->name,
                       metric_text(b->test_loss),
                       std::isnan(b->test_accuracy)
                           ? std::string{}
                           : ", test accuracy " + metric_text(b->test_accuracy),
                       b->group_label.empty() ? std::string{}
                                              : " of " + b->group_label);
  for (const auto& e : r.ensembles) {
    if (r.task == task_kind::classification)
      out += fmt::format("ensemble [{}] of {} networks: test accuracy {}, "
                         "loss {}\n",
                         e.label, e.networks, metric_text(e.accuracy),
                         metric_text(e.loss));
    else
      out += fmt::format("ensemble [{}] of {} networks: test mse {}\n", e.label,
                         e.networks, metric_text(e.loss));
  }
  for (const auto& n : r.networks)
    if (n.status == network_status::failed)
      out += fmt::format("failed: {}: {}\n", n.name, n.error);
  if (!r.stalls.empty()) {
    auto longest = std::max_element(r.stalls.begin(), r.stalls.end(),
                                    [](const auto& a, const auto& b) {
                                      return a.quiet_seconds < b.quiet_seconds;
                                    })
                       ->quiet_seconds;
    out += fmt::format("stalled: {} report(s), the longest quiet {:.{}f} s "
                       "(actortrain results {} lists them)\n",
                       r.stalls.size(), longest, longest < 10 ? 1 : 0,
                       r.output_dir);
  }
  out += format_nodes(r);
  out += fmt::format("results: {} (actortrain results {})\n", r.database_path,
                     r.output_dir);
  return out;
}

} // namespace actortrain::app
