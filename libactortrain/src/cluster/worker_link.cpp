#include "cluster/worker_link.hpp"

#include <algorithm>
#include <chrono>
#include <set>
#include <unordered_set>

#include <caf/after.hpp>
#include <caf/exit_reason.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/sec.hpp>
#include <fmt/format.h>

#include "actortrain/error.hpp"
#include "protocol/slot.hpp"
#include "protocol/type_ids.hpp"

namespace actortrain {

bool refused_by_worker(const caf::error& err) {
  return err && err.category() == caf::atom("actortrain");
}

namespace {

using link_actor = caf::stateful_actor<worker_link_state>;

/// Tells the listener that this attempt failed, or tries again in a second.
void attempt_failed(link_actor* self, caf::error err, bool refused) {
  auto& st = self->state;
  if (refused || !st.retry) {
    self->send(st.listener, joined_atom_v, st.address, std::move(err), refused);
    self->quit();
    return;
  }
  self->delayed_send(self, std::chrono::seconds{1}, tick_atom_v);
}

void ask_to_join(link_actor* self, worker_node_actor node);

/// Sends the worker the run's data from byte `offset` on, a chunk at a
/// time (each acknowledged), then asks it to join again.
void send_data(link_actor* self, worker_node_actor node, uint64_t offset) {
  auto& st = self->state;
  auto attempt = st.attempt;
  auto bytes = st.shipment->bytes();
  auto n =
      std::min<uint64_t>(data_shipment::chunk_bytes, bytes->size() - offset);
  std::vector<char> chunk(bytes->begin() + static_cast<std::ptrdiff_t>(offset),
                          bytes->begin() +
                              static_cast<std::ptrdiff_t>(offset + n));
  bool last = offset + n == bytes->size();
  self->request(node, join_timeout, data_atom_v, st.shipment->hash(), offset,
                std::move(chunk), last)
      .then(
          [=](uint64_t) {
            if (attempt != self->state.attempt)
              return;
            self->state.shipped_bytes = offset + n;
            if (last)
              ask_to_join(self, node);
            else
              send_data(self, node, offset + n);
          },
          [=](caf::error& err) {
            if (attempt != self->state.attempt)
              return;
            attempt_failed(self,
                           make_error(errc::cluster_failed,
                                      fmt::format("worker {} could not take "
                                                  "the run's data: {}",
                                                  self->state.address,
                                                  to_string_pretty(err))),
                           refused_by_worker(err));
          });
}

/// The node answered the connection: ask it to join. The middleman hands
/// out its cached connection to a worker that just died until it has seen
/// that worker go: a join sent there is never answered. Monitoring the node
/// tells at once (a dead node's down message comes straight away), and the
/// link tries again.
void ask_to_join(link_actor* self, worker_node_actor node) {
  auto& st = self->state;
  auto attempt = st.attempt;
  st.asked = node.address();
  self->monitor(node);
  self->request(node, join_timeout, join_atom_v, wire_version, st.setup)
      .then(
          [=](std::vector<slot_grant>& slots) {
            auto& st = self->state;
            if (attempt != st.attempt)
              return;
            self->send(st.listener, joined_atom_v, st.address, node,
                       std::move(slots), st.shipped_bytes);
            self->quit();
          },
          [=](caf::error& err) {
            auto& st = self->state;
            if (attempt != st.attempt)
              return;
            // It lacks the data and keeps what it is sent: once.
            if (is(err, errc::data_needed) && st.shipment && !st.shipped) {
              st.shipped = true;
              send_data(self, node, 0);
              return;
            }
            bool refused = refused_by_worker(err);
            if (is(err, errc::data_needed))
              err = make_error(errc::data_needed,
                               st.shipment ? "it did not take the run's data"
                                           : "it lacks the run's data and "
                                             "none can be sent");
            attempt_failed(self,
                           make_error(errc::cluster_failed,
                                      fmt::format("worker {} refused to join: "
                                                  "{}",
                                                  self->state.address,
                                                  to_string_pretty(err))),
                           refused);
          });
}

/// Connects to the worker (st.where) and asks it to join; CAF's handshake
/// may take until st.handshake_deadline.
void connect(link_actor* self) {
  auto& st = self->state;
  auto attempt = st.attempt;
  auto deadline = st.handshake_deadline;
  // The middleman's own connect, as remote_actor does it, but with a
  // timeout: remote_actor waits for the handshake for ever.
  auto& sys = self->system();
  auto mm = st.tls ? sys.openssl_manager().actor_handle()
                   : sys.middleman().actor_handle();
  // A worker answers CAF's handshake at once; another program (a web
  // server, a listener that never reads) never does, and must not hang
  // the run.
  auto left = std::max(std::chrono::duration_cast<caf::timespan>(
                           deadline - std::chrono::steady_clock::now()),
                       caf::timespan{std::chrono::milliseconds{1}});
  self->request(mm, left, caf::connect_atom_v, st.where.host, st.where.port)
      .then(
          [=](caf::node_id&, caf::strong_actor_ptr& ptr,
              std::set<std::string>& ifs) {
            if (!ptr) {
              attempt_failed(self,
                             make_error(errc::cluster_failed,
                                        fmt::format("cannot connect to worker "
                                                    "{}: the program there "
                                                    "offers no actortrain "
                                                    "worker",
                                                    self->state.address)),
                             false);
              return;
            }
            // As remote_actor checks it: the published actor speaks the
            // worker protocol of this build.
            if (!self->system().assignable<worker_node_actor>(ifs)) {
              attempt_failed(
                  self,
                  make_error(errc::cluster_failed,
                             fmt::format("worker {} speaks another protocol "
                                         "(an incompatible actortrain "
                                         "version?)",
                                         self->state.address)),
                  true);
              return;
            }
            ask_to_join(self,
                        caf::actor_cast<worker_node_actor>(std::move(ptr)));
          },
          [=](caf::error& err) {
            auto& st = self->state;
            if (attempt != st.attempt)
              return;
            bool in_time = std::chrono::steady_clock::now() < deadline;
            // CAF's heartbeat check (cluster.worker_timeout_seconds) drops a
            // connection whose peer has not sent its handshake by the next
            // heartbeat, however young it is: a worker that answers a moment
            // later must not count as unreachable. Tried again until the
            // handshake's own limit.
            if (err == caf::sec::connection_timeout && in_time) {
              self->delayed_send(self, std::chrono::milliseconds{20},
                                 tick_atom_v, attempt);
              return;
            }
            auto why =
                err == caf::sec::request_timeout ||
                        err == caf::sec::connection_timeout
                    ? fmt::format("worker {} accepted the connection but did "
                                  "not answer actortrain's handshake within "
                                  "{} s{} (is another program listening "
                                  "there? cluster.handshake_seconds)",
                                  st.address,
                                  st.setup.exp.cluster.handshake_seconds,
                                  st.tls ? " over TLS" : "")
                    : fmt::format("cannot connect to worker {}{}: {}",
                                  st.address, st.tls ? " over TLS" : "",
                                  self->system().render(err));
            attempt_failed(self, make_error(errc::cluster_failed, why), false);
          });
}

void attempt(link_actor* self) {
  auto& st = self->state;
  ++st.attempt;
  st.shipped = false;
  if (st.asked) {
    self->demonitor(st.asked);
    st.asked = caf::actor_addr{};
  }
  auto where = parse_address(st.address);
  if (!where) {
    attempt_failed(
        self,
        make_error(errc::cluster_failed,
                   fmt::format("worker '{}' is not host:port", st.address)),
        true);
    return;
  }
  using clock = std::chrono::steady_clock;
  st.where = *where;
  st.handshake_deadline =
      clock::now() +
      std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(
          st.setup.exp.cluster.handshake_seconds));
  connect(self);
}

} // namespace

