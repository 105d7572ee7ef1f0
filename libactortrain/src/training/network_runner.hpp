#pragma once

#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <optional>

#include <torch/types.h>

#include "actortrain/dataset.hpp"
#include "actortrain/learner_fwd.hpp"
#include "actortrain/network_spec.hpp"
#include "models/script_model.hpp"
#include "protocol/messages.hpp"
#include "protocol/slot.hpp"

namespace actortrain {

/// A closure that runs one quantum on a slot's thread.
struct quantum_job {
  std::function<quantum_report()> run;
};

/// How long one quantum lasts: until the first of its limits (0: no limit;
/// `epochs` counts only when `steps` is 0).
struct quantum_limits {
  int64_t steps = 0;
  int64_t epochs = 1;
  double seconds = 0;
  /// Set when the run (or the worker running the quantum) is stopping: the
  /// quantum ends after its next step, with a checkpoint, whatever the
  /// interval.
  std::shared_ptr<const std::atomic<bool>> stopping;
  /// What an adaptive search asks of this quantum.
  quantum_search search;
};

/// Trains one network quantum by quantum: owns its learner, its position in
/// the data, its validation split and its metrics. Not an actor: its trainer
/// actor hands it to a slot's thread for each quantum and never touches it
/// meanwhile.
class network_runner {
public:
  /// `script`: the module file of a TorchScript model (null for built-in
  /// models and custom learners).
  network_runner(network_spec spec, std::shared_ptr<const dataset> data,
                 torch::Tensor shard, learner_factory make_learner,
                 std::shared_ptr<const script_model> script = nullptr);
  ~network_runner();

  /// Continues from `snapshot` (as written into a quantum_outcome's
  /// checkpoint) at the next quantum. Returns an error naming what is wrong
  /// when the bytes are not a snapshot of this network.
  caf::error resume_from(std::vector<char> snapshot);

  /// The state to continue from on another node (see runner_state).
  runner_state export_state();

  /// Continues from `state` (taken by export_state, maybe on another node)
  /// at the next quantum, bit for bit.
  void import_state(runner_state state);

  const network_spec& spec() const noexcept {
    return spec_;
  }

  int64_t steps_total() const noexcept {
    return steps_per_epoch_ * spec_.config.train.epochs;
  }

  /// What the scheduler learns about this network before it runs (its
  /// cost hint is the group's business: network_group::info).
  trainer_info info() const;

  /// True once the network finished or failed.
  bool done() const noexcept {
    return done_;
  }

  /// Steps trained so far.
  int64_t step() const noexcept {
    return st_.step;
  }

  // -- The step API. A network_group drives it, for a cohort of one network
  // or of many fused ones: begin_quantum, prepare, then per step
  // before_step, the learner's (or the fused model's) step, after_step;
  // conclude and end_quantum close the quantum. Every call that may throw
  // runs inside guarded(), so a failure is retried or ends the network.

  struct quantum_mark {
    int64_t step = 0;
    double train_seconds = 0;
  };

  quantum_mark begin_quantum() const;
  /// Fills the outcome's progress, with what changed since `mark`.
  void end_quantum(const quantum_mark& mark, quantum_outcome& out) const;
  /// Runs `f`; a failure is retried from the last good snapshot
  /// (`train.max_retries` times) and then ends the network with its reason.
  template <class F> void guarded(quantum_outcome& out, F&& f) {
    try {
      f();
    } catch (...) {
      on_exception(out, std::current_exception());
    }
  }
  /// Builds the learner on first use, and restores a pending snapshot.
  void prepare(const slot_info& slot);
  /// Whether the network has a learner to step (prepared, not failed).
  bool ready() const noexcept {
    return learner_ != nullptr;
  }
  /// Which split the adaptive search compares by (evaluated every epoch
  /// from now on).
  void evaluate_for_search(const quantum_search& search) noexcept {
    search_validation_ = search.validation && validation_.defined();
    search_test_ = search.test;
  }
  /// The step at which a quantum starting now ends.
  int64_t quantum_target(const quantum_limits& limits) const;
  /// The indices of the next batch; or why the network stops before it.
  stop_reason before_step(torch::Tensor& batch);
  /// The indices of step `step`'s batch (asynchronous replicas hand out
  /// steps ahead of the ones booked); or why the network stops before it.
  stop_reason before_step_at(int64_t step, torch::Tensor& batch);
  /// Books a step that had mean loss `loss` and took `seconds`; ends the
  /// epoch when it is the last of one. Returns why the network stops ("" to
  /// go on); throws on a non-finite loss.
  stop_reason after_step(double loss, double seconds, quantum_outcome& out);
  /// Ends a quantum: finishes the network when `reason` is not none,
  /// otherwise checkpoints when one is due.
  void conclude(const quantum_limits& limits, stop_reason reason,
                quantum_outcome& out);

