#include "actortrain/run.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <sys/file.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "actors/coordinator.hpp"
#include "actortrain/error.hpp"
#include "actortrain/learner.hpp"
#include "cluster/system_config.hpp"
#include "cluster/worker_link.hpp"
#include "protocol/slot.hpp"
#include "protocol/type_ids.hpp"
#include "run/resume_plan.hpp"
#include "run/run_folder.hpp"
#include "setup/run_context.hpp"

namespace fs = std::filesystem;

namespace actortrain {

namespace {

/// The experiment's fingerprint and, when it has TorchScript models, their
/// files' content hashes: a module edited between a crash and the resume
/// changes what the networks compute as surely as an edited key.
std::string run_fingerprint(const experiment& exp,
                            const script_models& scripts) {
  auto result = fingerprint(exp);
  for (const auto& [path, model] : scripts)
    result += "+" + model->hash;
  return result;
}

/// Opens the store of an earlier attempt at the same experiment and plans
/// what is left: finished and failed networks are kept as they are; the
/// others continue from their newest intact checkpoint (or from the start).
caf::error prepare_resume(const experiment& exp, run_plan& plan,
                          const std::string& db_path) {
  auto store = results_store::open(db_path, true);
  if (!store)
    return store.error();
  auto hash = (*store)->experiment_hash();
  if (!hash)
    return hash.error();
  auto mine = run_fingerprint(exp, plan.scripts);
  auto prior = (*store)->read();
  if (!prior)
    return prior.error();
  if (*hash != mine || prior->networks.size() != plan.specs.size())
    return make_error(
        errc::invalid_experiment,
        fmt::format("{} holds a run of a different experiment (fingerprint "
                    "{}, this one is {}): its data, model (or a "
                    "TorchScript module's file), optimizer or training "
                    "settings changed, so resuming would mix "
                    "results; use another --output folder",
                    plan.output_dir, *hash, mine));
  if (auto err = plan_resume(**store, prior->networks, plan))
    return err;
  plan.store = std::move(*store);
  return {};
}

} // namespace

namespace {

/// Asks every worker of `exp` to join, all at once. A worker that refuses
/// (different data, busy) is an error; one that cannot be reached or does
/// not answer is tried again during the run, unless no slot would be left at
/// all. A stop (SIGTERM) ends the wait.
caf::error join_workers(caf::actor_system& sys, run_plan& plan, bool tls,
                        const std::shared_ptr<std::atomic<bool>>& stop) {
  bool stopped = false;
  auto results = join_workers(sys, plan.exp.cluster.workers, plan.setup, tls,
                              stop, stopped);
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

/// The experiment as workers get it: data paths absolute, as they are
/// resolved here.
std::string absolute_path(const std::string& path) {
  return fs::absolute(path).lexically_normal().string();
}

experiment for_workers(experiment exp) {
  for (auto* p : {&exp.data.train, &exp.data.train_labels, &exp.data.test,
                  &exp.data.test_labels})
    if (!p->empty())
      *p = absolute_path(*p);
  if (!exp.base.model.path.empty())
    exp.base.model.path = absolute_path(exp.base.model.path);
  for (auto& cfg : exp.variants)
    if (!cfg.model.path.empty())
      cfg.model.path = absolute_path(cfg.model.path);
  return exp;
}

} // namespace

namespace {

/// Opens the folder's results store to resume the run it holds, or creates
/// it and records a new run.
caf::error open_store(const experiment& exp, run_plan& plan) {
  auto db_path =
      (fs::path{plan.output_dir} / results_store::file_name).string();
  discard_empty_store(db_path);
  if (fs::exists(db_path))
    return prepare_resume(exp, plan, db_path);
  auto store = results_store::create(db_path);
  if (!store)
    return store.error();
  plan.store = std::move(*store);
  return plan.store->begin_run(exp, plan.specs, plan.data->task,
                               run_fingerprint(exp, plan.scripts));
}

} // namespace

caf::expected<run_result> run(const experiment& exp, run_options opts) {
  if (auto err = opts.tls.validate())
    return err;
  if (opts.tune_allocator)
    tune_allocator();
  auto ctx = make_run_context(exp, opts.make_learner);
  if (!ctx)
    return ctx.error();
  auto plan = std::make_shared<run_plan>();
  plan->exp = exp;
  plan->specs = (*ctx)->specs;
  plan->data = (*ctx)->data;
  plan->shards = std::move((*ctx)->shards);
  plan->scripts = (*ctx)->scripts;
  ctx->reset();
  plan->on_event = opts.on_event;
  bool cluster = !exp.cluster.workers.empty();
  caf::actor_system_config cfg;
  configure_system(cfg, cluster, opts.tls);
  caf::actor_system sys{cfg};
  // The coordinator exists before the workers join: they serve it, and let
  // go of the run when it goes down.
  auto coord = sys.spawn(coordinator, plan);
  struct coordinator_guard {
    caf::actor& coord;
    bool armed = true;
    ~coordinator_guard() {
      if (armed)
        caf::anon_send_exit(coord, caf::exit_reason::user_shutdown);
    }
  } guard{coord};
  if (cluster) {
    if (opts.make_learner)
      return make_error(errc::invalid_experiment,
                        "cluster.workers: runs with a custom learner cannot "
                        "use actortrain worker processes (they train the "
                        "built-in learners); build a worker with "
                        "actortrain::run_worker and the same learner factory");
    plan->setup.exp = for_workers(exp);
    plan->setup.data_hash = content_hash(*plan->data);
    for (const auto& [path, model] : plan->scripts)
      plan->setup.model_hashes.emplace(absolute_path(path), model->hash);
    plan->setup.coordinator = coord;
    plan->tls = opts.tls.enabled();
    if (auto err = join_workers(sys, *plan, plan->tls, opts.stop))
      return err;
  }
  plan->output_dir =
      opts.output_dir.empty() ? default_output_dir(exp.name) : opts.output_dir;
  std::optional<folder_lock> lock;
  if (auto err = lock_output_folder(plan->output_dir, exp.output.layout, lock))
    return err;
  if (auto err = open_store(exp, *plan))
    return err;
  plan->stop = opts.stop;
  plan->make_learner = std::move(opts.make_learner);
  plan->on_progress = std::move(opts.on_progress);
  plan->progress_interval_seconds = opts.progress_interval_seconds;
  plan->progress_rows = opts.progress_rows;
  guard.armed = false;
  caf::scoped_actor self{sys};
  caf::expected<run_result> result{
      make_error(errc::run_aborted, "the run ended without a result")};
  self->request(coord, caf::infinite, run_atom_v)
      .receive([&](run_result& r) { result = std::move(r); },
               [&](caf::error& err) { result = std::move(err); });
  return result;
}

caf::expected<run_result> read_results(const std::string& output_dir) {
  fs::path p{output_dir};
  if (fs::is_directory(p))
    p /= results_store::file_name;
  if (!fs::exists(p))
    return make_error(errc::storage_failed,
                      fmt::format("{}: no results store here (expected {})",
                                  output_dir, p.string()));
  auto store = results_store::open(p.string());
  if (!store)
    return store.error();
  auto result = (*store)->read();
  if (result)
    result->output_dir = p.parent_path().string();
  return result;
}

} // namespace actortrain
