#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>

#include "actortrain/results.hpp"

namespace actortrain {

/// A trainer waiting for a slot.
struct waiting_trainer {
  caf::actor trainer;
  uint64_t network_id = 0;
};

/// Decides which waiting trainer gets the next free slot. Policies see every
/// progress report, so dynamic policies can rank trainers by what they report
/// (steps left, seconds per step, trend).
class scheduling_policy {
public:
  virtual ~scheduling_policy();

  virtual void enqueue(waiting_trainer w) = 0;
  /// Removes and returns the trainer to grant next, if any.
  virtual std::optional<waiting_trainer> next() = 0;
  /// Forgets a trainer that went away while waiting.
  virtual void remove(const caf::actor_addr& trainer) = 0;
  virtual size_t waiting() const = 0;
  /// Called with every progress report, before the slot is handed on.
  virtual void report(const progress_report& progress);
};

/// Grants slots in the order trainers asked for them.
class fifo_policy : public scheduling_policy {
public:
  void enqueue(waiting_trainer w) override;
  std::optional<waiting_trainer> next() override;
  void remove(const caf::actor_addr& trainer) override;
  size_t waiting() const override;

private:
  std::deque<waiting_trainer> queue_;
};

/// Builds the policy named in `scheduler.policy`.
std::unique_ptr<scheduling_policy> make_policy(const std::string& name);

} // namespace actortrain
