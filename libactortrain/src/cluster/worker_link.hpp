#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/expected.hpp>
#include <caf/stateful_actor.hpp>

#include "cluster/data_shipment.hpp"
#include "protocol/cluster_messages.hpp"
#include "protocol/slot.hpp"

namespace actortrain {

/// A worker that joined a run: its node actor and the slots it offers.
struct joined_worker {
  std::string address;
  worker_node_actor node;
  std::vector<slot_grant> slots;
  /// Bytes of data sent to it before it joined (it lacked the run's data).
  uint64_t data_bytes = 0;
};

/// How long a worker may take to answer a join: it loads its data first.
constexpr auto join_timeout = std::chrono::seconds{30};

/// Whether a worker's error answer is its own refusal (asking again will
/// not help) rather than a timeout or a lost connection (which may pass).
bool refused_by_worker(const caf::error& err);

/// What one attempt to join a worker came to. `refused`: the worker answered
/// (wrong data, busy, not host:port) and asking again will not help; else it
/// could not be reached or did not answer, and a later attempt may succeed.
struct join_result {
  std::string address;
  caf::expected<joined_worker> joined{caf::error{}};
  bool refused = false;
};

struct worker_link_state {
  std::string address;
  run_setup setup;
  bool tls = false;
  caf::actor listener;
  bool retry = false;
  /// Numbers the attempts: an answer to an earlier one is stale.
  uint64_t attempt = 0;
  /// The worker's address, and until when the current attempt may wait for
  /// CAF's handshake (cluster.handshake_seconds).
  network_address where;
  std::chrono::steady_clock::time_point handshake_deadline;
  /// The node asked to join in the current attempt (monitored).
  caf::actor_addr asked;
  /// The run's data, for a worker that lacks it (null: none is sent), and
  /// whether this attempt sent it already.
  std::shared_ptr<data_shipment> shipment;
  bool shipped = false;
  uint64_t shipped_bytes = 0;
};

/// Asks the worker at `address` ("host:port") to join the run `setup`
/// describes, without blocking, and tells `listener` the outcome:
/// (joined_atom, address, node, slots, data bytes sent) or (joined_atom,
/// address, error,
/// refused). With `retry`, a worker that cannot be reached is tried again
/// every second and only a join or a refusal is told. An exit message ends
/// the link at once, even while it waits for an answer. A worker that lacks
/// the run's data (it has a data cache) gets `shipment` in chunks, then is
/// asked again. Not detached: a detached link made its process hang at
/// exit now and then (CAF's wait for detached threads); the data is encoded
/// once, on the first link that needs it (a pause of its thread).
caf::behavior worker_link(caf::stateful_actor<worker_link_state>* self,
                          std::string address, run_setup setup, bool tls,
                          caf::actor listener, bool retry,
                          std::shared_ptr<data_shipment> shipment);

/// Asks every worker of `addresses` to join at once and waits until each has
/// answered or failed (at most cluster.handshake_seconds + join_timeout). When
/// `stop` becomes true the wait ends early and `stopped` says so; the results
/// of the workers that had not answered yet are then errors.
std::vector<join_result>
join_workers(caf::actor_system& sys, const std::vector<std::string>& addresses,
             const run_setup& setup, bool tls,
             const std::shared_ptr<std::atomic<bool>>& stop, bool& stopped,
             std::shared_ptr<data_shipment> shipment = nullptr);

/// join_workers for one worker, without a stop flag.
join_result join_worker(caf::actor_system& sys, const std::string& address,
                        const run_setup& setup, bool tls,
                        std::shared_ptr<data_shipment> shipment = nullptr);

} // namespace actortrain
