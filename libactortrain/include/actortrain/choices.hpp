#pragma once

// The closed sets of values an experiment key takes, as enums. Their names
// (the TOML spellings) appear only here: the TOML, SQL and JSON edges convert
// with name_of / parse_choice, and everything in between compares enums.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace actortrain {

/// data.format: where the samples come from.
enum class data_format : uint8_t { idx, csv, synthetic };

/// data.partition: how the training set is split between networks.
enum class partition_scheme : uint8_t {
  all,
  contiguous,
  strided,
  stratified,
  bootstrap,
};

/// data.header: whether a CSV file's first row names its columns.
enum class csv_header : uint8_t { automatic, yes, no };

/// data.task: what the labels mean.
enum class task_kind : uint8_t { classification, regression };

/// model.kind: the built-in architectures, or a TorchScript module from a
/// file (`model.path`).
enum class model_kind : uint8_t { mlp, cnn, torchscript };

/// model.loss: what a TorchScript model is trained to minimise; "auto" takes
/// the task's (cross-entropy for classification, mean squared error for
/// regression).
enum class loss_kind : uint8_t { automatic, cross_entropy, mse };

/// model.activation: the non-linearity between layers.
enum class activation_kind : uint8_t { relu, tanh, sigmoid, gelu };

/// optimizer.kind.
enum class optimizer_kind : uint8_t { sgd, adam, adamw };

/// scheduler.policy: which waiting network gets the next free slot.
enum class policy_kind : uint8_t {
  fifo,
  round_robin,
  shortest_remaining,
  longest_remaining,
  priority,
  /// With an adaptive search: every network's first quantum first (in
  /// network order), then the network whose latest score is best.
  best_first,
};

/// train.sync: how replicas (train.replicas > 1) combine their gradients:
/// averaged every step (synchronous, deterministic), or pushed to a
/// parameter server as they come (asynchronous, bounded staleness).
enum class sync_kind : uint8_t { allreduce, async };

/// scheduler.search: whether progress drives the search, and how
/// (docs/scheduling.md, "Adaptive search").
enum class search_kind : uint8_t { none, asha, hyperband, median, pbt };

/// scheduler.asha_mode: what ASHA and HyperBand do with a network below a
/// rung's cut: stop it at once, or let networks wait at the rung (holding no
/// slot) until they are promoted or the search ends.
enum class asha_mode : uint8_t { stopping, promotion };

/// scheduler.metric: what the search compares networks by; "auto" takes the
/// validation accuracy (classification) or loss (regression).
enum class search_metric : uint8_t {
  automatic,
  validation_accuracy,
  validation_loss,
  test_accuracy,
  test_loss,
  train_loss,
};

/// output.layout: where finished networks' weights and predictions and the
/// checkpoints go: into the results store (a bounded number of files however
/// many networks), or one file each under the run folder.
enum class output_layout : uint8_t { database, files };

/// The spellings of an enum's values, in declaration order, and the noun an
/// error uses for one ("unknown optimizer 'x'").
template <class E> struct choice_names;

#define ACTORTRAIN_CHOICES(type, what, ...)                                    \
  template <> struct choice_names<type> {                                      \
    static constexpr const char* noun = what;                                  \
    static constexpr std::array names{__VA_ARGS__};                            \
  }

ACTORTRAIN_CHOICES(data_format, "format", "idx", "csv", "synthetic");
ACTORTRAIN_CHOICES(partition_scheme, "scheme", "all", "contiguous", "strided",
                   "stratified", "bootstrap");
ACTORTRAIN_CHOICES(csv_header, "header setting", "auto", "yes", "no");
ACTORTRAIN_CHOICES(task_kind, "task", "classification", "regression");
ACTORTRAIN_CHOICES(model_kind, "model", "mlp", "cnn", "torchscript");
ACTORTRAIN_CHOICES(loss_kind, "loss", "auto", "cross_entropy", "mse");
ACTORTRAIN_CHOICES(activation_kind, "activation", "relu", "tanh", "sigmoid",
                   "gelu");
ACTORTRAIN_CHOICES(optimizer_kind, "optimizer", "sgd", "adam", "adamw");
ACTORTRAIN_CHOICES(sync_kind, "replica synchronisation", "allreduce", "async");
ACTORTRAIN_CHOICES(policy_kind, "policy", "fifo", "round_robin",
                   "shortest_remaining", "longest_remaining", "priority",
                   "best_first");
ACTORTRAIN_CHOICES(search_kind, "search", "none", "asha", "hyperband", "median",
                   "pbt");
ACTORTRAIN_CHOICES(asha_mode, "ASHA mode", "stopping", "promotion");
ACTORTRAIN_CHOICES(search_metric, "metric", "auto", "validation_accuracy",
                   "validation_loss", "test_accuracy", "test_loss",
                   "train_loss");
ACTORTRAIN_CHOICES(output_layout, "layout", "database", "files");

#undef ACTORTRAIN_CHOICES

template <class E, class = void> struct is_choice : std::false_type {};
template <class E>
struct is_choice<E, std::void_t<decltype(choice_names<E>::names)>>
    : std::true_type {};

/// Every value of E, in declaration order.
template <class E> constexpr auto all_choices() {
  std::array<E, choice_names<E>::names.size()> xs{};
  for (size_t i = 0; i < xs.size(); ++i)
    xs[i] = static_cast<E>(i);
  return xs;
}

/// Whether x is one of E's declared values (a cast can make others).
template <class E> constexpr bool is_known(E x) {
  return static_cast<size_t>(x) < choice_names<E>::names.size();
}

/// The TOML spelling of x; "?" for a value outside the enum.
template <class E> constexpr const char* name_of(E x) {
  return is_known(x) ? choice_names<E>::names[static_cast<size_t>(x)] : "?";
}

/// The value spelled `text`; nullopt when it names none.
template <class E> std::optional<E> parse_choice(std::string_view text) {
  const auto& names = choice_names<E>::names;
  for (size_t i = 0; i < names.size(); ++i)
    if (text == names[i])
      return static_cast<E>(i);
  return std::nullopt;
}

/// "a, b or c": the spellings of E's values, for error messages.
template <class E> std::string choice_list() {
  const auto& names = choice_names<E>::names;
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0)
      out += i + 1 == names.size() ? " or " : ", ";
    out += names[i];
  }
  return out;
}

/// For CAF's and fmt's printing of values that hold these enums.
template <class E>
std::enable_if_t<is_choice<E>::value, std::string> to_string(E x) {
  return name_of(x);
}

} // namespace actortrain
