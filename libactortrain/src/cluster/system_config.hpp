#pragma once

#include <caf/actor_system_config.hpp>

#include "actortrain/cluster.hpp"

namespace actortrain {

/// How often a node of a cluster run sends each peer a heartbeat (CAF's
/// BASP heartbeat), so that a peer that hears nothing for a while can tell
/// a dead node from an idle one.
inline constexpr double heartbeat_seconds = 0.5;

/// Configures an actor system for actortrain: its message types and error
/// category, the work-sharing scheduler, and with `network` CAF's middleman
/// (plus the openssl module when `tls` is enabled), sending heartbeats and
/// dropping a peer from which nothing arrived for `peer_timeout_seconds`
/// (0: never) as if its connection had closed.
void configure_system(caf::actor_system_config& cfg, bool network,
                      const tls_options& tls, double peer_timeout_seconds = 0);

} // namespace actortrain
