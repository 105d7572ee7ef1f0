#pragma once

#include <functional>
#include <limits>
#include <memory>
#include <vector>

#include "models/step_losses.hpp"
#include "training/network_runner.hpp"

namespace actortrain {

class builtin_learner;
class data_parallel_step;
class fused_model;
class parameter_server;
class replica_team;

/// The networks one trainer owns: one, or a group of same-shape networks,
/// and the one step loop that trains them (see train_cohort).
///
/// Members at the same step of equally long epochs form a cohort that steps
/// together. A cohort of networks that train fused (fusion/grouping.hpp:
/// trains_fused, a function of each network's spec) steps through one fused
/// model (fusion/fused_model.hpp), even a cohort of one; any other network
/// steps through its own learner, as a cohort of one. The fused model gives
/// every member the bits it gets in any other cohort, so a member that
/// finishes, fails, retries or resumes elsewhere changes nobody else's
/// numbers. Each member keeps its own seed-determined weights and data
/// order, metrics, checkpoints and final weights.
class network_group {
public:
  /// `fuse`: whether members that train fused may do so (false: every
  /// member steps through its own learner, a reference for tests).
  network_group(std::vector<std::unique_ptr<network_runner>> members,
                bool fuse = true);
  ~network_group();

  /// Trains one quantum of every member that is not done. A replicated
  /// network (a group of one with train.replicas = R > 1) steps across
  /// `team`, the threads of the R slots granted together.
  quantum_report run_quantum(const slot_info& slot,
                             const quantum_limits& limits,
                             replica_team* team = nullptr);

  /// How many slots a quantum of the group needs at once: train.replicas
  /// of a replicated network, else 1.
  int64_t slots_needed() const;

  /// The state of every unfinished member (see network_runner::export_state),
  /// in the group's order, so that its next quantum can run on another node:
  /// a fused group is unstacked first. Throws when a state cannot be
  /// written.
  std::vector<runner_state> export_states();

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

  /// After running out of device memory with a device to itself: members
  /// step fused in cohorts of half the size they had (their numbers do not
  /// change: see above). False when every member steps alone already.
  bool split_fused();

  /// Times its members moved to another device of the node (see
  /// network_runner::prepare).
  int64_t device_moves() const;

  /// Ids of the networks that are not done yet.
  std::vector<uint64_t> unfinished() const;

private:
  /// What one step of a cohort left: its members' losses (maybe still on
  /// the device) and its compute time per member.
  struct stepped {
    step_losses losses;
    double seconds = 0;
    /// Whether `seconds` came from the host's clock (then the wait for the
    /// device when the losses are read is added) or from the learner.
    bool clocked = true;
  };
  /// One optimizer step of every member of a cohort, each on its batch (the
  /// indices of its samples).
  using cohort_step =
      std::function<stepped(const std::vector<torch::Tensor>& batches)>;
  /// At most this many steps run before their losses are read (on a GPU).
  static constexpr int64_t max_pending_steps = 32;
  /// Whether `m`'s steps are booked a few at a time: on a GPU; for tests,
  /// which check that it gives the same bits, everywhere with
  /// ACTORTRAIN_DEFER_LOSSES=1 and nowhere with ACTORTRAIN_DEFER_LOSSES=0.
  static bool defer_losses(const network_runner& m);

  /// The step loop: trains `cohort` (indices into members_) until its
  /// quantum ends; a member that stops or fails ends it after that step,
  /// and a failure of `step` fails every member.
  void train_cohort(const std::vector<size_t>& cohort,
                    const quantum_limits& limits, const cohort_step& step,
                    std::vector<quantum_outcome>& outs);
  /// Steps member i through its own learner.
  void run_alone(size_t i, const quantum_limits& limits,
                 std::vector<quantum_outcome>& outs);
  /// Steps member i, a replicated network, across `team`'s threads (it
  /// fails when the team does not have one thread per replica: a replicated
  /// network never silently trains on one slot).
  void run_replicated(size_t i, const quantum_limits& limits,
                      std::vector<quantum_outcome>& outs, replica_team* team);
  /// Steps member i, a replicated network with train.sync = "async",
  /// through its parameter server: every thread of `team` trains its
  /// replica on batches of its own until the quantum ends.
  void run_async(size_t i, builtin_learner& master,
                 const quantum_limits& limits,
                 std::vector<quantum_outcome>& outs, replica_team& team);
  /// Steps `cohort` through one fused model; false when its members cannot
  /// be fused after all (they then train alone).
  bool run_fused(const std::vector<size_t>& cohort,
                 const quantum_limits& limits,
                 std::vector<quantum_outcome>& outs);
  /// Builds the fused model of `cohort` from its members' learners; false
  /// when they cannot be fused.
  bool stack(const std::vector<size_t>& cohort);
  /// Gives every fused member its own learner back.
  void unstack(std::vector<quantum_outcome>& outs);
  progress_report progress(const std::vector<quantum_outcome>& outs) const;

  std::vector<std::unique_ptr<network_runner>> members_;
  /// Per member: whether it steps through a fused model.
  std::vector<bool> fused_path_;
  std::shared_ptr<fused_model> fused_;
  /// The replicas' models of a replicated network, kept between quanta.
  std::unique_ptr<data_parallel_step> parallel_;
  std::unique_ptr<parameter_server> server_;
  /// Indices into members_ of the fused model's members, in its order.
  std::vector<size_t> fused_members_;
  /// The most members one fused cohort steps at once (split_fused).
  size_t max_cohort_ = std::numeric_limits<size_t>::max();
};

} // namespace actortrain
