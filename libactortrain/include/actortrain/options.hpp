#pragma once

// The sections of an experiment file as plain structs, one per TOML table.
// Their keys (names, ranges, what changes numbers) are listed once, in
// option_keys.hpp: add a field here and a row there.

#include <cstdint>
#include <string>
#include <vector>

#include "actortrain/choices.hpp"

namespace actortrain {

/// Where the data comes from and how it is split between networks.
struct data_options {
  /// IDX (plain or gzipped), CSV (plain or gzipped) or synthetic.
  data_format format = data_format::idx;
  /// Training features (IDX images or CSV file).
  std::string train;
  /// Training labels (IDX only).
  std::string train_labels;
  /// Test features; for CSV optional (then `test_fraction` of train is held
  /// out).
  std::string test;
  /// Test labels (IDX only).
  std::string test_labels;
  partition_scheme partition = partition_scheme::all;
  /// CSV: column holding the label; negative counts from the end (-1: last).
  int64_t label_column = -1;
  /// CSV: "auto" (a first row that does not parse as numbers is a header),
  /// "yes" or "no".
  csv_header header = csv_header::automatic;
  /// CSV without a test file: fraction of rows held out for testing.
  double test_fraction = 0.2;
  /// Classification (labels are class indices) or regression.
  task_kind task = task_kind::classification;
  /// Number of classes; 0 infers max label + 1 from the training data.
  int64_t classes = 0;
  /// Scales features: IDX bytes to [0, 1]; CSV columns to zero mean and unit
  /// variance (statistics from the training set).
  bool normalize = true;
  /// Synthetic: training and test sample counts and features per sample.
  int64_t samples = 2048;
  int64_t test_samples = 512;
  int64_t features = 16;
  /// Synthetic: spread of samples around their class centre
  /// (classification), or of the noise added to targets (regression).
  double noise = 1.0;
  /// Synthetic: seed of the generator (independent of the networks' seeds).
  uint64_t data_seed = 1;
};

/// The architecture of a built-in model.
struct model_options {
  model_kind kind = model_kind::mlp;
  /// MLP: widths of the hidden layers (empty: a linear model).
  std::vector<int64_t> hidden = {128};
  /// CNN: output channels of its 3x3 convolution blocks.
  std::vector<int64_t> channels = {16, 32};
  activation_kind activation = activation_kind::relu;
  /// Expected number of input features; 0 takes it from the data. When set,
  /// a mismatch with the data is an error before training starts.
  int64_t input = 0;
  /// TorchScript: the module's file (`torch.jit.save`), relative to the
  /// experiment file unless absolute (docs/torchscript.md).
  std::string path;
  /// TorchScript: the loss (auto: the task's).
  loss_kind loss = loss_kind::automatic;
  /// TorchScript: the shape of one sample as the module's forward takes it
  /// (e.g. {1, 28, 28}); empty: the data's. Its size must be the data's
  /// features per sample.
  std::vector<int64_t> input_shape;
};

/// The optimizer and its hyperparameters.
struct optimizer_options {
  optimizer_kind kind = optimizer_kind::adam;
  double lr = 1e-3;
  /// SGD only.
  double momentum = 0.0;
  double weight_decay = 0.0;
};

/// How long and on what each network trains.
struct train_options {
  /// Networks per configuration (per sweep point).
  int64_t networks = 1;
  int64_t epochs = 1;
  int64_t batch_size = 64;
  /// Root seed; each network's seed is derived from it and the network's id.
  uint64_t seed = 0;
  /// Evaluate on the test set every this many epochs (the last epoch is
  /// always evaluated); 0 evaluates only at the end.
  int64_t eval_every = 1;
  /// Compute seconds this network may use (its time on slots); 0: no limit.
  double max_seconds = 0;
  /// Stop once the evaluation accuracy reaches this (0: off). Evaluated on
  /// the validation split when there is one, else on the test set.
  double target_accuracy = 0;
  /// Stop once the evaluation loss falls to this (0: off).
  double target_loss = 0;
  /// Early stopping: stop after this many epochs without a lower validation
  /// loss (0: off; needs `validation_fraction` > 0).
  int64_t patience = 0;
  /// Fraction of each network's shard held out (seed-chosen) as its
  /// validation split; 0: none.
  double validation_fraction = 0;
  /// Weight for the "priority" scheduling policy: higher runs first.
  double priority = 0;
  /// A network whose learner throws or whose loss turns NaN / infinite is
  /// retried from its last good checkpoint this many times, then fails.
  int64_t max_retries = 1;
  /// Each retry multiplies the learning rate by this (1: unchanged).
  double retry_lr_factor = 1;
  /// Checkpoint every this many epochs (at the end of a quantum); 0: never.
  int64_t checkpoint_every = 1;
  /// Horizontal fusion: networks of the same shape (model, optimizer kind,
  /// batch size, training samples) are trained as one batched model in
  /// groups of this many. `fuse_auto` (0, "auto") picks the group size from
  /// the number of such networks and the slots; 1 ("off") never fuses.
  int64_t fuse = fuse_auto;
  static constexpr int64_t fuse_auto = 0;
  static constexpr int64_t fuse_off = 1;
  /// Synchronous data parallelism: each network trains on this many slots
  /// at once, each replica computing the gradient of its part of the
  /// `batch_size` batch (which must divide evenly); the gradients are
  /// averaged in replica order and one update applied. 1: one slot.
  int64_t replicas = 1;
  /// How replicas combine their gradients: "allreduce" (as above) or
  /// "async": a parameter server applies each replica's gradient of a whole
  /// `batch_size` batch as it arrives, refusing one computed from weights
  /// more than `staleness` updates old (it is computed again).
  sync_kind sync = sync_kind::allreduce;
  int64_t staleness = 4;
};

/// How compute is shared.
struct scheduler_options {
  /// Number of CPU slots; 0 uses one per hardware thread.
  int64_t slots = 0;
  /// Where this process's slots compute: "cpu", "cuda" (every visible
  /// GPU), "cuda:N"; empty or "auto": every visible GPU when LibTorch has
  /// CUDA, else the CPU. A CPU entry offers `slots` slots, a GPU
  /// `streams_per_gpu` (each with a CUDA stream of its own).
  std::vector<std::string> devices;
  /// Slots (streams) each GPU offers.
  int64_t streams_per_gpu = 2;
  /// The share of each GPU's memory the networks on it may use together:
  /// a GPU slot is granted only while the estimates (then the measured
  /// peaks) of the networks on its device fit in it.
  double gpu_memory_fraction = 0.9;
  /// Intra-op threads of LibTorch inside each slot.
  int64_t threads_per_slot = 1;
  /// Length of a quantum in epochs; ignored when `quantum_steps` > 0.
  int64_t quantum_epochs = 1;
  /// Length of a quantum in optimizer steps (0: use `quantum_epochs`).
  int64_t quantum_steps = 0;
  /// Length of a quantum in compute seconds (0: off); a quantum ends at the
  /// first of its step, epoch or seconds limits.
  double quantum_seconds = 0;
  /// A run in which no quantum started or ended for this many seconds (or
  /// three times its longest quantum, if longer) says what it waits on:
  /// the slots held and for how long, the networks waiting, the slots
  /// lost; again each time the wait doubles. 0: never.
  double stall_report_seconds = 60;
  /// Which waiting network gets the next free slot (docs/scheduling.md):
  /// fifo (run to completion in arrival order), round_robin (time slicing
  /// at quantum boundaries), shortest_remaining, longest_remaining (by
  /// estimated remaining time) or priority (`train.priority`, higher first).
  policy_kind policy = policy_kind::fifo;
  // -- Adaptive search (docs/scheduling.md): progress decides which networks
  // go on. Quanta then end at every epoch boundary and every epoch evaluates
  // `metric`.
  search_kind search = search_kind::none;
  asha_mode asha = asha_mode::stopping;
  search_metric metric = search_metric::automatic;
  /// Epochs every network trains before the search may stop it; ASHA's
  /// first rung.
  int64_t grace_epochs = 1;
  /// ASHA's eta: rungs at grace_epochs x eta^k, and the top 1/eta of a rung
  /// goes on.
  int64_t reduction_factor = 3;
  /// HyperBand's brackets (0: asha one, hyperband as many as fit).
  int64_t brackets = 0;
  /// The median rule compares with at least this many other networks.
  int64_t min_samples = 3;
  /// Decide only at rung (median: epoch) barriers, in network-id order: the
  /// same decisions on any slot count or node.
  bool deterministic = false;
  // -- Population Based Training (search = "pbt") -----------------------------
  /// Every this many epochs a network is compared with the population.
  int64_t interval_epochs = 2;
  /// The bottom `quantile` of the population copies the weights and
  /// optimizer state of a network of the top `quantile` (exploit) ...
  double quantile = 0.25;
  /// ... and then takes the donor's learning rate drawn again from the
  /// [search] space's optimizer.lr with this probability, or multiplied by
  /// `perturb_down` or `perturb_up` (explore).
  double resample_probability = 0.25;
  double perturb_down = 0.8;
  double perturb_up = 1.2;
};

/// Where the run trains besides this process: worker nodes started with
/// `actortrain worker` (docs/cluster.md).
struct cluster_options {
  /// "host:port" of each worker; empty: train in this process only.
  std::vector<std::string> workers;
  /// Whether this process offers its own `scheduler.slots` too.
  bool local = true;
  /// How long a port that accepted the connection may take to answer the
  /// handshake before it counts as another program (a worker answers at
  /// once; a slow or far network may need longer).
  double handshake_seconds = 10;
  /// The largest share of a worker's quantum that its round trip to the
  /// coordinator may take: a group's quanta on a worker are lengthened (in
  /// whole multiples of the scheduler's quantum, at most 16 and about half
  /// a second) until it does, as measured; 0 keeps them as the scheduler
  /// sets them. Results do not depend on it.
  double hop_share = 0.05;
  /// A worker's slot is handed its next quantum while it computes one (to a
  /// group whose state is on that worker, or one not started), so the slot
  /// goes from one quantum to the next without waiting for the round trip
  /// to the coordinator. Results do not depend on it.
  bool queue_ahead = true;
  /// A worker from which nothing arrived for this long (not even the
  /// heartbeat every worker sends twice a second) is lost, as a killed one
  /// is: a machine that lost power, a frozen process or a cut network
  /// close no connection, and the run would wait for them for ever. A
  /// message must arrive whole within it: raise it when states of many GB
  /// cross a slow network. 0: never; otherwise at least 2.
  double worker_timeout_seconds = 120;
};

/// What a run leaves in its output folder (docs/durability.md).
struct output_options {
  /// "database": each finished network's weights and test predictions, and
  /// every checkpoint, are rows of `results.db`, so the folder holds a few
  /// files however many networks ran; "files": one file each under
  /// `weights/` and `checkpoints/`. Either is loadable from C++ and Python.
  output_layout layout = output_layout::database;
  /// Keep each network that finished its budget's final state (weights,
  /// optimizer state, data position), so that a larger train.epochs
  /// continues from it; about three times the weights' bytes with Adam.
  bool final_state = true;
  /// The most megabytes of checkpoints and results the coordinator holds
  /// that the store has not written yet: while more wait, no new quantum
  /// starts, so a run that trains faster than its store writes slows to
  /// the store's pace instead of filling the coordinator's memory. 0: no
  /// limit.
  int64_t unwritten_mb = 1024;
};

} // namespace actortrain
