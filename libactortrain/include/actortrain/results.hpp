#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "actortrain/choices.hpp"
#include "actortrain/exact_floats.hpp"

namespace actortrain {

/// Marks a metric that does not apply (e.g. accuracy of a regression).
constexpr double no_metric = std::numeric_limits<double>::quiet_NaN();

/// Metrics of one network after one epoch.
struct epoch_metrics {
  uint64_t network_id = 0;
  int64_t epoch = 0;
  int64_t steps = 0;
  double train_loss = no_metric;
  double test_loss = no_metric;
  double test_accuracy = no_metric;
  /// On the network's validation split (NaN without one).
  double validation_loss = no_metric;
  double validation_accuracy = no_metric;
  /// Compute seconds spent on this epoch's training steps.
  double seconds = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, epoch_metrics& x) {
  return detail::inspect_fields(f, "epoch_metrics", x.network_id, x.epoch,
                                x.steps, x.train_loss, x.test_loss,
                                x.test_accuracy, x.validation_loss,
                                x.validation_accuracy, x.seconds);
}

/// Asynchronous replicas (train.sync = "async"): a network's gradient
/// pushes that were `staleness` updates old when they reached its parameter
/// server, applied and refused (older than train.staleness: computed again).
struct staleness_count {
  uint64_t network_id = 0;
  int64_t staleness = 0;
  int64_t applied = 0;
  int64_t refused = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, staleness_count& x) {
  return detail::inspect_fields(f, "staleness_count", x.network_id, x.staleness,
                                x.applied, x.refused);
}

/// One grant of a slot, as recorded in the schedule: its start and end in
/// seconds on the schedule's clock (since the run's scheduler started; a
/// resumed or continued run's clock goes on from where the attempts before
/// stopped, so attempts follow each other).
struct grant_record {
  uint64_t network_id = 0;
  uint32_t slot = 0;
  double start = 0;
  double end = 0;
  int64_t steps = 0;
  /// Where the slot is: "" in the coordinator's process, else the worker's
  /// "host:port".
  std::string node;
  /// Bytes of state that moved to the slot's node for this quantum (the
  /// group's last quantum ran on another node); 0 when it stayed.
  int64_t moved_bytes = 0;
  /// The slot's device on its node ("cpu", "cuda:1"); "" in stores written
  /// before devices were recorded.
  std::string device;
  /// Granted while the slot still ran the quantum before
  /// (cluster.queue_ahead): its quantum waited on the worker and started
  /// the moment that one ended, at `start`.
  bool queued = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, grant_record& x) {
  return detail::inspect_fields(f, "grant_record", x.network_id, x.slot,
                                x.start, x.end, x.steps, x.node, x.moved_bytes,
                                x.device, x.queued);
}

/// One decision of the adaptive search (scheduler.search): seconds on the
/// schedule's clock (as grant_record's), the network, the epoch it had reached,
/// the rung (in epochs; PBT: the interval epoch) decided on, what was decided
/// ("continue", "stop", "wait", "promote", "exploit", "refused": an exploit
/// that could not copy its donor) and why. An exploit names its donor (-1
/// otherwise) and the hyperparameters it changed, before and after
/// ("optimizer.lr=0.001").
struct decision_record {
  double time = 0;
  uint64_t network_id = 0;
  int64_t epoch = 0;
  int64_t rung = 0;
  std::string action;
  std::string reason;
  int64_t donor = -1;
  std::string old_hyperparameters;
  std::string new_hyperparameters;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, decision_record& x) {
  return detail::inspect_fields(f, "decision_record", x.time, x.network_id,
                                x.epoch, x.rung, x.action, x.reason, x.donor,
                                x.old_hyperparameters, x.new_hyperparameters);
}

/// A run that made no progress for a while (scheduler.stall_report_seconds):
/// when it said so, in seconds on the schedule's clock (as grant_record's),
/// how long no quantum had started or ended, whether the run was stopping
/// (waiting only for its quanta in flight), the event line that said what
/// it waited on ("no quantum has started or ended for 64 s (...):
/// net-0007 has held slot 3 (127.0.0.1:4000 cpu) for 64 s; 5 trainers wait
/// for a slot"), and when a quantum started or ended again (NaN: not yet,
/// or never: the run ended or was killed while it waited).
struct stall_record {
  double time = 0;
  double quiet_seconds = 0;
  bool stopping = false;
  std::string report;
  double ended = std::numeric_limits<double>::quiet_NaN();
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stall_record& x) {
  return detail::inspect_fields(f, "stall_record", x.time, x.quiet_seconds,
                                x.stopping, x.report, x.ended);
}

/// Final state of a network. `cancelled`: a live session's user cancelled
/// it (session.hpp); it keeps the epochs it trained, but no weights, and
/// joins no ensemble.
enum class network_status : uint8_t { pending, finished, failed, cancelled };

std::string to_string(network_status x);

/// Why a finished network stopped (`none`: it has not).
enum class stop_reason : uint8_t {
  none,
  /// Its full budget of epochs.
  epochs,
  /// Its compute budget, train.max_seconds.
  max_seconds,
  /// train.target_accuracy or train.target_loss reached.
  target,
  /// train.patience epochs without a lower validation loss.
  early_stopping,
  /// The adaptive search (scheduler.search) stopped it at a rung.
  search
};

/// The name stored and printed: "epochs", "max_seconds", ... ("" for none).
std::string to_string(stop_reason x);

/// The stop reason named `text` ("" is none); nothing when `text` names
/// none of them.
std::optional<stop_reason> parse_stop_reason(const std::string& text);

/// The end of one network: its final metrics, or why it failed. Weights travel
/// as bytes (a LibTorch pickle of the state dict) so the message can cross
/// nodes; the aggregator writes them to the run folder.
struct network_outcome {
  uint64_t network_id = 0;
  network_status status = network_status::pending;
  std::string error;
  /// Why a finished network stopped.
  actortrain::stop_reason stop_reason = actortrain::stop_reason::none;
  int64_t epochs = 0;
  int64_t steps = 0;
  double train_loss = no_metric;
  double test_loss = no_metric;
  double test_accuracy = no_metric;
  double seconds_per_step = 0;
  double train_seconds = 0;
  /// Test-set predictions, row-major [test samples x outputs]: class
  /// probabilities for classification, values for regression.
  std::vector<float> test_predictions;
  std::vector<char> weights;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, network_outcome& x) {
  return detail::inspect_fields(
      f, "network_outcome", x.network_id, x.status, x.error, x.stop_reason,
      x.epochs, x.steps, x.train_loss, x.test_loss, x.test_accuracy,
      x.seconds_per_step, x.train_seconds, x.test_predictions, x.weights);
}

/// The result of one network as stored.
struct network_result {
  uint64_t id = 0;
  std::string name;
  /// Sweep point index and label.
  int64_t group = 0;
  std::string group_label;
  uint64_t seed = 0;
  network_status status = network_status::pending;
  std::string error;
  actortrain::stop_reason stop_reason = actortrain::stop_reason::none;
  int64_t epochs = 0;
  int64_t steps = 0;
  double train_loss = no_metric;
  double test_loss = no_metric;
  double test_accuracy = no_metric;
  double seconds_per_step = 0;
  double train_seconds = 0;
  /// Path of the weights file ("" when the network did not finish, or its
  /// weights are rows of the results store: output.layout = "database").
  /// `results_store::file_bytes` reads them wherever they are.
  std::string weights_path;
  /// Whether its weights are kept in the results store, not a file.
  bool weights_in_store = false;
};

/// The ensemble of one sweep point (group >= 0) or of every network (-1).
struct ensemble_result {
  int64_t group = -1;
  std::string label;
  int64_t networks = 0;
  double accuracy = no_metric;
  double loss = no_metric;
};

/// The ensemble of the first `members` finished networks of one sweep point
/// (group >= 0) or of all (-1), by network id: how accuracy grows with the
/// number of members.
struct ensemble_point {
  int64_t group = -1;
  int64_t members = 0;
  double accuracy = no_metric;
  double loss = no_metric;
};

/// How busy one slot was, from the recorded schedule.
struct slot_usage {
  uint32_t slot = 0;
  /// The slot's device ("cpu", "cuda:1"; "" in stores of earlier versions)
  /// and node ("" for the coordinator's process).
  std::string device;
  std::string node;
  int64_t grants = 0;
  double busy_seconds = 0;
  /// busy_seconds over the span from the first grant to the last release.
  double busy_fraction = 0;
};

/// One node of a run with worker nodes ("" is the coordinator's process),
/// from the recorded schedule: its slots, how busy they were over the
/// run's span, and the states that moved to it from other nodes.
struct node_usage {
  std::string node;
  int64_t slots = 0;
  int64_t grants = 0;
  double busy_seconds = 0;
  double busy_fraction = 0;
  int64_t moves_in = 0;
  int64_t moved_bytes_in = 0;
  /// Bytes of the run's data sent to it (it lacked them).
  int64_t data_bytes_in = 0;
  /// Grants its slots were given while they computed the quantum before
  /// (cluster.queue_ahead): quanta that started without a round trip.
  int64_t queued_grants = 0;
};

/// Everything a run produced.
struct run_result {
  std::string name;
  std::string output_dir;
  std::string database_path;
  task_kind task = task_kind::classification;
  /// "running" (or crashed), "interrupted", "finished" or
  /// "finished_with_failures".
  std::string status;
  /// How many times the run was taken up again after its first attempt:
  /// resumed after an interruption or a crash, reopened (a session), or
  /// continued to a larger budget (`continuations` of them).
  int64_t resumes = 0;
  int64_t continuations = 0;
  std::vector<network_result> networks;
  std::vector<ensemble_result> ensembles;
  std::vector<slot_usage> slots;
  /// By node, in a run with worker nodes (empty otherwise).
  std::vector<node_usage> nodes;
  /// Each time the run made no progress for a while and said what it
  /// waited on (scheduler.stall_report_seconds), oldest first.
  std::vector<stall_record> stalls;
  /// Seconds its last attempt took (a resumed run's earlier attempts are
  /// not counted: one killed never said).
  double wall_seconds = 0;

  int64_t count(network_status status) const;
  /// The finished network with the lowest test loss, or nullptr.
  const network_result* best() const;
  /// The ensemble over every finished network, or nullptr.
  const ensemble_result* overall_ensemble() const;
};

} // namespace actortrain
