#pragma once

#include <memory>
#include <unordered_map>
#include <vector>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/scheduling_policy.hpp"
#include "actortrain/slot.hpp"

namespace actortrain {

struct scheduler_state {
  std::vector<slot_grant> slots;
  /// Who holds each slot (invalid when free).
  std::vector<caf::actor_addr> holders;
  std::deque<uint32_t> free;
  std::shared_ptr<scheduling_policy> policy;
  scheduler_status stats;
  /// Steps each network reported last, to keep `stats.steps_done` current.
  std::unordered_map<uint64_t, int64_t> steps;
  static inline const char* name = "actortrain.scheduler";
};

/// Owns the slots and grants them to waiting trainers, one quantum at a time.
/// Protocol: a trainer sends (acquire_atom, network_id); the scheduler sends
/// (grant_atom, slot_grant) when a slot is free; the trainer sends
/// (release_atom, slot_id, progress_report) when its quantum ends. A trainer
/// that dies returns its slot. It never grants more slots than exist.
caf::behavior scheduler(caf::stateful_actor<scheduler_state>* self,
                        std::vector<slot_grant> slots,
                        std::shared_ptr<scheduling_policy> policy);

} // namespace actortrain
