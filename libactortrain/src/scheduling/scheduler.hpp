#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "protocol/interfaces.hpp"
#include "protocol/slot.hpp"
#include "scheduling/scheduling_policy.hpp"
#include "scheduling/search_rule.hpp"
#include "store/store_backlog.hpp"

namespace actortrain {

struct scheduler_state {
  /// Who holds a slot, and since when; the device memory it was admitted
  /// with, and whether it has the device to itself.
  struct holder {
    caf::actor_addr trainer;
    uint64_t network_id = 0;
    double since = 0;
    int64_t memory = 0;
    bool alone = false;
    /// Granted while the slot computed (see `queued` below).
    bool queued = false;
  };

  /// One slot: what a grant hands out, who holds it, and whether it is dead
  /// (its executor went away with a lost worker node: never granted again).
  struct slot_entry {
    slot_grant grant;
    holder held;
    /// The trainer granted the slot while `held` computes (a worker's slot,
    /// slot_info::queue_ahead): its quantum waits on the worker and it
    /// holds the slot when `held` gives it back.
    holder queued;
    bool dead = false;
    /// When it was last freed (or added).
    double free_since = 0;
    /// Whether its executor runs in this process (replicas only go there).
    bool local = true;
  };

  /// Indexed by slot id.
  std::vector<slot_entry> slots;
  std::deque<uint32_t> free;
  std::shared_ptr<scheduling_policy> policy;
  scheduler_status stats;
  /// Steps each network reported last, to keep `stats.steps_done` current.
  std::unordered_map<uint64_t, int64_t> steps;
  /// Receives the schedule in batches of grant_records (may be invalid).
  aggregator_actor recorder;
  /// What the store has yet to write (null: no limit). While it is over
  /// its limit nothing is granted; a tick looks again.
  std::shared_ptr<store_backlog> unwritten;
  bool store_tick_due = false;
  bool store_waiting = false;
  std::vector<grant_record> pending;
  std::chrono::steady_clock::time_point started;
  /// The schedule's clock at `started` (see scheduler()).
  double clock_start = 0;
  /// When (on the schedule's clock) a quantum last started or ended, or a
  /// slot was lost (`clock_start` before any): how long the run has been
  /// quiet (stall reports).
  double last_change = 0;
  /// The trainers that asked for slots and have not finished.
  std::set<caf::actor_addr> trainers;
  /// No grant before this many trainers have asked: with every network of a
  /// run in the queue, the first grants follow the policy, not the order in
  /// which trainer actors happened to start.
  size_t start_after = 0;
  size_t arrived = 0;
  /// Set by (stop_atom): slots are no longer granted.
  bool stopped = false;
  /// Slots each trainer needs at once (trainer_info::slots), by trainer id.
  std::unordered_map<uint64_t, int64_t> slots_needed;
  /// Trainers whose replicas may run on workers' slots too (synchronous).
  std::unordered_set<uint64_t> spans_nodes;
  /// A trainer that needs several slots at once, first in line, and since
  /// when: nothing else is granted until enough slots are free (each busy
  /// slot frees within a quantum, so a freed slot waits at most that long).
  std::optional<waiting_trainer> gang;
  double gang_since = 0;
  // -- Device memory (GPU slots have a budget: slot_info::memory_budget) ---
  /// Some slot has a memory budget or some trainer needs a device alone:
  /// grants check device memory (otherwise they skip it).
  bool memory_limited = false;
  /// Each trainer's need in bytes: its estimate, then what it reports.
  std::unordered_map<uint64_t, int64_t> memory_need;
  /// Trainers that ran out of memory beside others: they get a device to
  /// themselves until a measured peak says what they need.
  std::unordered_set<uint64_t> alone;
  /// The trainer first in line whose need fits no free slot's device now:
  /// nothing else is granted until one does (memory frees within a
  /// quantum), so a large network is never passed over for good.
  std::optional<waiting_trainer> memory_waiter;
  // -- Affinity, with slots on several nodes (worker nodes joined) ---------
  bool several_nodes = false;
  /// The node of each trainer's last grant, where its live state stays.
  std::unordered_map<uint64_t, caf::node_id> home;
  /// The slot of each trainer's last grant: its node and device are where
  /// its state lives (see prefer_own_device).
  std::unordered_map<uint64_t, uint32_t> last_slot;
  /// The size of each trainer's state, as it last reported.
  std::unordered_map<uint64_t, int64_t> state_bytes;
  /// Trainers whose state cannot leave its node (progress_report::pinned):
  /// they are never moved while a slot of their node is alive.
  std::unordered_set<uint64_t> pinned;
  /// What moving a byte of state costs, in seconds: from the moves trainers
  /// report (a moving average), until then a guess of 100 MB/s.
  double seconds_per_byte = 1e-8;
  /// A round trip to each worker beyond the compute, by the node's name, as
  /// trainers measured it (a moving average): grants of its slots carry
  /// it (slot_grant::hop_seconds), so that a trainer whose quanta there are
  /// queued (and cannot measure it) lengthens them like the others.
  std::unordered_map<std::string, double> hop_seconds;
  // -- The adaptive search (scheduler.search) --------------------------------
  /// Decides from the epochs trainers report; none without a search.
  std::optional<search_rule> search;
  /// A trainer the search covers: its networks, the stops it has not been
  /// sent yet, and whether it is held back (a network of it waits at a rung:
  /// it is not queued and holds no slot).
  struct searched_trainer {
    caf::actor trainer;
    std::vector<uint64_t> members;
    std::vector<uint64_t> stops;
    bool held = false;
  };
  /// By the trainer's id (its first network's).
  std::map<uint64_t, searched_trainer> searched;
  /// Each network's trainer id.
  std::unordered_map<uint64_t, uint64_t> trainer_of;
  /// PBT: exploits sent to their recipients' trainers, by recipient, until
  /// they answer (exploited_atom).
  std::map<uint64_t, search_decision> exploiting;
  /// Each network's trainer and priority, and priorities set before its
  /// trainer asked for a slot (priority_atom).
  std::unordered_map<uint64_t, std::pair<uint64_t, double>> priority_of;
  std::unordered_map<uint64_t, std::vector<uint64_t>> members_of;
  /// Each network's latest score in the search (for best_first).
  std::unordered_map<uint64_t, double> latest_score;
  std::unordered_map<uint64_t, double> early_priorities;
  /// Decisions not yet sent to the recorder, and when some were last sent.
  std::vector<decision_record> decisions;
  double decisions_sent = 0;
  /// A resumed run's: what the search had seen (replayed when the first
  /// grant is due, once every trainer has asked), and where each network
  /// continues from (its last replayed epoch).
  search_history history;
  bool replayed = false;
  std::unordered_map<uint64_t, int64_t> resumed_at;
  static inline const char* name = "actortrain.scheduler";
};

/// Owns the slots and grants them to waiting trainers, one quantum at a time,
/// in the order its policy decides.
///
/// Protocol: a trainer sends (acquire_atom, trainer_info) once; the
/// scheduler sends (grant_atom, slot_grant) when the policy picks it; the
/// trainer sends (release_atom, slot_id, progress_report) when its quantum
/// ends and, unless the report says finished, waits for its next grant.
/// Every grant becomes a grant_record, sent to `recorder` in batches and on
/// (schedule_atom). A trainer that dies returns its slot. It never grants
/// more slots than exist. (status_atom) -> scheduler_status.
/// (add_slots_atom, std::vector<slot_grant>) adds slots (a worker joined); a
/// slot whose executor goes down (its worker was lost) is never granted again.
/// No grant is made before the `start_after` trainers of the run's setup
/// have asked, nor, after (expect_atom, n), before n more (a session's
/// submission) have: the first grants among them follow the policy, not the
/// order in which their actors started.
///
/// With slots on several nodes (worker nodes joined), a free slot goes to
/// the first waiting trainer, in the policy's order, whose state is on the
/// slot's node (its last quantum ran there) or nowhere yet; only when there
/// is none, and the slot would otherwise idle, to the first one whose move
/// pays: moving its state (the size it reports, at the measured seconds per
/// byte, twice: out of its node and into this one) costs at most a quarter
/// of its estimated remaining work. Otherwise the slot waits. A trainer
/// whose state cannot move (pinned) waits for its own node's slots while
/// that node has any.
///
/// A worker's slot that queues ahead (slot_info::queue_ahead) is also
/// granted while it is held, to one trainer at a time whose state is on
/// that node or nowhere yet (never a move, never a trainer that needs
/// several slots or a device to itself), once no free slot takes it; the
/// grant says `queued`, the quantum waits on the worker, and the trainer
/// holds the slot from the moment the holder gives it back. So the worker
/// starts its next quantum without waiting for a round trip to this actor.
/// Nothing is queued while a trainer first in line waits for slots or
/// memory.
///
/// A trainer that needs R > 1 slots at once (a replicated network,
/// trainer_info::slots) gets them together, (grant_atom,
/// std::vector<slot_grant>) of R slots of this process, and gives them back
/// together, (release_atom, std::vector<uint32_t>, progress_report). When
/// the policy picks it and fewer are free, it is first in line: slots that
/// free up wait for it (at most one quantum, the longest one running) and
/// nothing else is granted meanwhile, so groups never deadlock by holding
/// parts of what they need. A trainer that needs more slots than this
/// process still has gets an empty grant.
///
/// With an adaptive search (`search.kind` not none) the scheduler feeds every
/// epoch reported to its search_rule and carries out the decisions: a
/// network stopped is sent to its trainer, (search_stop_atom,
/// std::vector<uint64_t>), before the trainer's next grant (it then
/// finishes at once); a trainer whose network waits at a rung is held back,
/// holding no slot, until the search promotes or stops it; when nothing
/// trains and nothing is queued while some wait, the search is told it is
/// idle. Every decision goes to `recorder` as a decision_record. PBT's
/// exploit goes to the recipient's trainer, (exploit_atom, recipient,
/// donor, version, lr factor, the donor's trainer); the trainer copies the
/// donor's state from the donor's trainer and answers (exploited_atom,
/// recipient, reason: "" when made), and only then is it queued again.
///
/// Device memory: a slot whose slot_info::memory_budget is set (a GPU's
/// share, scheduler.gpu_memory_fraction) is granted only while the memory
/// needs of the trainers holding its device's slots, plus the newcomer's,
/// stay within it (trainer_info::memory_bytes, an estimate, replaced by the
/// peak measured on the device, progress_report::memory_bytes). When the
/// trainer first in line fits no free slot, nothing else is granted until it
/// does (a quantum frees memory), so a large network is never passed over
/// for good; an empty device takes any one trainer. A trainer whose quantum
/// ran out of memory (progress_report::out_of_memory) needs twice as much
/// from then on and the next devices it gets to itself (slot_grant::alone),
/// until a measured peak says what it needs. Without budgets and out of
/// memory errors (CPU runs) none of this costs a thing.
///
/// A resumed run's search starts from `history`: before the first grant it
/// replays the epochs reported before (epoch by epoch, in network-id
/// order), so its rungs, barriers and waiting networks are what they were;
/// a decision the replay makes about a network where it continues is carried
/// out, one about an earlier epoch only recorded, and no decision the store
/// holds is recorded again. In deterministic mode the decisions are then an
/// uninterrupted run's.
///
/// Grants and decisions are recorded in seconds on the schedule's clock,
/// which starts at `clock_start`: 0 for a new run, where the attempts
/// before stopped for a resumed or continued one (so a slot's busy time
/// never exceeds the span of its schedule).
scheduler_actor::behavior_type
scheduler(scheduler_actor::stateful_pointer<scheduler_state> self,
          std::vector<slot_grant> slots,
          std::shared_ptr<scheduling_policy> policy, aggregator_actor recorder,
          size_t start_after, search_settings search, search_history history,
          double clock_start, std::shared_ptr<store_backlog> unwritten);

} // namespace actortrain