caf::behavior worker_link(caf::stateful_actor<worker_link_state>* self,
                          std::string address, run_setup setup, bool tls,
                          caf::actor listener, bool retry,
                          std::shared_ptr<data_shipment> shipment) {
  auto& st = self->state;
  st.shipment = std::move(shipment);
  st.address = std::move(address);
  st.setup = std::move(setup);
  st.tls = tls;
  st.listener = std::move(listener);
  st.retry = retry;
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (dm.source != st.asked)
      return;
    st.asked = caf::actor_addr{};
    // Counts as a failed attempt, not a refusal: try again (the middleman
    // forgets the dead connection meanwhile).
    ++st.attempt;
    attempt_failed(self,
                   make_error(errc::cluster_failed,
                              fmt::format("worker {} went away while asked to "
                                          "join",
                                          st.address)),
                   false);
  });
  attempt(self);
  return {
      [=](tick_atom) { attempt(self); },
      [=](tick_atom, uint64_t attempt) {
        if (attempt == self->state.attempt)
          connect(self);
      },
  };
}

std::vector<join_result>
join_workers(caf::actor_system& sys, const std::vector<std::string>& addresses,
             const run_setup& setup, bool tls,
             const std::shared_ptr<std::atomic<bool>>& stop, bool& stopped,
             std::shared_ptr<data_shipment> shipment) {
  stopped = false;
  std::vector<join_result> results(addresses.size());
  caf::scoped_actor self{sys};
  std::vector<caf::actor> links;
  for (size_t i = 0; i < addresses.size(); ++i) {
    results[i].address = addresses[i];
    results[i].joined = make_error(
        errc::run_aborted,
        fmt::format("stopped before worker {} answered", addresses[i]));
    links.push_back(sys.spawn(worker_link, addresses[i], setup, tls,
                              caf::actor{self}, false, shipment));
  }
  // Two entries for one address answer in turn.
  std::unordered_set<size_t> answered;
  auto slot_of = [&](const std::string& address) {
    for (size_t i = 0; i < addresses.size(); ++i)
      if (addresses[i] == address && answered.count(i) == 0) {
        answered.insert(i);
        return i;
      }
    return addresses.size();
  };
  while (answered.size() < addresses.size() && !stopped) {
    self->receive(
        [&](joined_atom, std::string& address, worker_node_actor& node,
            std::vector<slot_grant>& slots, uint64_t data_bytes) {
          auto i = slot_of(address);
          if (i < results.size())
            results[i].joined = joined_worker{address, std::move(node),
                                              std::move(slots), data_bytes};
        },
        [&](joined_atom, std::string& address, caf::error& err, bool refused) {
          auto i = slot_of(address);
          if (i < results.size()) {
            results[i].joined = std::move(err);
            results[i].refused = refused;
          }
        },
        caf::after(std::chrono::milliseconds{100}) >>
            [&] { stopped = stop && stop->load(); });
  }
  if (stopped)
    for (auto& link : links)
      self->send_exit(link, caf::exit_reason::user_shutdown);
  return results;
}

join_result join_worker(caf::actor_system& sys, const std::string& address,
                        const run_setup& setup, bool tls,
                        std::shared_ptr<data_shipment> shipment) {
  bool stopped = false;
  return std::move(join_workers(sys, {address}, setup, tls, nullptr, stopped,
                                std::move(shipment))
                       .front());
}

} // namespace actortrain
