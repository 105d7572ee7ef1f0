#pragma once

#include <cstdint>
#include <functional>
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

  /// Trains `net` (network `id`) on the samples `batch` (indices into the
  /// training set) across `team`: its threads compute parts 0, 1, ...; its
  /// worker slots (team.remotes()) the next ones; parts beyond the slots
  /// (more replicas than slots granted) go to the threads in turn. A worker
  /// slot that is lost has its part computed here. Returns the batch's mean
  /// loss; the bits do not depend on where a part was computed.
  double operator()(uint64_t id, builtin_learner& net, const dataset& data,
                    const torch::Tensor& batch, torch::Device device,
                    replica_team& team);

  /// Sizes of the replicas' parts of a batch of `n` samples: equal, the
  /// first ones one larger when `n` does not divide (an epoch's last,
  /// shorter batch).
  static std::vector<int64_t> part_sizes(int64_t n, size_t replicas);

private:
  /// Part `r` computed in this process (replica 0 in `net`'s own model).
  void compute_part(size_t r, builtin_learner& net, const dataset& data,
                    const torch::Tensor& batch, torch::Device device);

  size_t replicas_;
  std::vector<int64_t> sizes_;
  std::vector<int64_t> offsets_;
  std::vector<double> losses_;
  std::vector<torch::Tensor> leader_params_;
  /// Replicas 1 .. R-1 (replica 0 is the network's own model).
  std::vector<std::unique_ptr<replica_model>> copies_;
};

/// One replica's pass over its part (`part`: sample indices) of a batch of
/// `batch` samples: backpropagates the part's share of the batch's mean
/// loss through `forward`'s model; returns that share of the loss. The same
/// code wherever the part is computed, so its gradient has the same bits.
double
replica_pass(const std::function<torch::Tensor(const torch::Tensor&)>& forward,
             const builtin_learner& net, const dataset& data,
             const torch::Tensor& part, int64_t batch, torch::Device device);

/// Every parameter's values (or gradients) as float32 bytes, flattened in
/// order, and back into tensors shaped `like`.
std::vector<char> flatten(const std::vector<torch::Tensor>& tensors,
                          bool gradients);
std::vector<torch::Tensor> unflatten(const std::vector<char>& flat,
                                     const std::vector<torch::Tensor>& like);

} // namespace actortrain
