#include <chrono>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/after.hpp>
#include <caf/exit_reason.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/publish.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/spawn_options.hpp>
#include <fmt/format.h>

#include "actortrain/cluster.hpp"
#include "actortrain/error.hpp"
#include "cluster/data_cache.hpp"
#include "cluster/system_config.hpp"
#include "cluster/worker_node.hpp"
#include "platform/blas_kernels.hpp"
#include "protocol/slot.hpp"
#include "protocol/type_ids.hpp"
#include "setup/devices.hpp"

namespace actortrain {

namespace {

/// Whether `bind` is reachable only from this machine.
bool loopback(const std::string& bind) {
  return bind.rfind("127.", 0) == 0 || bind == "::1" || bind == "localhost";
}

} // namespace

caf::error run_worker(worker_options opts) {
  if (auto err = opts.tls.validate())
    return err;
  // A device this node does not have is refused before it listens.
  if (auto devices = slot_devices(opts.devices, opts.slots, 1); !devices)
    return devices.error();
  // So is a data cache it cannot write.
  if (!opts.cache_dir.empty())
    if (auto err = data_cache{opts.cache_dir}.check_writable())
      return err;
  if (auto problem =
          peer_timeout_problem(opts.coordinator_timeout_seconds,
                               "the coordinator timeout", "coordinators");
      !problem.empty())
    return make_error(errc::invalid_experiment, problem);
  caf::actor_system_config cfg;
  configure_system(cfg, true, opts.tls, opts.coordinator_timeout_seconds);
  caf::actor_system sys{cfg};
  auto port = opts.port;
  auto bind = opts.bind;
  auto tls = opts.tls.enabled();
  auto on_listening = opts.on_listening;
  auto stop = opts.stop;
  auto on_event = opts.on_event;
  warn_about_blas(on_event);
  auto node = sys.spawn<caf::detached>(worker_node, std::move(opts));
  // Reusing the address: a worker restarted after a crash gets its port
  // back at once, while the old connections still linger in TIME_WAIT.
  auto published =
      tls ? caf::openssl::publish(node, port, bind.c_str(), true)
          : sys.middleman().publish(node, port, bind.c_str(), true);
  if (!published) {
    caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
    return make_error(errc::cluster_failed,
                      fmt::format("cannot listen on {}:{}: {}", bind, port,
                                  sys.render(published.error())));
  }
  if (!tls && !loopback(bind) && on_event)
    on_event(fmt::format(
        "warning: listening on {}:{} without TLS: anyone who can reach this "
        "port can make this worker join their run, read files at the paths "
        "they name and train; use --tls-cert, --tls-key and --tls-ca, or "
        "listen on 127.0.0.1",
        bind.empty() ? "*" : bind, *published));
  if (on_listening)
    on_listening(*published);
  caf::scoped_actor self{sys};
  self->monitor(node);
  bool done = false;
  bool stopping = false;
  while (!done) {
    self->receive([&](caf::down_msg&) { done = true; },
                  caf::after(std::chrono::milliseconds{100}) >>
                      [&] {
                        if (stop && stop->load() && !stopping) {
                          stopping = true;
                          self->send_exit(node,
                                          caf::exit_reason::user_shutdown);
                        }
                      });
  }
  // Stop listening, then give the middleman a moment to finish with the
  // coordinator's connection before the actor system shuts down: without
  // it, a worker whose coordinator had just left hung in the system's
  // destructor in about 6% of exits (its run's detached actors never
  // destroyed; 0 of 200 with the pause, docs/cluster.md).
  sys.middleman().unpublish(node, *published);
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  return {};
}

} // namespace actortrain
