#include "actors/coordinator.hpp"

#include <algorithm>
#include <thread>
#include <unordered_set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/spawn_options.hpp>

#include "actors/slot_executor.hpp"
#include "actors/trainer.hpp"
#include "actortrain/error.hpp"
#include "actortrain/learner.hpp"
#include "cluster/for_workers.hpp"
#include "data/dataset_on_device.hpp"
#include "fusion/grouping.hpp"
#include "platform/blas_kernels.hpp"
#include "protocol/slot.hpp"
#include "protocol/type_ids.hpp"
#include "scheduling/scheduler.hpp"
#include "setup/devices.hpp"
#include "setup/run_context.hpp"

namespace actortrain {

namespace {

using coordinator_actor = caf::stateful_actor<coordinator_state>;

void check_stall(coordinator_actor* self, const scheduler_status& s,
                 bool stopping);

/// Gathers a run_status from the scheduler and the aggregator, hands it to
/// the progress callback, then calls `then`. With `stalls`, the scheduler's
/// status also goes to the stall watch (one request serves both).
void report_progress(coordinator_actor* self, std::function<void()> then,
                     bool stalls = false) {
  auto& st = self->state;
  if (!st.plan->on_progress && !stalls) {
    if (then)
      then();
    return;
  }
  auto elapsed = std::chrono::duration<double>(
                     std::chrono::steady_clock::now() - st.started)
                     .count();
  self->request(st.scheduler, caf::infinite, status_atom_v)
      .then([=](const scheduler_status& s) {
        if (stalls)
          check_stall(self, s, false);
        auto& st = self->state;
        if (!st.plan->on_progress) {
          if (then)
            then();
          return;
        }
        // The networks on a slot now, with the slot each is on.
        std::vector<uint64_t> ids;
        std::unordered_map<uint64_t, std::string> slot_of;
        for (const auto& h : s.holders) {
          auto it = st.group_members.find(h.network_id);
          if (it == st.group_members.end())
            continue;
          for (auto id : it->second) {
            ids.push_back(id);
            slot_of[id] = fmt::format("{} {}", h.slot, h.device);
          }
        }
        self->request(st.aggregator, caf::infinite, status_atom_v, ids)
            .then([=](const aggregator_status& a) {
              auto& st = self->state;
              const auto& specs = st.plan->specs;
              auto row = [&](const epoch_metrics& m) {
                network_progress p;
                const auto& spec = specs.at(m.network_id);
                p.id = m.network_id;
                p.name = spec.name;
                p.configuration = spec.config.label;
                if (p.configuration.empty())
                  p.configuration = "all";
                p.epoch = m.epoch;
                p.epochs = spec.config.train.epochs;
                p.train_loss = m.train_loss;
                p.test_loss = m.test_loss;
                p.test_accuracy = m.test_accuracy;
                return p;
              };
              run_status r;
              for (const auto& m : a.latest) {
                if (r.training.size() >= st.plan->progress_rows)
                  break;
                r.training.push_back(row(m));
                r.training.back().slot = slot_of.at(m.network_id);
              }
              for (const auto& m : a.best)
                if (r.best.size() < st.plan->progress_rows)
                  r.best.push_back(row(m));
              r.networks = static_cast<int64_t>(st.plan->specs.size());
              r.finished = a.finished;
              r.failed = a.failed;
              r.running = s.busy;
              r.waiting = s.waiting;
              r.slots = s.slots;
              r.busy_slots = s.busy;
              r.steps_done = s.steps_done;
              r.steps_total = st.steps_total;
              r.elapsed_seconds = elapsed;
              r.output_dir = st.plan->output_dir;
              st.plan->on_progress(r);
              if (then)
                then();
            });
      });
}

/// Stops the actors the run spawned; a normal exit does not end linked
/// actors in CAF, and detached ones would otherwise keep the system alive.
void shut_down(coordinator_actor* self) {
  auto& st = self->state;
  for (auto& link : st.links)
    self->send_exit(link, caf::exit_reason::user_shutdown);
  for (auto& exec : st.executors)
    self->send_exit(exec, caf::exit_reason::user_shutdown);
  // After a stop, trainers still wait for slots that will never come.
  for (auto& t : st.trainers)
    self->send_exit(t, caf::exit_reason::user_shutdown);
  self->send_exit(st.scheduler, caf::exit_reason::user_shutdown);
  self->send_exit(st.aggregator, caf::exit_reason::user_shutdown);
  self->quit();
}

/// Closes the run: the aggregator writes the ensembles and returns the
/// results, which go to the caller.
void finish(coordinator_actor* self) {
  bool interrupted = self->state.stopping;
  self->request(self->state.aggregator, caf::infinite, finish_atom_v,
                interrupted)
      .then(
          [=](run_result& result) {
            if (interrupted) {
              auto done = result.count(network_status::finished) +
                          result.count(network_status::failed);
              const auto& plan = *self->state.plan;
              auto how =
                  plan.fixed_population
                      ? fmt::format("the others were checkpointed. Run the "
                                    "same experiment with --output {} to "
                                    "resume",
                                    plan.output_dir)
                      : fmt::format("the others were checkpointed; open a "
                                    "session on {} again to resume them",
                                    plan.output_dir);
              self->state.promise.deliver(make_error(
                  errc::run_aborted,
                  fmt::format("stopped: {} of {} networks are done and "
                              "stored; {}",
                              done, result.networks.size(), how)));
            } else {
              self->state.promise.deliver(std::move(result));
            }
            shut_down(self);
          },
          [=](caf::error& err) {
            self->state.promise.deliver(std::move(err));
            shut_down(self);
          });
}

/// Memory one CPU slot may give a fused group.
constexpr double fused_group_bytes = 1024.0 * 1024 * 1024;

/// How large `fuse = "auto"` makes groups for this process's slots: on a
/// CPU up to auto_fuse_max_group networks in 1 GiB; with GPU slots up to
/// auto_fuse_max_group_gpu in a slot's share of the smallest GPU's budget.
/// Only the grouping depends on it, never a network's bits.
std::pair<double, int64_t> group_bounds(const experiment& exp) {
  double bytes = 0;
  for (const auto& device : local_slot_devices(exp)) {
    auto budget = memory_budget(device, exp.scheduler.gpu_memory_fraction);
    if (device == "cpu" || budget <= 0)
      continue;
    auto share = static_cast<double>(budget) /
                 static_cast<double>(exp.scheduler.streams_per_gpu);
    bytes = bytes == 0 ? share : std::min(bytes, share);
  }
  if (bytes == 0)
    return {fused_group_bytes, auto_fuse_max_group};
  return {bytes, auto_fuse_max_group_gpu};
}

/// The trainers' groups of networks: every network that is not done yet,
/// fused with others of its shape where `train.fuse` allows (with
/// `one_per_trainer`, one network each).
std::vector<std::shared_ptr<network_group>>
make_groups(run_plan& plan, const std::vector<network_spec>& specs,
            std::vector<torch::Tensor>& shards, int64_t slots,
            bool one_per_trainer) {
  std::unordered_set<uint64_t> done(plan.resumed_finished.begin(),
                                    plan.resumed_finished.end());
  done.insert(plan.resumed_failed.begin(), plan.resumed_failed.end());
  done.insert(plan.resumed_cancelled.begin(), plan.resumed_cancelled.end());
  std::vector<size_t> todo;
  std::vector<fusion_candidate> candidates;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (done.count(specs[i].id) > 0)
      continue;
    todo.push_back(i);
    const auto& c = specs[i].config;
    auto n = shards[i].size(0);
    auto f =
        fusion_profile(specs[i], *plan.data,
                       n - validation_samples(n, c.train.validation_fraction),
                       static_cast<bool>(plan.make_learner));
    // A search that lets networks wait holds back a whole trainer while one
    // of its networks waits: each network gets its own. This changes the
    // grouping only, never how a network steps (trains_fused).
    if (one_per_trainer)
      f.fuse = train_options::fuse_off;
    candidates.push_back(std::move(f));
  }
  std::vector<std::shared_ptr<network_group>> groups;
  auto [bytes, most] = group_bounds(plan.exp);
  for (const auto& indices : plan_groups(candidates, slots, bytes, most)) {
    std::vector<std::unique_ptr<network_runner>> members;
    for (auto j : indices) {
      auto i = todo[j];
      auto runner = std::make_unique<network_runner>(
          specs[i], plan.data, shards[i], plan.make_learner,
          script_for(plan.scripts, specs[i].config));
      if (auto s = plan.snapshots.find(specs[i].id); s != plan.snapshots.end())
        runner->resume_from(std::move(s->second));
      members.push_back(std::move(runner));
    }
    groups.push_back(std::make_shared<network_group>(std::move(members)));
  }
  return groups;
}

void event(coordinator_actor* self, const std::string& line) {
  if (self->state.plan->on_event)
    self->state.plan->on_event(line);
}

/// A slot holder's networks, as a stall report names them.
std::string holder_name(const coordinator_state& st, const slot_holder& h) {
  auto members = st.group_members.find(h.network_id);
  const auto& specs = st.plan->specs;
  if (members == st.group_members.end() || members->second.empty() ||
      members->second.front() >= specs.size())
    return fmt::format("network {}", h.network_id);
  auto n = members->second.size();
  const auto& first = specs[members->second.front()].name;
  return n == 1 ? first
                : fmt::format("{} (and {} more of its group)", first, n - 1);
}

/// Reports what the run waits on once it made no progress for a while
/// (stall_watch); `stopping`: it waits for its quanta in flight to end.
void check_stall(coordinator_actor* self, const scheduler_status& s,
                 bool stopping) {
  auto& st = self->state;
  auto& watch = stopping ? st.stopping_stalls : st.stalls;
  bool was_stalled = watch.stalled();
  auto line = watch.look(
      s, [&](const slot_holder& h) { return holder_name(st, h); }, stopping);
  // Going on again (since the last change): the store says when, so that
  // `actortrain status` no longer shows the stall as the run's state.
  if (was_stalled && !watch.stalled())
    self->send(st.aggregator, stall_atom_v, st.stall_said,
               s.clock - s.quiet_seconds);
  if (!line)
    return;
  if (!was_stalled)
    st.stall_said = s.clock;
  event(self, *line);
  // Kept in the store too: the report and `actortrain results` of a run
  // that was killed while stalled still say what it waited on.
  self->send(st.aggregator, stall_atom_v,
             stall_record{s.clock, s.quiet_seconds, stopping, *line});
}

/// Stops the run: no new grants; quanta in flight end after their next
/// step with a checkpoint (those on workers too, told here).
void begin_stop(coordinator_actor* self) {
  auto& st = self->state;
  st.stopping = true;
  self->send(st.scheduler, stop_atom_v);
  for (const auto& [addr, w] : st.worker_nodes)
    self->send(w.node, stop_atom_v, caf::actor_cast<caf::actor>(self));
}

/// Keeps trying to reach the worker at `address` until it joins or refuses.
void link_worker(coordinator_actor* self, const std::string& address) {
  auto& plan = *self->state.plan;
  self->state.links.push_back(
      self->spawn(worker_link, address, plan.setup, plan.tls,
                  caf::actor_cast<caf::actor>(self), true, plan.shipment));
}

/// ", after receiving the run's data (12.3 MB)" for a worker that was sent
/// the data; empty otherwise.
std::string data_note(uint64_t bytes) {
  return bytes == 0 ? std::string{}
                    : fmt::format(", after receiving the run's data ({:.1f} "
                                  "MB)",
                                  static_cast<double>(bytes) / 1e6);
}

/// Watches a worker that joined: losing it reconnects.
void watch_worker(coordinator_actor* self, const std::string& address,
                  const worker_node_actor& node) {
  self->state.worker_nodes[node.address()] = {address, node};
  self->monitor(node);
}

/// A worker whose BLAS differs from this process's: its networks round
/// differently, so a network's bits would depend on where it trains.
void warn_if_other_blas(coordinator_actor* self, const std::string& address,
                        const std::vector<slot_grant>& slots) {
  auto mine = blas_description();
  for (const auto& s : slots)
    if (!s.slot.blas.empty() && !mine.empty() && s.slot.blas != mine) {
      event(self, fmt::format("warning: worker {} multiplies matrices with "
                              "'{}', this process with '{}': networks that "
                              "train there round differently, so results "
                              "depend on where they train (OPENBLAS_CORETYPE "
                              "picks OpenBLAS's kernels)",
                              address, s.slot.blas, mine));
      return;
    }
}

/// Marks the slots of the worker at `address` as its: named by it in the
/// grants, and queueing ahead as the run's cluster.queue_ahead says.
void mark_worker_slots(std::vector<slot_grant>& slots,
                       const std::string& address,
                       const cluster_options& cluster) {
  for (auto& s : slots) {
    s.slot.node = address;
    s.slot.queue_ahead = cluster.queue_ahead;
  }
}

/// A worker joined during the run: once it knows the session's submissions
/// its slots take work. One that cannot train them is left out.
void add_worker(coordinator_actor* self, const std::string& address,
                worker_node_actor node, std::vector<slot_grant> slots,
                uint64_t data_bytes) {
  auto& st = self->state;
  watch_worker(self, address, node);
  auto take_slots = [=](std::vector<slot_grant>& slots) {
    mark_worker_slots(slots, address, self->state.plan->exp.cluster);
    event(self, fmt::format("worker {} joined with {} slots{}", address,
                            slots.size(), data_note(data_bytes)));
    warn_if_other_blas(self, address, slots);
    if (data_bytes > 0)
      self->send(self->state.aggregator, data_atom_v, address, data_bytes);
    self->send(self->state.scheduler, add_slots_atom_v, std::move(slots));
  };
  if (st.plan->worker_submissions.empty()) {
    take_slots(slots);
    return;
  }
  self->request(node, join_timeout, submit_atom_v,
                caf::actor_cast<caf::actor>(self), st.plan->worker_submissions)
      .then(
          [=](uint64_t) mutable {
            if (!self->state.closing)
              take_slots(slots);
          },
          [=](caf::error& err) {
            event(self, fmt::format("worker {} cannot train the submitted "
                                    "networks ({}); going on without it",
                                    address, to_string_pretty(err)));
            if (refused_by_worker(err)) {
              self->demonitor(node.address());
              self->state.worker_nodes.erase(node.address());
            }
          });
}

/// Tells every worker node the networks of a submission before they can be
/// granted there, then calls `done` with no error, or with the first
/// refusal (which names the worker). A worker that went away is not waited
/// for: it hears of the submission when it joins again.
void share_submission(coordinator_actor* self, const submission& sub,
                      std::function<void(caf::error)> done) {
  auto& st = self->state;
  if (st.plan->exp.cluster.workers.empty()) {
    done({});
    return;
  }
  auto ws = for_workers(sub);
  auto first_id = ws.first_id;
  // Known before anyone is asked: a worker joining meanwhile is told too.
  st.plan->worker_submissions.push_back(ws);
  if (st.worker_nodes.empty()) {
    done({});
    return;
  }
  struct pending {
    size_t left;
    caf::error refusal;
    std::function<void(caf::error)> done;
  };
  auto p = std::make_shared<pending>(
      pending{st.worker_nodes.size(), caf::error{}, std::move(done)});
  auto finish = [=] {
    if (--p->left > 0)
      return;
    if (p->refusal) {
      auto& subs = self->state.plan->worker_submissions;
      subs.erase(std::remove_if(subs.begin(), subs.end(),
                                [&](const worker_submission& w) {
                                  return w.first_id == first_id;
                                }),
                 subs.end());
    }
    p->done(std::move(p->refusal));
  };
  std::vector<worker_submission> one{std::move(ws)};
  for (const auto& [addr, w] : st.worker_nodes) {
    auto address = w.address;
    self->request(w.node, join_timeout, submit_atom_v,
                  caf::actor_cast<caf::actor>(self), one)
        .then([=](uint64_t) { finish(); },
              [=](caf::error& err) {
                if (refused_by_worker(err) && !p->refusal)
                  p->refusal = make_error(
                      errc::cluster_failed,
                      fmt::format("worker {} cannot train these networks: "
                                  "{}",
                                  address, to_string_pretty(err)));
                finish();
              });
  }
}

/// One trainer per group; trainers are not linked: one failing must not
/// take the run down.
void spawn_trainers(coordinator_actor* self,
                    std::vector<std::shared_ptr<network_group>> groups) {
  auto& st = self->state;
  for (auto& group : groups) {
    st.steps_total += group->steps_total();
    auto members = group->unfinished();
    st.group_members[group->id()] = members;
    auto cfg = st.trainer_defaults;
    for (auto id : members)
      if (auto k = st.plan->kept_epochs.find(id);
          k != st.plan->kept_epochs.end()) {
        cfg.kept[id] = std::move(k->second);
        st.plan->kept_epochs.erase(k);
      }
    auto t = self->spawn(trainer, std::move(group), std::move(cfg));
    for (auto id : members)
      st.trainer_of[id] = t;
    st.trainers.push_back(std::move(t));
  }
}

void start(coordinator_actor* self) {
  auto& st = self->state;
  auto& plan = *st.plan;
  auto& sys = self->system();
  const auto& sched = plan.exp.scheduler;
  auto devices = local_slot_devices(plan.exp);
  // Where this process computes, when chosen or not the CPU alone.
  if (!sched.devices.empty() ||
      std::any_of(devices.begin(), devices.end(),
                  [](const std::string& d) { return d != "cpu"; }))
    event(self, "this process: " + describe_slots(devices));
  make_gpus_deterministic(devices);
  std::vector<slot_grant> slots;
  auto blas = blas_description();
  auto data_bytes = plan.data ? device_bytes(*plan.data) : 0;
  for (size_t i = 0; i < devices.size(); ++i) {
    slot_info info;
    info.id = static_cast<uint32_t>(i);
    info.device = devices[i];
    info.threads = sched.threads_per_slot;
    info.blas = blas;
    info.memory_budget =
        memory_budget(info.device, sched.gpu_memory_fraction, data_bytes);
    auto exec = sys.spawn<caf::detached>(slot_executor, info);
    self->link_to(exec);
    st.executors.push_back(exec);
    slots.push_back(slot_grant{info, exec, {}});
  }
  // Data sent to workers before the run started: recorded once the store's
  // aggregator exists.
  std::vector<std::pair<std::string, uint64_t>> data_sent;
  for (auto& w : plan.workers) {
    watch_worker(self, w.address, w.node);
    event(self, fmt::format("worker {} joined with {} slots{}", w.address,
                            w.slots.size(), data_note(w.data_bytes)));
    warn_if_other_blas(self, w.address, w.slots);
    if (w.data_bytes > 0)
      data_sent.emplace_back(w.address, w.data_bytes);
    mark_worker_slots(w.slots, w.address, plan.exp.cluster);
    for (auto& s : w.slots)
      slots.push_back(std::move(s));
  }
  plan.workers.clear();
  for (auto& address : plan.unreachable_workers)
    link_worker(self, address);
  aggregator_config acfg;
  acfg.store = plan.store;
  acfg.data = plan.data;
  acfg.specs = plan.specs;
  acfg.group_labels = plan.group_labels;
  acfg.output_dir = plan.output_dir;
  acfg.layout = plan.exp.output.layout;
  acfg.listener = self;
  acfg.resumed_finished = plan.resumed_finished;
  acfg.resumed_failed = static_cast<int64_t>(plan.resumed_failed.size());
  acfg.resumed_cancelled = static_cast<int64_t>(plan.resumed_cancelled.size());
  acfg.on_epochs = plan.on_epochs;
  acfg.on_outcome = plan.on_outcome;
  auto unwritten =
      std::make_shared<store_backlog>(plan.exp.output.unwritten_mb << 20);
  acfg.unwritten = unwritten;
  st.aggregator = sys.spawn<caf::detached>(aggregator, std::move(acfg));
  for (auto& [node, bytes] : data_sent)
    self->send(st.aggregator, data_atom_v, node, bytes);
  self->link_to(st.aggregator);
  trainer_config tcfg;
  tcfg.quantum = {sched.quantum_steps,
                  sched.quantum_epochs,
                  sched.quantum_seconds,
                  plan.stop,
                  {}};
  auto search = search_settings_of(plan.exp);
  bool resumed = !plan.resumed_finished.empty() ||
                 !plan.resumed_failed.empty() || !plan.snapshots.empty();
  if (search.kind != search_kind::none && resumed)
    event(self, fmt::format("resumed: the search replays the epochs of {} "
                            "networks reported before and decides on from "
                            "where it was",
                            plan.searched_before.networks.size()));
  if (search.kind != search_kind::none) {
    auto& q = tcfg.quantum.search;
    q.validation = search.source == search_metric::validation_accuracy ||
                   search.source == search_metric::validation_loss;
    q.test = search.source == search_metric::test_accuracy ||
             search.source == search_metric::test_loss;
    q.epoch_boundaries = true;
    if (search.kind == search_kind::pbt)
      q.keep_every = search.interval_epochs;
  }
  tcfg.cluster = !plan.exp.cluster.workers.empty();
  tcfg.hop_share = plan.exp.cluster.hop_share;
  tcfg.keep_final_state = plan.exp.output.final_state;
  tcfg.unwritten = unwritten;
  st.slot_count = std::max<int64_t>(1, static_cast<int64_t>(slots.size()));
  st.one_per_trainer =
      search.kind != search_kind::none && search_rule{search}.pauses();
  auto groups = make_groups(plan, plan.specs, plan.shards, st.slot_count,
                            st.one_per_trainer);
  st.scheduler = self->spawn<caf::linked>(
      scheduler, std::move(slots),
      std::shared_ptr<scheduling_policy>{make_policy(sched.policy)},
      st.aggregator, groups.size(), search, std::move(plan.searched_before),
      plan.schedule_seconds_before, unwritten);
  tcfg.scheduler = st.scheduler;
  tcfg.aggregator = st.aggregator;
  st.trainer_defaults = tcfg;
  spawn_trainers(self, std::move(groups));
  // The runners now own their shards and snapshots.
  plan.shards.clear();
  plan.snapshots.clear();
  st.stalls = stall_watch{plan.exp.scheduler.stall_report_seconds};
  st.stopping_stalls = st.stalls;
  if (plan.on_progress || plan.stop ||
      plan.exp.scheduler.stall_report_seconds > 0)
    self->send(self, tick_atom_v);
}

/// Ends the run once every network is done: the scheduler hands over the
/// rest of the schedule before the aggregator closes the store.
void close_run(coordinator_actor* self) {
  auto& st = self->state;
  if (st.closing)
    return;
  // Every network is done: a stop that came too late changes nothing.
  st.closing = true;
  st.stopping = false;
  report_progress(self, [=] {
    self->request(self->state.scheduler, caf::infinite, status_atom_v)
        .then([=](const scheduler_status& s) {
          if (s.store_waits > 0)
            event(self,
                  fmt::format("the store wrote more slowly than the networks "
                              "trained: new quanta waited for it {} times, "
                              "with up to {:.0f} MB unwritten "
                              "(output.unwritten_mb = {})",
                              s.store_waits,
                              static_cast<double>(s.unwritten_peak) / 1e6,
                              self->state.plan->exp.output.unwritten_mb));
          self->request(self->state.scheduler, caf::infinite, schedule_atom_v)
              .then([=] { finish(self); });
        });
  });
}

/// Starts the trainers of submitted networks (the aggregator has recorded
/// them) and answers with their ids.
std::vector<uint64_t> add_submission(coordinator_actor* self, submission& sub) {
  auto& st = self->state;
  auto& plan = *st.plan;
  std::vector<uint64_t> ids;
  for (const auto& spec : sub.specs)
    ids.push_back(spec.id);
  plan.scripts.insert(sub.scripts.begin(), sub.scripts.end());
  plan.specs.insert(plan.specs.end(), sub.specs.begin(), sub.specs.end());
  auto groups = make_groups(plan, sub.specs, sub.shards, st.slot_count,
                            st.one_per_trainer);
  // Sent before the trainers exist, so it precedes their requests.
  self->send(st.scheduler, expect_atom_v, static_cast<uint64_t>(groups.size()));
  spawn_trainers(self, std::move(groups));
  return ids;
}

} // namespace