  /// PBT's exploit: before the next step, the learner loads `learner`
  /// (another network's learner_bytes) and multiplies its learning rate by
  /// `lr_factor`; this network's position, data order and metrics stay.
  void transplant(std::vector<char> learner, double lr_factor);
  /// The learner's state alone (weights, optimizer state), as `save`
  /// writes it (ready() must hold).
  std::vector<char> learner_bytes();

  /// Times the network moved to another device of its node.
  int64_t device_moves() const noexcept {
    return device_moves_;
  }
  /// Epochs completed so far, and whether the network stands at the end of
  /// one.
  int64_t completed_epochs() const noexcept {
    return st_.step / steps_per_epoch_;
  }
  bool at_epoch_end() const noexcept {
    return epoch_ends_at(st_.step);
  }
  /// Whether step `step` is the first of an epoch (the one before it ended
  /// one).
  bool epoch_ends_at(int64_t step) const noexcept {
    return step % steps_per_epoch_ == 0;
  }

  /// The learner the steps go through (ready() must hold).
  learner& current_learner() noexcept {
    return *learner_;
  }
  /// Swaps the learner for one that continues exactly where it is (fusion
  /// stacks a network into a fused model and back); returns the old one.
  std::unique_ptr<learner> swap_learner(std::unique_ptr<learner> next);

  /// Marks the network done or not, as another node's report says (see
  /// network_group::adopt).
  void set_done(bool done) noexcept {
    done_ = done;
  }

  const dataset& data() const noexcept {
    return *data_;
  }
  /// The data on this network's device (dataset_on): the data itself on
  /// the CPU, a copy shared by the device's networks on a GPU.
  const dataset& device_data() const noexcept {
    return device_data_ ? *device_data_ : *data_;
  }
  /// The training inputs and targets of the samples `batch` names (indices
  /// into the training set), gathered on this network's device.
  std::pair<torch::Tensor, torch::Tensor>
  gather(const torch::Tensor& batch) const;
  torch::Device device() const noexcept {
    return device_;
  }
  /// Training samples per epoch (the shard without the validation split).
  int64_t train_samples() const {
    return shard_.size(0);
  }
  /// Compute seconds trained so far.
  double train_seconds() const noexcept {
    return st_.train_seconds;
  }
  /// Whether the live state can be written to bytes and continued
  /// elsewhere: not built yet, or a learner that saves its state.
  bool state_movable() const;
  /// Whether the learner comes from the user's factory (never fused).
  bool custom_learner() const noexcept {
    return static_cast<bool>(make_learner_);
  }
  /// The scheduler's guess at a step's cost until the network has run:
  /// multiply-adds of a built-in model's batch, a TorchScript module's
  /// parameters times the batch.
  double cost_hint() const;
  /// Device memory a quantum needs, estimated before the network has run:
  /// a built-in model's parameters, gradients and optimizer state, its
  /// activations at the batch size and over an evaluation chunk; a
  /// TorchScript module's parameters likewise and its inputs; 0 for a
  /// custom learner (unknown until measured on a GPU).
  int64_t memory_estimate() const;

private:
  /// prepare() but the transplant: builds the learner, restores a snapshot.
  void build_and_restore(const slot_info& slot);
  /// Retries or fails the network for the exception `e`; out of device
  /// memory, it goes back to its last snapshot without a retry.
  void on_exception(quantum_outcome& out, std::exception_ptr e);
  /// Forgets the learner and everything since the last good snapshot: the
  /// next quantum continues from there (from the start without one).
  void roll_back();
  /// The step roll_back() goes back to.
  int64_t rollback_step() const noexcept {
    return last_good_.empty() ? 0 : last_snapshot_step_;
  }

