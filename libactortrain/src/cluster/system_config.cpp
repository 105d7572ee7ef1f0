#include "cluster/system_config.hpp"

#include <chrono>
#include <filesystem>

#include <caf/atom.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/timespan.hpp>
#include <fmt/format.h>

#include "actortrain/error.hpp"
#include "protocol/slot.hpp"
#include "protocol/type_ids.hpp"

namespace actortrain {

caf::error tls_options::validate() const {
  if (!enabled())
    return {};
  std::pair<const char*, const std::string*> files[] = {
      {"--tls-cert", &certificate}, {"--tls-key", &key}, {"--tls-ca", &ca}};
  for (auto& [option, path] : files) {
    if (path->empty())
      return make_error(errc::invalid_experiment,
                        fmt::format("{} is missing: TLS needs --tls-cert, "
                                    "--tls-key and --tls-ca together",
                                    option));
    if (!std::filesystem::is_regular_file(*path))
      return make_error(
          errc::invalid_experiment,
          fmt::format("{}: {} is not a readable file", option, *path));
  }
  return {};
}

void configure_system(caf::actor_system_config& cfg, bool network,
                      const tls_options& tls, double peer_timeout_seconds) {
  cfg.add_message_types<caf::id_block::actortrain>();
  cfg.add_message_types<caf::id_block::actortrain_session>();
  cfg.add_error_category(
      caf::atom("actortrain"),
      [](uint8_t code, caf::atom_value cat, const caf::message& ctx) {
        return to_string_pretty(caf::error{code, cat, ctx});
      });
  // Work sharing wakes an idle worker through a condition variable at once;
  // work stealing polls with sleeps, which adds up to milliseconds to every
  // hop of a quantum when messages are sparse (docs/benchmarks.md).
  cfg.set("scheduler.policy", caf::atom("sharing"));
  if (!network)
    return;
  cfg.load<caf::io::middleman>();
  // A machine that lost power or a frozen process closes no connection:
  // without heartbeats and a timeout its peers would wait for it for ever.
  auto span = [](double seconds) {
    return caf::timespan{std::chrono::duration_cast<caf::timespan>(
        std::chrono::duration<double>(seconds))};
  };
  cfg.set("middleman.heartbeat-interval", span(heartbeat_seconds));
  cfg.set("middleman.connection-timeout", span(peer_timeout_seconds));
  if (tls.enabled()) {
    cfg.load<caf::openssl::manager>();
    cfg.openssl_certificate = tls.certificate;
    cfg.openssl_key = tls.key;
    cfg.openssl_cafile = tls.ca;
  }
}

} // namespace actortrain
