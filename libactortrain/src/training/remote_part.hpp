#pragma once

#include <caf/expected.hpp>

#include "protocol/cluster_messages.hpp"

namespace actortrain {

/// A replica of a synchronous replicated network whose part of each step
/// another process computes (a worker's slot granted with the leader's):
/// the leader sends the part and later collects its gradient. Implemented
/// by the cluster layer over the CAF link to the worker.
class remote_part {
public:
  virtual ~remote_part() = default;

  /// Starts the part's computation there.
  virtual void send(replica_work work) = 0;

  /// Waits for the gradient of the part last sent: an error when the slot
  /// was lost or refused it (the leader then computes the part itself).
  virtual caf::expected<replica_gradient> receive() = 0;
};

} // namespace actortrain
