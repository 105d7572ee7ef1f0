#pragma once

#include <caf/actor_system_config.hpp>

#include "actortrain/cluster.hpp"

namespace actortrain {

/// Configures an actor system for actortrain: its message types and error
/// category, the work-sharing scheduler, and with `network` CAF's middleman
/// (plus the openssl module when `tls` is enabled).
void configure_system(caf::actor_system_config& cfg, bool network,
                      const tls_options& tls);

} // namespace actortrain
