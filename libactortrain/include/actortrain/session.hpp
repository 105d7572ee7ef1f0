#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "actortrain/experiment.hpp"
#include "actortrain/learner_fwd.hpp"
#include "actortrain/results.hpp"
#include "actortrain/run.hpp"
#include "actortrain/session_actor.hpp"

namespace caf {
class actor_system;
} // namespace caf

// A live runtime: a program keeps a session up, submits networks while
// others train, gets a handle (a future) for each, reacts to results as they
// arrive and decides what to train next. docs/session.md has the protocol.

namespace actortrain {

namespace detail {
struct session_core;
} // namespace detail

/// How to open a session: as a run (output folder, learner factory,
/// progress, stop flag, worker TLS and events; an output folder holding a
/// session's run is reopened), and whether it trains its setup's own
/// networks.
struct session_options : run_options {
  /// Train the setup's own networks (its configurations, sweep and search
  /// space), as a batch run does: they are known from the start
  /// (networks() gives their handles), a folder holding them resumes,
  /// an adaptive search and worker nodes may be used, and submit() is
  /// refused. actortrain::run is such a session, opened and closed. An
  /// empty `stop` is the session's own (see stop()).
  bool train_setup = false;
};

/// One network submitted to a session: its identity, live state and
/// result. Copies share the state; a default-constructed handle belongs to
/// no session. Thread-safe.
class network_handle {
public:
  network_handle() = default;

  /// The run's id and name of the network ("net-0003").
  uint64_t id() const noexcept {
    return id_;
  }
  const std::string& name() const noexcept;

  /// pending (queued or training), finished, failed or cancelled.
  network_status status() const;

  /// Whether it has a result (finished, failed or cancelled).
  bool done() const;

  /// Its latest epoch's metrics as stored (epoch 0 before its first).
  epoch_metrics latest() const;

  /// Blocks until it is done; its result as the results store holds it,
  /// or an error when the session ended first (stopped) or the handle
  /// belongs to no session.
  caf::expected<network_result> wait() const;

  /// As wait(), giving up after `timeout`: nothing when it is not done.
  std::optional<caf::expected<network_result>>
  wait_for(std::chrono::milliseconds timeout) const;

  /// Calls `f` with the result once it is done: at once (on this thread)
  /// when it is, else on the aggregator's thread when its outcome is
  /// stored. Keep `f` short; it may submit more networks.
  void then(std::function<void(const caf::expected<network_result>&)> f) const;

  /// Ends the network at its next quantum boundary (a quantum running now
  /// ends first); it is recorded as cancelled and its slot goes to the
  /// next network. Cancelling a network that is done does nothing. Errors:
  /// the session is closed, or the handle belongs to none.
  caf::error cancel() const;

  /// Gives the network a new `train.priority` for the "priority" policy
  /// (higher runs first): from its next wait for a slot on (a fused group
  /// runs at its highest member's). It lasts for this session; a reopened
  /// session starts from the configuration's. A network that is done is
  /// left as it is. Errors: the session is closed, or the handle belongs
  /// to none.
  caf::error set_priority(double priority) const;

  bool valid() const noexcept {
    return static_cast<bool>(core_);
  }

private:
  friend class session;
  friend caf::expected<size_t>
  wait_any(const std::vector<network_handle>& handles,
           std::chrono::milliseconds timeout);
  network_handle(std::shared_ptr<detail::session_core> core, uint64_t id)
      : core_(std::move(core)), id_(id) {}
  /// The coordinator to tell about this network: none when it is done;
  /// an error naming `what` when the session is closed.
  caf::expected<caf::actor> coordinator_unless_done(const char* what) const;
  std::shared_ptr<detail::session_core> core_;
  uint64_t id_ = 0;
};

/// Blocks until one of `handles` is done and returns its index (the first
/// done, in the order given). Errors: `handles` is empty, holds a handle of
/// no session or mixes sessions (errc::invalid_handle), or `timeout` passed
/// (errc::timed_out).
caf::expected<size_t>
wait_any(const std::vector<network_handle>& handles,
         std::chrono::milliseconds timeout = std::chrono::hours{24 * 365});

/// Blocks until every one of `handles` is done; their results in the same
/// order (a network that failed or was cancelled has that status), or the
/// first error a wait gave.
caf::expected<std::vector<network_result>>
wait_all(const std::vector<network_handle>& handles);

/// Every epoch every network of a session reports, each once, in the order
/// they were stored (so each network's in epoch order). The results store
/// is the buffer: a slow reader holds nothing in memory and never slows the
/// actors, and misses nothing. One reader per stream; streams are
/// independent and each starts at the run's first epoch.
class metrics_stream {
public:
  metrics_stream(metrics_stream&&) noexcept;
  metrics_stream& operator=(metrics_stream&&) noexcept;
  ~metrics_stream();

