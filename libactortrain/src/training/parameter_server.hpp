#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include <torch/types.h>

#include "actortrain/results.hpp"

namespace actortrain {

class builtin_learner;
class replica_model;

/// Asynchronous data parallelism for one built-in network (train.sync =
/// "async"): owns nothing but the version of the master weights, which stay
/// in the network's learner with its optimizer state, and one model copy per
/// replica. A replica pulls the master weights into its copy, computes the
/// gradient of its own batch there, and pushes it; the server applies pushes
/// in arrival order and refuses one computed from weights more than
/// `staleness` updates old (the replica computes it again from fresh
/// weights), so no applied gradient is staler than that. Each push names
/// its step, and a step is applied once: a push repeated (a reply lost) is
/// recognised. Not thread-safe: the caller serialises pull and push (they
/// only copy tensors and step the optimizer); the replicas' forward and
/// backward passes run in parallel outside.
class parameter_server {
public:
  parameter_server(size_t replicas, int64_t staleness);
  ~parameter_server();

  /// Serves `master` (the network's learner, which a retry or a resume may
  /// have rebuilt) from now on; builds the replicas' copies on first use.
  void attach(builtin_learner& master, torch::Device device);

  size_t replicas() const noexcept {
    return copies_.size();
  }

  /// Replica r's forward pass.
  torch::Tensor forward(size_t r, const torch::Tensor& x);

  /// Copies the master weights into replica r's copy (clearing its
  /// gradients) and returns their version.
  int64_t pull(size_t r);

  enum class verdict { applied, stale, duplicate };

  /// Replica r's gradients (in its copy) of step `step`, computed from
  /// weights of `version`: applied by the master's optimizer (the version
  /// goes up), refused as stale, or ignored as a step applied before.
  verdict push(size_t r, int64_t step, int64_t version);

  int64_t version() const noexcept {
    return version_;
  }

  /// Forgets the steps applied so far (a quantum starts from the network's
  /// booked steps, so the ids that will come again are new work).
  void forget_steps() {
    applied_steps_.clear();
  }

  /// The pushes since the last call, by staleness, for `network_id`; the
  /// counts start again from zero.
  std::vector<staleness_count> take_counts(uint64_t network_id);

private:
  int64_t staleness_;
  builtin_learner* master_ = nullptr;
  std::vector<std::unique_ptr<replica_model>> copies_;
  int64_t version_ = 0;
  std::set<int64_t> applied_steps_;
  /// Staleness -> (applied, refused).
  std::map<int64_t, std::pair<int64_t, int64_t>> counts_;
};

} // namespace actortrain
