#include "run/resume_plan.hpp"

#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "actors/coordinator.hpp"
#include "actortrain/error.hpp"
#include "actortrain/store.hpp"
#include "platform/blas_kernels.hpp"

namespace fs = std::filesystem;

namespace actortrain {

namespace {

/// Removes checkpoint files the store does not know: written just before a
/// crash and never recorded, or no longer needed and not yet removed when
/// the process died. Only the folder's lock holder gets here.
caf::error remove_orphan_checkpoints(const results_store& store,
                                     const std::vector<network_result>& nets,
                                     const std::string& output_dir) {
  std::set<std::string> recorded;
  for (const auto& n : nets) {
    auto entries = store.checkpoints(n.id);
    if (!entries)
      return entries.error();
    for (const auto& c : *entries)
      recorded.insert(fs::path{c.path}.filename().string());
  }
  std::error_code ec;
  for (const auto& e :
       fs::directory_iterator{fs::path{output_dir} / "checkpoints", ec})
    if (e.path().extension() == ".ckpt" &&
        recorded.count(e.path().filename().string()) == 0)
      fs::remove(e.path(), ec);
  return {};
}

/// Why a finished network's files cannot be reused ("" when they can): each
/// must be where the run kept it (the store or the folder), with the size
/// and CRC-32 recorded when it was written. Stores from before checksums
/// were recorded let only the files' presence be checked.
std::string damaged_files(const results_store& store, const network_result& n) {
  std::vector<std::string> problems;
  for (auto kind : {file_kind::weights, file_kind::predictions}) {
    auto bytes = store.file_bytes(n.id, kind);
    if (!bytes)
      problems.push_back(to_string_pretty(bytes.error()));
    else if (bytes->empty())
      problems.push_back(
          fmt::format("the {} of {} are empty", to_string(kind), n.name));
  }
  return fmt::format("{}", fmt::join(problems, "; "));
}

/// What the run's adaptive search had seen, for it to replay
/// (scheduler.hpp): every epoch of a network that is done, and those up to
/// its snapshot of one that continues, and the decisions recorded; for PBT
/// also which interval states the store kept (donors serve them from
/// there).
caf::error search_history_of(const results_store& store,
                             const std::vector<network_result>& prior,
                             const std::map<uint64_t, int64_t>& resumed_step,
                             run_plan& plan) {
  auto kind = search_settings_of(plan.exp).kind;
  if (kind == search_kind::none)
    return {};
  if (kind == search_kind::pbt) {
    auto kept = store.kept_epochs();
    if (!kept)
      return kept.error();
    plan.kept_epochs = std::move(*kept);
  }
  auto epochs = store.all_epochs();
  if (!epochs)
    return epochs.error();
  auto decisions = store.decisions();
  if (!decisions)
    return decisions.error();
  std::map<uint64_t, std::map<int64_t, epoch_metrics>> by_network;
  for (auto& e : *epochs)
    by_network[e.network_id][e.epoch] = e;
  std::map<uint64_t, const network_spec*> specs;
  for (const auto& spec : plan.specs)
    specs[spec.id] = &spec;
  std::set<uint64_t> done;
  for (const auto* ids :
       {&plan.resumed_finished, &plan.resumed_failed, &plan.resumed_cancelled})
    done.insert(ids->begin(), ids->end());
  auto& h = plan.searched_before;
  for (const auto& n : prior) {
    auto spec = specs.find(n.id);
    if (spec == specs.end())
      continue;
    search_history::network r;
    r.id = n.id;
    r.epochs = spec->second->config.train.epochs;
    r.lr = spec->second->config.optimizer.lr;
    auto step = resumed_step.find(n.id);
    r.done = done.count(n.id) > 0;
    if (!r.done && step == resumed_step.end())
      continue; // it starts again from its first step
    for (const auto& [epoch, e] : by_network[n.id])
      if (r.done || e.steps <= step->second)
        r.reported.push_back(e);
    h.networks.push_back(std::move(r));
  }
  for (const auto& d : *decisions)
    h.recorded.insert({d.network_id, d.rung, d.action});
  return {};
}

} // namespace

caf::error plan_resume(results_store& store,
                       const std::vector<network_result>& prior, run_plan& plan,
                       const std::set<uint64_t>& extend) {
  // Every final state a continuation needs is read before anything
  // changes: a missing one refuses the whole continuation.
  std::map<uint64_t, std::vector<char>> final_states;
  for (const auto& n : prior) {
    if (n.status != network_status::finished || extend.count(n.id) == 0)
      continue;
    auto entries = store.checkpoints(n.id);
    if (!entries)
      return entries.error();
    for (const auto& c : *entries)
      if (c.step == n.steps)
        if (auto bytes = store.checkpoint_bytes(n.id, c))
          final_states[n.id] = std::move(*bytes);
    if (final_states.count(n.id) == 0)
      return make_error(errc::invalid_experiment,
                        fmt::format("{}: {} kept no intact final state (it "
                                    "finished before final states were "
                                    "kept, or its learner cannot "
                                    "checkpoint), so it cannot continue to a "
                                    "larger train.epochs; use another "
                                    "--output folder",
                                    plan.output_dir, n.name));
  }
  // Where each network continues: the step of its snapshot (none: from
  // the start).
  std::map<uint64_t, int64_t> resumed_step;
  for (const auto& n : prior) {
    if (auto s = final_states.find(n.id); s != final_states.end()) {
      if (auto err = store.reopen_network(n.id, true))
        return err;
      plan.snapshots.emplace(n.id, std::move(s->second));
      resumed_step[n.id] = n.steps;
      continue;
    }
    if (n.status == network_status::finished) {
      auto damage = damaged_files(store, n);
      if (damage.empty()) {
        plan.resumed_finished.push_back(n.id);
        continue;
      }
      // A network's result depends only on its spec and seed: training it
      // again gives the same files.
      if (auto err = store.reopen_network(n.id))
        return err;
      if (plan.on_event)
        plan.on_event(fmt::format("{} finished before, but {}: training it "
                                  "again",
                                  n.name, damage));
      continue;
    }
    if (n.status == network_status::failed) {
      plan.resumed_failed.push_back(n.id);
      continue;
    }
    if (n.status == network_status::cancelled) {
      plan.resumed_cancelled.push_back(n.id);
      continue;
    }
    auto latest = store.latest_checkpoint(n.id);
    if (!latest)
      return latest.error();
    if (*latest) {
      plan.snapshots.emplace(n.id, std::move((*latest)->bytes));
      resumed_step[n.id] = (*latest)->step;
    }
  }
  if (auto err = search_history_of(store, prior, resumed_step, plan))
    return err;
  auto clock = store.schedule_seconds();
  if (!clock)
    return clock.error();
  plan.schedule_seconds_before = *clock;
  if (auto err = remove_orphan_checkpoints(store, prior, plan.output_dir))
    return err;
  // Other kernels round differently: the rest of the run is not an
  // uninterrupted run's bits, which the user should know and the store keep.
  auto now = blas_description();
  auto before = store.record_blas(now);
  if (!before)
    return before.error();
  if (!before->empty() && plan.on_event)
    plan.on_event(fmt::format(
        "warning: the run ran with the BLAS '{}' and resumes with '{}': "
        "its networks round differently from here on than in an "
        "uninterrupted run (OPENBLAS_CORETYPE picks OpenBLAS's kernels)",
        *before, now));
  return store.mark_resumed();
}

} // namespace actortrain
