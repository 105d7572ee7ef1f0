#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "actortrain/exact_floats.hpp"
#include "actortrain/option_keys.hpp"

namespace actortrain {

/// Everything a group of identically configured networks shares.
struct network_config {
  model_options model;
  optimizer_options optimizer;
  train_options train;
  /// Human-readable label of the sweep point ("" without a sweep), e.g.
  /// "optimizer.lr=0.001 model.hidden=[64]".
  std::string label;
};

/// A numeric range of the [search] table, kept for searches that draw a
/// value again during training (PBT's resample of optimizer.lr).
struct search_range {
  /// The dotted key, e.g. "optimizer.lr".
  std::string key;
  /// Drawn log-uniformly (loguniform) instead of uniformly.
  bool log = false;
  double lo = 0;
  double hi = 0;
};

/// A whole experiment: data, one or more network configurations, scheduling.
struct experiment {
  std::string name = "experiment";
  data_options data;
  /// The configuration used when `variants` is empty.
  network_config base;
  /// The sweep points; each contributes `train.networks` networks.
  std::vector<network_config> variants;
  scheduler_options scheduler;
  /// The uniform and log-uniform ranges of [search] (empty without one).
  std::vector<search_range> search_space;
  cluster_options cluster;
  output_options output;
  /// The TOML text this experiment was read from ("" when built in C++).
  std::string source_text;
  /// Where the TOML text came from ("" when built in C++).
  std::string source_path;

  /// The configurations to run: `variants`, or `{base}` when empty.
  std::vector<network_config> configs() const;

  /// Total number of networks over all configurations.
  int64_t total_networks() const;

  /// Checks every field; the error names the offending key and value.
  caf::error validate() const;
};

/// A fingerprint of everything that determines an experiment's results: every
/// key whose row in option_keys.hpp says it changes numbers (the data, every
/// configuration's model, optimizer and training settings, fusion included;
/// not scheduling, priorities, retries or checkpoint intervals). Resuming a
/// run requires the same fingerprint.
std::string fingerprint(const experiment& exp);

/// Parses an experiment from TOML text. `origin` names the text in errors
/// (usually the file path). Errors name the line and column of malformed
/// TOML, and the key of unknown, mistyped or out-of-range values.
caf::expected<experiment> parse_experiment(const std::string& text,
                                           const std::string& origin);

/// A "host:port" pair, e.g. of a worker.
struct network_address {
  std::string host;
  uint16_t port = 0;
};

/// Parses "host:port" (port 1-65535); nullopt when malformed.
std::optional<network_address> parse_address(const std::string& text);

/// How often every node of a cluster run sends each peer a heartbeat (CAF's
/// BASP heartbeat), so that a peer can tell a dead node from an idle one.
inline constexpr double heartbeat_seconds = 0.5;

/// The shortest timeout for a silent peer (cluster.worker_timeout_seconds,
/// a worker's coordinator timeout) other than 0 (never): four heartbeats,
/// so that a late one does not lose a live peer.
inline constexpr double shortest_peer_timeout_seconds = 2;

/// What is wrong with a silent-peer timeout of `seconds`, called `what` in
/// the message, whose peers (`senders`: "workers", "coordinators") send the
/// heartbeats: empty when it is 0 or from the shortest to a day.
std::string peer_timeout_problem(double seconds, const std::string& what,
                                 const std::string& senders);

/// Every key an experiment file may hold, dotted ("train.epochs"), in the
/// order of the key tables (option_keys.hpp); "name" first.
std::vector<std::string> experiment_keys();

/// Reads and parses the experiment file at `path`.
caf::expected<experiment> load_experiment(const std::string& path);

// Experiments cross nodes as values: a worker trains from the coordinator's
// experiment, field for field. The option sections are inspected through
// their key tables (option_keys.hpp), so a key cannot be left out.

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, network_config& x) {
  return detail::inspect_fields(f, "network_config", x.model, x.optimizer,
                                x.train, x.label);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, search_range& x) {
  return detail::inspect_fields(f, "search_range", x.key, x.log, x.lo, x.hi);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, experiment& x) {
  return detail::inspect_fields(
      f, "experiment", x.name, x.data, x.base, x.variants, x.scheduler,
      x.search_space, x.cluster, x.output, x.source_text, x.source_path);
}

} // namespace actortrain
