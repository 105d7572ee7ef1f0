#pragma once

// The payloads that travel between a coordinator and its worker nodes.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <caf/actor.hpp>

#include "actortrain/exact_floats.hpp"
#include "actortrain/experiment.hpp"
#include "protocol/messages.hpp"

namespace actortrain {

/// How what crosses nodes is encoded, sent with a coordinator's join: a
/// worker of another encoding refuses, since the values would arrive
/// changed (2: floating-point fields as their bits, exact_floats.hpp; 3:
/// the experiment's output.unwritten_mb; 4: progress_report::pinned; 5:
/// both sides send heartbeats, which cluster.worker_timeout_seconds counts
/// on, and the experiment's cluster.worker_timeout_seconds; 6: a stopping
/// coordinator tells its workers, whose quanta then end after their next
/// step). Bumped
/// whenever a message type's fields or their encoding change, or what one
/// side counts on the other to do.
inline constexpr uint32_t wire_version = 6;

/// What a worker needs to train a coordinator's networks: the experiment
/// (data paths made absolute) and the content hash of the coordinator's
/// data, which the worker's copy must match.
struct run_setup {
  experiment exp;
  std::string data_hash;
  /// Content hashes of the TorchScript module files, by absolute path: the
  /// worker's files must match too.
  std::map<std::string, std::string> model_hashes;
  /// The module files' bytes, by absolute path: a worker trains these, so
  /// it needs no copy of the files (no shared file system). Empty: the
  /// worker reads its own files.
  std::map<std::string, std::string> model_files;
  /// The worker stops the run's work when this actor goes down.
  caf::actor coordinator;
  /// Whether the experiment's own networks are the run's (a batch run, a
  /// session with train_setup); else only networks submitted later are,
  /// and the experiment gives their data and defaults.
  bool setup_networks = true;
  /// The run trains a custom learner (run_options::make_learner): only a
  /// worker program built with one (run_worker with its make_learner) may
  /// join, and one built with one joins only such runs.
  bool custom_learner = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, run_setup& x) {
  return detail::inspect_fields(f, "run_setup", x.exp, x.data_hash,
                                x.model_hashes, x.model_files, x.coordinator,
                                x.setup_networks, x.custom_learner);
}

/// Networks submitted to a live session, as a worker gets them: it expands
/// the configurations itself (paths absolute) from `first_id` and
/// `first_group` on, over its own copy of the data, into the networks, seeds
/// and shards the coordinator has. A worker's modules must match the
/// coordinator's content hashes (by absolute path).
struct worker_submission {
  std::vector<network_config> configs;
  uint64_t first_id = 0;
  int64_t first_group = 0;
  std::map<std::string, std::string> model_hashes;
  /// As run_setup::model_files.
  std::map<std::string, std::string> model_files;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, worker_submission& x) {
  return detail::inspect_fields(f, "worker_submission", x.configs, x.first_id,
                                x.first_group, x.model_hashes, x.model_files);
}

/// One quantum of a group of networks, to run on a worker's slot.
struct remote_quantum {
  /// The group's id (its first network's id).
  uint64_t group_id = 0;
  /// The group's networks that are not done, in the group's order.
  std::vector<uint64_t> members;
  /// Where each member continues from; empty when the worker already holds
  /// the group as its last quantum left it (`cached`).
  std::vector<runner_state> states;
  bool cached = false;
  int64_t steps = 0;
  int64_t epochs = 1;
  double seconds = 0;
  /// The run is stopping: the quantum ends with a checkpoint.
  bool stopping = false;
  quantum_search search;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, remote_quantum& x) {
  return detail::inspect_fields(f, "remote_quantum", x.group_id, x.members,
                                x.states, x.cached, x.steps, x.epochs,
                                x.seconds, x.stopping, x.search);
}

/// One replica's part of a synchronous replicated step, computed on a
/// worker's slot (replicas across nodes): the network's weights (every
/// parameter in order, flattened: float32 in the host's byte order, as raw
/// bytes, which CAF copies in one piece where it would convert floats one
/// by one), the part's samples (indices into the training set, which the
/// worker holds too) and the whole batch's size.
struct replica_work {
  uint64_t network_id = 0;
  std::vector<char> weights;
  std::vector<int64_t> samples;
  int64_t batch = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replica_work& x) {
  return detail::inspect_fields(f, "replica_work", x.network_id, x.weights,
                                x.samples, x.batch);
}

/// What a replica's part gives back: the gradient of its share of the
/// batch's mean loss (every parameter in order, flattened, raw bytes as
/// replica_work's weights) and that share of the loss.
struct replica_gradient {
  std::vector<char> gradient;
  double loss = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replica_gradient& x) {
  return detail::inspect_fields(f, "replica_gradient", x.gradient, x.loss);
}

} // namespace actortrain
