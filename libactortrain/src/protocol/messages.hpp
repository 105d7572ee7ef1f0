#pragma once

// The messages actors exchange about training, inside a process and across
// nodes: what trainers tell the scheduler and what a quantum sends back.
// Private to the library: users see results (actortrain/results.hpp), never
// the wire. Atoms and type IDs: protocol/type_ids.hpp.

#include <cstdint>
#include <string>
#include <vector>

#include "actortrain/exact_floats.hpp"
#include "actortrain/results.hpp"

namespace actortrain {

/// What a network reports to the scheduler at the end of each quantum; the
/// information dynamic scheduling policies decide from.
struct progress_report {
  uint64_t network_id = 0;
  int64_t steps_done = 0;
  int64_t steps_total = 0;
  int64_t epoch = 0;
  double loss = no_metric;
  /// Mean seconds per step over the whole run so far.
  double seconds_per_step = 0;
  /// Steps and compute seconds of the quantum just ended: what the remaining
  /// time estimator fits its trend to.
  int64_t quantum_steps = 0;
  double quantum_seconds = 0;
  /// True when the network will not ask for another slot.
  bool finished = false;
  /// With an adaptive search: the epochs the quantum completed (what the
  /// search decides from) and the networks of the group that are done now.
  std::vector<epoch_metrics> epochs;
  std::vector<uint64_t> done;
  /// In a run with worker nodes: the size of the group's state (its
  /// networks' latest checkpoints), what moving it to another node costs,
  /// and the state moved before this quantum with how long that took.
  int64_t state_bytes = 0;
  int64_t moved_bytes = 0;
  double move_seconds = 0;
  /// A quantum on a worker that was not queued there: its round trip's
  /// seconds beyond the compute, as the trainer measured them (0: none).
  double hop_seconds = 0;
  /// Device memory: the bytes the group needs on its slot's device as now
  /// known (the peak measured on a GPU, doubled after running out; 0: no
  /// news), and whether the quantum ran out of memory (nothing of it was
  /// kept: the networks continue from their last snapshot).
  int64_t memory_bytes = 0;
  bool out_of_memory = false;
  /// The group's live state cannot leave its node (a learner of the user's
  /// own that cannot save it): moved, it would start over, so it trains
  /// where it is until that node is lost.
  bool pinned = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, progress_report& x) {
  return detail::inspect_fields(
      f, "progress_report", x.network_id, x.steps_done, x.steps_total, x.epoch,
      x.loss, x.seconds_per_step, x.quantum_steps, x.quantum_seconds,
      x.finished, x.epochs, x.done, x.state_bytes, x.moved_bytes,
      x.move_seconds, x.hop_seconds, x.memory_bytes, x.out_of_memory, x.pinned);
}

/// PBT's exploit, carried out before a quantum trains: a donor's learner
/// state (weights and optimizer state, as its learner saves them) replaces
/// the network's own, then its learning rate is multiplied by `lr_factor`.
/// The network keeps its own position, data order and metrics.
struct state_transplant {
  uint64_t network_id = 0;
  std::vector<char> learner;
  double lr_factor = 1;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, state_transplant& x) {
  return detail::inspect_fields(f, "state_transplant", x.network_id, x.learner,
                                x.lr_factor);
}

/// What an adaptive search (scheduler.search) asks of a quantum.
struct quantum_search {
  /// Evaluate the validation split, or the test set, after every epoch:
  /// the search's metric.
  bool validation = false;
  bool test = false;
  /// End the quantum at the end of an epoch, so decisions apply exactly at
  /// the epoch they were taken for.
  bool epoch_boundaries = false;
  /// Networks the search stopped: they finish before training any further.
  std::vector<uint64_t> stop;
  /// PBT: a quantum ending at an epoch that is a multiple of this (0: never)
  /// hands the network's learner state back (quantum_outcome::kept_state),
  /// the version other networks may copy.
  int64_t keep_every = 0;
  /// PBT: the copies to make before training.
  std::vector<state_transplant> transplants;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, quantum_search& x) {
  return detail::inspect_fields(f, "quantum_search", x.validation, x.test,
                                x.epoch_boundaries, x.stop, x.keep_every,
                                x.transplants);
}

/// What a trainer tells the scheduler when it first asks for a slot.
struct trainer_info {
  uint64_t network_id = 0;
  int64_t steps_total = 0;
  /// Relative cost of one step (e.g. parameters x batch size), used to guess
  /// the time of networks that have not run yet.
  double cost_hint = 1;
  /// For the "priority" policy: higher runs first.
  double priority = 0;
  /// The networks the trainer trains (one, or a fused group) and each one's
  /// budget in epochs: what an adaptive search covers.
  std::vector<uint64_t> members;
  std::vector<int64_t> member_epochs;
  /// Each one's learning rate (what PBT perturbs).
  std::vector<double> member_lrs;
  /// Each one's train.priority (the trainer's is their maximum).
  std::vector<double> member_priorities;
  /// Slots a quantum needs at once (train.replicas): granted together.
  int64_t slots = 1;
  /// Whether worker nodes' slots may serve as its replicas (synchronous
  /// replicas; the first slot of a grant is always this process's).
  bool spans_nodes = false;
  /// Estimated bytes of device memory a quantum of it needs (parameters,
  /// gradients, optimizer state, activations at its batch size, an
  /// evaluation chunk; 0: unknown), what GPU admission counts until a
  /// measured peak replaces it.
  int64_t memory_bytes = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, trainer_info& x) {
  return detail::inspect_fields(
      f, "trainer_info", x.network_id, x.steps_total, x.cost_hint, x.priority,
      x.members, x.member_epochs, x.member_lrs, x.member_priorities, x.slots,
      x.spans_nodes, x.memory_bytes);
}

/// What one quantum of training produced: the progress for the scheduler,
/// the epochs it completed, and the network's outcome once it is done.
struct quantum_outcome {
  progress_report progress;
  std::vector<epoch_metrics> epochs;
  /// Valid when `progress.finished`.
  network_outcome outcome;
  /// Failures that were retried during this quantum, with their reasons.
  std::vector<std::string> failures;
  /// A snapshot to store as the network's checkpoint (empty: none), taken
  /// after `checkpoint_step` steps.
  std::vector<char> checkpoint;
  int64_t checkpoint_step = -1;
  /// Retries done when the checkpoint was taken: a coordinator that keeps
  /// the checkpoint as a network's state to fall back on restores them too.
  int64_t checkpoint_retries = 0;
  /// Asynchronous replicas: this quantum's pushes by staleness.
  std::vector<staleness_count> staleness;
  /// PBT: the learner state at the end of epoch `kept_epoch` (empty: none
  /// this quantum; see quantum_search::keep_every).
  std::vector<char> kept_state;
  int64_t kept_epoch = 0;
  /// The quantum ran out of device memory: the network kept nothing of it
  /// and continues from its last snapshot (not counted as a retry).
  bool out_of_memory = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, quantum_outcome& x) {
  return detail::inspect_fields(
      f, "quantum_outcome", x.progress, x.epochs, x.outcome, x.failures,
      x.checkpoint, x.checkpoint_step, x.checkpoint_retries, x.kept_state,
      x.kept_epoch, x.staleness, x.out_of_memory);
}

/// Everything a network's training needs to continue on another node, taken
/// at the end of a quantum: its live snapshot (model, optimizer, position,
/// metrics so far) and the snapshot a retry would go back to. Restoring it
/// continues bit for bit where the network stopped.
struct runner_state {
  uint64_t network_id = 0;
  /// Empty: the network has no live model (it has not started, or a failure
  /// is waiting to be retried from `last_good`).
  std::vector<char> live;
  /// The snapshot a retry restores (empty: a retry starts over).
  std::vector<char> last_good;
  int64_t last_good_step = 0;
  int64_t retries = 0;
  /// Retries done when `last_good` was taken.
  int64_t last_good_retries = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, runner_state& x) {
  return detail::inspect_fields(f, "runner_state", x.network_id, x.live,
                                x.last_good, x.last_good_step, x.retries,
                                x.last_good_retries);
}

/// What one quantum of a trainer produced: one quantum_outcome per network
/// it trained (several when its networks are fused), and the progress of
/// the whole trainer, which is what the scheduler sees.
struct quantum_report {
  std::vector<quantum_outcome> networks;
  progress_report progress;
  /// On a worker: the seconds the quantum took on its slot (training,
  /// evaluation, checkpoints), so its trainer can tell the round trip apart.
  double slot_seconds = 0;
  /// On a GPU: the most device memory the quantum added to what was in use
  /// when it started (0: not measured, e.g. on a CPU).
  int64_t memory_peak = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, quantum_report& x) {
  return detail::inspect_fields(f, "quantum_report", x.networks, x.progress,
                                x.slot_seconds, x.memory_peak);
}

/// The aggregator's answer to `status`: networks with an outcome so far.
struct aggregator_status {
  int64_t finished = 0;
  int64_t failed = 0;
  /// The latest epoch of each network asked about that has one and is not
  /// done, in the order asked.
  std::vector<epoch_metrics> latest;
  /// The best finished networks so far (by test accuracy, or test loss for
  /// regression), best first: `epoch` is their number of epochs.
  std::vector<epoch_metrics> best;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, aggregator_status& x) {
  return detail::inspect_fields(f, "aggregator_status", x.finished, x.failed,
                                x.latest, x.best);
}

} // namespace actortrain
