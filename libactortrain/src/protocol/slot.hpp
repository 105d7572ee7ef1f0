#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "actortrain/exact_floats.hpp"
#include "protocol/interfaces.hpp"

namespace actortrain {

/// A compute slot: one share of a device. A CPU slot is a thread running
/// LibTorch with `threads` intra-op threads; a GPU slot is the same concept
/// with device "cuda:N" (and a stream).
struct slot_info {
  uint32_t id = 0;
  /// A `torch::Device` string: "cpu", "cuda:0", ...
  std::string device = "cpu";
  int64_t threads = 1;
  /// The worker it runs on as the coordinator names it ("host:port"); ""
  /// in the coordinator's process.
  std::string node;
  /// The BLAS its process multiplies matrices with (blas_description()):
  /// slots with different ones round differently.
  std::string blas;
  /// Bytes of its device's memory the networks on that device may use
  /// together (scheduler.gpu_memory_fraction of a GPU's); 0: no limit.
  int64_t memory_budget = 0;
  /// The scheduler may hand the slot its next quantum while it computes one
  /// (a worker's slot, cluster.queue_ahead): the quantum waits on the worker,
  /// which then never waits for a round trip to the coordinator.
  bool queue_ahead = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, slot_info& x) {
  return detail::inspect_fields(f, "slot_info", x.id, x.device, x.threads,
                                x.node, x.blas, x.memory_budget, x.queue_ahead);
}

/// The scheduler's grant of a slot to a trainer: the slot, the actor that
/// runs compute on it and, on a worker node, the keeper of the live states
/// the run's groups left there (null for this process's slots).
struct slot_grant {
  slot_info slot;
  slot_executor_actor executor;
  state_keeper_actor keeper;
  /// The trainer has the slot's device to itself for this grant (it ran out
  /// of memory beside others before).
  bool alone = false;
  /// Granted while another trainer's quantum runs on the slot: this one's
  /// waits there and starts when that one ends.
  bool queued = false;
  /// A round trip to the slot's node beyond the compute, in seconds, as
  /// trainers measured it on quanta that were not queued (a moving
  /// average; 0: not known yet).
  double hop_seconds = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, slot_grant& x) {
  return detail::inspect_fields(f, "slot_grant", x.slot, x.executor, x.keeper,
                                x.alone, x.queued, x.hop_seconds);
}

/// A slot held by a trainer: which slot, on what (its node's name, "" for
/// this process), the trainer's network (the first of its group when its
/// networks are fused) and for how long it has held it.
struct slot_holder {
  uint32_t slot = 0;
  std::string device;
  uint64_t network_id = 0;
  std::string node;
  double held_seconds = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, slot_holder& x) {
  return detail::inspect_fields(f, "slot_holder", x.slot, x.device,
                                x.network_id, x.node, x.held_seconds);
}

/// A snapshot of the scheduler, for progress displays and tests.

struct scheduler_status {
  int64_t slots = 0;
  int64_t busy = 0;
  int64_t waiting = 0;
  int64_t grants = 0;
  /// The highest number of slots ever busy at once; never above `slots`.
  int64_t peak_busy = 0;
  /// Optimizer steps reported by all trainers so far.
  int64_t steps_done = 0;
  /// The slots held now, by slot id.
  std::vector<slot_holder> holders;
  /// Grants of several slots at once (replicated networks), and the longest
  /// a free slot waited, in seconds, while such a grant gathered its slots.
  int64_t gang_grants = 0;
  double longest_gang_wait = 0;
  /// With slots on several nodes: grants that moved a group to another
  /// node than its last quantum's (work stealing), and the bytes of state
  /// the trainers reported moving.
  int64_t moves = 0;
  int64_t moved_bytes = 0;
  /// Device memory: times the trainer first in line waited because its
  /// estimate did not fit its device's budget beside the others, quanta
  /// that ran out of memory, and grants of a whole device to one trainer
  /// after that.
  int64_t memory_waits = 0;
  int64_t out_of_memory = 0;
  int64_t alone_grants = 0;
  /// Grants on another device of the node than the trainer's last (another
  /// GPU: its state moves there). A trainer gets a free slot on its own
  /// device when there is one.
  int64_t device_moves = 0;
  /// Grants of a worker's slot while it computed another trainer's quantum
  /// (slot_info::queue_ahead), counted in `grants` too.
  int64_t queued_grants = 0;
  /// Times no quantum could start because the store had more than
  /// output.unwritten_mb to write, and the most it had at once (bytes).
  int64_t store_waits = 0;
  int64_t unwritten_peak = 0;
  /// What a stalled run reports (see scheduler_options::stall_report_seconds):
  /// seconds since a quantum last started or ended, the longest quantum so
  /// far, the slots free and lost (workers gone), trainers alive (asked
  /// and not finished), those queued on a worker's busy slot and those a
  /// search holds back at a rung, and whether new quanta wait for the
  /// store.
  double quiet_seconds = 0;
  double longest_quantum = 0;
  /// Now, in seconds on the schedule's clock (grant_record's).
  double clock = 0;
  int64_t free_slots = 0;
  int64_t lost_slots = 0;
  int64_t trainers = 0;
  int64_t queued_on_slots = 0;
  int64_t held_by_search = 0;
  bool store_waiting = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, scheduler_status& x) {
  return detail::inspect_fields(
      f, "scheduler_status", x.slots, x.busy, x.waiting, x.grants, x.peak_busy,
      x.steps_done, x.holders, x.gang_grants, x.longest_gang_wait, x.moves,
      x.moved_bytes, x.memory_waits, x.out_of_memory, x.alone_grants,
      x.device_moves, x.queued_grants, x.store_waits, x.unwritten_peak,
      x.quiet_seconds, x.longest_quantum, x.clock, x.free_slots, x.lost_slots,
      x.trainers, x.queued_on_slots, x.held_by_search, x.store_waiting);
}

} // namespace actortrain
