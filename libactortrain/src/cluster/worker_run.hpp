#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <caf/expected.hpp>

#include "protocol/cluster_messages.hpp"
#include "setup/run_context.hpp"
#include "training/network_group.hpp"

namespace actortrain {

/// A worker's share of one run: the run's context, derived from the
/// coordinator's experiment, and the groups of networks whose last quantum
/// ran here, kept live so that their next quantum here needs no state from
/// the coordinator. Shared by the worker's slot executors.
class worker_run {
public:
  worker_run(std::shared_ptr<const run_context> ctx, bool verbose,
             std::function<void(const std::string&)> log);

  /// The group to run `q` on: the one kept here when `q.cached`, otherwise
  /// one built from `q.states`. An error when a cached group is not here.
  caf::expected<std::shared_ptr<network_group>> checkout(remote_quantum& q);

  /// Stops keeping a group (it finished, or moved to another node).
  void forget(uint64_t group_id);

  const run_context& context() const {
    return *ctx_;
  }

  bool verbose() const {
    return verbose_;
  }

  void log(const std::string& line) const;

private:
  std::shared_ptr<const run_context> ctx_;
  std::unordered_map<uint64_t, size_t> spec_index_;
  bool verbose_;
  std::function<void(const std::string&)> log_;
  std::mutex mutex_;
  std::unordered_map<uint64_t, std::shared_ptr<network_group>> groups_;
};

} // namespace actortrain
