#include "actors/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <unordered_set>
#include <utility>

#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <fmt/format.h>

#include "actortrain/error.hpp"
#include "cluster/remote_replica.hpp"
#include "platform/environment.hpp"
#include "protocol/slot.hpp"
#include "protocol/type_ids.hpp"
#include "training/remote_part.hpp"
#include "training/replica_team.hpp"

namespace actortrain {

namespace {

using trainer_actor = caf::stateful_actor<trainer_state>;

/// Sends what one network's quantum produced to the aggregator, except its
/// outcome.
void deliver(const trainer_config& cfg, caf::event_based_actor* self,
             quantum_outcome& out) {
  auto id = out.progress.network_id;
  for (auto& m : out.epochs)
    self->send(cfg.aggregator, epoch_atom_v, m);
  for (auto& reason : out.failures)
    self->send(cfg.aggregator, failure_atom_v, id, out.progress.steps_done,
               std::move(reason));
  if (!out.staleness.empty())
    self->send(cfg.aggregator, staleness_atom_v, std::move(out.staleness));
  bool final = out.progress.finished;
  if (!out.checkpoint.empty() && (!final || cfg.keep_final_state)) {
    if (cfg.unwritten)
      cfg.unwritten->sent(static_cast<int64_t>(out.checkpoint.size()));
    self->send(cfg.aggregator, checkpoint_atom_v, id, out.checkpoint_step,
               std::move(out.checkpoint));
  }
}

/// Sends a network's outcome to the aggregator.
void send_outcome(const trainer_config& cfg, caf::event_based_actor* self,
                  network_outcome o) {
  if (cfg.unwritten)
    cfg.unwritten->sent(store_backlog::bytes_of(o));
  self->send(cfg.aggregator, outcome_atom_v, std::move(o));
}

bool contains(const std::vector<uint64_t>& xs, uint64_t x) {
  return std::find(xs.begin(), xs.end(), x) != xs.end();
}

void erase(std::vector<uint64_t>& xs, uint64_t x) {
  xs.erase(std::remove(xs.begin(), xs.end(), x), xs.end());
}

/// A cancelled network's outcome: where it got to, without weights.
network_outcome cancelled(uint64_t id, const progress_report* latest) {
  network_outcome o;
  o.network_id = id;
  o.status = network_status::cancelled;
  o.error = "cancelled";
  if (latest) {
    o.epochs = latest->epoch;
    o.steps = latest->steps_done;
    o.seconds_per_step = latest->seconds_per_step;
  }
  return o;
}

/// The group's networks not done yet.
std::vector<uint64_t> unfinished_of(trainer_actor* self) {
  auto& st = self->state;
  return st.config.cluster ? st.unfinished : st.group->unfinished();
}

/// The slots a quantum held: one, or a replicated network's, granted
/// together.
using slot_ids = std::vector<uint32_t>;

/// Gives the scheduler `slots` back with `progress`.
void give_back(trainer_actor* self, const slot_ids& slots,
               const progress_report& progress) {
  auto& sched = self->state.config.scheduler;
  if (slots.size() == 1)
    self->send(sched, release_atom_v, slots.front(), progress);
  else
    self->send(sched, release_atom_v, slots, progress);
}

/// Every network of the group left is cancelled: they end now, the slots
/// (if held) go back as done, and the trainer quits.
bool end_if_all_cancelled(trainer_actor* self, std::optional<slot_ids> slot) {
  auto& st = self->state;
  auto left = unfinished_of(self);
  if (left.empty() || !std::all_of(left.begin(), left.end(), [&](auto id) {
        return contains(st.cancels, id);
      }))
    return false;
  if (slot) {
    progress_report p;
    p.network_id = st.group->id();
    p.finished = true;
    give_back(self, *slot, p);
  }
  // Without a slot the trainer is only queued: quitting takes it out of
  // the scheduler's queue.
  for (auto id : left) {
    auto it = st.latest.find(id);
    send_outcome(st.config, self,
                 cancelled(id, it == st.latest.end() ? nullptr : &it->second));
  }
  self->quit();
  return true;
}

void fail_all(trainer_actor* self, const slot_ids& slot,
              const std::vector<uint64_t>& ids, const std::string& reason);

/// Out of device memory: the networks that ran out went back to their last
/// snapshot, and the scheduler learns it (it gives the group a device to
/// itself next). Alone on the device already, a fused group steps in
/// smaller cohorts from now on; one that cannot be made smaller does not
/// fit the device: the reason its networks fail (empty: they go on).
std::string check_memory(trainer_actor* self, quantum_report& report) {
  auto& st = self->state;
  // What the slot measured (a GPU's); nothing on a CPU.
  report.progress.memory_bytes = report.memory_peak;
  report.progress.out_of_memory = false;
  for (const auto& out : report.networks) {
    if (!out.out_of_memory)
      continue;
    report.progress.out_of_memory = true;
    st.rolled_back.insert(out.progress.network_id);
  }
  if (!report.progress.out_of_memory || !st.alone || st.group->split_fused())
    return {};
  return fmt::format("out of memory on {} with the device to itself (the "
                     "group's estimate was {:.1f} MB): it does not fit this "
                     "device; a smaller batch_size, model or fuse group "
                     "would",
                     st.device,
                     static_cast<double>(st.group->info().memory_bytes) / 1e6);
}

/// Hands a quantum's results on: metrics and checkpoints to the aggregator,
/// the slot back to the scheduler, then the outcomes.
void conclude(trainer_actor* self, const slot_ids& slot,
              quantum_report& report) {
  auto& cfg = self->state.config;
  auto& stops = self->state.search_stops;
  self->state.busy = false;
  auto too_big = check_memory(self, report);
  for (const auto& out : report.networks) {
    self->state.latest[out.progress.network_id] = out.progress;
    if (out.progress.finished)
      erase(stops, out.progress.network_id);
  }
  // The quantum made the copies it was given; what it kept, donors serve.
  self->state.transplants.clear();
  for (auto& out : report.networks) {
    if (out.kept_state.empty())
      continue;
    // Into the store, which serves the copies (after a crash too).
    if (cfg.unwritten)
      cfg.unwritten->sent(static_cast<int64_t>(out.kept_state.size()));
    self->send(cfg.aggregator, kept_atom_v, out.progress.network_id,
               out.kept_epoch, std::move(out.kept_state));
    auto& versions = self->state.kept[out.progress.network_id];
    versions.insert(out.kept_epoch);
    while (versions.size() > 2)
      versions.erase(versions.begin());
  }
  for (auto& out : report.networks)
    deliver(cfg, self, out);
  // A network cancelled while this quantum ran (or stopped by it): its
  // outcome says cancelled, whatever the quantum made of it.
  for (auto& out : report.networks) {
    auto id = out.progress.network_id;
    if (out.progress.finished && contains(self->state.cancels, id)) {
      out.outcome = cancelled(id, &out.progress);
      erase(self->state.cancels, id);
    }
  }
  if (!report.progress.finished) {
    for (auto& out : report.networks)
      if (out.progress.finished)
        send_outcome(cfg, self, std::move(out.outcome));
    if (end_if_all_cancelled(self, slot))
      return;
    if (!too_big.empty()) {
      fail_all(self, slot, unfinished_of(self), too_big);
      return;
    }
    give_back(self, slot, report.progress);
    return;
  }
  // The release goes before the outcomes: the last outcome ends the run,
  // and with it the schedule.
  give_back(self, slot, report.progress);
  for (auto& out : report.networks)
    if (out.progress.finished)
      send_outcome(cfg, self, std::move(out.outcome));
  self->quit();
}

/// Ends the networks in `ids` as failed with `reason`, gives the slot back
/// and quits.
void fail_all(trainer_actor* self, const slot_ids& slot,
              const std::vector<uint64_t>& ids, const std::string& reason) {
  auto& cfg = self->state.config;
  self->state.busy = false;
  progress_report p;
  p.network_id = self->state.group->id();
  p.finished = true;
  if (!slot.empty())
    give_back(self, slot, p);
  for (auto net : ids) {
    network_outcome o;
    o.network_id = net;
    o.status = network_status::failed;
    o.error = reason;
    send_outcome(cfg, self, std::move(o));
  }
  self->quit();
}

/// The group's progress from its networks' latest reports (a worker knows
/// only the networks it trained).
progress_report group_progress(trainer_actor* self,
                               const progress_report& quantum) {
  auto& st = self->state;
  auto p = quantum;
  p.network_id = st.group->id();
  p.steps_total = st.group->steps_total();
  p.steps_done = 0;
  double seconds = 0;
  for (const auto& [id, r] : st.latest) {
    p.steps_done += r.steps_done;
    seconds += r.seconds_per_step * static_cast<double>(r.steps_done);
  }
  p.seconds_per_step =
      p.steps_done > 0 ? seconds / static_cast<double>(p.steps_done) : 0;
  p.finished = st.unfinished.empty();
  p.state_bytes = 0;
  for (const auto& [id, c] : st.checkpoints)
    p.state_bytes += c.bytes;
  p.moved_bytes = std::exchange(st.moved_bytes, 0);
  p.move_seconds = std::exchange(st.move_seconds, 0.0);
  p.hop_seconds = std::exchange(st.hop_seconds, 0.0);
  return p;
}

/// Drops what a quantum delivers again after its group fell back to older
/// states (the epochs and failures of steps trained before), and notes
/// what it delivers now. Checkpoints never repeat: a fall back starts from
/// the newest. With `only`, drops only those networks' epochs (the ones an
/// out-of-memory error sent back: the same bits again), and notes all.
void drop_replayed(trainer_actor* self, quantum_report& report,
                   const std::unordered_set<uint64_t>* only = nullptr) {
  auto& delivered = self->state.delivered;
  auto replays = [&](const epoch_metrics& e, int64_t seen) {
    return e.epoch <= seen && (!only || only->count(e.network_id) > 0);
  };
  auto& epochs = report.progress.epochs;
  epochs.erase(std::remove_if(epochs.begin(), epochs.end(),
                              [&](const epoch_metrics& e) {
                                return replays(e,
                                               delivered[e.network_id].epoch);
                              }),
               epochs.end());
  for (auto& out : report.networks) {
    auto& seen = delivered[out.progress.network_id];
    auto& ms = out.epochs;
    ms.erase(std::remove_if(ms.begin(), ms.end(),
                            [&](const epoch_metrics& e) {
                              return replays(e, seen.epoch);
                            }),
             ms.end());
    if (seen.replay_until > 0 && out.progress.steps_done <= seen.replay_until) {
      out.failures.clear();
      out.staleness.clear();
    }
    for (const auto& e : ms)
      seen.epoch = std::max(seen.epoch, e.epoch);
  }
}

/// The node holding the group's live models was lost (or could not hand
/// them over): the group goes on from its latest checkpoints, and what
/// it trains again is not delivered twice.
void fall_back(trainer_actor* self) {
  auto& st = self->state;
  if (st.live && st.live->keeper)
    self->send(st.live->keeper, forget_atom_v, st.group->id());
  st.live.reset();
  for (auto id : st.unfinished) {
    // A quantum trained again may be lost too: what was delivered before
    // stays delivered.
    auto it = st.latest.find(id);
    if (it != st.latest.end()) {
      auto& until = st.delivered[id].replay_until;
      until = std::max(until, it->second.steps_done);
    }
  }
}

slot_ids ids_of(const std::vector<slot_grant>& grants) {
  slot_ids ids;
  for (const auto& g : grants)
    ids.push_back(g.slot.id);
  return ids;
}

/// Counts a move's bytes and time for the next progress report.
void note_move(trainer_actor* self, const std::vector<runner_state>& states,
               std::chrono::steady_clock::time_point since) {
  auto& st = self->state;
  for (const auto& s : states)
    st.moved_bytes += static_cast<int64_t>(s.live.size() + s.last_good.size());
  st.move_seconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - since)
          .count();
}

/// Books a cluster quantum's report: where the live models are now, each
/// network's newest checkpoint (the copy to fall back on) and the group's
/// progress.
void book(trainer_actor* self, const slot_grant& where,
          quantum_report& report) {
  auto& st = self->state;
  drop_replayed(self, report);
  for (const auto& out : report.networks) {
    auto id = out.progress.network_id;
    st.latest[id] = out.progress;
    if (out.progress.finished) {
      st.unfinished.erase(
          std::remove(st.unfinished.begin(), st.unfinished.end(), id),
          st.unfinished.end());
      st.checkpoints.erase(id);
    } else if (!out.checkpoint.empty()) {
      auto& c = st.checkpoints[id];
      c.bytes = static_cast<int64_t>(out.checkpoint.size());
      c.retries_at_step[out.checkpoint_step] = out.checkpoint_retries;
      // The store keeps a network's two newest.
      while (c.retries_at_step.size() > 2)
        c.retries_at_step.erase(c.retries_at_step.begin());
    }
  }
  st.live = trainer_state::live_models{where.executor.node(), where.keeper};
  st.lost_quanta = 0;
  st.lost_links = 0;
  report.progress = group_progress(self, report.progress);
}

/// A quantum on a worker node was lost (the node died, or the quantum
/// failed there): the group goes back to the scheduler's queue and
/// continues from its latest checkpoints, on any slot. With `slot_lost`
/// (its worker is gone) the scheduler retires the slot.
void lose_quantum(trainer_actor* self, uint32_t slot, const std::string& reason,
                  bool slot_lost) {
  auto& st = self->state;
  st.busy = false;
  if (st.in_flight && st.in_flight->executor)
    self->demonitor(st.in_flight->executor.address());
  st.in_flight.reset();
  fall_back(self);
  auto& lost = slot_lost ? st.lost_links : st.lost_quanta;
  auto most = slot_lost ? st.config.max_lost_links : st.config.max_lost_quanta;
  if (++lost > most) {
    fail_all(self, {slot}, st.unfinished,
             fmt::format("{} quanta in a row {} on worker nodes, the last "
                         "one: {}",
                         lost, slot_lost ? "lost with their worker" : "failed",
                         reason));
    return;
  }
  if (end_if_all_cancelled(self, slot_ids{slot}))
    return;
  auto p = group_progress(self, progress_report{});
  self->send(st.config.scheduler, release_atom_v, slot, p, slot_lost);
}

/// The states a quantum continues from: none when the live models are where
/// it runs.
using moved_states = std::optional<std::vector<runner_state>>;

/// Runs a quantum on this process's slots: one, or the R slots of a
/// replicated network granted together. Their executors each get a job: the
/// first slot's runs the group's quantum, the others serve as its replicas'
/// threads (replica_team) until it ends. With `moved`, the group first
/// takes those states (it trained elsewhere since).
void run_local(trainer_actor* self, const std::vector<slot_grant>& grants,
               moved_states moved) {
  auto& st = self->state;
  st.busy = true;
  auto group = st.group;
  auto slot = grants.front().slot;
  auto limits = st.config.quantum;
  limits.search.stop = st.search_stops;
  limits.search.transplants = st.transplants;
  auto cluster = st.config.cluster;
  bool adopt = moved.has_value();
  auto unfinished = st.unfinished;
  auto states = adopt ? std::move(*moved) : std::vector<runner_state>{};
  // Networks not done before this quantum: if a slot fails, these fail
  // with it.
  auto pending = cluster ? st.unfinished : group->unfinished();
  auto ids = ids_of(grants);
  // A synchronous replicated network's worker slots compute their parts
  // there, sent from the leader's thread (they get no job).
  std::vector<slot_grant> here;
  std::vector<std::shared_ptr<remote_part>> remotes;
  for (const auto& g : grants) {
    if (g.executor.node() == self->node())
      here.push_back(g);
    else
      remotes.push_back(make_remote_replica(self->system(), g.executor));
  }
  std::shared_ptr<replica_team> team;
  if (grants.size() > 1)
    team = std::make_shared<replica_team>(here.size(), std::move(remotes));
  quantum_job job{
      [group, slot, limits, adopt, unfinished, states, team]() mutable {
        // The helpers wait for the leader: they are released whatever happens.
        struct release_helpers {
          replica_team* team;
          ~release_helpers() {
            if (team)
              team->finish();
          }
        } guard{team.get()};
        if (adopt)
          group->adopt(unfinished, std::move(states));
        return group->run_quantum(slot, limits, team.get());
      }};
  // The quantum ends when every executor answered; the leader's report is
  // the quantum's.
  struct replies {
    size_t left;
    quantum_report report;
    std::string error;
  };
  auto got = std::make_shared<replies>(replies{here.size(), {}, {}});
  auto answered = [=] {
    if (--got->left > 0)
      return;
    if (!got->error.empty()) {
      fail_all(self, ids, pending, got->error);
      return;
    }
    if (self->state.config.cluster)
      book(self, grants.front(), got->report);
    else
      drop_replayed(self, got->report, &self->state.rolled_back);
    conclude(self, ids, got->report);
  };
  for (size_t r = 0; r < here.size(); ++r) {
    auto executor = here[r].executor;
    auto sid = here[r].slot.id;
    auto work = r == 0 ? job : quantum_job{[team, r] {
      team->serve(r);
      return quantum_report{};
    }};
    self->request(executor, caf::infinite, quantum_atom_v, std::move(work))
        .then(
            [=](quantum_report& report) {
              if (r == 0)
                got->report = std::move(report);
              answered();
            },
            [=](caf::error& err) {
              // The slot's executor went away mid-quantum: the networks fail
              // with the reason; the slots go back to the scheduler.
              if (got->error.empty())
                got->error = fmt::format("slot {} failed: {}", sid,
                                         to_string_pretty(err));
              if (team)
                team->finish();
              answered();
            });
  }
}

/// Learns from a quantum on a worker (`wall` seconds from sending it to its
/// report, `slot` of them on the worker, spanning `stretch` scheduler
/// quanta) what one scheduler quantum computes for, and, unless it was
/// queued there (it waited for another quantum), the round trip beyond the
/// compute, which the next release reports.
void note_hop(trainer_actor* self, double wall, double slot, int64_t stretch,
              bool queued) {
  auto& st = self->state;
  if (slot <= 0)
    return;
  st.unit_seconds =
      st.unit_seconds == 0
          ? slot / static_cast<double>(stretch)
          : 0.75 * st.unit_seconds + 0.25 * slot / static_cast<double>(stretch);
  if (!queued)
    st.hop_seconds = std::max(0.0, wall - slot);
}

/// How many scheduler quanta the next quantum on a worker spans, for a round
/// trip of `hop` seconds there (the node's, as the scheduler averaged it):
/// enough that the round trip takes at most cluster.hop_share of it, at
/// most 16 and about half a second. A queued quantum's round trip overlaps
/// the quantum before it, but still costs the coordinator and the worker
/// its messages: quanta are lengthened all the same.
int64_t stretch_for(trainer_actor* self, double hop) {
  auto& st = self->state;
  auto share = st.config.hop_share;
  if (share <= 0 || hop <= 0 || st.unit_seconds <= 0)
    return 1;
  auto want = std::ceil(hop * (1 - share) / (share * st.unit_seconds));
  auto most = std::clamp(std::floor(0.5 / st.unit_seconds), 1.0, 16.0);
  return static_cast<int64_t>(std::clamp(want, 1.0, most));
}

void send_quantum(trainer_actor* self, const slot_grant& grant,
                  remote_quantum q, int64_t stretch, uint64_t id,
                  std::chrono::steady_clock::time_point sent);

/// ACTORTRAIN_CLUSTER_DELAY_MS=D: each quantum goes to its worker D ms
/// late, as over a slower network than loopback (for benchmarks of queued
/// quanta); 0 when unset.
std::chrono::milliseconds cluster_delay() {
  static const auto delay = static_cast<int64_t>(
      number_from_environment("ACTORTRAIN_CLUSTER_DELAY_MS", 0, 0));
  return std::chrono::milliseconds{delay};
}

/// Runs a quantum on a worker's slot: on the live models kept there, or
/// on `moved` states.
void run_remote(trainer_actor* self, const slot_grant& grant,
                moved_states moved) {
  auto& st = self->state;
  st.busy = true;
  auto executor = grant.executor;
  auto slot = grant.slot.id;
  const auto& limits = st.config.quantum;
  remote_quantum q;
  q.group_id = st.group->id();
  q.members = st.unfinished;
  q.cached = !moved;
  if (moved)
    q.states = std::move(*moved);
  // Lengthened so that the round trip is a small share of it (see
  // stretch_for); results do not depend on where quanta end.
  auto stretch = stretch_for(self, grant.hop_seconds);
  q.steps = limits.steps * stretch;
  q.epochs = limits.epochs * stretch;
  q.seconds = limits.seconds * static_cast<double>(stretch);
  q.stopping = limits.stopping && limits.stopping->load();
  q.search = limits.search;
  q.search.stop = st.search_stops;
  q.search.transplants = st.transplants;
  auto id = ++st.quanta;
  st.in_flight = trainer_state::remote_quantum_in_flight{id, executor, slot};
  // A worker that dies never answers: its executor going down ends the
  // quantum (see the down handler).
  self->monitor(executor);
  auto sent = std::chrono::steady_clock::now();
  auto send = [=, q = std::move(q)]() mutable {
    send_quantum(self, grant, std::move(q), stretch, id, sent);
  };
  if (auto delay = cluster_delay(); delay.count() > 0) {
    st.delayed_request = std::move(send);
    self->delayed_send(self, delay, quantum_atom_v, id);
    return;
  }
  send();
}

/// Sends quantum `q` (number `id`, sent at `sent`) to `grant`'s executor and
/// books its report.
void send_quantum(trainer_actor* self, const slot_grant& grant,
                  remote_quantum q, int64_t stretch, uint64_t id,
                  std::chrono::steady_clock::time_point sent) {
  auto executor = grant.executor;
  auto slot = grant.slot.id;
  self->request(executor, caf::infinite, quantum_atom_v, std::move(q))
      .then(
          [=](quantum_report& report) {
            auto& st = self->state;
            if (!st.in_flight || st.in_flight->id != id)
              return;
            st.in_flight.reset();
            self->demonitor(executor.address());
            note_hop(self,
                     std::chrono::duration<double>(
                         std::chrono::steady_clock::now() - sent)
                         .count(),
                     report.slot_seconds, stretch, grant.queued);
            book(self, grant, report);
            conclude(self, {slot}, report);
          },
          [=](caf::error& err) {
            const auto& flight = self->state.in_flight;
            if (!flight || flight->id != id)
              return;
            // An error the worker sent means the slot still works; any
            // other (the link is down) means it does not.
            bool answered = err.category() == caf::atom("actortrain");
            lose_quantum(self, slot, to_string_pretty(err), !answered);
          });
}

/// Runs a quantum on `grants`, on this process or a worker.
void run_at(trainer_actor* self, const std::vector<slot_grant>& grants,
            moved_states moved) {
  if (grants.front().executor.node() == self->node())
    run_local(self, grants, std::move(moved));
  else
    run_remote(self, grants.front(), std::move(moved));
}

/// Runs a quantum on `grants` from the networks' latest checkpoints: the
/// node holding the live models was lost. The aggregator reads them back
/// from the store (after storing those it has not yet); the trainer waits
/// for them, holding the slots, and handles nothing else meanwhile.
void run_from_checkpoints(trainer_actor* self, std::vector<slot_grant> grants) {
  auto& st = self->state;
  fall_back(self);
  self->request(st.config.aggregator, caf::infinite, checkpoint_atom_v,
                st.unfinished)
      .await(
          [=](std::vector<runner_state>& states) {
            const auto& taken = self->state.checkpoints;
            for (auto& s : states) {
              auto c = taken.find(s.network_id);
              if (c == taken.end() || s.last_good.empty())
                continue;
              auto r = c->second.retries_at_step.find(s.last_good_step);
              if (r != c->second.retries_at_step.end())
                s.retries = s.last_good_retries = r->second;
            }
            run_at(self, grants, std::move(states));
          },
          [=](caf::error& err) {
            fail_all(self, ids_of(grants), self->state.unfinished,
                     fmt::format("the networks' checkpoints could not be "
                                 "read back to go on after the node training "
                                 "them was lost: {}",
                                 to_string_pretty(err)));
          });
}

/// Starts a quantum on `grants` once the group's state is where they are:
/// the live models stay on the node of the last quantum, and move (from
/// this process, or handed over by a worker's keeper) only when the slots
/// are on another node. A group whose node was lost goes on from the
/// latest checkpoints.
void start(trainer_actor* self, std::vector<slot_grant> grants) {
  auto& st = self->state;
  st.device = grants.front().slot.device;
  st.alone = grants.front().alone;
  if (!st.config.cluster) {
    run_local(self, grants, std::nullopt);
    return;
  }
  auto target = grants.front().executor.node();
  if (st.live && st.live->node == target) {
    run_at(self, grants, std::nullopt);
    return;
  }
  auto since = std::chrono::steady_clock::now();
  if (!st.live || (st.live->node != self->node() && !st.live->keeper)) {
    run_from_checkpoints(self, std::move(grants));
    return;
  }
  if (st.live->node == self->node()) {
    std::vector<runner_state> states;
    try {
      states = st.group->export_states();
    } catch (const std::exception& e) {
      fail_all(self, ids_of(grants), st.unfinished,
               fmt::format("the networks' states could not be written to "
                           "move them to another node: {}",
                           e.what()));
      return;
    }
    note_move(self, states, since);
    run_at(self, grants, std::move(states));
    return;
  }
  // The live models are on another worker: its keeper hands them over
  // (and forgets them). The keeper is watched: a worker lost meanwhile
  // ends the wait.
  st.busy = true;
  auto id = ++st.moves;
  auto keeper = st.live->keeper;
  st.moving = trainer_state::move_in_flight{id, keeper, grants};
  self->monitor(keeper);
  auto moved = [=](moved_states states) {
    auto& st = self->state;
    if (!st.moving || st.moving->id != id)
      return;
    self->demonitor(keeper.address());
    st.moving.reset();
    if (states) {
      note_move(self, *states, since);
      run_at(self, grants, std::move(states));
    } else {
      run_from_checkpoints(self, grants);
    }
  };
  self->request(keeper, caf::infinite, export_atom_v, st.group->id())
      .then(
          [=](std::vector<runner_state>& states) { moved(std::move(states)); },
          [=](caf::error&) { moved(std::nullopt); });
}

} // namespace

