#include "cluster/worker_node.hpp"

#include <thread>

#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/spawn_options.hpp>
#include <fmt/format.h>

#include "actortrain/error.hpp"
#include "cluster/remote_executor.hpp"
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

/// Stops the executors of the current run and forgets it.
void end_run(node_actor* self) {
  auto& st = self->state;
  for (auto& e : st.executors)
    self->send_exit(e, caf::exit_reason::user_shutdown);
  st.executors.clear();
  st.run.reset();
  st.coordinator = nullptr;
}

} // namespace

worker_node_actor::behavior_type
worker_node(worker_node_actor::stateful_pointer<worker_node_state> self,
            worker_options opts) {
  self->state.opts = std::move(opts);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (dm.source != st.coordinator)
      return;
    log(self, "coordinator left: its work here stopped");
    end_run(self);
    if (st.opts.exit_when_orphaned)
      self->quit();
    else
      log(self, "waiting for a coordinator");
  });
  self->attach_functor([=] { end_run(self); });
  return {
      [=](join_atom, run_setup& setup) -> caf::result<std::vector<slot_grant>> {
        auto& st = self->state;
        if (st.run)
          return make_error(errc::cluster_failed,
                            "busy with another coordinator's run");
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
        st.run = std::make_shared<worker_run>(
            *ctx, setup.setup_networks, st.opts.verbose, st.opts.on_event);
        std::vector<slot_grant> slots;
        for (int64_t i = 0; i < n; ++i) {
          slot_info info;
          info.id = static_cast<uint32_t>(i);
          info.device = "cpu";
          info.threads = setup.exp.scheduler.threads_per_slot;
          auto exec = self->spawn<caf::detached>(remote_executor, info, st.run);
          st.executors.push_back(exec);
          slots.push_back(slot_grant{info, exec});
        }
        st.coordinator = setup.coordinator.address();
        self->monitor(setup.coordinator);
        log(self, fmt::format("joined run '{}' ({} networks) with {} slots",
                              setup.exp.name, st.run->networks(), n));
        return slots;
      },
      [=](submit_atom,
          const std::vector<worker_submission>& subs) -> caf::result<uint64_t> {
        auto& st = self->state;
        if (!st.run)
          return make_error(errc::cluster_failed,
                            "networks submitted to a worker that serves no "
                            "run");
        auto known = st.run->add(subs);
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
