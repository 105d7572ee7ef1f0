#include "cluster/worker_node.hpp"

#include <thread>

#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/spawn_options.hpp>
#include <fmt/format.h>

#include "actortrain/error.hpp"
#include "cluster/data_cache.hpp"
#include "cluster/remote_executor.hpp"
#include "cluster/state_keeper.hpp"
#include "cluster/worker_run.hpp"
#include "data/dataset_on_device.hpp"
#include "platform/blas_kernels.hpp"
#include "protocol/slot.hpp"
#include "protocol/type_ids.hpp"
#include "setup/devices.hpp"

namespace actortrain {

namespace {

using node_actor = worker_node_actor::stateful_base<worker_node_state>;

void log(node_actor* self, const std::string& line) {
  if (self->state.opts.on_event)
    self->state.opts.on_event(line);
}

/// Names the data of an experiment, for errors.
std::string describe_data(const data_options& d) {
  if (d.format == data_format::synthetic)
    return fmt::format("synthetic data (seed {})", d.data_seed);
  return d.test.empty() ? d.train : fmt::format("{} and {}", d.train, d.test);
}

/// Stops the executors of the run `coordinator` is served and forgets it.
void end_run(node_actor* self, const caf::actor_addr& coordinator) {
  auto& st = self->state;
  auto i = st.runs.find(coordinator);
  if (i == st.runs.end())
    return;
  i->second.stop();
  st.runs.erase(i);
}

/// The run's data: the files at the coordinator's paths when they hold
/// what the coordinator has (by content hash), else this worker's cached
/// copy; without one, errc::data_needed asks the coordinator for it (with a
/// cache) or the run is refused naming the difference.
caf::expected<std::shared_ptr<const dataset>> data_for(node_actor* self,
                                                       const run_setup& setup) {
  auto& st = self->state;
  const auto& hash = setup.data_hash;
  std::string why;
  auto loaded = load_dataset(setup.exp.data);
  if (!loaded) {
    why = to_string_pretty(loaded.error());
  } else if (auto mine = content_hash(**loaded); mine != hash) {
    why = fmt::format("the data here differs from the coordinator's: {} has "
                      "content hash {} on this worker, {} on the coordinator",
                      describe_data(setup.exp.data), mine, hash);
  } else {
    return std::move(*loaded);
  }
  // Synthetic data is made here, from its settings: nothing to receive.
  if (!st.cache || setup.exp.data.format == data_format::synthetic)
    return make_error(errc::invalid_data,
                      st.cache ? why
                               : why + " (a worker started with --cache DIR "
                                       "receives the coordinator's data)");
  if (auto cached = st.cache->find(hash)) {
    log(self, fmt::format("data of run '{}' from the cache ({})",
                          setup.exp.name, st.cache->dir()));
    return cached;
  }
  log(self, fmt::format("asks the coordinator for the data of run '{}': {}",
                        setup.exp.name, why));
  return make_error(errc::data_needed, hash);
}

} // namespace

void worker_node_state::served_run::stop() const {
  // A quantum running ends after its next step, with a checkpoint its
  // report takes back, before the executor sees its exit message.
  if (run)
    run->stop_quanta();
  for (const auto& e : executors)
    caf::anon_send_exit(e, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(keeper, caf::exit_reason::user_shutdown);
}

worker_node_state::~worker_node_state() {
  for (const auto& [coordinator, run] : runs)
    run.stop();
}

worker_node_actor::behavior_type
worker_node(worker_node_actor::stateful_pointer<worker_node_state> self,
            worker_options opts) {
  self->state.opts = std::move(opts);
  if (!self->state.opts.cache_dir.empty())
    self->state.cache.emplace(self->state.opts.cache_dir);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (st.runs.count(dm.source) == 0)
      return;
    log(self, "coordinator left: its work here stopped");
    end_run(self, dm.source);
    if (!st.runs.empty())
      return;
    if (st.opts.exit_when_orphaned)
      self->quit();
    else
      log(self, "waiting for a coordinator");
  });
  return {
      [=](join_atom, uint32_t version,
          run_setup& setup) -> caf::result<std::vector<slot_grant>> {
        auto& st = self->state;
        if (version != wire_version)
          return make_error(
              errc::cluster_failed,
              fmt::format("this worker encodes messages as actortrain's "
                          "version {} of the wire format, the coordinator as "
                          "version {}: run the same actortrain on both",
                          wire_version, version));
        if (!setup.coordinator)
          return make_error(errc::cluster_failed, "no coordinator to serve");
        // A learner of the wrong kind would train other networks than the
        // coordinator's, silently.
        if (setup.custom_learner != static_cast<bool>(st.opts.make_learner))
          return make_error(
              errc::invalid_experiment,
              setup.custom_learner
                  ? "the run trains a custom learner and this worker the "
                    "built-in ones: run a worker program built with that "
                    "learner (actortrain::run_worker with its make_learner)"
                  : "this worker trains a custom learner and the run the "
                    "built-in ones: use `actortrain worker`");
        auto data = data_for(self, setup);
        if (!data)
          return data.error();
        auto ctx = make_run_context(setup.exp, st.opts.make_learner, *data,
                                    setup.model_files);
        if (!ctx)
          return make_error(errc::invalid_data,
                            fmt::format("cannot prepare the run here: {}",
                                        to_string_pretty(ctx.error())));
        if (auto err = check_model_hashes((*ctx)->scripts, setup.model_hashes))
          return err;
        auto devices = slot_devices(st.opts.devices, st.opts.slots,
                                    setup.exp.scheduler.streams_per_gpu);
        if (!devices)
          return make_error(errc::invalid_data,
                            fmt::format("cannot prepare the run here: {}",
                                        to_string_pretty(devices.error())));
        make_gpus_deterministic(*devices);
        // A coordinator that joins again (its link lost sight of this node)
        // starts over: its earlier executors stop.
        auto coordinator = setup.coordinator.address();
        end_run(self, coordinator);
        auto& served = st.runs[coordinator];
        served.run = std::make_shared<worker_run>(
            *ctx, setup.setup_networks, st.opts.verbose, st.opts.on_event);
        // Exports write states with LibTorch: on a thread of its own.
        served.keeper = self->spawn<caf::detached>(state_keeper, served.run);
        std::vector<slot_grant> slots;
        auto blas = blas_description();
        auto data_bytes = (*ctx)->data ? device_bytes(*(*ctx)->data) : 0;
        for (size_t i = 0; i < devices->size(); ++i) {
          slot_info info;
          info.id = static_cast<uint32_t>(i);
          info.device = (*devices)[i];
          info.threads = setup.exp.scheduler.threads_per_slot;
          info.blas = blas;
          info.memory_budget = memory_budget(
              info.device, setup.exp.scheduler.gpu_memory_fraction, data_bytes);
          auto exec =
              self->spawn<caf::detached>(remote_executor, info, served.run);
          served.executors.push_back(exec);
          slots.push_back(slot_grant{info, exec, served.keeper});
        }
        self->monitor(setup.coordinator);
        log(self,
            fmt::format(
                "joined run '{}' ({} networks) with {} slots{}", setup.exp.name,
                served.run->networks(), devices->size(),
                st.runs.size() > 1
                    ? fmt::format(" ({} runs served at once)", st.runs.size())
                    : ""));
        return slots;
      },
      [=](data_atom, const std::string& hash, uint64_t offset,
          const std::vector<char>& chunk, bool last) -> caf::result<uint64_t> {
        auto& st = self->state;
        if (!st.cache)
          return make_error(errc::cluster_failed,
                            "this worker keeps no data (start it with "
                            "--cache DIR)");
        auto got = st.cache->receive(hash, offset, chunk, last);
        if (!got)
          return got.error();
        if (last)
          log(self, fmt::format("received data from a coordinator ({:.1f} "
                                "MB, content hash {}), kept in {}",
                                static_cast<double>(*got) / 1e6, hash,
                                st.cache->dir()));
        return *got;
      },
      [=](submit_atom, const caf::actor& coordinator,
          const std::vector<worker_submission>& subs) -> caf::result<uint64_t> {
        auto& st = self->state;
        auto served = st.runs.find(coordinator.address());
        if (served == st.runs.end())
          return make_error(errc::cluster_failed,
                            "networks submitted for a run this worker does "
                            "not serve");
        auto known = served->second.run->add(subs);
        if (!known)
          return known.error();
        size_t added = 0;
        for (const auto& s : subs)
          added += s.configs.size();
        log(self, fmt::format("took {} submitted configuration{}: {} networks "
                              "known",
                              added, added == 1 ? "" : "s", *known));
        return *known;
      },
      [=](stop_atom, const caf::actor& coordinator) {
        auto& st = self->state;
        auto served = st.runs.find(coordinator.address());
        if (served == st.runs.end())
          return;
        served->second.run->stop_quanta();
        log(self, "the coordinator stops its run: its quanta here end after "
                  "their next step");
      },
  };
}

} // namespace actortrain
