#pragma once

#include <caf/actor_system_config.hpp>

#include "actortrain/cluster.hpp"
#include "actortrain/experiment.hpp"

namespace actortrain {

/// Configures an actor system for actortrain: its message types and error
/// category, the work-sharing scheduler, and with `network` CAF's middleman
/// (plus the openssl module when `tls` is enabled), sending heartbeats and
/// dropping a peer from which nothing arrived for `peer_timeout_seconds`
/// (0: never) as if its connection had closed.
void configure_system(caf::actor_system_config& cfg, bool network,
                      const tls_options& tls, double peer_timeout_seconds = 0);

} // namespace actortrain
