#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/expected.hpp>
#include <torch/types.h>

#include "actortrain/dataset.hpp"
#include "actortrain/experiment.hpp"
#include "actortrain/learner_fwd.hpp"
#include "actortrain/network_spec.hpp"
#include "models/script_model.hpp"

namespace actortrain {

/// What an experiment expands into before anything trains: its data, its
/// networks and their shards. The coordinator and every worker derive it
/// from the same experiment, and get the same networks, seeds and shards.
struct run_context {
  experiment exp;
  std::shared_ptr<const dataset> data;
  std::vector<network_spec> specs;
  /// One shard per network (bootstrap samples are drawn here too).
  std::vector<torch::Tensor> shards;
  learner_factory make_learner;
  /// The TorchScript modules of model.kind = "torchscript" configurations
  /// (none with a custom learner: its factory builds every network).
  script_models scripts;
};

/// The device of each slot of the run's own process (scheduler.devices;
/// see slot_devices), none with `cluster.local = false`.
std::vector<std::string> local_slot_devices(const experiment& exp);

/// How many slots the run's own process has.
int64_t local_slots(const experiment& exp);

/// Checks that every configuration's replicas fit the run's own slots (a
/// replicated network holds all its slots at once, in this process). Only
/// the process that schedules checks: a worker's slots are its own.
caf::error check_replica_slots(const experiment& run,
                               const std::vector<network_config>& configs);

/// Validates `exp`, loads its data, checks that its models fit it, and
/// expands it. Errors name the key, file or value that is wrong.
caf::expected<std::shared_ptr<run_context>>
make_run_context(const experiment& exp, learner_factory make_learner);

/// make_run_context over `data` already loaded (a worker's copy received
/// from its coordinator) instead of the files `exp` names, and the module
/// files in `files` (bytes by path) instead of reading them.
caf::expected<std::shared_ptr<run_context>>
make_run_context(const experiment& exp, learner_factory make_learner,
                 std::shared_ptr<const dataset> data,
                 const std::map<std::string, std::string>& files = {});

/// Networks submitted to a live session's run: their configurations
/// (groups `first_group`, ...), their specs (ids continue the run's) and
/// shards, and the TorchScript modules they need.
struct submission {
  std::vector<network_config> configs;
  int64_t first_group = 0;
  std::vector<network_spec> specs;
  std::vector<torch::Tensor> shards;
  script_models scripts;
};

/// Checks `configs` as configurations of `session` (its data, scheduler
/// and output) over `data`, and expands them from network `first_id` and
/// group `first_group` on: the networks get the ids, names, seeds and shards
/// a batch run of the same configurations in that order would give them.
caf::expected<submission>
prepare_submission(const experiment& session, const dataset& data,
                   std::vector<network_config> configs, uint64_t first_id,
                   int64_t first_group, bool builtin,
                   const std::map<std::string, std::string>& files = {});

/// A hash of a dataset's contents (every tensor's bytes and shape), to check
/// that two nodes train on the same data.
std::string content_hash(const dataset& data);

} // namespace actortrain
