#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>

#include "protocol/messages.hpp"
#include "scheduling/remaining_time_estimator.hpp"

namespace actortrain {

/// A trainer waiting for a slot.
struct waiting_trainer {
  caf::actor trainer;
  uint64_t network_id = 0;
};

/// Decides which waiting trainer gets the next free slot.
///
/// A policy is a key: lower keys run first, ties go to the lower network id
/// (so the schedule does not depend on which actor happened to ask first).
/// Networks that have run are keyed when they rejoin the queue, with their
/// fresh estimate. Networks that have not run yet are kept apart, ordered by
/// their cost hint, and keyed when they are compared, with the estimator's
/// current scale: an estimate that improves as others report never leaves a
/// stale key behind. Picking the next trainer is O(log n).
class scheduling_policy {
public:
  virtual ~scheduling_policy();

  /// A network's first request for a slot.
  void add(const trainer_info& info);
  /// A network is done: forget it.
  void forget(uint64_t network_id);
  /// Called with every progress report, before the trainer is re-queued.
  void report(const progress_report& progress);

  void enqueue(waiting_trainer w);
  /// Removes and returns the trainer to grant next, if any.
  std::optional<waiting_trainer> next();
  /// Removes and returns the first trainer, in the order next() would give
  /// them, that `accept` takes; O(trainers passed over).
  std::optional<waiting_trainer>
  next_if(const std::function<bool(const waiting_trainer&)>& accept);
  /// The estimated seconds of compute network `network_id` has left.
  double remaining(uint64_t network_id) const;
  /// Gives network `network_id` (a trainer's id) a new priority; a waiting
  /// trainer is ranked again at its place in the order it joined.
  void set_priority(uint64_t network_id, double priority);
  /// The adaptive search's latest score of network `network_id` (a
  /// trainer's id: the best of its networks'), higher is better: what
  /// best_first ranks by.
  void set_score(uint64_t network_id, double score);
  /// Forgets a trainer that went away while waiting.
  void remove(const caf::actor_addr& trainer);
  size_t waiting() const;

protected:
  struct network {
    double priority = 0;
    bool started = false;
    /// The search's latest score (none yet: the lowest).
    double score = -std::numeric_limits<double>::infinity();
  };

  /// The key of a network with `estimate` seconds left, joining the queue as
  /// its `seq`-th entry. It must ignore `estimate` or be monotone in it, so
  /// that scaling every fresh estimate keeps their order.
  virtual double key(const network& n, double estimate, uint64_t seq) const = 0;

private:
  /// (key, network id, enqueue order): unique, so it is a map key.
  using rank = std::tuple<double, uint64_t, uint64_t>;
  using queue = std::map<rank, waiting_trainer>;

  rank fresh_rank(const queue::value_type& entry) const;
  waiting_trainer take(queue& q, queue::iterator i);

  remaining_time_estimator estimator_;
  std::unordered_map<uint64_t, network> networks_;
  queue started_;
  /// Not run yet; ranked with their cost hint x steps as the estimate.
  queue fresh_;
  std::unordered_map<caf::actor_addr, std::pair<bool, rank>> where_;
  uint64_t seq_ = 0;
};

/// Builds the policy `scheduler.policy` names; nullptr for a value outside
/// the enum.
std::unique_ptr<scheduling_policy> make_policy(policy_kind kind);

} // namespace actortrain
