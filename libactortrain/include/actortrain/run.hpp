#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "actortrain/cluster.hpp"
#include "actortrain/experiment.hpp"
#include "actortrain/learner_fwd.hpp"
#include "actortrain/results.hpp"

namespace actortrain {

/// One network in a progress display: its latest epoch while it trains, its
/// final metrics once it finished.
struct network_progress {
  uint64_t id = 0;
  std::string name;
  /// Its sweep point's label ("all" without a sweep).
  std::string configuration;
  int64_t epoch = 0;
  /// Its budget of epochs.
  int64_t epochs = 0;
  double train_loss = no_metric;
  double test_loss = no_metric;
  double test_accuracy = no_metric;
  /// The slot it trains on ("3 cpu"), empty when it holds none.
  std::string slot;
};

/// A snapshot of a running experiment, for progress displays.
struct run_status {
  int64_t networks = 0;
  int64_t finished = 0;
  int64_t failed = 0;
  /// Networks holding a slot right now.
  int64_t running = 0;
  /// Networks waiting for a slot.
  int64_t waiting = 0;
  int64_t slots = 0;
  int64_t busy_slots = 0;
  int64_t steps_done = 0;
  int64_t steps_total = 0;
  double elapsed_seconds = 0;
  /// The run's output folder (chosen by run() when the options left it
  /// empty).
  std::string output_dir;
  /// The networks on a slot now that have trained an epoch (at most
  /// `run_options::progress_rows`), by slot.
  std::vector<network_progress> training;
  /// The best finished so far (by test accuracy, or test loss for
  /// regression), best first, at most `run_options::progress_rows`.
  std::vector<network_progress> best;

  /// Estimated seconds left from the step rate so far; negative if unknown.
  double eta_seconds() const;
};

/// How to run an experiment.
struct run_options {
  /// Folder for the results store and weights; must not hold another run.
  /// Empty: "runs/<experiment name>-<YYYYmmdd-HHMMSS>".
  std::string output_dir;
  /// Builds each network's learner; empty: the built-in MLP / CNN learners.
  learner_factory make_learner;
  /// Called from an actor thread every `progress_interval_seconds` and once
  /// at the end; keep it short.
  std::function<void(const run_status&)> on_progress;
  double progress_interval_seconds = 0.5;
  /// The most networks listed in `run_status::training` and `best`.
  size_t progress_rows = 10;
  /// Set it to true (from a signal handler, say) to stop gracefully: quanta
  /// in flight end and are checkpointed, nothing new starts, the store is
  /// closed, and run() returns errc::run_aborted saying how to resume.
  std::shared_ptr<std::atomic<bool>> stop;
  /// Raise glibc's malloc thresholds for the whole process (mmap 32 MiB,
  /// trim 256 MiB) before training: the tensors of each training step are
  /// then reused instead of mapped and unmapped every step, which made fused
  /// steps a third faster (docs/benchmarks.md). The process keeps up to
  /// 256 MiB of freed memory; set false to leave malloc as it is.
  bool tune_allocator = true;
  /// TLS for the links to `experiment::cluster.workers` (docs/cluster.md).
  tls_options tls;
  /// Called with one line on each cluster event: a worker joined, could not
  /// be reached, refused, or was lost.
  std::function<void(const std::string&)> on_event;
};

/// Runs an experiment to completion and returns its results. Bad input is
/// reported before any training starts; a network that fails is recorded
/// with its reason while the others finish. When `output_dir` holds an
/// unfinished run of the same experiment (same `fingerprint`), the run
/// resumes: finished networks are kept, the others continue from their last
/// checkpoint; a different experiment there is refused.
caf::expected<run_result> run(const experiment& exp, run_options opts = {});

/// Reads the results of a run from its output folder.
caf::expected<run_result> read_results(const std::string& output_dir);

} // namespace actortrain
