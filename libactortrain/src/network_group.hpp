#pragma once

#include <memory>
#include <vector>

#include "network_runner.hpp"

namespace actortrain {

class fused_model;

/// The networks one trainer owns: one, or a group of same-shape networks
/// stepped together as one fused model (see fusion/fused_model.hpp). Each
/// member keeps its own seed-determined weights and data order, metrics,
/// checkpoints and final weights; the group only replaces the members'
/// separate optimizer steps with one batched step.
///
/// Members that are at the same step train fused; one that is elsewhere
/// (after a retry, or resumed from an older checkpoint) trains on its own.
/// A member that finishes or fails ends the group's quantum after that step
/// and leaves the fused model at the next quantum, which the others do not
/// notice: their numbers do not depend on who else is in the model.
class network_group {
public:
  /// `fuse`: whether members at the same step may be fused.
  network_group(std::vector<std::unique_ptr<network_runner>> members,
                bool fuse);
  ~network_group();

  /// Trains one quantum of every member that is not done. With
  /// `export_states`, the report carries each unfinished member's
  /// runner_state, so the next quantum can run on another node.
  quantum_report run_quantum(const slot_info& slot,
                             const quantum_limits& limits,
                             bool export_states = false);

  /// The state of member `network_id` (see network_runner::export_state).
  runner_state export_state(uint64_t network_id);

  /// Continues from the states another node reported: members not in
  /// `unfinished` are done, the others continue from their entry in `states`
  /// (members without one start from scratch).
  void adopt(const std::vector<uint64_t>& unfinished,
             std::vector<runner_state> states);

  /// What the scheduler learns before the group runs: the group counts as
  /// one trainer, named by its first network's id.
  trainer_info info() const;

  uint64_t id() const {
    return members_.front()->spec().id;
  }

  int64_t steps_total() const;

  size_t size() const noexcept {
    return members_.size();
  }

  /// Ids of the networks that are not done yet.
  std::vector<uint64_t> unfinished() const;

private:
  void run_alone(size_t i, const quantum_limits& limits,
                 std::vector<quantum_outcome>& outs);
  void run_fused(const std::vector<size_t>& cohort,
                 const quantum_limits& limits,
                 std::vector<quantum_outcome>& outs);
  /// Builds the fused model of `cohort` from its members' learners; false
  /// when they cannot be fused (they then train one by one).
  bool stack(const std::vector<size_t>& cohort);
  /// Gives every fused member its own learner back.
  void unstack(std::vector<quantum_outcome>& outs);
  progress_report progress(const std::vector<quantum_outcome>& outs) const;

  std::vector<std::unique_ptr<network_runner>> members_;
  bool fuse_;
  std::shared_ptr<fused_model> fused_;
  /// Indices into members_ of the fused model's members, in its order.
  std::vector<size_t> fused_members_;
};

} // namespace actortrain
