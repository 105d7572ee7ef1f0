#include "actortrain/dataset.hpp"

#include <cmath>
#include <optional>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include "actortrain/error.hpp"

namespace actortrain {

int64_t dataset::features() const {
  int64_t n = 1;
  for (auto d : feature_shape)
    n *= d;
  return n;
}

int64_t dataset::outputs() const {
  return task == task_kind::classification ? classes : 1;
}

bool dataset::is_image() const {
  return feature_shape.size() == 3;
}

namespace {

caf::error bad_data(std::string msg) {
  return make_error(errc::invalid_data, std::move(msg));
}

/// Checks class labels (int64) against [0, classes) and names the first
/// offender.
caf::error check_labels(const torch::Tensor& y, int64_t classes,
                        const std::string& what) {
  auto bad = (y < 0).logical_or(y >= classes).nonzero();
  if (bad.size(0) == 0)
    return {};
  auto i = bad[0][0].item<int64_t>();
  return bad_data(fmt::format("{}: label {} at index {} is out of range [0, "
                              "{})",
                              what, y[i].item<int64_t>(), i, classes));
}

/// Sets the class count (data.classes, or `derived` from the labels when it
/// is not given) and checks the labels against it.
caf::error finish_classification(dataset& d, const data_options& opts,
                                 int64_t derived, const std::string& train_name,
                                 const std::string& test_name) {
  if (opts.classes > 0) {
    d.classes = opts.classes;
  } else {
    d.classes = derived;
    if (d.classes < 2)
      return bad_data(fmt::format("{}: classification needs at least two "
                                  "classes, found {}",
                                  train_name, d.classes));
  }
  if (auto err = check_labels(d.train_y, d.classes, train_name))
    return err;
  return check_labels(d.test_y, d.classes, test_name);
}

/// Checks a CSV file's class labels before anything is split or shuffled,
/// so that an error names the line the user must mend: whole numbers from
/// 0, and below `classes` when it is known (0: not yet), which `why`
/// explains.
caf::error check_csv_labels(const csv_table& t, const std::string& path,
                            int64_t classes, const std::string& why) {
  auto y = t.labels;
  auto bad = (y - y.floor()).abs().gt(0).logical_or(y < 0).nonzero();
  if (bad.size(0) > 0) {
    auto i = bad[0][0].item<int64_t>();
    return bad_data(fmt::format("{}:{}: label {} is not a class index (a "
                                "whole number from 0)",
                                path, t.lines[i], y[i].item<double>()));
  }
  if (classes <= 0)
    return {};
  auto over = (y >= static_cast<double>(classes)).nonzero();
  if (over.size(0) == 0)
    return {};
  auto i = over[0][0].item<int64_t>();
  // As a double: a whole number beyond int64 is still named, not thrown.
  return bad_data(fmt::format("{}:{}: label {:.0f} is out of range [0, {}) "
                              "({})",
                              path, t.lines[i], y[i].item<double>(), classes,
                              why));
}

caf::expected<std::shared_ptr<const dataset>>
load_idx(const data_options& opts) {
  auto train_x = read_idx(opts.train);
  if (!train_x)
    return train_x.error();
  auto train_y = read_idx(opts.train_labels);
  if (!train_y)
    return train_y.error();
  auto test_x = read_idx(opts.test);
  if (!test_x)
    return test_x.error();
  auto test_y = read_idx(opts.test_labels);
  if (!test_y)
    return test_y.error();
  for (auto [path, t] : {std::pair{&opts.train_labels, &*train_y},
                         std::pair{&opts.test_labels, &*test_y}})
    if (t->dim() != 1)
      return bad_data(fmt::format("{}: labels must be 1-dimensional, found {} "
                                  "dimensions",
                                  *path, t->dim()));
  for (auto [path, t] :
       {std::pair{&opts.train, &*train_x}, std::pair{&opts.test, &*test_x}})
    if (t->dim() < 2 || t->dim() > 3)
      return bad_data(fmt::format("{}: images must be 2- or 3-dimensional "
                                  "(samples x features or samples x rows x "
                                  "columns), found {} dimensions",
                                  *path, t->dim()));
  if (train_x->size(0) != train_y->size(0))
    return bad_data(fmt::format("{} holds {} samples but {} holds {} labels",
                                opts.train, train_x->size(0), opts.train_labels,
                                train_y->size(0)));
  if (test_x->size(0) != test_y->size(0))
    return bad_data(fmt::format("{} holds {} samples but {} holds {} labels",
                                opts.test, test_x->size(0), opts.test_labels,
                                test_y->size(0)));
  if (train_x->sizes().slice(1) != test_x->sizes().slice(1))
    return bad_data(fmt::format("{} and {} have different sample shapes",
                                opts.train, opts.test));
  auto d = std::make_shared<dataset>();
  d->task = task_kind::classification;
  auto to_float = [&](const torch::Tensor& t) {
    auto f = t.to(torch::kFloat32);
    return opts.normalize ? f.div_(255.0f) : f;
  };
  d->train_x = to_float(*train_x);
  d->test_x = to_float(*test_x);
  if (train_x->dim() == 3) {
    // Images gain a channel dimension: [N, 1, H, W].
    d->train_x = d->train_x.unsqueeze(1).contiguous();
    d->test_x = d->test_x.unsqueeze(1).contiguous();
  }
  d->feature_shape.assign(d->train_x.sizes().begin() + 1,
                          d->train_x.sizes().end());
  d->train_y = train_y->to(torch::kInt64);
  d->test_y = test_y->to(torch::kInt64);
  if (auto err =
          finish_classification(*d, opts, d->train_y.max().item<int64_t>() + 1,
                                opts.train_labels, opts.test_labels))
    return err;
  return std::shared_ptr<const dataset>{std::move(d)};
}

/// A CSV run's targets: regression values as they are; class labels
/// (checked by check_csv_labels) as class indices, `classes` of them.
caf::error set_targets(dataset& d, const torch::Tensor& train_labels,
                       const torch::Tensor& test_labels,
                       const data_options& opts, int64_t classes,
                       const std::string& train_name,
                       const std::string& test_name) {
  if (d.task == task_kind::regression) {
    d.train_y = train_labels.to(torch::kFloat32);
    d.test_y = test_labels.to(torch::kFloat32);
    d.classes = 1;
    return {};
  }
  d.train_y = train_labels.to(torch::kInt64);
  d.test_y = test_labels.to(torch::kInt64);
  return finish_classification(d, opts, classes, train_name, test_name);
}

caf::expected<std::shared_ptr<const dataset>>
load_csv(const data_options& opts) {
  auto train = read_csv(opts.train, opts.label_column, opts.header);
  if (!train)
    return train.error();
  std::optional<csv_table> test;
  if (!opts.test.empty()) {
    auto t = read_csv(opts.test, opts.label_column, opts.header);
    if (!t)
      return t.error();
    test = std::move(*t);
  }
  // Class labels are checked in the files' own rows, and counted over the
  // whole training file: with held-out rows, a class that only they have
  // still counts.
  int64_t classes = 0;
  if (opts.task == task_kind::classification) {
    if (auto err =
            check_csv_labels(*train, opts.train, opts.classes,
                             fmt::format("data.classes = {}", opts.classes)))
      return err;
    classes = opts.classes;
    if (classes == 0) {
      // More classes than rows: some would have no sample at all, which is a
      // typo in a label far likelier than a plan (an output per class).
      auto top = train->labels.argmax().item<int64_t>();
      auto label = train->labels[top].item<double>();
      auto rows = train->labels.size(0);
      if (label >= static_cast<double>(rows))
        return bad_data(fmt::format("{}:{}: label {:.0f} would make {:.0f} "
                                    "classes, "
                                    "more than the file's {} rows: set "
                                    "data.classes if that many are meant",
                                    opts.train, train->lines[top], label,
                                    label + 1, rows));
      classes = static_cast<int64_t>(label) + 1;
    }
    if (test)
      if (auto err = check_csv_labels(
              *test, opts.test, classes,
              opts.classes > 0
                  ? fmt::format("data.classes = {}", opts.classes)
                  : fmt::format("the classes are those of {}, 0 to {}: set "
                                "data.classes when the test file has more",
                                opts.train, classes - 1)))
        return err;
  }
  auto d = std::make_shared<dataset>();
  d->task = opts.task;
  torch::Tensor train_labels;
  torch::Tensor test_labels;
  std::string test_name = opts.test;
  if (test) {
    if (test->features.size(1) != train->features.size(1))
      return bad_data(fmt::format("{} has {} feature columns but {} has {}",
                                  opts.test, test->features.size(1), opts.train,
                                  train->features.size(1)));
    d->train_x = train->features;
    d->test_x = test->features;
    train_labels = train->labels;
    test_labels = test->labels;
  } else {
    // Hold out a seed-determined test fraction of the training file.
    auto n = train->features.size(0);
    auto n_test = static_cast<int64_t>(n * opts.test_fraction);
    if (n_test < 1 || n_test >= n)
      return bad_data(fmt::format("{}: {} rows are too few to hold out "
                                  "data.test_fraction = {}",
                                  opts.train, n, opts.test_fraction));
    auto gen = at::make_generator<at::CPUGeneratorImpl>(opts.data_seed);
    auto perm = torch::randperm(n, gen, torch::kInt64);
    auto test_idx = perm.slice(0, 0, n_test);
    auto train_idx = perm.slice(0, n_test);
    d->train_x = train->features.index_select(0, train_idx);
    d->test_x = train->features.index_select(0, test_idx);
    train_labels = train->labels.index_select(0, train_idx);
    test_labels = train->labels.index_select(0, test_idx);
    test_name = opts.train + " (held-out rows)";
  }
  if (opts.normalize) {
    auto mean = d->train_x.mean(0, true);
    auto std = d->train_x.std(0, true, true);
    std = torch::where(std > 0, std, torch::ones_like(std));
    d->train_x = ((d->train_x - mean) / std).contiguous();
    d->test_x = ((d->test_x - mean) / std).contiguous();
  }
  d->feature_shape = {d->train_x.size(1)};
  if (auto err = set_targets(*d, train_labels, test_labels, opts, classes,
                             opts.train, test_name))
    return err;
  return std::shared_ptr<const dataset>{std::move(d)};
}

caf::expected<std::shared_ptr<const dataset>>
make_synthetic(const data_options& opts) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(opts.data_seed);
  auto d = std::make_shared<dataset>();
  auto f = opts.features;
  auto total = opts.samples + opts.test_samples;
  torch::Tensor x;
  torch::Tensor y;
  if (opts.task == task_kind::regression) {
    d->task = task_kind::regression;
    x = torch::randn({total, f}, gen);
    auto w = torch::randn({f}, gen) / std::sqrt(static_cast<double>(f));
    y = x.matmul(w) + opts.noise * torch::randn({total}, gen);
    d->classes = 1;
  } else {
    d->task = task_kind::classification;
    d->classes = opts.classes > 0 ? opts.classes : 4;
    auto centres = 2.0 * torch::randn({d->classes, f}, gen);
    y = torch::randint(d->classes, {total}, gen, torch::kInt64);
    x = centres.index_select(0, y) + opts.noise * torch::randn({total, f}, gen);
  }
  d->train_x = x.slice(0, 0, opts.samples).contiguous();
  d->test_x = x.slice(0, opts.samples).contiguous();
  d->train_y = y.slice(0, 0, opts.samples).contiguous();
  d->test_y = y.slice(0, opts.samples).contiguous();
  d->feature_shape = {f};
  return std::shared_ptr<const dataset>{std::move(d)};
}

} // namespace

