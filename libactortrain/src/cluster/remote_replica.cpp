#include "cluster/remote_replica.hpp"

#include <future>
#include <mutex>
#include <optional>

#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>

#include "actortrain/error.hpp"
#include "protocol/type_ids.hpp"

namespace actortrain {

namespace {

using outcome = caf::expected<replica_gradient>;

/// Where the actor hands a part's outcome to the waiting leader.
struct channel {
  std::mutex mx;
  std::optional<std::promise<outcome>> pending;
  /// Set once the slot is gone: every later part fails at once.
  caf::error lost;

  std::future<outcome> expect() {
    std::lock_guard<std::mutex> guard{mx};
    std::promise<outcome> p;
    auto f = p.get_future();
    if (lost)
      p.set_value(outcome{lost});
    else
      pending = std::move(p);
    return f;
  }

  void deliver(outcome x) {
    std::lock_guard<std::mutex> guard{mx};
    if (pending) {
      pending->set_value(std::move(x));
      pending.reset();
    }
  }

  void lose(caf::error why) {
    {
      std::lock_guard<std::mutex> guard{mx};
      lost = why;
    }
    deliver(outcome{std::move(why)});
  }
};

caf::behavior bridge(caf::event_based_actor* self, slot_executor_actor exec,
                     std::shared_ptr<channel> ch) {
  self->monitor(exec);
  self->set_down_handler([=](caf::down_msg&) {
    ch->lose(make_error(errc::cluster_failed,
                        "the worker's slot was lost mid-step"));
    self->quit();
  });
  return {
      [=](replica_atom, replica_work& work) {
        self->request(exec, caf::infinite, replica_atom_v, std::move(work))
            .then(
                [=](replica_gradient& g) {
                  ch->deliver(outcome{std::move(g)});
                },
                [=](caf::error& err) { ch->deliver(outcome{std::move(err)}); });
      },
  };
}

class remote_replica : public remote_part {
public:
  remote_replica(caf::actor_system& sys, slot_executor_actor exec)
      : ch_(std::make_shared<channel>()),
        bridge_(sys.spawn(bridge, std::move(exec), ch_)) {}

  ~remote_replica() override {
    caf::anon_send_exit(bridge_, caf::exit_reason::user_shutdown);
  }

  void send(replica_work work) override {
    waiting_ = ch_->expect();
    caf::anon_send(bridge_, replica_atom_v, std::move(work));
  }

  caf::expected<replica_gradient> receive() override {
    if (!waiting_.valid())
      return make_error(errc::cluster_failed, "no part was sent");
    return waiting_.get();
  }

private:
  std::shared_ptr<channel> ch_;
  caf::actor bridge_;
  std::future<outcome> waiting_;
};

} // namespace

std::shared_ptr<remote_part> make_remote_replica(caf::actor_system& sys,
                                                 slot_executor_actor executor) {
  return std::make_shared<remote_replica>(sys, std::move(executor));
}

} // namespace actortrain
