#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/aggregator.hpp"
#include "actors/stall_watch.hpp"
#include "actors/trainer.hpp"
#include "actortrain/run.hpp"
#include "cluster/data_shipment.hpp"
#include "cluster/worker_link.hpp"
#include "protocol/cluster_messages.hpp"
#include "protocol/interfaces.hpp"
#include "scheduling/search_rule.hpp"
#include "training/network_runner.hpp"

namespace actortrain {

/// Everything a run needs, checked and loaded before any actor starts.
struct run_plan {
  experiment exp;
  std::vector<network_spec> specs;
  std::shared_ptr<const dataset> data;
  /// One shard per network (bootstrap samples are drawn here too).
  std::vector<torch::Tensor> shards;
  std::shared_ptr<results_store> store;
  std::string output_dir;
  learner_factory make_learner;
  script_models scripts;
  std::function<void(const run_status&)> on_progress;
  double progress_interval_seconds = 0.5;
  size_t progress_rows = 10;
  /// Set (by a signal handler, say) to stop: running quanta end with a
  /// checkpoint, nothing new starts, and the run reports how to resume.
  std::shared_ptr<std::atomic<bool>> stop;
  /// Resuming: networks that need no trainer (finished or failed before),
  /// and the snapshots the others continue from.
  std::vector<uint64_t> resumed_finished;
  std::vector<uint64_t> resumed_failed;
  /// A reopened session's networks cancelled before.
  std::vector<uint64_t> resumed_cancelled;
  std::unordered_map<uint64_t, std::vector<char>> snapshots;
  /// What the adaptive search had seen before, for it to replay.
  search_history searched_before;
  /// Resuming: how far the schedule's clock got in the attempts before
  /// (results_store::schedule_seconds); this attempt's clock starts there.
  double schedule_seconds_before = 0;
  /// PBT: the interval epochs whose states networks kept (in the store)
  /// before the run was interrupted, by network.
  std::map<uint64_t, std::set<int64_t>> kept_epochs;
  /// Cluster runs: workers that joined before the start, those that could
  /// not be reached yet (tried again every second), what workers are told
  /// when they join, whether links use TLS, and where events are reported.
  std::vector<joined_worker> workers;
  std::vector<std::string> unreachable_workers;
  run_setup setup;
  /// The data, for workers that lack it (see worker_link).
  std::shared_ptr<data_shipment> shipment;
  /// A session's submissions as its worker nodes get them (sessions with
  /// cluster.workers only): each worker is told all of them when it joins,
  /// and every worker each new one before its networks can be granted.
  std::vector<worker_submission> worker_submissions;
  bool tls = false;
  std::function<void(const std::string&)> on_event;
  /// Every run is a session's (session.hpp): it starts with the networks
  /// it has, takes more by (submit_atom, submission) unless its population
  /// is fixed (the setup's: a batch run), and ends once closed (close_atom)
  /// and every network is done. The aggregator reports to these as it
  /// stores.
  bool fixed_population = false;
  std::function<void(const std::vector<epoch_metrics>&)> on_epochs;
  std::function<void(const network_result&)> on_outcome;
  /// Each configuration's label, by group id ("all" for an unlabelled one).
  std::vector<std::string> group_labels;
};

struct coordinator_state {
  std::shared_ptr<run_plan> plan;
  scheduler_actor scheduler;
  aggregator_actor aggregator;
  std::vector<slot_executor_actor> executors;
  std::vector<caf::actor> trainers;
  /// Worker nodes that joined, by their node actor, and the links still
  /// trying to reach workers.
  struct worker_node_entry {
    std::string address;
    worker_node_actor node;
  };
  std::unordered_map<caf::actor_addr, worker_node_entry> worker_nodes;
  std::vector<caf::actor> links;
  bool stopping = false;
  /// The store is being closed; later ticks do nothing.
  bool closing = false;
  caf::response_promise promise;
  std::chrono::steady_clock::time_point started;
  int64_t steps_total = 0;
  /// The networks of each trainer, by the id it holds slots under.
  std::unordered_map<uint64_t, std::vector<uint64_t>> group_members;
  /// What each trainer is started with, and the slots there were then
  /// (the fusion plan sizes groups by them).
  trainer_config trainer_defaults;
  int64_t slot_count = 1;
  bool one_per_trainer = false;
  /// Live sessions: each network's trainer, submissions the aggregator has
  /// not recorded yet, whether every network known is done, and whether
  /// the session asked to close.
  std::unordered_map<uint64_t, caf::actor> trainer_of;
  int64_t submitting = 0;
  bool idle = false;
  bool close_requested = false;
  /// Say what the run waits on when it stops making progress, and while
  /// it stops, on the quanta it waits for.
  stall_watch stalls{0};
  stall_watch stopping_stalls{0};
  /// When the stall now reported was first said, on the schedule's clock:
  /// its reports since then end together.
  double stall_said = 0;
  static inline const char* name = "actortrain.coordinator";
};

/// Wires a session's run: spawns the slot executors, the scheduler, the
/// aggregator and one trainer per network, drives the progress display, and
/// answers (run_atom) once started; (submit_atom, submission) -> the new
/// networks' ids once recorded and training;
/// (cancel_atom, id) -> whether its trainer was told; (priority_atom, id,
/// priority) -> whether the scheduler ranks it by that priority from now on;
/// (close_atom) -> the run_result once every network is done.
caf::behavior coordinator(caf::stateful_actor<coordinator_state>* self,
                          std::shared_ptr<run_plan> plan);

} // namespace actortrain