caf::behavior coordinator(coordinator_actor* self,
                          std::shared_ptr<run_plan> plan) {
  self->state.plan = std::move(plan);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    auto i = st.worker_nodes.find(dm.source);
    if (i == st.worker_nodes.end())
      return;
    auto address = i->second.address;
    st.worker_nodes.erase(i);
    if (st.closing)
      return;
    event(self, fmt::format("worker {} lost: its quanta in flight run again "
                            "on other slots; reconnecting",
                            address));
    link_worker(self, address);
  });
  return {
      [=](joined_atom, const std::string& address, worker_node_actor& node,
          std::vector<slot_grant>& slots, uint64_t data_bytes) {
        auto& st = self->state;
        if (st.closing || !st.scheduler)
          return;
        add_worker(self, address, std::move(node), std::move(slots),
                   data_bytes);
      },
      [=](joined_atom, const std::string&, const caf::error& err, bool) {
        event(self,
              fmt::format("{}; going on without it", to_string_pretty(err)));
      },
      [=](run_atom) {
        auto& st = self->state;
        auto rp = self->make_response_promise();
        if (st.scheduler) {
          rp.deliver(make_error(errc::run_aborted, "the run already started"));
          return rp;
        }
        st.started = std::chrono::steady_clock::now();
        // The run's result goes to whoever closes it.
        start(self);
        rp.deliver(true);
        return rp;
      },
      [=](submit_atom, submission& sub) {
        auto& st = self->state;
        auto rp = self->make_response_promise();
        if (st.plan->fixed_population) {
          rp.deliver(make_error(errc::invalid_experiment,
                                "this run trains its experiment's networks "
                                "only: it takes no submissions"));
          return rp;
        }
        if (!st.scheduler || st.close_requested || st.stopping || st.closing) {
          rp.deliver(make_error(errc::run_aborted,
                                "the session is closed (or closing): no "
                                "more networks can be submitted"));
          return rp;
        }
        ++st.submitting;
        auto held = std::make_shared<submission>(std::move(sub));
        auto failed = [=](caf::error err) mutable {
          --self->state.submitting;
          rp.deliver(std::move(err));
          if (self->state.close_requested && self->state.idle &&
              self->state.submitting == 0)
            close_run(self);
        };
        share_submission(self, *held, [=](caf::error refusal) mutable {
          if (refusal) {
            failed(std::move(refusal));
            return;
          }
          self->request(self->state.aggregator, caf::infinite, submit_atom_v,
                        *held)
              .then(
                  [=](int64_t) mutable {
                    --self->state.submitting;
                    self->state.idle = false;
                    rp.deliver(add_submission(self, *held));
                  },
                  [=](caf::error& err) mutable { failed(std::move(err)); });
        });
        return rp;
      },
      [=](cancel_atom, uint64_t id) {
        auto& st = self->state;
        auto it = st.trainer_of.find(id);
        if (it == st.trainer_of.end())
          return false;
        self->send(it->second, cancel_atom_v, std::vector<uint64_t>{id});
        return true;
      },
      [=](priority_atom, uint64_t id, double priority) -> caf::result<bool> {
        auto& st = self->state;
        if (st.trainer_of.count(id) == 0 || !st.scheduler)
          return false;
        return self->delegate(st.scheduler, priority_atom_v, id, priority);
      },
      [=](close_atom) {
        auto& st = self->state;
        auto rp = self->make_response_promise();
        if (st.close_requested) {
          rp.deliver(
              make_error(errc::run_aborted, "the session is already closed"));
          return rp;
        }
        st.close_requested = true;
        st.promise = rp;
        // A stopping run closes once its quanta in flight ended (tick).
        if (st.idle && st.submitting == 0 && !st.stopping)
          close_run(self);
        return rp;
      },
      [=](stop_atom, const caf::error& why) {
        // The store failed: quanta in flight end, nothing new starts, and
        // the run ends with the store's error.
        auto& st = self->state;
        if (st.stopping || st.closing)
          return;
        event(self, fmt::format("{}; stopping the run", to_string_pretty(why)));
        begin_stop(self);
        self->send(self, tick_atom_v);
      },
      [=](tick_atom) {
        auto& st = self->state;
        if (st.plan->stop && st.plan->stop->load() && !st.stopping)
          begin_stop(self);
        if (st.stopping) {
          self->request(st.scheduler, caf::infinite, status_atom_v)
              .then([=](const scheduler_status& s) {
                if (self->state.closing)
                  return;
                // A live session's run ends when it is closed.
                if (s.busy > 0 || !self->state.close_requested) {
                  check_stall(self, s, true);
                  self->delayed_send(self, std::chrono::milliseconds{50},
                                     tick_atom_v);
                  return;
                }
                self->state.closing = true;
                self->request(self->state.scheduler, caf::infinite,
                              schedule_atom_v)
                    .then([=] { finish(self); });
              });
          return;
        }
        report_progress(
            self,
            [=] {
              auto ms = static_cast<int64_t>(
                  self->state.plan->progress_interval_seconds * 1000);
              self->delayed_send(self, std::chrono::milliseconds{ms},
                                 tick_atom_v);
            },
            !st.closing && st.plan->exp.scheduler.stall_report_seconds > 0);
      },
      [=](all_done_atom) {
        auto& st = self->state;
        // A session waits for more until it is closed.
        st.idle = true;
        if (!st.close_requested || st.submitting > 0)
          return;
        close_run(self);
      },
  };
}

} // namespace actortrain