  /// Everything about the training so far that a snapshot must restore.
  struct training_state {
    int64_t step = 0;
    double epoch_loss_sum = 0;
    double epoch_seconds = 0;
    double train_seconds = 0;
    double last_loss = no_metric;
    double best_validation_loss = std::numeric_limits<double>::infinity();
    int64_t epochs_without_improvement = 0;
    epoch_metrics last_epoch;
  };

  struct evaluation {
    double loss = no_metric;
    double accuracy = no_metric;
    torch::Tensor predictions;
  };

  /// Ends an epoch: metrics, evaluation, and whether to stop.
  stop_reason end_epoch(int64_t epoch, quantum_outcome& out);
  evaluation evaluate(const torch::Tensor& x, const torch::Tensor& y,
                      bool keep_predictions);
  /// A snapshot that retries go back to (a checkpoint).
  std::vector<char> snapshot();
  /// The bytes of a snapshot of the current state.
  std::vector<char> encode();
  void restore(const std::vector<char>& bytes);
  /// Retries from the last good snapshot, or fails the network.
  void on_failure(quantum_outcome& out, const std::string& reason);
  /// Marks the network done with `status` and fills what every outcome has.
  network_outcome& end(quantum_outcome& out, network_status status);
  void fail(quantum_outcome& out, const std::string& reason);
  void finish(quantum_outcome& out, stop_reason reason);
  void fill_progress(quantum_outcome& out) const;

  network_spec spec_;
  std::shared_ptr<const dataset> data_;
  /// data_ on device_, once the learner is built there.
  std::shared_ptr<const dataset> device_data_;
  torch::Tensor shard_;
  /// Indices (into the training set) of the validation split, if any.
  torch::Tensor validation_;
  /// The adaptive search's metric is on the validation split, or the test
  /// set: evaluate it every epoch.
  bool search_validation_ = false;
  bool search_test_ = false;
  learner_factory make_learner_;
  std::shared_ptr<const script_model> script_;
  std::unique_ptr<learner> learner_;
  torch::Device device_ = torch::kCPU;
  int64_t steps_per_epoch_ = 0;
  training_state st_;
  /// The sample order of epoch `order_epoch_` (a function of seed and
  /// epoch), on device_: batches are slices of it, no copy per step.
  torch::Tensor order_;
  int64_t order_epoch_ = -1;
  torch::Tensor last_predictions_;
  /// The step at which `last_predictions_` were taken.
  int64_t predictions_step_ = -1;
  /// The latest snapshot, for retries.
  std::vector<char> last_good_;
  /// A snapshot to load before the next step.
  struct pending_restore {
    std::vector<char> bytes;
    /// A live state from import_state (not a checkpoint to retry from).
    bool live = false;
  };
  std::optional<pending_restore> pending_;
  /// A transplant (PBT) to make once the learner is ready.
  struct pending_transplant {
    std::vector<char> learner;
    double lr_factor = 1;
  };
  std::optional<pending_transplant> transplant_;
  /// A PBT copy was made since the last snapshot.
  bool copied_since_snapshot_ = false;
  int64_t last_snapshot_step_ = 0;
  bool done_ = false;
  int64_t retries_ = 0;
  int64_t device_moves_ = 0;
  /// Retries done when the snapshot being restored was taken.
  int64_t snapshot_retries_ = 0;
};

} // namespace actortrain