  /// The next epochs stored (at most `max`), waiting up to `timeout` for
  /// one when none is new. Empty when none came in time, or the session
  /// is closed and everything was read (then `finished()`).
  caf::expected<std::vector<epoch_metrics>>
  next(size_t max = 256,
       std::chrono::milliseconds timeout = std::chrono::seconds{1});

  /// The session is closed and every epoch it stored was returned.
  bool finished() const noexcept {
    return finished_;
  }

private:
  friend class session;
  struct impl;
  explicit metrics_stream(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
  bool finished_ = false;
};

/// A live runtime over one output folder: the actor system, the slots, the
/// scheduler, the aggregator and the results store of `setup`'s data,
/// scheduler and output settings, up until close(). Networks submitted
/// join the one scheduler queue under its policy; everything goes to the
/// same store as a batch run (`actortrain results` and the report read it).
/// A network gets the id, seed and shard it would get in a batch run of the
/// same configurations submitted in the same order, so its result is the
/// same bits. submit, cancel and wait may be called from any thread.
class session {
public:
  /// Loads `setup`'s data and starts the runtime; `setup`'s
  /// configurations are not trained (submit them). A folder that holds a
  /// session's run (crashed, stopped or closed) is reopened: its networks
  /// not done continue from their checkpoints with the results they would
  /// have had (networks() gives their handles) and later submissions
  /// continue its ids. Errors name what is wrong: the experiment, the
  /// data, a folder of another setup, an adaptive search or worker nodes
  /// (neither is available in a session yet).
  static caf::expected<std::unique_ptr<session>>
  open(const experiment& setup, session_options opts = {});

  session(const session&) = delete;
  session& operator=(const session&) = delete;
  /// Stops a session that was not closed: quanta in flight end and are
  /// checkpointed, the store is closed.
  ~session();

  /// Submits `cfg` (train.networks copies of it) as one new configuration;
  /// an empty label becomes "submission-<n>". Bad input is refused before
  /// anything trains, naming the key; nothing else is affected.
  caf::expected<std::vector<network_handle>> submit(network_config cfg);

  /// Submits each configuration of `exp` (its sweep or variants), in order;
  /// the session's own data, scheduler and output settings apply.
  caf::expected<std::vector<network_handle>> submit(const experiment& exp);

  /// A handle of every network the session knows, by id: those submitted
  /// since it was opened and, in a reopened folder, those submitted before.
  std::vector<network_handle> networks() const;

  /// The handle of network `id` (as the metrics stream names it);
  /// errc::invalid_handle when the session does not know it.
  caf::expected<network_handle> handle(uint64_t id) const;

  /// Cancels `h` (see network_handle::cancel); a handle from another
  /// session is refused.
  caf::error cancel(const network_handle& h);

  /// The ensemble of `members` as it stands: the mean of their predicted
  /// probabilities on the setup's test set, summed in id order from the
  /// predictions stored (as a run's ensembles are), so it is a function of
  /// the members alone. Members not finished (pending, failed, cancelled)
  /// are left out; `networks` counts those in. Errors: a handle of another
  /// session or of none, or stored predictions that cannot be read.
  caf::expected<ensemble_result>
  ensemble(const std::vector<network_handle>& members) const;

  /// The epochs of every network, from the first (see metrics_stream).
  caf::expected<metrics_stream> metrics() const;

  /// Waits until every network submitted is done, evaluates the ensembles,
  /// closes the store and returns the run's results. Later submits fail.
  /// The session's actor system ends here: it waits for every actor in it,
  /// so actors of the program's (and scoped actors) must end first.
  caf::expected<run_result> close();

  /// Stops now: quanta in flight end with a checkpoint, waiting networks
  /// do not start, and close() (or the destructor) returns
  /// errc::run_aborted. Networks not done then have no result (their
  /// wait() says the session was stopped).
  void stop();

  /// The results folder.
  const std::string& output_dir() const noexcept;

  /// For CAF-native code: the session's typed interface
  /// (session_actor.hpp), answered on a thread of its own, so an actor of
  /// the program's submits, waits, cancels and reprioritises by message
  /// without blocking; it stops answering once the session is closed.
  session_actor actor() const;

  /// The session's actor system (spawn your actors in it) and its
  /// coordinator (dynamically typed; docs/session.md has its messages).
  caf::actor_system& system();
  caf::actor coordinator() const;

private:
  struct impl;
  explicit session(std::unique_ptr<impl> p);
  caf::expected<std::vector<network_handle>>
  submit_configs(std::vector<network_config> configs);
  std::unique_ptr<impl> impl_;
};

} // namespace actortrain