caf::expected<std::shared_ptr<const dataset>>
load_dataset(const data_options& opts) {
  try {
    switch (opts.format) {
    case data_format::idx:
      return load_idx(opts);
    case data_format::csv:
      return load_csv(opts);
    case data_format::synthetic:
      return make_synthetic(opts);
    }
  } catch (const std::exception& e) {
    return bad_data(fmt::format("cannot load data: {}", e.what()));
  }
  return bad_data(fmt::format("data.format: unknown format #{}",
                              static_cast<int>(opts.format)));
}

// -- partitioning -------------------------------------------------------------

std::vector<torch::Tensor> partition(partition_scheme scheme,
                                     const dataset& data, int64_t parts,
                                     uint64_t seed) {
  auto n = data.train_x.size(0);
  std::vector<torch::Tensor> shards;
  if (scheme == partition_scheme::all ||
      scheme == partition_scheme::bootstrap) {
    auto all = torch::arange(n, torch::kInt64);
    shards.assign(static_cast<size_t>(parts), all);
    return shards;
  }
  if (scheme == partition_scheme::contiguous) {
    for (int64_t i = 0; i < parts; ++i)
      shards.push_back(
          torch::arange(i * n / parts, (i + 1) * n / parts, torch::kInt64));
    return shards;
  }
  if (scheme == partition_scheme::strided) {
    for (int64_t i = 0; i < parts; ++i)
      shards.push_back(torch::arange(i, n, parts, torch::kInt64));
    return shards;
  }
  // Stratified: deal each class's samples (in a seed-determined order) round
  // robin over the shards, continuing where the previous class stopped, so
  // every shard keeps the class proportions and shard sizes differ by <= 1.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto perm = torch::randperm(n, gen, torch::kInt64);
  auto labels = data.train_y.index_select(0, perm);
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(parts));
  int64_t next = 0;
  auto perm_acc = perm.accessor<int64_t, 1>();
  auto labels_acc = labels.accessor<int64_t, 1>();
  for (int64_t c = 0; c < data.classes; ++c) {
    for (int64_t i = 0; i < n; ++i) {
      if (labels_acc[i] != c)
        continue;
      out[static_cast<size_t>(next)].push_back(perm_acc[i]);
      next = (next + 1) % parts;
    }
  }
  for (auto& idx : out) {
    std::sort(idx.begin(), idx.end());
    shards.push_back(torch::tensor(idx, torch::kInt64));
  }
  return shards;
}

int64_t validation_samples(int64_t shard_size, double fraction) {
  if (fraction <= 0)
    return 0;
  return std::max<int64_t>(
      1, static_cast<int64_t>(std::lround(shard_size * fraction)));
}

torch::Tensor bootstrap_indices(int64_t n, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return torch::randint(n, {n}, gen, torch::kInt64);
}

} // namespace actortrain
