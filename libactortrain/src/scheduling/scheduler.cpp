#include "scheduling/scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include <fmt/format.h>

#include "protocol/slot.hpp"
#include "protocol/type_ids.hpp"

namespace actortrain {

namespace {

using scheduler_self =
    std::remove_pointer_t<scheduler_actor::stateful_pointer<scheduler_state>>;

/// Records kept before a batch goes to the recorder.
constexpr size_t record_batch = 512;

/// Seconds on the schedule's clock (it goes on from the attempts before).
double now(scheduler_self* self) {
  return self->state.clock_start +
         std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                       self->state.started)
             .count();
}

void dispatch(scheduler_self* self);

/// A trainer's priority: the highest of its networks'.
double group_priority(const scheduler_state& st, uint64_t trainer_id) {
  double p = -std::numeric_limits<double>::infinity();
  for (auto id : st.members_of.at(trainer_id))
    p = std::max(p, st.priority_of.at(id).second);
  return p;
}

void flush(scheduler_self* self) {
  auto& st = self->state;
  if (st.recorder && !st.pending.empty())
    self->send(st.recorder, schedule_atom_v, std::move(st.pending));
  st.pending.clear();
  if (st.recorder && !st.decisions.empty())
    self->send(st.recorder, decisions_atom_v, std::move(st.decisions));
  st.decisions.clear();
}

/// Queues a trainer for its next grant; with a search, the stops decided for
/// its networks go first (a trainer handles them before the grant).
void requeue(scheduler_self* self, const caf::actor& trainer, uint64_t id) {
  auto& st = self->state;
  if (auto t = st.searched.find(id);
      t != st.searched.end() && !t->second.stops.empty()) {
    caf::anon_send(trainer, search_stop_atom_v, std::move(t->second.stops));
    t->second.stops.clear();
  }
  st.policy->enqueue(waiting_trainer{trainer, id});
}

/// Whether a network of trainer `t` waits at a rung.
bool waits(const scheduler_state& st,
           const scheduler_state::searched_trainer& t) {
  return std::any_of(t.members.begin(), t.members.end(),
                     [&](uint64_t id) { return st.search->waiting(id); });
}

/// "optimizer.lr=0.001".
std::string lr_text(double lr) {
  return fmt::format("optimizer.lr={:.6g}", lr);
}

/// Queues the held trainers none of whose networks waits any longer.
void unhold(scheduler_self* self) {
  auto& st = self->state;
  for (auto& [id, t] : st.searched)
    if (t.held && !waits(st, t)) {
      t.held = false;
      requeue(self, t.trainer, id);
    }
}

/// The trainer actor of network `id`, null when it is gone.
caf::actor trainer_of(const scheduler_state& st, uint64_t id) {
  auto t = st.trainer_of.find(id);
  if (t == st.trainer_of.end())
    return {};
  auto s = st.searched.find(t->second);
  return s == st.searched.end() ? caf::actor{} : s->second.trainer;
}

/// PBT: an exploit was made (`why` empty) or refused: recorded, and the
/// recipient trains on.
void exploit_done(scheduler_self* self, uint64_t recipient,
                  const std::string& why) {
  auto& st = self->state;
  auto i = st.exploiting.find(recipient);
  if (i == st.exploiting.end())
    return;
  auto d = std::move(i->second);
  st.exploiting.erase(i);
  st.search->exploited(recipient, why.empty());
  if (!why.empty())
    st.decisions.push_back({now(self), recipient, d.epoch, d.rung, "refused",
                            fmt::format("the copy of network {} at epoch {} "
                                        "was refused: {}; it trains on with "
                                        "its own state",
                                        d.donor, d.version, why),
                            static_cast<int64_t>(d.donor), lr_text(d.old_lr),
                            lr_text(d.old_lr)});
}

/// PBT: asks the recipient's trainer to copy the donor's state.
void start_exploit(scheduler_self* self, search_decision d) {
  auto& st = self->state;
  auto recipient = trainer_of(st, d.network_id);
  auto donor = trainer_of(st, d.donor);
  auto id = d.network_id;
  auto factor = d.donor_lr > 0 ? d.new_lr / d.donor_lr : 1.0;
  st.exploiting[id] = d;
  if (!recipient || !donor) {
    exploit_done(self, id,
                 !donor ? fmt::format("network {} finished", d.donor)
                        : "its trainer is gone");
    return;
  }
  caf::anon_send(recipient, exploit_atom_v, id, d.donor, d.version, factor,
                 donor);
}

/// A decision as the store keeps it.
decision_record record_of(scheduler_self* self, const search_decision& d) {
  decision_record r;
  r.time = now(self);
  r.network_id = d.network_id;
  r.epoch = d.epoch;
  r.rung = d.rung;
  r.action = name_of(d.action);
  r.reason = d.reason;
  if (d.action == search_action::exploit) {
    r.donor = static_cast<int64_t>(d.donor);
    r.old_hyperparameters = lr_text(d.old_lr);
    r.new_hyperparameters = lr_text(d.new_lr);
  }
  return r;
}

/// Records the search's decisions and carries them out: stops go to the
/// networks' trainers, exploits start, held trainers none of whose networks
/// waits any longer are queued again. A decision stored before an
/// interruption is carried out, not recorded again.
void carry_out(scheduler_self* self, std::vector<search_decision> decided) {
  auto& st = self->state;
  for (auto& d : decided) {
    if (st.history.recorded.count({d.network_id, d.rung, name_of(d.action)}) ==
        0)
      st.decisions.push_back(record_of(self, d));
    if (d.action == search_action::exploit) {
      start_exploit(self, std::move(d));
      continue;
    }
    if (d.action != search_action::stop)
      continue;
    if (auto t = st.trainer_of.find(d.network_id); t != st.trainer_of.end())
      if (auto s = st.searched.find(t->second); s != st.searched.end())
        s->second.stops.push_back(d.network_id);
  }
  unhold(self);
  // Decisions are data: stored within a quarter of a second, so that a
  // crash loses few (a resumed deterministic search takes them again).
  if (st.decisions.size() >= record_batch ||
      (!st.decisions.empty() && now(self) - st.decisions_sent >= 0.25)) {
    st.decisions_sent = now(self);
    flush(self);
  }
}

/// Nothing trains and nothing is queued while some networks wait: the search
/// decides what they do (promotions that cannot come become stops).
void settle(scheduler_self* self) {
  auto& st = self->state;
  if (!st.search || st.stopped || st.arrived < st.start_after)
    return;
  while (st.stats.busy == 0 && st.policy->waiting() == 0) {
    bool held = std::any_of(st.searched.begin(), st.searched.end(),
                            [](const auto& t) { return t.second.held; });
    if (!held)
      return;
    auto decided = st.search->idle();
    if (decided.empty())
      return;
    carry_out(self, std::move(decided));
    dispatch(self);
  }
}

/// A resumed run: the search replays what it had seen (every trainer has
/// asked, so every network it covers is known), then trainers whose
/// networks wait are held and stops are sent before any grant.
void replay(scheduler_self* self) {
  auto& st = self->state;
  st.replayed = true;
  if (!st.search || st.history.networks.empty())
    return;
  auto& rule = *st.search;
  std::map<std::pair<int64_t, uint64_t>, double> reports;
  for (const auto& n : st.history.networks) {
    if (n.done)
      rule.add(n.id, n.epochs, n.lr);
    else if (!n.reported.empty())
      st.resumed_at[n.id] = n.reported.back().epoch;
    for (const auto& e : n.reported)
      reports[{e.epoch, n.id}] = rule.score(e);
  }
  // A decision about an epoch a network has passed happened already: it is
  // only recorded (unless stored).
  auto past = [&](const search_decision& d) {
    auto at = st.resumed_at.find(d.network_id);
    return at == st.resumed_at.end() || d.rung < at->second;
  };
  std::vector<search_decision> decided;
  auto take = [&](std::vector<search_decision> ds) {
    for (auto& d : ds) {
      // PBT: an exploit made before (the network continues from a later
      // state, which holds its outcome); the rule learns how it went, as
      // it did then, before the next report.
      if (d.action == search_action::exploit && past(d))
        rule.exploited(
            d.network_id,
            st.history.recorded.count({d.network_id, d.rung, "refused"}) == 0);
      decided.push_back(std::move(d));
    }
  };
  for (const auto& [key, score] : reports)
    take(rule.report(key.second, key.first, score));
  for (const auto& n : st.history.networks)
    if (n.done)
      take(rule.done(n.id));
  std::vector<search_decision> now_due;
  for (auto& d : decided) {
    if (!past(d)) {
      now_due.push_back(std::move(d));
      continue;
    }
    if (st.history.recorded.insert({d.network_id, d.rung, name_of(d.action)})
            .second)
      st.decisions.push_back(record_of(self, d));
  }
  carry_out(self, std::move(now_due));
  for (auto& [id, t] : st.searched) {
    if (waits(st, t)) {
      t.held = true;
      st.policy->remove(t.trainer.address());
    }
    if (!t.stops.empty()) {
      caf::anon_send(t.trainer, search_stop_atom_v, std::move(t.stops));
      t.stops.clear();
    }
  }
}

/// Trainer `id`'s device memory need in bytes (0: unknown).
int64_t memory_need(const scheduler_state& st, uint64_t id) {
  auto i = st.memory_need.find(id);
  return i == st.memory_need.end() ? 0 : i->second;
}

/// Whether `slot`'s device has room for trainer `id` now. Nothing joins a
/// trainer that has the device to itself; one that needs the device alone
/// gets it empty; any other fits when its need and what the device's
/// holders (queued ones too) were admitted with stay within the device's
/// budget, or when the device is empty (a network larger than the budget
/// runs alone rather than never).
bool admits(const scheduler_state& st, uint32_t slot, uint64_t id) {
  if (!st.memory_limited)
    return true;
  const auto& info = st.slots[slot].grant.slot;
  int64_t used = 0;
  int64_t holders = 0;
  for (const auto& other : st.slots) {
    const auto& o = other.grant.slot;
    if (o.node != info.node || o.device != info.device)
      continue;
    for (const auto* h : {&other.held, &other.queued}) {
      if (!h->trainer)
        continue;
      if (h->alone)
        return false;
      ++holders;
      used += h->memory;
    }
  }
  if (st.alone.count(id) > 0)
    return holders == 0;
  return info.memory_budget <= 0 || holders == 0 ||
         used + memory_need(st, id) <= info.memory_budget;
}

/// The round trip to `slot`'s node as trainers measured it (0: unknown, or
/// this process).
double hop_to(const scheduler_state& st, uint32_t slot) {
  auto i = st.hop_seconds.find(st.slots[slot].grant.slot.node);
  return i == st.hop_seconds.end() ? 0 : i->second;
}

/// Marks `slot` held by `w`, admitted with its memory need; returns the
/// grant to send.
slot_grant hold(scheduler_self* self, uint32_t slot, const waiting_trainer& w) {
  auto& st = self->state;
  bool alone = st.alone.count(w.network_id) > 0;
  st.last_change = now(self);
  st.slots[slot].held = {w.trainer.address(), w.network_id, st.last_change,
                         memory_need(st, w.network_id), alone};
  ++st.stats.grants;
  ++st.stats.busy;
  st.stats.peak_busy = std::max(st.stats.peak_busy, st.stats.busy);
  st.stats.alone_grants += alone ? 1 : 0;
  auto grant = st.slots[slot].grant;
  grant.alone = alone;
  grant.hop_seconds = hop_to(st, slot);
  return grant;
}

/// Grants `w` the `need` slots it needs at once, when enough are free; false
/// when it must wait. The first is always this process's (the leader runs
/// the steps here); then this process's others, then, for synchronous
/// replicas (`spans_nodes`), workers' slots, each kind by lowest id (the
/// same slots for the same state, whatever order they were freed in). While
/// other trainers wait, a spanning gang takes workers' slots before this
/// process's, which the others' leaders need. With
/// fewer slots alive than replicas, synchronous replicas take what is alive
/// (the leader computes the parts left over: the same bits). A trainer that
/// cannot be served (no slot of this process, or too few for replicas that
/// must all be here) gets an empty grant (it fails).
bool grant_together(scheduler_self* self, const waiting_trainer& w,
                    int64_t need) {
  auto& st = self->state;
  auto spans = st.spans_nodes.count(w.network_id) > 0;
  auto usable = [&](const auto& s) {
    return s.local || spans;
  };
  auto admitted = [&](uint32_t i) {
    return admits(st, i, w.network_id);
  };
  auto local_alive =
      std::count_if(st.slots.begin(), st.slots.end(),
                    [](const auto& s) { return s.local && !s.dead; });
  auto alive =
      std::count_if(st.slots.begin(), st.slots.end(),
                    [&](const auto& s) { return usable(s) && !s.dead; });
  std::vector<uint32_t> local;
  std::vector<uint32_t> remote;
  for (auto i : st.free)
    if (usable(st.slots[i]) && admitted(i))
      (st.slots[i].local ? local : remote).push_back(i);
  std::vector<slot_grant> grants;
  auto want = spans ? std::min<int64_t>(need, alive) : need;
  if (local_alive > 0 && alive >= want) {
    if (local.empty() ||
        static_cast<int64_t>(local.size() + remote.size()) < want)
      return false;
    std::sort(local.begin(), local.end());
    std::sort(remote.begin(), remote.end());
    if (spans && st.policy->waiting() > 0)
      local.insert(local.begin() + 1, remote.begin(), remote.end());
    else
      local.insert(local.end(), remote.begin(), remote.end());
    local.resize(static_cast<size_t>(want));
    auto t = now(self);
    for (auto i : local) {
      auto waited = t - std::max(st.slots[i].free_since, st.gang_since);
      st.stats.longest_gang_wait =
          std::max(st.stats.longest_gang_wait, std::max(0.0, waited));
      st.free.erase(std::remove(st.free.begin(), st.free.end(), i),
                    st.free.end());
      grants.push_back(hold(self, i, w));
    }
    ++st.stats.gang_grants;
  }
  caf::anon_send(w.trainer, grant_atom_v, std::move(grants));
  return true;
}

/// The node a slot's executor runs on.
caf::node_id node_of(const scheduler_state& st, uint32_t slot) {
  const auto& e = st.slots[slot].grant.executor;
  return e ? e->node() : caf::node_id{};
}

/// Whether moving trainer `id`'s state to another node pays: it costs at
/// most a quarter of the work it has left. A state that cannot move
/// (pinned) would start over: it never moves (its node is alive, or it
/// would have no home: see lose_slots).
bool move_pays(const scheduler_state& st, uint64_t id) {
  if (st.pinned.count(id) > 0)
    return false;
  auto bytes = st.state_bytes.find(id);
  double cost =
      bytes == st.state_bytes.end()
          ? 0
          : 2 * st.seconds_per_byte * static_cast<double>(bytes->second);
  return cost <= 0.25 * st.policy->remaining(id);
}

/// Whether slots `a` and `b` are on one node (by the node's name, as the
/// grants record it: "" for this process).
bool same_node(const scheduler_state& st, uint32_t a, uint32_t b) {
  return st.slots[a].grant.slot.node == st.slots[b].grant.slot.node;
}

/// Whether slots `a` and `b` compute on one device of one node.
bool same_device(const scheduler_state& st, uint32_t a, uint32_t b) {
  return same_node(st, a, b) &&
         st.slots[a].grant.slot.device == st.slots[b].grant.slot.device;
}

/// `k`, a free slot for trainer `id`, or another free slot of the same node
/// on the device of the trainer's last grant when `k` is on another one and
/// that one admits it: on another GPU its state would have to move there.
std::deque<uint32_t>::iterator
prefer_own_device(scheduler_state& st, std::deque<uint32_t>::iterator k,
                  uint64_t id) {
  auto last = st.last_slot.find(id);
  if (last == st.last_slot.end() || !same_node(st, *k, last->second) ||
      same_device(st, *k, last->second))
    return k;
  auto own = std::find_if(st.free.begin(), st.free.end(), [&](uint32_t s) {
    return same_device(st, s, last->second) && admits(st, s, id);
  });
  return own == st.free.end() ? k : own;
}

/// Records trainer `id`'s grant of `slot`, counting a move to another
/// device of the same node (a move to another node counts in `moves`).
void note_slot(scheduler_state& st, uint64_t id, uint32_t slot) {
  auto [last, first] = st.last_slot.emplace(id, slot);
  if (first)
    return;
  if (same_node(st, slot, last->second) && !same_device(st, slot, last->second))
    ++st.stats.device_moves;
  last->second = slot;
}

/// Grants one free slot by affinity (see scheduler()): false when no free
/// slot has a taker now. A trainer that needs several slots at once
/// becomes the gang instead.
bool grant_by_affinity(scheduler_self* self) {
  auto& st = self->state;
  for (auto k = st.free.begin(); k != st.free.end(); ++k) {
    auto slot = *k;
    auto node = node_of(st, slot);
    auto w = st.policy->next_if([&](const waiting_trainer& w) {
      auto h = st.home.find(w.network_id);
      if (st.slots_needed[w.network_id] > 1)
        return true;
      return (h == st.home.end() || h->second == node) &&
             admits(st, slot, w.network_id);
    });
    bool moves = false;
    if (!w) {
      w = st.policy->next_if([&](const waiting_trainer& w) {
        return move_pays(st, w.network_id) && admits(st, slot, w.network_id);
      });
      moves = w.has_value();
    }
    if (!w)
      continue;
    if (st.slots_needed[w->network_id] > 1) {
      st.gang_since = now(self);
      st.gang = std::move(w);
      return true;
    }
    if (!moves)
      k = prefer_own_device(st, k, w->network_id);
    slot = *k;
    st.free.erase(k);
    note_slot(st, w->network_id, slot);
    st.stats.moves += moves ? 1 : 0;
    st.home[w->network_id] = node;
    caf::anon_send(w->trainer, grant_atom_v, hold(self, slot, *w));
    return true;
  }
  return false;
}

/// Queues a trainer on each held worker's slot that queues ahead and has
/// none queued (see scheduler()): the first waiting trainer, in the
/// policy's order, whose state is on that node and device or nowhere yet.
void queue_ahead(scheduler_self* self) {
  auto& st = self->state;
  if (!st.several_nodes || st.gang || st.memory_waiter)
    return;
  for (uint32_t i = 0; i < st.slots.size() && st.policy->waiting() > 0; ++i) {
    auto& s = st.slots[i];
    // A slot that serves a replicated network's steps (its holder needs
    // several slots) takes no quantum between them.
    if (!s.grant.slot.queue_ahead || s.dead || !s.held.trainer ||
        s.queued.trainer || st.slots_needed[s.held.network_id] > 1)
      continue;
    auto node = node_of(st, i);
    auto w = st.policy->next_if([&](const waiting_trainer& w) {
      if (st.slots_needed[w.network_id] > 1)
        return false;
      auto h = st.home.find(w.network_id);
      auto last = st.last_slot.find(w.network_id);
      return (h == st.home.end() || h->second == node) &&
             (last == st.last_slot.end() || same_device(st, i, last->second)) &&
             admits(st, i, w.network_id);
    });
    if (!w)
      continue;
    note_slot(st, w->network_id, i);
    st.home[w->network_id] = node;
    auto& q = s.queued;
    q.trainer = w->trainer.address();
    q.network_id = w->network_id;
    q.since = now(self);
    q.memory = memory_need(st, w->network_id);
    q.alone = false;
    q.queued = true;
    st.last_change = now(self);
    ++st.stats.grants;
    ++st.stats.queued_grants;
    auto grant = s.grant;
    grant.queued = true;
    grant.hop_seconds = hop_to(st, i);
    caf::anon_send(w->trainer, grant_atom_v, std::move(grant));
  }
}

/// Grants free slots to waiting trainers while both last.
void grant_free_slots(scheduler_self* self) {
  auto& st = self->state;
  for (;;) {
    if (st.gang) {
      auto need = st.slots_needed[st.gang->network_id];
      if (!grant_together(self, *st.gang, need))
        return;
      st.gang.reset();
      continue;
    }
    if (st.free.empty())
      return;
    if (st.several_nodes) {
      if (!grant_by_affinity(self))
        return;
      continue;
    }
    bool waited = st.memory_waiter.has_value();
    auto w = waited ? std::exchange(st.memory_waiter, std::nullopt)
                    : st.policy->next();
    if (!w)
      return;
    if (auto need = st.slots_needed[w->network_id]; need > 1) {
      st.gang_since = now(self);
      st.gang = std::move(w);
      continue;
    }
    auto k = std::find_if(st.free.begin(), st.free.end(), [&](uint32_t s) {
      return admits(st, s, w->network_id);
    });
    if (k == st.free.end()) {
      st.stats.memory_waits += waited ? 0 : 1;
      st.memory_waiter = std::move(w);
      return;
    }
    k = prefer_own_device(st, k, w->network_id);
    auto slot = *k;
    st.free.erase(k);
    note_slot(st, w->network_id, slot);
    // Trainers are dynamically typed: a typed actor reaches them with
    // anon_send (a trainer does not need to know the sender).
    caf::anon_send(w->trainer, grant_atom_v, hold(self, slot, *w));
  }
}

/// Whether the store has more to write than its limit; then a tick looks
/// again in a moment (the slots stay free until it caught up).
bool store_behind(scheduler_self* self) {
  auto& st = self->state;
  if (!st.unwritten || !st.unwritten->over()) {
    st.store_waiting = false;
    return false;
  }
  if (!st.store_waiting) {
    st.store_waiting = true;
    ++st.stats.store_waits;
  }
  if (!st.store_tick_due) {
    st.store_tick_due = true;
    self->delayed_send(self, std::chrono::milliseconds{20}, tick_atom_v);
  }
  return true;
}

void dispatch(scheduler_self* self) {
  auto& st = self->state;
  if (st.arrived < st.start_after || st.stopped || store_behind(self))
    return;
  if (!st.replayed)
    replay(self);
  grant_free_slots(self);
  queue_ahead(self);
}

/// Records the grant of `slot` to `h` that ends now (with the bytes of
/// state that moved to the slot's node for it); returns the time.
double record(scheduler_self* self, uint32_t slot,
              const scheduler_state::holder& h, int64_t steps,
              int64_t moved_bytes) {
  auto& st = self->state;
  auto t = now(self);
  st.last_change = t;
  st.stats.longest_quantum = std::max(st.stats.longest_quantum, t - h.since);
  st.pending.push_back({h.network_id, slot, h.since, t, steps,
                        st.slots[slot].grant.slot.node, moved_bytes,
                        st.slots[slot].grant.slot.device, h.queued});
  if (st.pending.size() >= record_batch)
    flush(self);
  return t;
}

/// The holder of `slot` gave it back: the grant is recorded, and the slot
/// goes to the trainer queued on it (whose quantum starts on the worker
/// now) or is free.
void free_slot(scheduler_self* self, uint32_t slot, int64_t steps,
               int64_t moved_bytes = 0) {
  auto& s = self->state.slots[slot];
  auto t = record(self, slot, s.held, steps, moved_bytes);
  s.held = std::exchange(s.queued, {});
  if (s.held.trainer) {
    s.held.since = t;
    return;
  }
  s.free_since = t;
  if (!s.dead)
    self->state.free.push_back(slot);
  --self->state.stats.busy;
}

/// Retires the slots whose executor is `source`; false when none is.
bool lose_slots(scheduler_self* self, const caf::actor_addr& source) {
  auto& st = self->state;
  bool found = false;
  caf::node_id node;
  for (uint32_t i = 0; i < st.slots.size(); ++i) {
    auto& s = st.slots[i];
    if (s.dead || s.grant.executor.address() != source)
      continue;
    found = true;
    node = node_of(st, i);
    s.dead = true;
    --st.stats.slots;
    ++st.stats.lost_slots;
    st.last_change = now(self);
    // A held slot is released by its trainer, which reschedules its work.
    st.free.erase(std::remove(st.free.begin(), st.free.end(), i),
                  st.free.end());
  }
  // The node's last slot gone, the states there are lost with it: its
  // networks have no home any more (they go on from their checkpoints on
  // whichever slot frees first), instead of waiting for a move to pay.
  if (!found)
    return false;
  for (uint32_t i = 0; i < st.slots.size(); ++i)
    if (!st.slots[i].dead && node_of(st, i) == node)
      return true;
  for (auto h = st.home.begin(); h != st.home.end();)
    h = h->second == node ? st.home.erase(h) : std::next(h);
  // A last slot that is dead (this node's, or an earlier lost one's) no
  // longer says where a state is.
  for (auto l = st.last_slot.begin(); l != st.last_slot.end();)
    l = st.slots[l->second].dead ? st.last_slot.erase(l) : std::next(l);
  return true;
}

/// What a release says about the trainer's device memory: after running out
/// of memory it needs twice what it was admitted with (or what was
/// measured) and a device to itself; a measured peak without running out is
/// its need from now on, beside others again.
void note_memory(scheduler_state& st, const progress_report& progress) {
  auto id = progress.network_id;
  if (progress.out_of_memory) {
    ++st.stats.out_of_memory;
    st.memory_need[id] =
        std::max(2 * memory_need(st, id), progress.memory_bytes);
    st.alone.insert(id);
    st.memory_limited = true;
  } else if (progress.memory_bytes > 0) {
    st.memory_need[id] = progress.memory_bytes;
    st.alone.erase(id);
  }
}

/// A trainer gives `slots` (one, or the ones granted together) back with
/// the progress it made.
void release(scheduler_self* self, const std::vector<uint32_t>& slots,
             const progress_report& progress) {
  auto& st = self->state;
  auto sender = caf::actor_cast<caf::actor_addr>(self->current_sender());
  // Only the holder can release a slot; stale or forged releases would
  // otherwise let the scheduler over-grant.
  if (slots.empty())
    return;
  // A queued quantum that ended (or was lost) before its slot's holder
  // gave the slot back: its report overtook the holder's release. It ran
  // after the holder's quantum, inside the holder's grant as recorded: it
  // is recorded as ending now, taking no time of its own.
  auto first = slots.front();
  bool overtook = slots.size() == 1 && first < st.slots.size() &&
                  st.slots[first].queued.trainer == sender;
  if (overtook) {
    auto& q = st.slots[first].queued;
    q.since = now(self);
    record(self, first, q, progress.quantum_steps, progress.moved_bytes);
    q = {};
  } else {
    for (auto slot : slots)
      if (slot >= st.slots.size() || st.slots[slot].held.trainer != sender)
        return;
    for (auto slot : slots)
      free_slot(self, slot, progress.quantum_steps,
                slot == first ? progress.moved_bytes : 0);
  }
  auto& last = st.steps[progress.network_id];
  st.stats.steps_done += progress.steps_done - last;
  last = progress.steps_done;
  note_memory(st, progress);
  if (st.several_nodes) {
    st.state_bytes[progress.network_id] = progress.state_bytes;
    if (progress.pinned)
      st.pinned.insert(progress.network_id);
    else
      st.pinned.erase(progress.network_id);
    st.stats.moved_bytes += progress.moved_bytes;
    if (progress.moved_bytes > 0 && progress.move_seconds > 0)
      st.seconds_per_byte = 0.75 * st.seconds_per_byte +
                            0.25 * progress.move_seconds /
                                static_cast<double>(progress.moved_bytes);
    if (progress.hop_seconds > 0 && first < st.slots.size()) {
      auto [hop, fresh] = st.hop_seconds.emplace(
          st.slots[first].grant.slot.node, progress.hop_seconds);
      if (!fresh)
        hop->second = 0.75 * hop->second + 0.25 * progress.hop_seconds;
    }
  }
  if (st.search) {
    // A network that ended in this quantum no longer counts at a rung.
    const auto& done = progress.done;
    std::vector<search_decision> decided;
    for (const auto& e : progress.epochs) {
      if (std::find(done.begin(), done.end(), e.network_id) != done.end())
        continue;
      auto score = st.search->score(e);
      if (std::isfinite(score))
        st.latest_score[e.network_id] = score;
      for (auto& d : st.search->report(e.network_id, e.epoch, score))
        decided.push_back(std::move(d));
    }
    // best_first ranks the trainer by its best network's latest score
    // (among those not done).
    for (auto id : done)
      st.latest_score.erase(id);
    auto best = -std::numeric_limits<double>::infinity();
    for (auto id : st.members_of[progress.network_id])
      if (auto s = st.latest_score.find(id); s != st.latest_score.end())
        best = std::max(best, s->second);
    st.policy->set_score(progress.network_id, best);
    for (auto id : done)
      for (auto& d : st.search->done(id))
        decided.push_back(std::move(d));
    // A trainer that is finished has no network left, whatever the report
    // lists (a group that failed as a whole lists none).
    if (auto t = st.searched.find(progress.network_id);
        progress.finished && t != st.searched.end())
      for (auto id : t->second.members)
        for (auto& d : st.search->done(id))
          decided.push_back(std::move(d));
    carry_out(self, std::move(decided));
  }
  if (progress.finished) {
    st.memory_need.erase(progress.network_id);
    st.alone.erase(progress.network_id);
    st.home.erase(progress.network_id);
    st.last_slot.erase(progress.network_id);
    st.state_bytes.erase(progress.network_id);
    st.pinned.erase(progress.network_id);
    st.policy->forget(progress.network_id);
    st.searched.erase(progress.network_id);
    st.trainers.erase(sender);
    self->demonitor(sender);
  } else {
    st.policy->report(progress);
    auto trainer = caf::actor_cast<caf::actor>(sender);
    auto t = st.searched.find(progress.network_id);
    if (t != st.searched.end() && waits(st, t->second))
      t->second.held = true;
    else
      requeue(self, trainer, progress.network_id);
  }
  dispatch(self);
  settle(self);
}

/// Adds a slot under the next id; watches its executor when it lives on
/// another node (a worker), so losing the worker retires the slot.
void add_slot(scheduler_self* self, slot_grant grant) {
  auto& st = self->state;
  auto i = static_cast<uint32_t>(st.slots.size());
  grant.slot.id = i;
  bool local = !grant.executor || grant.executor->node() == self->node();
  if (!local) {
    self->monitor(grant.executor);
    st.several_nodes = true;
  }
  st.memory_limited = st.memory_limited || grant.slot.memory_budget > 0;
  st.slots.push_back({std::move(grant), {}, {}, false, now(self), local});
  st.free.push_back(i);
  ++st.stats.slots;
}

} // namespace

