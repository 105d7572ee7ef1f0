#include "cluster/worker_node.hpp"

#include <thread>

#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/spawn_options.hpp>
#include <fmt/format.h>

#include "actortrain/error.hpp"
#include "cluster/remote_executor.hpp"
#include "cluster/state_keeper.hpp"
#include "cluster/worker_run.hpp"
#include "protocol/slot.hpp"
#include "protocol/type_ids.hpp"

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
  for (auto& e : i->second.executors)
    self->send_exit(e, caf::exit_reason::user_shutdown);
  self->send_exit(i->second.keeper, caf::exit_reason::user_shutdown);
  st.runs.erase(i);
}

} // namespace

worker_node_actor::behavior_type
worker_node(worker_node_actor::stateful_pointer<worker_node_state> self,
            worker_options opts) {
  self->state.opts = std::move(opts);
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
  self->attach_functor([=] {
    while (!self->state.runs.empty())
      end_run(self, self->state.runs.begin()->first);
  });
  return {
      [=](join_atom, run_setup& setup) -> caf::result<std::vector<slot_grant>> {
        auto& st = self->state;
        if (!setup.coordinator)
          return make_error(errc::cluster_failed, "no coordinator to serve");
        auto ctx = make_run_context(setup.exp, st.opts.make_learner);
        if (!ctx)
          return make_error(errc::invalid_data,
                            fmt::format("cannot prepare the run here: {}",
                                        to_string_pretty(ctx.error())));
        auto hash = content_hash(*(*ctx)->data);
        if (hash != setup.data_hash)
          return make_error(
              errc::invalid_data,
              fmt::format("the data here differs from the coordinator's: {} "
                          "has content hash {} on this worker, {} on the "
                          "coordinator",
                          describe_data(setup.exp.data), hash,
                          setup.data_hash));
        if (auto err = check_model_hashes((*ctx)->scripts, setup.model_hashes))
          return err;
        auto n =
            st.opts.slots > 0
                ? st.opts.slots
                : std::max<int64_t>(1, std::thread::hardware_concurrency());
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
        for (int64_t i = 0; i < n; ++i) {
          slot_info info;
          info.id = static_cast<uint32_t>(i);
          info.device = "cpu";
          info.threads = setup.exp.scheduler.threads_per_slot;
          auto exec =
              self->spawn<caf::detached>(remote_executor, info, served.run);
          served.executors.push_back(exec);
          slots.push_back(slot_grant{info, exec, served.keeper});
        }
        self->monitor(setup.coordinator);
        log(self, fmt::format("joined run '{}' ({} networks) with {} slots{}",
                              setup.exp.name, served.run->networks(), n,
                              st.runs.size() > 1
                                  ? fmt::format(" ({} runs served at once)",
                                                st.runs.size())
                                  : ""));
        return slots;
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
  };
}

} // namespace actortrain