caf::behavior trainer(trainer_actor* self, std::shared_ptr<network_group> group,
                      trainer_config config) {
  auto& st = self->state;
  st.group = std::move(group);
  st.config = std::move(config);
  st.kept = std::move(st.config.kept);
  st.config.kept.clear();
  // The models start here, before any quantum.
  st.live = trainer_state::live_models{self->node(), {}};
  if (st.config.cluster)
    st.unfinished = st.group->unfinished();
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (st.moving && dm.source == st.moving->keeper.address()) {
      // The worker holding the live models is gone: the coordinator's
      // copies go where the group was granted.
      auto grants = std::move(st.moving->grants);
      st.moving.reset();
      run_from_checkpoints(self, std::move(grants));
      return;
    }
    if (st.in_flight && st.in_flight->executor &&
        dm.source == st.in_flight->executor.address())
      lose_quantum(
          self, st.in_flight->slot,
          fmt::format("its worker was lost ({})", to_string_pretty(dm.reason)),
          true);
  });
  self->send(st.config.scheduler, acquire_atom_v, st.group->info());
  return {
      [=](exploit_atom, uint64_t recipient, uint64_t donor, int64_t version,
          double lr_factor, const caf::actor& donor_trainer) {
        // PBT: copy the donor's state of `version` from its trainer; the
        // next quantum loads it. The scheduler holds this trainer back
        // until it hears how the copy went.
        auto scheduler = self->state.config.scheduler;
        self->request(donor_trainer, std::chrono::seconds{60}, exploit_atom_v,
                      donor, version)
            .then(
                [=](std::vector<char>& bytes) {
                  self->state.transplants.push_back(
                      {recipient, std::move(bytes), lr_factor});
                  self->send(scheduler, exploited_atom_v, recipient,
                             std::string{});
                },
                [=](caf::error& err) {
                  auto why = err.category() == caf::atom("actortrain")
                                 ? to_string_pretty(err)
                                 : fmt::format("network {}'s trainer is gone "
                                               "(it finished): {}",
                                               donor, to_string_pretty(err));
                  self->send(scheduler, exploited_atom_v, recipient, why);
                });
      },
      [=](exploit_atom, uint64_t donor,
          int64_t version) -> caf::result<std::vector<char>> {
        const auto& kept = self->state.kept;
        auto n = kept.find(donor);
        if (n == kept.end() || n->second.empty())
          return make_error(errc::invalid_data,
                            fmt::format("network {} has no state to copy: it "
                                        "has not reported an interval epoch",
                                        donor));
        if (n->second.count(version) == 0)
          return make_error(errc::invalid_data,
                            fmt::format("network {} no longer holds its state "
                                        "of epoch {} (it holds epoch {})",
                                        donor, version, *n->second.rbegin()));
        // The state is in the store: the aggregator answers with it. It
        // stored it before this trainer's report reached the scheduler that
        // decided the copy.
        return self->delegate(self->state.config.aggregator, kept_atom_v, donor,
                              version);
      },
      [=](cancel_atom, const std::vector<uint64_t>& ids) {
        auto& st = self->state;
        auto left = unfinished_of(self);
        for (auto id : ids)
          if (contains(left, id) && !contains(st.cancels, id)) {
            st.cancels.push_back(id);
            // The next quantum ends it at once.
            st.search_stops.push_back(id);
          }
        if (!st.busy)
          end_if_all_cancelled(self, std::nullopt);
      },
      [=](quantum_atom, uint64_t id) {
        // A quantum held back by ACTORTRAIN_CLUSTER_DELAY_MS goes now,
        // unless it was lost meanwhile.
        auto& st = self->state;
        auto send = std::move(st.delayed_request);
        st.delayed_request = nullptr;
        if (send && st.in_flight && st.in_flight->id == id)
          send();
      },
      [=](search_stop_atom, const std::vector<uint64_t>& ids) {
        auto& stops = self->state.search_stops;
        stops.insert(stops.end(), ids.begin(), ids.end());
      },
      [=](grant_atom, const std::vector<slot_grant>& grants) {
        // A replicated network's slots, granted together; none when the run
        // has too few left for it.
        auto& st = self->state;
        if (grants.empty()) {
          fail_all(self, {}, unfinished_of(self),
                   fmt::format("train.replicas = {} needs that many slots "
                               "at once and the run has fewer left",
                               st.group->slots_needed()));
          return;
        }
        start(self, grants);
      },
      [=](grant_atom, const slot_grant& grant) { start(self, {grant}); },
  };
}

} // namespace actortrain
