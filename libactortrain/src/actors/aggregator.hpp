#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actortrain/dataset.hpp"
#include "actortrain/network_spec.hpp"
#include "actortrain/store.hpp"
#include "protocol/interfaces.hpp"
#include "store/store_backlog.hpp"

namespace actortrain {

/// What the aggregator collects into and reports to.
struct aggregator_config {
  std::shared_ptr<results_store> store;
  std::shared_ptr<const dataset> data;
  std::vector<network_spec> specs;
  std::vector<std::string> group_labels;
  /// With output_layout::files, weights and predictions go to
  /// `<output_dir>/weights/`, checkpoints to `<output_dir>/checkpoints/`.
  std::string output_dir;
  output_layout layout = output_layout::database;
  /// Receives (all_done_atom) once every network has an outcome.
  caf::actor listener;
  /// Resuming: networks that finished (or failed) in an earlier attempt.
  std::vector<uint64_t> resumed_finished;
  int64_t resumed_failed = 0;
  int64_t resumed_cancelled = 0;
  /// A live session's: called on the aggregator's thread with each batch
  /// of epochs once it is stored (at most `live_latency` after it came),
  /// and with each network's result once its outcome is stored.
  std::function<void(const std::vector<epoch_metrics>&)> on_epochs;
  std::function<void(const network_result&)> on_outcome;
  std::chrono::milliseconds live_latency{100};
  /// Lowered by what each batch wrote (or failed to write): the trainers
  /// raised it when they sent it (null: not counted).
  std::shared_ptr<store_backlog> unwritten;
};

struct aggregator_state {
  aggregator_config config;
  /// The networks that finished (in this attempt or before): the ensembles
  /// are evaluated from their stored predictions when the run ends.
  std::vector<uint64_t> finished_ids;
  /// Each unfinished network's latest epoch, for progress displays.
  std::unordered_map<uint64_t, epoch_metrics> latest;
  /// The best finished networks so far, best first (at most best_kept).
  std::vector<epoch_metrics> best;
  static constexpr size_t best_kept = 10;
  int64_t finished = 0;
  int64_t failed = 0;
  int64_t cancelled = 0;
  /// A flush of the epochs is due within the live latency.
  bool epochs_flush_scheduled = false;
  /// Epoch metrics not yet written: they go to the store in batches, and
  /// always before an outcome, so a network's row never precedes its epochs.
  std::vector<epoch_metrics> pending_epochs;
  /// Checkpoints and outcomes not yet written: written together (one file
  /// system sync, one transaction) once the mailbox holds no more of them.
  struct pending_checkpoint {
    uint64_t network_id = 0;
    int64_t step = 0;
    std::vector<char> bytes;
  };
  std::vector<pending_checkpoint> pending_checkpoints;
  std::vector<network_outcome> pending_outcomes;
  /// Their bytes (checkpoints, weights, predictions): a batch is written
  /// once it holds `flush_bytes`, so large networks' states do not pile up
  /// in memory while their messages keep coming.
  int64_t pending_bytes = 0;
  static constexpr int64_t flush_bytes = int64_t{64} << 20;
  bool flush_scheduled = false;
  /// The first storage error; the run reports it at the end.
  caf::error storage_error;
  std::chrono::steady_clock::time_point started;
  static inline const char* name = "actortrain.aggregator";
};

/// Collects per-epoch metrics and outcomes into the results store and the
/// weights folder, and evaluates the ensembles at the end. The only writer of
/// the store. Spawned detached: disk I/O never blocks the cooperative threads.
/// Checkpoints and outcomes that arrive together are written together.
/// Handles (epoch_atom, epoch_metrics), (outcome_atom, network_outcome),
/// (checkpoint_atom, id, step, bytes), (failure_atom, id, step, reason),
/// (schedule_atom, std::vector<grant_record>), (decisions_atom,
/// std::vector<decision_record>) (the adaptive search's), (status_atom, ids) ->
/// (finished, failed, the latest epoch of the networks `ids`, the best finished
/// so far), (submit_atom, submission) -> networks recorded (a live session's
/// networks join the run) and (finish_atom, interrupted) -> run_result.
aggregator_actor::behavior_type
aggregator(aggregator_actor::stateful_pointer<aggregator_state> self,
           aggregator_config config);

} // namespace actortrain
