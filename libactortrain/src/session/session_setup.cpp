#include "session/session_setup.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <type_traits>

#include <caf/scoped_actor.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "actors/coordinator.hpp"
#include "actortrain/error.hpp"
#include "actortrain/option_keys.hpp"
#include "actortrain/store.hpp"
#include "cluster/for_workers.hpp"
#include "cluster/worker_link.hpp"
#include "protocol/type_ids.hpp"
#include "run/resume_plan.hpp"
#include "run/run_folder.hpp"
#include "setup/run_context.hpp"

namespace fs = std::filesystem;

namespace actortrain {

namespace {

/// The setup's fingerprint and, when it has TorchScript models, their
/// files' content hashes: a module edited between a crash and the resume
/// changes what the networks compute as surely as an edited key.
std::string run_fingerprint(const experiment& exp,
                            const script_models& scripts) {
  auto result = fingerprint(exp);
  for (const auto& [path, model] : scripts)
    result += "+" + model->hash;
  return result;
}

caf::error different_experiment(const run_plan& plan, const std::string& hash,
                                const std::string& mine,
                                const std::string& what) {
  return make_error(
      errc::invalid_experiment,
      fmt::format("{} holds a run of a different experiment (fingerprint "
                  "{}, this one is {}): {} changed, so resuming would mix "
                  "results; use another --output folder",
                  plan.output_dir, hash, mine, what));
}

/// A value of an experiment key as the TOML file writes it.
template <class T> std::string key_value(const T& v) {
  if constexpr (is_choice<T>::value)
    return fmt::format("\"{}\"", name_of(v));
  else if constexpr (std::is_same_v<T, std::string>)
    return fmt::format("\"{}\"", v);
  else if constexpr (std::is_same_v<T, bool>)
    return v ? "true" : "false";
  else if constexpr (std::is_arithmetic_v<T>)
    return fmt::format("{}", v);
  else
    return fmt::format("[{}]", fmt::join(v, ", "));
}

/// The keys that change numbers and differ between `a` and `b` (the budget
/// aside), "section.key old -> new".
template <class Section>
void changed_keys(const Section& a, const Section& b,
                  std::vector<std::string>& out) {
  keys::for_each_row<Section>([&](const auto& row) {
    if (row.changes != keys::numbers)
      return;
    if constexpr (std::is_same_v<Section, train_options>)
      if (std::string_view{row.name} == "epochs")
        return;
    const auto& x = a.*(row.member);
    const auto& y = b.*(row.member);
    if (!(x == y))
      out.push_back(fmt::format("{}.{} {} -> {}", keys::section<Section>::name,
                                row.name, key_value(x), key_value(y)));
  });
}

/// What a continuation of a finished run changes.
struct continuation {
  std::set<uint64_t> extend;
  std::string description;
};

/// A run of the setup whose only change of numbers is a larger
/// train.epochs continues: its finished networks go on from their final
/// states. Any other change is refused, naming the keys that changed.
/// `hash` is the stored fingerprint, `mine` the setup's.
caf::expected<continuation>
plan_continuation(const experiment& setup, const run_plan& plan,
                  const results_store& store, const std::string& hash,
                  const std::string& mine,
                  const std::vector<network_result>& prior) {
  auto stored = store.configurations();
  if (!stored)
    return stored.error();
  auto configs = setup.configs();
  if (stored->size() != configs.size())
    return different_experiment(
        plan, hash, mine,
        fmt::format("its number of configurations ({} -> {})", stored->size(),
                    configs.size()));
  // The setup with the stored budgets: the same fingerprint means only
  // budgets changed.
  auto with_old = setup;
  std::vector<network_config*> with_old_configs;
  if (with_old.variants.empty())
    with_old_configs.push_back(&with_old.base);
  for (auto& v : with_old.variants)
    with_old_configs.push_back(&v);
  std::vector<std::string> changes;
  std::vector<std::string> budgets;
  for (size_t i = 0; i < configs.size(); ++i) {
    const auto& before = (*stored)[i].config;
    with_old_configs[i]->train.epochs = before.train.epochs;
    changed_keys(before.model, configs[i].model, changes);
    changed_keys(before.optimizer, configs[i].optimizer, changes);
    changed_keys(before.train, configs[i].train, changes);
    auto label = configs[i].label.empty() ? "all" : configs[i].label;
    if (configs[i].train.epochs < before.train.epochs)
      return make_error(
          errc::invalid_experiment,
          fmt::format("{}: train.epochs of configuration '{}' went down from "
                      "{} to {}: a run continues only to a larger budget; "
                      "use another --output folder",
                      plan.output_dir, label, before.train.epochs,
                      configs[i].train.epochs));
    if (configs[i].train.epochs > before.train.epochs)
      budgets.push_back(fmt::format("'{}' {} -> {}", label, before.train.epochs,
                                    configs[i].train.epochs));
  }
  if (run_fingerprint(with_old, plan.scripts) != hash || budgets.empty())
    return different_experiment(
        plan, hash, mine,
        changes.empty() ? std::string{"its data, search, a TorchScript "
                                      "module's file or a scheduler setting "
                                      "that changes numbers"}
                        : fmt::format("{}", fmt::join(changes, ", ")));
  continuation out;
  for (const auto& n : prior)
    if (n.status == network_status::finished &&
        n.stop_reason == stop_reason::epochs &&
        plan.specs.at(n.id).config.train.epochs > n.epochs)
      out.extend.insert(n.id);
  out.description =
      fmt::format("train.epochs {}: {} finished networks continue",
                  fmt::join(budgets, ", "), out.extend.size());
  return out;
}

/// A fixed population resumed: the stored networks must be the setup's.
caf::error resume_setup(const std::vector<network_result>& prior,
                        const run_plan& plan) {
  bool same = prior.size() == plan.specs.size();
  for (size_t i = 0; same && i < prior.size(); ++i)
    same = prior[i].id == plan.specs[i].id &&
           prior[i].seed == plan.specs[i].seed &&
           prior[i].group == plan.specs[i].group;
  if (!same)
    return make_error(errc::invalid_experiment,
                      fmt::format("{} holds a run of a different "
                                  "experiment: its {} networks are not the "
                                  "{} this one expands into; use another "
                                  "--output folder",
                                  plan.output_dir, prior.size(),
                                  plan.specs.size()));
  return {};
}

/// A live session reopened: every configuration's networks rebuilt from
/// the stored configurations, with the ids, seeds and shards they had.
caf::error rebuild_networks(const experiment& setup, bool builtin,
                            const results_store& store,
                            const std::vector<network_result>& prior,
                            run_plan& plan, int64_t& groups) {
  auto configs = store.configurations();
  if (!configs)
    return configs.error();
  std::map<int64_t, std::vector<const network_result*>> by_group;
  for (const auto& n : prior)
    by_group[n.group].push_back(&n);
  for (const auto& c : *configs) {
    if (c.group != static_cast<int64_t>(plan.group_labels.size()))
      return make_error(errc::storage_failed,
                        fmt::format("{}: configuration {} is missing, so its "
                                    "networks cannot be rebuilt",
                                    store.path(), plan.group_labels.size()));
    plan.group_labels.push_back(c.config.label.empty() ? "all"
                                                       : c.config.label);
    const auto& members = by_group[c.group];
    if (members.empty())
      continue;
    auto sub = prepare_submission(setup, *plan.data, {c.config},
                                  members.front()->id, c.group, builtin);
    if (!sub)
      return make_error(errc::invalid_experiment,
                        fmt::format("{}: configuration {} ('{}') cannot be "
                                    "trained any more: {}",
                                    store.path(), c.group,
                                    plan.group_labels.back(),
                                    to_string_pretty(sub.error())));
    for (size_t i = 0; i < sub->specs.size(); ++i)
      if (i >= members.size() || sub->specs[i].id != members[i]->id ||
          sub->specs[i].seed != members[i]->seed)
        return make_error(errc::storage_failed,
                          fmt::format("{}: the networks of configuration {} "
                                      "are not the ones it expands into "
                                      "(network {}): the store was changed",
                                      store.path(), c.group,
                                      sub->specs[i].name));
    plan.specs.insert(plan.specs.end(), sub->specs.begin(), sub->specs.end());
    plan.shards.insert(plan.shards.end(), sub->shards.begin(),
                       sub->shards.end());
    plan.scripts.insert(sub->scripts.begin(), sub->scripts.end());
    if (!setup.cluster.workers.empty())
      plan.worker_submissions.push_back(for_workers(*sub));
  }
  if (plan.specs.size() != prior.size())
    return make_error(errc::storage_failed,
                      fmt::format("{}: {} networks are recorded but their "
                                  "configurations expand into {}",
                                  store.path(), prior.size(),
                                  plan.specs.size()));
  groups = static_cast<int64_t>(configs->size());
  return {};
}

} // namespace

caf::error join_cluster(caf::actor_system& sys, run_plan& plan,
                        const caf::actor& coordinator, bool tls,
                        const std::shared_ptr<std::atomic<bool>>& stop) {
  plan.setup.exp = for_workers(plan.exp);
  plan.setup.data_hash = content_hash(*plan.data);
  plan.shipment =
      std::make_shared<data_shipment>(plan.data, plan.setup.data_hash);
  plan.setup.model_hashes = model_hashes(plan.scripts);
  plan.setup.model_files = model_files(plan.scripts);
  plan.setup.setup_networks = plan.fixed_population;
  plan.setup.custom_learner = static_cast<bool>(plan.make_learner);
  plan.setup.coordinator = coordinator;
  plan.tls = tls;
  bool stopped = false;
  auto results = join_workers(sys, plan.exp.cluster.workers, plan.setup, tls,
                              stop, stopped, plan.shipment);
  if (stopped)
    return make_error(errc::run_aborted,
                      "stopped while the workers were joining; nothing was "
                      "trained");
  std::vector<std::string> unreachable_reasons;
  for (auto& r : results) {
    if (r.joined) {
      plan.workers.push_back(std::move(*r.joined));
      continue;
    }
    if (r.refused)
      return r.joined.error();
    unreachable_reasons.push_back(to_string_pretty(r.joined.error()));
    plan.unreachable_workers.push_back(r.address);
    if (plan.on_event)
      plan.on_event(fmt::format("{}; trying again every second",
                                unreachable_reasons.back()));
  }
  if (!plan.exp.cluster.local && plan.workers.empty())
    return make_error(errc::cluster_failed,
                      fmt::format("no slot to train on: cluster.local is "
                                  "false and no worker could be reached ({})",
                                  fmt::join(unreachable_reasons, "; ")));
  return {};
}

caf::error share_submissions(caf::actor_system& sys, run_plan& plan) {
  if (plan.worker_submissions.empty())
    return {};
  caf::scoped_actor self{sys};
  std::vector<joined_worker> ready;
  for (auto& w : plan.workers) {
    caf::error failed;
    self->request(w.node, join_timeout, submit_atom_v, plan.setup.coordinator,
                  plan.worker_submissions)
        .receive([](uint64_t) {}, [&](caf::error& err) { failed = err; });
    if (!failed) {
      ready.push_back(std::move(w));
      continue;
    }
    if (refused_by_worker(failed))
      return make_error(errc::cluster_failed,
                        fmt::format("worker {} cannot train the networks "
                                    "submitted before: {}",
                                    w.address, to_string_pretty(failed)));
    if (plan.on_event)
      plan.on_event(fmt::format("worker {} did not take the networks "
                                "submitted before ({}); trying again every "
                                "second",
                                w.address, to_string_pretty(failed)));
    plan.unreachable_workers.push_back(w.address);
  }
  plan.workers = std::move(ready);
  if (!plan.exp.cluster.local && plan.workers.empty())
    return make_error(errc::cluster_failed,
                      "no slot to train on: cluster.local is false and no "
                      "worker took the networks submitted before");
  return {};
}

caf::expected<opened_store> open_run_store(const experiment& setup,
                                           bool builtin, run_plan& plan) {
  opened_store out;
  auto db_path =
      (fs::path{plan.output_dir} / results_store::file_name).string();
  discard_empty_store(db_path);
  if (!fs::exists(db_path)) {
    auto store = results_store::create(db_path);
    if (!store)
      return store.error();
    plan.store = std::move(*store);
    if (auto err = plan.store->begin_run(
            setup,
            plan.fixed_population ? plan.specs : std::vector<network_spec>{},
            plan.data->task, run_fingerprint(setup, plan.scripts)))
      return err;
    return out;
  }
  auto store = results_store::open(db_path, true);
  if (!store)
    return store.error();
  auto hash = (*store)->experiment_hash();
  if (!hash)
    return hash.error();
  auto prior = (*store)->read();
  if (!prior)
    return prior.error();
  auto mine = run_fingerprint(setup, plan.scripts);
  std::optional<continuation> continued;
  if (*hash != mine) {
    if (!plan.fixed_population)
      return different_experiment(plan, *hash, mine,
                                  "the setup's data or base configuration");
    auto c =
        plan_continuation(setup, plan, **store, *hash, mine, prior->networks);
    if (!c)
      return c.error();
    continued = std::move(*c);
  }
  if (plan.fixed_population) {
    if (auto err = resume_setup(prior->networks, plan))
      return err;
    out.next_group = static_cast<int64_t>(plan.group_labels.size());
  } else if (auto err =
                 rebuild_networks(setup, builtin, **store, prior->networks,
                                  plan, out.next_group)) {
    return err;
  }
  if (auto err =
          plan_resume(**store, prior->networks, plan,
                      continued ? continued->extend : std::set<uint64_t>{}))
    return err;
  if (continued) {
    if (auto err = (*store)->record_continuation(mine, continued->description,
                                                 setup.configs()))
      return err;
    if (plan.on_event)
      plan.on_event(fmt::format("continuing {}: {}", plan.output_dir,
                                continued->description));
  }
  plan.store = std::move(*store);
  out.prior = std::move(prior->networks);
  for (const auto& n : out.prior)
    out.next_id = std::max(out.next_id, n.id + 1);
  return out;
}

} // namespace actortrain
