#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <caf/actor.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "actortrain/results.hpp"

namespace actortrain::detail {

/// What a session's handles and streams share with the runtime: every
/// network's live state and result, filled from the aggregator's thread
/// as it stores them. One mutex and one condition variable for all.
struct session_core {
  using continuation =
      std::function<void(const caf::expected<network_result>&)>;

  struct entry {
    std::string name;
    epoch_metrics latest;
    std::optional<network_result> result;
    std::vector<continuation> waiting;
  };

  std::mutex mx;
  std::condition_variable cv;
  std::unordered_map<uint64_t, entry> entries;
  /// Counts the batches of epochs stored, so readers see that more came.
  uint64_t epochs_stored = 0;
  /// The session's run ended (closed or stopped): networks without a
  /// result now never get one, and `ended_reason` says why.
  bool ended = false;
  caf::error ended_reason;
  caf::actor coordinator;
  std::string db_path;

  session_core();
  ~session_core();

  /// The aggregator's hooks.
  void on_epochs(const std::vector<epoch_metrics>& epochs);
  void on_outcome(const network_result& r);

  /// Marks the run ended: waiters of networks without a result get `why`.
  void end(caf::error why);

  /// `id`'s result or why it has none (with `mx` held).
  caf::expected<network_result> result_locked(uint64_t id) const;
  bool done_locked(uint64_t id) const;

  /// Runs continuations on the core's own thread: they may submit, wait
  /// and cancel without blocking the actors.
  void post(std::function<void()> f);

private:
  void dispatch();
  std::mutex queue_mx;
  std::condition_variable queue_cv;
  std::deque<std::function<void()>> queue;
  bool stopping = false;
  std::thread dispatcher;
};

} // namespace actortrain::detail
