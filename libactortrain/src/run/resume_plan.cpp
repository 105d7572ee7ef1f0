#include "run/resume_plan.hpp"

#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "actors/coordinator.hpp"
#include "actortrain/error.hpp"
#include "actortrain/store.hpp"

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
  for (const auto& n : prior) {
    if (auto s = final_states.find(n.id); s != final_states.end()) {
      if (auto err = store.reopen_network(n.id, true))
        return err;
      plan.snapshots.emplace(n.id, std::move(s->second));
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
    auto entries = store.checkpoints(n.id);
    if (!entries)
      return entries.error();
    // Newest first; a truncated or corrupt file falls back to the one before.
    for (const auto& c : *entries) {
      if (auto bytes = store.checkpoint_bytes(n.id, c)) {
        plan.snapshots.emplace(n.id, std::move(*bytes));
        break;
      }
    }
  }
  if (auto err = remove_orphan_checkpoints(store, prior, plan.output_dir))
    return err;
  return store.mark_resumed();
}

} // namespace actortrain
