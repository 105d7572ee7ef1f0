#include "cluster/worker_link.hpp"

#include <chrono>

#include <caf/after.hpp>
#include <caf/exit_reason.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/remote_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <fmt/format.h>

#include "actortrain/error.hpp"
#include "protocol/type_ids.hpp"

namespace actortrain {

namespace {

/// A worker loads its data before it answers a join.
constexpr auto join_timeout = std::chrono::seconds{30};

} // namespace

caf::expected<joined_worker> join_worker(caf::actor_system& sys,
                                         const std::string& address,
                                         const run_setup& setup, bool tls,
                                         bool& refused) {
  refused = false;
  auto where = parse_address(address);
  if (!where) {
    refused = true;
    return make_error(errc::cluster_failed,
                      fmt::format("worker '{}' is not host:port", address));
  }
  auto node = tls ? caf::openssl::remote_actor(sys, where->host, where->port)
                  : sys.middleman().remote_actor(where->host, where->port);
  if (!node)
    return make_error(errc::cluster_failed,
                      fmt::format("cannot connect to worker {}{}: {}", address,
                                  tls ? " over TLS" : "",
                                  sys.render(node.error())));
  caf::expected<joined_worker> result{caf::error{}};
  caf::scoped_actor self{sys};
  self->request(*node, join_timeout, join_atom_v, setup)
      .receive(
          [&](std::vector<slot_grant>& slots) {
            result = joined_worker{address, *node, std::move(slots)};
          },
          [&](caf::error& err) {
            refused = err.category() == caf::atom("actortrain");
            result = make_error(errc::cluster_failed,
                                fmt::format("worker {} refused to join: {}",
                                            address, to_string_pretty(err)));
          });
  return result;
}

void worker_link(caf::blocking_actor* self, std::string address,
                 run_setup setup, bool tls, caf::actor coordinator) {
  bool stop = false;
  while (!stop) {
    bool refused = false;
    auto joined = join_worker(self->system(), address, setup, tls, refused);
    if (joined) {
      self->send(coordinator, joined_atom_v, address, joined->node,
                 std::move(joined->slots));
      return;
    }
    if (refused) {
      self->send(coordinator, joined_atom_v, address, joined.error());
      return;
    }
    self->receive([&](caf::exit_msg&) { stop = true; },
                  caf::after(std::chrono::seconds{1}) >> [] {});
  }
}

} // namespace actortrain
