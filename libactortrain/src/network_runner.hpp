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

/// Trains one network quantum by quantum: owns its learner, its position in
/// the data and its metrics. Not an actor: its trainer actor hands it to a
/// slot's thread for each quantum and never touches it meanwhile.
class network_runner {
public:
  network_runner(network_spec spec, std::shared_ptr<const dataset> data,
                 torch::Tensor shard, learner_factory make_learner);
  ~network_runner();

  /// Trains until `steps` more optimizer steps are done, or until `epochs`
  /// more epochs end when `steps` is 0, or until the network's budget ends.
  /// Never throws: failures end the network with their reason.
  quantum_outcome run_quantum(const slot_info& slot, int64_t steps,
                              int64_t epochs);

  const network_spec& spec() const noexcept {
    return spec_;
  }

  int64_t steps_per_epoch() const noexcept {
    return steps_per_epoch_;
  }

  int64_t steps_total() const noexcept {
    return steps_per_epoch_ * spec_.config.train.epochs;
  }

private:
  struct evaluation {
    double loss;
    double accuracy;
    torch::Tensor predictions;
  };

  void train_until(int64_t target_step, quantum_outcome& out);
  evaluation evaluate();
  void fail(quantum_outcome& out, const std::string& reason);
  void finish(quantum_outcome& out);
  void fill_progress(quantum_outcome& out) const;

  network_spec spec_;
  std::shared_ptr<const dataset> data_;
  torch::Tensor shard_;
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
  epoch_metrics last_epoch_;
  torch::Tensor last_predictions_;
};

} // namespace actortrain
