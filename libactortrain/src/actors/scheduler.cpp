#include "actors/scheduler.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "actortrain/type_ids.hpp"

namespace actortrain {

namespace {

void dispatch(caf::stateful_actor<scheduler_state>* self) {
  auto& st = self->state;
  while (!st.free.empty()) {
    auto w = st.policy->next();
    if (!w)
      return;
    auto slot = st.free.front();
    st.free.pop_front();
    st.holders[slot] = w->trainer.address();
    ++st.stats.grants;
    ++st.stats.busy;
    st.stats.peak_busy = std::max(st.stats.peak_busy, st.stats.busy);
    self->send(w->trainer, grant_atom_v, st.slots[slot]);
  }
}

} // namespace

caf::behavior scheduler(caf::stateful_actor<scheduler_state>* self,
                        std::vector<slot_grant> slots,
                        std::shared_ptr<scheduling_policy> policy) {
  auto& st = self->state;
  st.slots = std::move(slots);
  st.holders.resize(st.slots.size());
  for (uint32_t i = 0; i < st.slots.size(); ++i) {
    st.slots[i].slot.id = i;
    st.free.push_back(i);
  }
  st.policy = std::move(policy);
  st.stats.slots = static_cast<int64_t>(st.slots.size());
  // A trainer that dies (crash, kill) gives its slot back and leaves the queue.
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    st.policy->remove(dm.source);
    for (uint32_t i = 0; i < st.holders.size(); ++i) {
      if (st.holders[i] == dm.source) {
        st.holders[i] = caf::actor_addr{};
        st.free.push_back(i);
        --st.stats.busy;
      }
    }
    dispatch(self);
  });
  return {
      [=](acquire_atom, uint64_t network_id) {
        auto trainer = caf::actor_cast<caf::actor>(self->current_sender());
        if (!trainer)
          return;
        self->monitor(trainer);
        self->state.policy->enqueue(waiting_trainer{trainer, network_id});
        dispatch(self);
      },
      [=](release_atom, uint32_t slot, const progress_report& progress) {
        auto& st = self->state;
        auto sender = caf::actor_cast<caf::actor_addr>(self->current_sender());
        // Only the holder can release a slot; stale or forged releases would
        // otherwise let the scheduler over-grant.
        if (slot >= st.holders.size() || st.holders[slot] != sender)
          return;
        st.holders[slot] = caf::actor_addr{};
        st.free.push_back(slot);
        --st.stats.busy;
        auto& last = st.steps[progress.network_id];
        st.stats.steps_done += progress.steps_done - last;
        last = progress.steps_done;
        st.policy->report(progress);
        if (progress.finished)
          self->demonitor(sender);
        dispatch(self);
      },
      [=](status_atom) {
        auto s = self->state.stats;
        s.waiting = static_cast<int64_t>(self->state.policy->waiting());
        return s;
      },
  };
}

} // namespace actortrain
