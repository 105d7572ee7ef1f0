#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/expected.hpp>

#include "protocol/cluster_messages.hpp"
#include "setup/run_context.hpp"
#include "training/network_group.hpp"

namespace actortrain {

/// Checks a worker's TorchScript modules against the coordinator's content
/// hashes (by absolute path): an error names the first module that differs.
caf::error check_model_hashes(const script_models& mine,
                              const std::map<std::string, std::string>& theirs);

/// A worker's share of one run: the run's context, derived from the
/// coordinator's experiment, the networks it may be asked to train (the
/// experiment's own, and those submitted to a live session later), and the
/// groups of networks whose last quantum ran here, kept live so that their
/// next quantum here needs no state from the coordinator. Shared by the
/// worker's slot executors.
class worker_run {
public:
  /// With `setup_networks` false, only networks added later are the run's.
  worker_run(std::shared_ptr<const run_context> ctx, bool setup_networks,
             bool verbose, std::function<void(const std::string&)> log);

  /// Expands networks submitted to the session this worker serves, as the
  /// coordinator did (same ids, seeds and shards), and adds them. A network
  /// id known already is replaced: a submission the coordinator gave up may
  /// be followed by another with its ids. Answers how many networks the run
  /// has here; an error (nothing added) names what cannot be trained here.
  caf::expected<uint64_t> add(const std::vector<worker_submission>& subs);

  /// The group to run `q` on: the one kept here when `q.cached`, otherwise
  /// one built from `q.states`. An error when a cached group is not here.
  caf::expected<std::shared_ptr<network_group>> checkout(remote_quantum& q);

  /// Stops keeping a group (it finished, or moved to another node).
  void forget(uint64_t group_id);

  /// The live states of a kept group's unfinished networks, which it then
  /// stops keeping (the group moves to another node). An error when the
  /// group is not kept here or a state cannot be written.
  caf::expected<std::vector<runner_state>> export_group(uint64_t group_id);

  /// Replica part `work` of a synchronous replicated step whose leader is
  /// the coordinator, on slot `slot`'s thread: the gradient of the part's
  /// share of the batch's loss, in a copy of the network's model that this
  /// slot keeps for the network. An error when the network is not the
  /// run's here or not a built-in model.
  caf::expected<replica_gradient> replica_part(uint32_t slot,
                                               const replica_work& work);

  const run_context& context() const {
    return *ctx_;
  }

  /// How many networks the run has here.
  size_t networks() const;

  bool verbose() const {
    return verbose_;
  }

  void log(const std::string& line) const;

  /// Ends the run's quanta running here, and any that start later, after
  /// their next step, with a checkpoint: the coordinator's run is stopping,
  /// or this worker is.
  void stop_quanta();

  /// What ends a quantum here early (set by stop_quanta).
  std::shared_ptr<const std::atomic<bool>> stopping() const {
    return stop_;
  }

private:
  /// What a network is built from.
  struct network_source {
    network_spec spec;
    torch::Tensor shard;
    std::shared_ptr<const script_model> script;
  };

  std::shared_ptr<const run_context> ctx_;
  bool verbose_;
  std::function<void(const std::string&)> log_;
  std::shared_ptr<std::atomic<bool>> stop_ =
      std::make_shared<std::atomic<bool>>(false);
  mutable std::mutex mutex_;
  std::unordered_map<uint64_t, network_source> networks_;
  std::unordered_map<uint64_t, std::shared_ptr<network_group>> groups_;
  /// A slot's copy of a replicated network's model, by (slot, network).
  struct replica_host;
  std::map<std::pair<uint32_t, uint64_t>, std::shared_ptr<replica_host>>
      replicas_;
};

} // namespace actortrain
