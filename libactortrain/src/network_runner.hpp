#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include <torch/types.h>

#include "actortrain/dataset.hpp"
#include "actortrain/learner_fwd.hpp"
#include "actortrain/network_spec.hpp"
#include "actortrain/results.hpp"
#include "actortrain/slot.hpp"

namespace actortrain {

/// A closure that runs one quantum on a slot's thread.
struct quantum_job {
  std::function<quantum_outcome()> run;
};

/// How long one quantum lasts: until the first of its limits (0: no limit;
/// `epochs` counts only when `steps` is 0).
struct quantum_limits {
  int64_t steps = 0;
  int64_t epochs = 1;
  double seconds = 0;
};

/// Trains one network quantum by quantum: owns its learner, its position in
/// the data, its validation split and its metrics. Not an actor: its trainer
/// actor hands it to a slot's thread for each quantum and never touches it
/// meanwhile.
class network_runner {
public:
  network_runner(network_spec spec, std::shared_ptr<const dataset> data,
                 torch::Tensor shard, learner_factory make_learner);
  ~network_runner();

  /// Trains one quantum, or less when the network's budget ends or it stops
  /// early. Never throws: failures end the network with their reason.
  quantum_outcome run_quantum(const slot_info& slot,
                              const quantum_limits& limits);

  const network_spec& spec() const noexcept {
    return spec_;
  }

  int64_t steps_per_epoch() const noexcept {
    return steps_per_epoch_;
  }

  int64_t steps_total() const noexcept {
    return steps_per_epoch_ * spec_.config.train.epochs;
  }

  /// What the scheduler learns about this network before it runs.
  trainer_info info() const;

private:
  struct evaluation {
    double loss = no_metric;
    double accuracy = no_metric;
    torch::Tensor predictions;
  };

  /// Trains until the quantum ends; returns the stop reason when the network
  /// is done ("" otherwise).
  std::string train(const quantum_limits& limits, quantum_outcome& out);
  /// Ends an epoch: metrics, evaluation, and whether to stop.
  std::string end_epoch(int64_t epoch, quantum_outcome& out);
  evaluation evaluate(const torch::Tensor& x, const torch::Tensor& y,
                      bool keep_predictions);
  /// Marks the network done with `status` and fills what every outcome has.
  network_outcome& end(quantum_outcome& out, network_status status);
  void fail(quantum_outcome& out, const std::string& reason);
  void finish(quantum_outcome& out, const std::string& reason);
  void fill_progress(quantum_outcome& out) const;

  network_spec spec_;
  std::shared_ptr<const dataset> data_;
  torch::Tensor shard_;
  /// Indices (into the training set) of the validation split, if any.
  torch::Tensor validation_;
  learner_factory make_learner_;
  std::unique_ptr<learner> learner_;
  torch::Device device_ = torch::kCPU;
  int64_t steps_per_epoch_ = 0;
  int64_t step_ = 0;
  /// The current epoch's sample order and running loss.
  torch::Tensor order_;
  double epoch_loss_sum_ = 0;
  double epoch_seconds_ = 0;
  double train_seconds_ = 0;
  double last_loss_ = no_metric;
  double best_validation_loss_ = std::numeric_limits<double>::infinity();
  int64_t epochs_without_improvement_ = 0;
  epoch_metrics last_epoch_;
  torch::Tensor last_predictions_;
  /// The step at which `last_predictions_` were taken.
  int64_t predictions_step_ = -1;
};

} // namespace actortrain