scheduler_actor::behavior_type
scheduler(scheduler_actor::stateful_pointer<scheduler_state> self,
          std::vector<slot_grant> slots,
          std::shared_ptr<scheduling_policy> policy, aggregator_actor recorder,
          size_t start_after, search_settings search, search_history history,
          double clock_start, std::shared_ptr<store_backlog> unwritten) {
  auto& st = self->state;
  st.clock_start = clock_start;
  st.last_change = clock_start;
  st.unwritten = std::move(unwritten);
  if (search.kind != search_kind::none)
    st.search.emplace(std::move(search));
  st.history = std::move(history);
  for (auto& s : slots)
    add_slot(self, std::move(s));
  st.policy = std::move(policy);
  st.recorder = std::move(recorder);
  st.start_after = start_after;
  st.started = std::chrono::steady_clock::now();
  // A trainer that dies (crash, kill) gives its slot back and leaves the queue.
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (lose_slots(self, dm.source)) {
      // A gang waiting for slots that are gone now gets its empty grant.
      dispatch(self);
      return;
    }
    st.policy->remove(dm.source);
    st.trainers.erase(dm.source);
    if (st.gang && st.gang->trainer.address() == dm.source)
      st.gang.reset();
    if (st.memory_waiter && st.memory_waiter->trainer.address() == dm.source)
      st.memory_waiter.reset();
    // A trainer that died before asking must not hold back the start gate.
    if (st.arrived < st.start_after)
      --st.start_after;
    for (uint32_t i = 0; i < st.slots.size(); ++i) {
      if (st.slots[i].queued.trainer == dm.source) {
        st.policy->forget(st.slots[i].queued.network_id);
        st.slots[i].queued = {};
      }
      if (st.slots[i].held.trainer == dm.source) {
        st.policy->forget(st.slots[i].held.network_id);
        free_slot(self, i, 0);
      }
    }
    // Its networks are gone: they hold no rung of the search back.
    for (auto t = st.searched.begin(); t != st.searched.end(); ++t) {
      if (t->second.trainer.address() != dm.source)
        continue;
      std::vector<search_decision> decided;
      for (auto id : t->second.members)
        for (auto& d : st.search->done(id))
          decided.push_back(std::move(d));
      st.searched.erase(t);
      carry_out(self, std::move(decided));
      break;
    }
    dispatch(self);
    settle(self);
  });
  return {
      [=](acquire_atom, const trainer_info& info) {
        auto trainer = caf::actor_cast<caf::actor>(self->current_sender());
        if (!trainer)
          return;
        self->monitor(trainer);
        auto& st = self->state;
        ++st.arrived;
        st.trainers.insert(trainer.address());
        auto adjusted = info;
        for (size_t k = 0; k < info.members.size(); ++k) {
          auto p = k < info.member_priorities.size() ? info.member_priorities[k]
                                                     : info.priority;
          if (auto e = st.early_priorities.find(info.members[k]);
              e != st.early_priorities.end()) {
            p = e->second;
            st.early_priorities.erase(e);
          } else if (auto known = st.priority_of.find(info.members[k]);
                     known != st.priority_of.end()) {
            p = known->second.second; // set while it trained before
          }
          st.priority_of[info.members[k]] = {info.network_id, p};
        }
        st.members_of[info.network_id] = info.members;
        st.slots_needed[info.network_id] = std::max<int64_t>(1, info.slots);
        st.memory_need[info.network_id] = info.memory_bytes;
        if (info.spans_nodes)
          st.spans_nodes.insert(info.network_id);
        if (!info.members.empty())
          adjusted.priority = group_priority(st, info.network_id);
        st.policy->add(adjusted);
        if (st.search) {
          auto& t = st.searched[info.network_id];
          t.trainer = trainer;
          t.members = info.members;
          for (size_t k = 0; k < info.members.size(); ++k) {
            st.trainer_of[info.members[k]] = info.network_id;
            st.search->add(info.members[k],
                           k < info.member_epochs.size() ? info.member_epochs[k]
                                                         : 0,
                           k < info.member_lrs.size() ? info.member_lrs[k] : 0);
          }
        }
        st.policy->enqueue(waiting_trainer{trainer, info.network_id});
        dispatch(self);
      },
      [=](release_atom, uint32_t slot, const progress_report& progress) {
        release(self, {slot}, progress);
      },
      [=](release_atom, const std::vector<uint32_t>& slots,
          const progress_report& progress) { release(self, slots, progress); },
      [=](release_atom, uint32_t slot, const progress_report& progress,
          bool slot_lost) {
        // The trainer saw the slot's worker go before this scheduler did:
        // retire the slot first, or it would be granted again.
        auto& st = self->state;
        auto sender = caf::actor_cast<caf::actor_addr>(self->current_sender());
        if (slot_lost && slot < st.slots.size() &&
            (st.slots[slot].held.trainer == sender ||
             st.slots[slot].queued.trainer == sender))
          lose_slots(self, st.slots[slot].grant.executor.address());
        // The quantum was lost: the group goes on from the coordinator's
        // copies, which any node can take.
        st.home.erase(progress.network_id);
        release(self, {slot}, progress);
      },
      [=](expect_atom, uint64_t n) {
        // A submission's trainers: like a run's at its start, the first
        // grants among them follow the policy, not the order in which
        // their actors happened to start.
        auto& st = self->state;
        st.start_after = std::max(st.start_after, st.arrived) + n;
      },
      [=](add_slots_atom, std::vector<slot_grant>& slots) {
        for (auto& s : slots)
          add_slot(self, std::move(s));
        dispatch(self);
      },
      [=](exploited_atom, uint64_t recipient, const std::string& why) {
        auto& st = self->state;
        if (!st.search)
          return;
        exploit_done(self, recipient, why);
        unhold(self);
        dispatch(self);
        settle(self);
      },
      [=](priority_atom, uint64_t network, double priority) {
        auto& st = self->state;
        auto it = st.priority_of.find(network);
        if (it == st.priority_of.end()) {
          // Its trainer has not asked yet: the priority applies when it does.
          st.early_priorities[network] = priority;
          return true;
        }
        it->second.second = priority;
        st.policy->set_priority(it->second.first,
                                group_priority(st, it->second.first));
        return true;
      },
      [=](schedule_atom) { flush(self); },
      [=](stop_atom) { self->state.stopped = true; },
      [=](tick_atom) {
        self->state.store_tick_due = false;
        dispatch(self);
      },
      [=](status_atom) {
        auto& st = self->state;
        auto s = st.stats;
        if (st.unwritten)
          s.unwritten_peak = st.unwritten->peak();
        s.waiting = static_cast<int64_t>(st.policy->waiting()) +
                    (st.gang ? 1 : 0) + (st.memory_waiter ? 1 : 0);
        auto t = now(self);
        for (const auto& slot : st.slots) {
          if (slot.held.trainer)
            s.holders.push_back({slot.grant.slot.id, slot.grant.slot.device,
                                 slot.held.network_id, slot.grant.slot.node,
                                 t - slot.held.since});
          s.queued_on_slots += slot.queued.trainer ? 1 : 0;
        }
        s.quiet_seconds = t - st.last_change;
        s.clock = t;
        s.free_slots = static_cast<int64_t>(st.free.size());
        s.trainers = static_cast<int64_t>(st.trainers.size());
        s.held_by_search =
            std::count_if(st.searched.begin(), st.searched.end(),
                          [](const auto& t) { return t.second.held; });
        s.store_waiting = st.store_waiting;
        return s;
      },
  };
}

} // namespace actortrain
