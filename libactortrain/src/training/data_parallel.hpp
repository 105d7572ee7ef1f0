#pragma once

#include <memory>
#include <vector>

#include <torch/types.h>

#include "actortrain/dataset.hpp"

namespace actortrain {

class builtin_learner;
class replica_model;
class replica_team;

/// Synchronous data parallelism for one built-in network (train.replicas):
/// a step splits the batch into one contiguous part per replica, each
/// replica computes the gradient of its part's share of the batch's mean
/// loss on its own slot's thread (replica 0 in the network's own model, the
/// others in copies that take its weights first), the gradients are summed
/// in replica order into the network's model, and its optimizer makes the
/// one update. The result depends on the batch and the replica count only,
/// never on which slots or threads hold the replicas.
class data_parallel_step {
public:
  explicit data_parallel_step(size_t replicas);
  ~data_parallel_step();

  size_t replicas() const noexcept {
    return replicas_;
  }

  /// Trains `net` on the samples `batch` (indices into the training set)
  /// across `team`, which has replicas() threads; returns the batch's mean
  /// loss.
  double operator()(builtin_learner& net, const dataset& data,
                    const torch::Tensor& batch, torch::Device device,
                    replica_team& team);

  /// Sizes of the replicas' parts of a batch of `n` samples: equal, the
  /// first ones one larger when `n` does not divide (an epoch's last,
  /// shorter batch).
  static std::vector<int64_t> part_sizes(int64_t n, size_t replicas);

private:
  size_t replicas_;
  /// Replicas 1 .. R-1 (replica 0 is the network's own model).
  std::vector<std::unique_ptr<replica_model>> copies_;
};

} // namespace actortrain
