#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/node_id.hpp>
#include <caf/stateful_actor.hpp>

#include "protocol/interfaces.hpp"
#include "protocol/slot.hpp"
#include "store/store_backlog.hpp"
#include "training/network_group.hpp"

namespace actortrain {

/// What a trainer needs besides its network.
struct trainer_config {
  scheduler_actor scheduler;
  aggregator_actor aggregator;
  quantum_limits quantum;
  /// The run has worker nodes: quanta may run on other nodes. A group's
  /// live state stays on the node of its last quantum and travels only when
  /// the group's next slot is on another node.
  bool cluster = false;
  /// cluster.hop_share: quanta on workers are lengthened until their round
  /// trip takes at most this share of them (0: never).
  double hop_share = 0;
  /// Quanta in a row that a worker node answered with an error (a state did
  /// not restore, the quantum failed there) before the group's networks
  /// fail.
  int64_t max_lost_quanta = 3;
  /// Quanta in a row lost because their worker went away (killed, the link
  /// down) before the group's networks fail. Higher: a worker restarted
  /// again and again is not the group's fault, but a group whose quanta
  /// bring down every worker they run on must end.
  int64_t max_lost_links = 10;
  /// Whether a network that finished its budget sends its final state to
  /// the aggregator (output.final_state).
  bool keep_final_state = true;
  /// What the store has yet to write: raised by what the trainer sends the
  /// aggregator (null: not counted).
  std::shared_ptr<store_backlog> unwritten;
  /// PBT: the interval epochs whose states its networks kept (in the
  /// store) before the run was interrupted (a resumed run's donors serve
  /// them).
  std::map<uint64_t, std::set<int64_t>> kept;
};

struct trainer_state {
  std::shared_ptr<network_group> group;
  trainer_config config;
  // -- cluster runs ----------------------------------------------------------
  /// The group's unfinished networks.
  std::vector<uint64_t> unfinished;
  /// Where the group's live models are: the node its last quantum ran on
  /// and, on a worker, the keeper that hands their states over. Empty when
  /// that node was lost: the group goes on from `checkpoints`.
  struct live_models {
    caf::node_id node;
    state_keeper_actor keeper;
  };
  std::optional<live_models> live;
  /// Each unfinished network's latest checkpoint, the state to go on from
  /// when the node holding the live one is lost (none: the network starts
  /// over; at most the work since then is lost). Its bytes went to the
  /// aggregator, which stores them and reads them back for a fall back:
  /// the coordinator's memory does not grow with the networks' states.
  /// Kept here: the retries done at its step (the store does not record
  /// them; both of the steps the store keeps) and its size.
  struct checkpoint_taken {
    int64_t bytes = 0;
    std::map<int64_t, int64_t> retries_at_step;
  };
  std::unordered_map<uint64_t, checkpoint_taken> checkpoints;
  /// States asked of a worker's keeper for a move, and the slot granted
  /// meanwhile (the keeper is watched: a lost worker ends the wait).
  struct move_in_flight {
    uint64_t id = 0;
    state_keeper_actor keeper;
    std::vector<slot_grant> grants;
  };
  std::optional<move_in_flight> moving;
  uint64_t moves = 0;
  /// What each network delivered so far (its newest epoch and checkpoint
  /// step) and, after a fall back, the steps it had done: quanta that
  /// train those steps again deliver nothing twice.
  struct delivered_so_far {
    int64_t epoch = 0;
    int64_t checkpoint_step = -1;
    int64_t replay_until = 0;
  };
  std::unordered_map<uint64_t, delivered_so_far> delivered;
  /// The state moved before the quantum now running: bytes and seconds.
  int64_t moved_bytes = 0;
  double move_seconds = 0;
  /// Networks the adaptive search stopped: the next quantum finishes them
  /// (kept until a report shows them done, so a lost quantum loses none).
  std::vector<uint64_t> search_stops;
  /// Networks a live session cancelled: they end at the next quantum
  /// boundary (a quantum stops them at once, like the search's), recorded
  /// as cancelled.
  std::vector<uint64_t> cancels;
  /// A quantum of the group is running (the trainer holds a slot).
  bool busy = false;
  /// The device of the quantum's slot, and whether the group has it to
  /// itself (slot_grant::alone): running out of memory alone, the group
  /// cannot be helped by waiting.
  std::string device;
  bool alone = false;
  /// Networks an out-of-memory error sent back to their last snapshot: the
  /// epochs they train again are not delivered twice.
  std::unordered_set<uint64_t> rolled_back;
  /// PBT: the epochs of each network's kept learner states (the two
  /// newest: a donor that trains on still answers a copy decided just
  /// before; the states themselves are in the store, which the aggregator
  /// reads them from for a copy), and the copies to make in the next
  /// quantum (kept until a quantum reports back, so a lost quantum loses
  /// none).
  std::map<uint64_t, std::set<int64_t>> kept;
  std::vector<state_transplant> transplants;
  /// Each network's latest progress, for the group's progress report.
  std::unordered_map<uint64_t, progress_report> latest;
  /// The quantum running on a worker node, if any: its number, executor and
  /// slot.
  struct remote_quantum_in_flight {
    uint64_t id = 0;
    slot_executor_actor executor;
    uint32_t slot = 0;
  };
  std::optional<remote_quantum_in_flight> in_flight;
  /// The in-flight quantum's request, while ACTORTRAIN_CLUSTER_DELAY_MS
  /// holds it back (see run_remote).
  std::function<void()> delayed_request;
  /// Quanta sent to worker nodes so far (numbers them).
  uint64_t quanta = 0;
  /// Measured on workers: a round trip's seconds beyond the compute (of
  /// the last quantum that was not queued, for the scheduler, which
  /// averages them per node), and the compute of one scheduler quantum (a
  /// moving average).
  double hop_seconds = 0;
  double unit_seconds = 0;
  /// Quanta lost in a row: answered with an error, or with their worker.
  int64_t lost_quanta = 0;
  int64_t lost_links = 0;
  static inline const char* name = "actortrain.trainer";
};

/// One network, or a group of networks trained fused. Asks the scheduler
/// for a slot once, trains one quantum on each slot it is granted through
/// the slot's executor, reports each network's metrics, checkpoints and
/// outcome to the aggregator and the group's progress to the scheduler
/// (which queues it again until the report says finished). In a cluster
/// run a slot may be on a worker node: the quantum then travels there as a
/// remote_quantum, the live state stays there, and moves with the group
/// only when its next slot is on another node; a quantum lost with its
/// worker is run again elsewhere from the networks' latest checkpoints.
caf::behavior trainer(caf::stateful_actor<trainer_state>* self,
                      std::shared_ptr<network_group> group,
                      trainer_config config);

} // namespace actortrain
