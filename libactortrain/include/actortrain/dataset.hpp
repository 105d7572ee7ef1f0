#pragma once

// Includes LibTorch: include only where tensors are needed.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/expected.hpp>
#include <torch/types.h>

#include "actortrain/experiment.hpp"

namespace actortrain {

/// A dataset in memory, shared read-only by every trainer of a run.
struct dataset {
  task_kind task = task_kind::classification;
  /// float32 [N, feature_shape...].
  torch::Tensor train_x;
  /// int64 [N] class indices, or float32 [N] regression targets.
  torch::Tensor train_y;
  torch::Tensor test_x;
  torch::Tensor test_y;
  /// Shape of one sample, e.g. {1, 28, 28} for images or {16} for tables.
  std::vector<int64_t> feature_shape;
  /// Number of classes (classification) or 1 (regression).
  int64_t classes = 1;

  /// Number of input features of one sample (product of `feature_shape`).
  int64_t features() const;
  /// Width of a model's output layer.
  int64_t outputs() const;
  /// Whether samples are images (channels, height, width).
  bool is_image() const;
};

/// Loads (and checks) the data an experiment describes. Errors name the file
/// and what is wrong with it.
caf::expected<std::shared_ptr<const dataset>>
load_dataset(const data_options& opts);

/// Reads one IDX file (plain or gzip). Returns a uint8 tensor of the file's
/// shape; errors name the file.
caf::expected<torch::Tensor> read_idx(const std::string& path);

/// A parsed CSV table: features and the label column.
struct csv_table {
  torch::Tensor features; // float32 [rows, columns - 1]
  torch::Tensor labels;   // float64 [rows]
  /// The file's line number of each row (1-based), for errors found later.
  std::vector<int64_t> lines;
};

/// Reads a numeric CSV file. `header` says whether a first row names columns;
/// the label column may be negative (counted from the end). Errors name the
/// file and line.
caf::expected<csv_table> read_csv(const std::string& path, int64_t label_column,
                                  csv_header header);

/// Splits the training set between `parts` networks per `scheme` (for
/// bootstrap every network gets the whole set here: its samples are drawn per
/// network by `bootstrap_indices`). Shards are int64 index tensors.
std::vector<torch::Tensor> partition(partition_scheme scheme,
                                     const dataset& data, int64_t parts,
                                     uint64_t seed);

/// Samples a shard of `shard_size` holds out for validation with
/// `train.validation_fraction` = `fraction` (at least one when > 0).
int64_t validation_samples(int64_t shard_size, double fraction);

/// Draws `n` indices in [0, n) with replacement.
torch::Tensor bootstrap_indices(int64_t n, uint64_t seed);

} // namespace actortrain
