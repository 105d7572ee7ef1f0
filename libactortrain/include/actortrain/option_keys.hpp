#pragma once

// The one table of experiment keys. Each section's row lists a key's TOML
// name, the struct field it fills, whether it changes a network's numbers
// (and so the run's fingerprint) and the values it may take. Reading TOML,
// validation messages, CAF inspection (how experiments cross nodes), the
// fingerprint, the JSON in the results store and the keys test over
// docs/experiment.md all walk these rows: a new key is one field in
// options.hpp and one row here.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <tuple>

#include "actortrain/exact_floats.hpp"
#include "actortrain/options.hpp"

namespace actortrain::keys {

/// Whether a key changes what a network computes or only how it is run.
enum class effect : uint8_t { numbers, running };

/// The values a number (or each element of a list of numbers) may take.
struct bounds {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false;
  bool hi_open = false;
};

constexpr bounds at_least(double lo) {
  return {lo, std::numeric_limits<double>::infinity(), false, false};
}
constexpr bounds above(double lo) {
  return {lo, std::numeric_limits<double>::infinity(), true, false};
}
/// [lo, hi]
constexpr bounds closed(double lo, double hi) {
  return {lo, hi, false, false};
}
/// [lo, hi)
constexpr bounds closed_open(double lo, double hi) {
  return {lo, hi, false, true};
}
/// (lo, hi]
constexpr bounds open_closed(double lo, double hi) {
  return {lo, hi, true, false};
}
/// (lo, hi)
constexpr bounds open(double lo, double hi) {
  return {lo, hi, true, true};
}

constexpr bool contains(const bounds& b, double x) {
  return (b.lo_open ? x > b.lo : x >= b.lo) &&
         (b.hi_open ? x < b.hi : x <= b.hi);
}

/// Upper bounds that keep counts far from overflow and a run's size within
/// what one process holds: a value beyond them is a typo, not a plan.
inline constexpr double max_count = 1e9;
/// Networks in one run (over all sweep points).
inline constexpr int64_t max_networks = 1000000;
/// Slots of one process, and LibTorch threads per slot: each slot is a
/// thread of its own.
inline constexpr double max_slots = 1024;
inline constexpr double max_threads_per_slot = 256;

/// A word an integer key accepts in place of a number (train.fuse = "auto").
struct spelling {
  const char* word;
  int64_t value;
};

/// One key: its name in its section, the field it fills, what it changes and
/// the values it may take.
template <class Section, class T> struct field {
  const char* name;
  T Section::*member;
  effect changes = effect::numbers;
  bounds range = {};
  const spelling* words = nullptr;
  size_t word_count = 0;
  /// A file path, relative to the experiment file unless absolute.
  bool path = false;

  constexpr field in(bounds b) const {
    auto f = *this;
    f.range = b;
    return f;
  }
  template <size_t N> constexpr field or_words(const spelling (&ws)[N]) const {
    auto f = *this;
    f.words = ws;
    f.word_count = N;
    return f;
  }
  constexpr field as_path() const {
    auto f = *this;
    f.path = true;
    return f;
  }
};

template <class Section, class T>
constexpr field<Section, T> key(const char* name, T Section::*member,
                                effect changes) {
  return {name, member, changes};
}

/// A section's TOML table name and its rows; specialised per options struct.
template <class Section> struct section;

constexpr auto numbers = effect::numbers;
constexpr auto running = effect::running;

template <> struct section<data_options> {
  using S = data_options;
  static constexpr const char* name = "data";
  static constexpr const char* type_name = "data_options";
  static constexpr auto rows = std::make_tuple(
      key("format", &S::format, numbers),
      key("train", &S::train, numbers).as_path(),
      key("train_labels", &S::train_labels, numbers).as_path(),
      key("test", &S::test, numbers).as_path(),
      key("test_labels", &S::test_labels, numbers).as_path(),
      key("partition", &S::partition, numbers),
      key("label_column", &S::label_column, numbers),
      key("header", &S::header, numbers),
      key("test_fraction", &S::test_fraction, numbers).in(open(0, 1)),
      key("task", &S::task, numbers),
      key("classes", &S::classes, numbers).in(closed(0, 1e6)),
      key("normalize", &S::normalize, numbers),
      key("samples", &S::samples, numbers).in(closed(1, 1e8)),
      key("test_samples", &S::test_samples, numbers).in(closed(1, 1e8)),
      key("features", &S::features, numbers).in(closed(1, 1e6)),
      key("noise", &S::noise, numbers).in(at_least(0)),
      key("seed", &S::data_seed, numbers));
};

template <> struct section<model_options> {
  using S = model_options;
  static constexpr const char* name = "model";
  static constexpr const char* type_name = "model_options";
  static constexpr auto rows = std::make_tuple(
      key("kind", &S::kind, numbers),
      key("hidden", &S::hidden, numbers).in(at_least(1)),
      key("channels", &S::channels, numbers).in(at_least(1)),
      key("activation", &S::activation, numbers),
      // Only checked against the data: the data decides the input width.
      key("input", &S::input, running).in(at_least(0)),
      key("path", &S::path, numbers).as_path(), key("loss", &S::loss, numbers),
      key("input_shape", &S::input_shape, numbers).in(at_least(1)));
};

template <> struct section<optimizer_options> {
  using S = optimizer_options;
  static constexpr const char* name = "optimizer";
  static constexpr const char* type_name = "optimizer_options";
  static constexpr auto rows = std::make_tuple(
      key("kind", &S::kind, numbers), key("lr", &S::lr, numbers).in(above(0)),
      key("momentum", &S::momentum, numbers).in(closed_open(0, 1)),
      key("weight_decay", &S::weight_decay, numbers).in(at_least(0)));
};

inline constexpr spelling fuse_words[] = {{"auto", train_options::fuse_auto},
                                          {"off", train_options::fuse_off}};

template <> struct section<train_options> {
  using S = train_options;
  static constexpr const char* name = "train";
  static constexpr const char* type_name = "train_options";
  static constexpr auto rows = std::make_tuple(
      key("networks", &S::networks, numbers)
          .in(closed(1, static_cast<double>(max_networks))),
      key("epochs", &S::epochs, numbers).in(closed(1, max_count)),
      key("batch_size", &S::batch_size, numbers).in(closed(1, max_count)),
      key("seed", &S::seed, numbers),
      key("eval_every", &S::eval_every, numbers).in(closed(0, max_count)),
      key("max_seconds", &S::max_seconds, numbers).in(at_least(0)),
      key("target_accuracy", &S::target_accuracy, numbers).in(closed(0, 1)),
      key("target_loss", &S::target_loss, numbers).in(at_least(0)),
      key("patience", &S::patience, numbers).in(closed(0, max_count)),
      key("validation_fraction", &S::validation_fraction, numbers)
          .in(closed_open(0, 1)),
      key("priority", &S::priority, running),
      // Retries replay from a checkpoint: they change a run's history, not
      // what a network that never fails computes.
      key("max_retries", &S::max_retries, running).in(closed(0, 1000)),
      key("retry_lr_factor", &S::retry_lr_factor, running)
          .in(open_closed(0, 1)),
      key("checkpoint_every", &S::checkpoint_every, running)
          .in(closed(0, max_count)),
      // Fused and unfused steps are the same bits (docs/fusion.md), but a
      // resumed run keeps the fusion it started with.
      key("fuse", &S::fuse, numbers)
          .in(closed(1, static_cast<double>(max_networks)))
          .or_words(fuse_words),
      // The sum of R partial gradients rounds differently from one full
      // batch's (docs/replicas.md).
      key("replicas", &S::replicas, numbers).in(closed(1, max_slots)),
      key("sync", &S::sync, numbers),
      key("staleness", &S::staleness, numbers).in(closed(0, max_count)));
};

template <> struct section<scheduler_options> {
  using S = scheduler_options;
  static constexpr const char* name = "scheduler";
  static constexpr const char* type_name = "scheduler_options";
  static constexpr auto rows = std::make_tuple(
      key("slots", &S::slots, running).in(closed(0, max_slots)),
      key("devices", &S::devices, running),
      key("streams_per_gpu", &S::streams_per_gpu, running).in(closed(1, 64)),
      key("gpu_memory_fraction", &S::gpu_memory_fraction, running)
          .in(open_closed(0, 1)),
      // LibTorch's kernels split work by thread count and round by it:
      // 1 and 2 threads give other bits (measured 2026-12-06, MLPs and
      // CNNs), so a resumed run keeps its value.
      key("threads_per_slot", &S::threads_per_slot, numbers)
          .in(closed(1, max_threads_per_slot)),
      key("quantum_epochs", &S::quantum_epochs, running)
          .in(closed(1, max_count)),
      key("quantum_steps", &S::quantum_steps, running).in(closed(0, max_count)),
      key("quantum_seconds", &S::quantum_seconds, running).in(at_least(0)),
      key("stall_report_seconds", &S::stall_report_seconds, running)
          .in(at_least(0)),
      key("policy", &S::policy, running),
      // The search decides where networks stop: a resumed run keeps it.
      key("search", &S::search, numbers), key("asha_mode", &S::asha, numbers),
      key("metric", &S::metric, numbers),
      key("grace_epochs", &S::grace_epochs, numbers).in(closed(1, max_count)),
      key("reduction_factor", &S::reduction_factor, numbers)
          .in(closed(2, 1000)),
      key("brackets", &S::brackets, numbers).in(closed(0, 64)),
      key("min_samples", &S::min_samples, numbers).in(closed(1, max_count)),
      key("deterministic", &S::deterministic, numbers),
      key("interval_epochs", &S::interval_epochs, numbers)
          .in(closed(1, max_count)),
      key("quantile", &S::quantile, numbers).in(open_closed(0, 0.5)),
      key("resample_probability", &S::resample_probability, numbers)
          .in(closed(0, 1)),
      key("perturb_down", &S::perturb_down, numbers).in(above(0)),
      key("perturb_up", &S::perturb_up, numbers).in(above(0)));
};

template <> struct section<cluster_options> {
  using S = cluster_options;
  static constexpr const char* name = "cluster";
  static constexpr const char* type_name = "cluster_options";
  static constexpr auto rows = std::make_tuple(
      key("workers", &S::workers, running), key("local", &S::local, running),
      key("handshake_seconds", &S::handshake_seconds, running)
          .in(open_closed(0, 3600)),
      key("hop_share", &S::hop_share, running).in(closed_open(0, 1)),
      key("queue_ahead", &S::queue_ahead, running),
      key("worker_timeout_seconds", &S::worker_timeout_seconds, running)
          .in(closed(0, 86400)));
};

template <> struct section<output_options> {
  using S = output_options;
  static constexpr const char* name = "output";
  static constexpr const char* type_name = "output_options";
  // A resumed run may change it: each stored file records where it lies.
  static constexpr auto rows = std::make_tuple(
      key("layout", &S::layout, running),
      key("final_state", &S::final_state, running),
      key("unwritten_mb", &S::unwritten_mb, running).in(at_least(0)));
};

/// Calls f(row) for each row of Section's table, in order.
template <class Section, class F> constexpr void for_each_row(F&& f) {
  std::apply([&](const auto&... row) { (f(row), ...); },
             section<Section>::rows);
}

/// Names a section type without a value of it.
template <class Section> struct section_tag { using type = Section; };

/// Calls f(section_tag<S>{}) for each section of an experiment file, in the
/// order of the keys reference.
template <class F> constexpr void for_each_section(F&& f) {
  f(section_tag<data_options>{});
  f(section_tag<model_options>{});
  f(section_tag<optimizer_options>{});
  f(section_tag<train_options>{});
  f(section_tag<scheduler_options>{});
  f(section_tag<cluster_options>{});
  f(section_tag<output_options>{});
}

/// CAF inspection of a section: every row's field, in table order.
template <class Inspector, class Section>
typename Inspector::result_type inspect_rows(Inspector& f, Section& x,
                                             const char* type) {
  return std::apply(
      [&](const auto&... row) {
        return detail::inspect_fields(f, type, x.*(row.member)...);
      },
      section<Section>::rows);
}

} // namespace actortrain::keys

namespace actortrain {

/// CAF inspection of every options section (found by ADL): the rows' fields
/// in table order, so what crosses nodes is exactly what the table lists.
template <class Inspector, class Section,
          class = decltype(keys::section<Section>::rows)>
typename Inspector::result_type inspect(Inspector& f, Section& x) {
  return keys::inspect_rows(f, x, keys::section<Section>::type_name);
}

} // namespace actortrain
