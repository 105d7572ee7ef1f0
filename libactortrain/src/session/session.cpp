#include "actortrain/session.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <unordered_map>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <fmt/format.h>

#include "actors/coordinator.hpp"
#include "actors/ensembles.hpp"
#include "actortrain/error.hpp"
#include "actortrain/store.hpp"
#include "cluster/system_config.hpp"
#include "platform/blas_kernels.hpp"
#include "protocol/slot.hpp"
#include "protocol/type_ids.hpp"
#include "run/run_folder.hpp"
#include "scheduling/search_rule.hpp"
#include "session/session_core.hpp"
#include "session/session_setup.hpp"
#include "setup/run_context.hpp"

namespace fs = std::filesystem;

namespace actortrain {

// -- the core ---------------------------------------------------------------

namespace {

caf::error not_submitted(uint64_t id) {
  return make_error(
      errc::invalid_handle,
      fmt::format("network {} was not submitted to this session", id));
}

} // namespace

namespace detail {

session_core::session_core() : dispatcher([this] { dispatch(); }) {}

session_core::~session_core() {
  {
    std::lock_guard<std::mutex> g{queue_mx};
    stopping = true;
  }
  queue_cv.notify_all();
  // A continuation that drops the last handle of its session ends here,
  // on the dispatcher itself: it cannot join itself.
  if (dispatcher.get_id() == std::this_thread::get_id())
    dispatcher.detach();
  else
    dispatcher.join();
}

void session_core::post(std::function<void()> f) {
  {
    std::lock_guard<std::mutex> g{queue_mx};
    queue.push_back(std::move(f));
  }
  queue_cv.notify_one();
}

void session_core::dispatch() {
  std::unique_lock<std::mutex> g{queue_mx};
  for (;;) {
    queue_cv.wait(g, [&] { return stopping || !queue.empty(); });
    if (queue.empty())
      return;
    auto f = std::move(queue.front());
    queue.pop_front();
    g.unlock();
    f();
    g.lock();
  }
}

void session_core::on_epochs(const std::vector<epoch_metrics>& epochs) {
  {
    std::lock_guard<std::mutex> g{mx};
    for (const auto& m : epochs)
      if (auto it = entries.find(m.network_id); it != entries.end())
        if (m.epoch >= it->second.latest.epoch)
          it->second.latest = m;
    ++epochs_stored;
  }
  cv.notify_all();
}

void session_core::on_outcome(const network_result& r) {
  std::vector<continuation> waiting;
  {
    std::lock_guard<std::mutex> g{mx};
    auto it = entries.find(r.id);
    if (it == entries.end())
      return;
    it->second.result = r;
    waiting = std::move(it->second.waiting);
    it->second.waiting.clear();
  }
  cv.notify_all();
  for (auto& f : waiting)
    post([f = std::move(f), r] { f(r); });
}

void session_core::end(caf::error why) {
  std::vector<std::pair<continuation, caf::error>> waiting;
  {
    std::lock_guard<std::mutex> g{mx};
    if (ended)
      return;
    ended = true;
    ended_reason = std::move(why);
    for (auto& [id, e] : entries)
      if (!e.result)
        for (auto& f : e.waiting)
          waiting.emplace_back(std::move(f), result_locked(id).error());
  }
  cv.notify_all();
  for (auto& [f, err] : waiting)
    post([f = std::move(f), err] { f(err); });
}

caf::expected<network_result> session_core::result_locked(uint64_t id) const {
  auto it = entries.find(id);
  if (it == entries.end())
    return not_submitted(id);
  if (it->second.result)
    return *it->second.result;
  return make_error(errc::session_closed,
                    fmt::format("{} has no result: the session ended before "
                                "it was done ({})",
                                it->second.name,
                                to_string_pretty(ended_reason)));
}

bool session_core::done_locked(uint64_t id) const {
  auto it = entries.find(id);
  return ended || (it != entries.end() && it->second.result);
}

} // namespace detail

// -- handles ----------------------------------------------------------------

namespace {

caf::error no_session() {
  return make_error(errc::invalid_handle,
                    "the network handle belongs to no session (default "
                    "constructed)");
}

const std::string& empty_name() {
  static const std::string name;
  return name;
}

} // namespace

const std::string& network_handle::name() const noexcept {
  if (!core_)
    return empty_name();
  std::lock_guard<std::mutex> g{core_->mx};
  auto it = core_->entries.find(id_);
  // Entries are never removed: the reference stays valid.
  return it == core_->entries.end() ? empty_name() : it->second.name;
}

network_status network_handle::status() const {
  if (!core_)
    return network_status::pending;
  std::lock_guard<std::mutex> g{core_->mx};
  const auto& e = core_->entries.at(id_);
  return e.result ? e.result->status : network_status::pending;
}

bool network_handle::done() const {
  if (!core_)
    return false;
  std::lock_guard<std::mutex> g{core_->mx};
  return core_->entries.at(id_).result.has_value();
}

epoch_metrics network_handle::latest() const {
  if (!core_)
    return {};
  std::lock_guard<std::mutex> g{core_->mx};
  return core_->entries.at(id_).latest;
}

caf::expected<network_result> network_handle::wait() const {
  if (!core_)
    return no_session();
  std::unique_lock<std::mutex> g{core_->mx};
  core_->cv.wait(g, [&] { return core_->done_locked(id_); });
  return core_->result_locked(id_);
}

std::optional<caf::expected<network_result>>
network_handle::wait_for(std::chrono::milliseconds timeout) const {
  if (!core_)
    return caf::expected<network_result>{no_session()};
  std::unique_lock<std::mutex> g{core_->mx};
  if (!core_->cv.wait_for(g, timeout, [&] { return core_->done_locked(id_); }))
    return std::nullopt;
  return core_->result_locked(id_);
}

void network_handle::then(
    std::function<void(const caf::expected<network_result>&)> f) const {
  if (!core_) {
    f(no_session());
    return;
  }
  std::unique_lock<std::mutex> g{core_->mx};
  if (core_->done_locked(id_)) {
    auto r = core_->result_locked(id_);
    g.unlock();
    f(r);
    return;
  }
  core_->entries.at(id_).waiting.push_back(std::move(f));
}

caf::expected<caf::actor>
network_handle::coordinator_unless_done(const char* what) const {
  if (!core_)
    return no_session();
  std::lock_guard<std::mutex> g{core_->mx};
  if (core_->entries.at(id_).result)
    return caf::actor{};
  if (core_->ended || !core_->coordinator)
    return make_error(errc::session_closed,
                      fmt::format("the session is closed: {}", what));
  return core_->coordinator;
}

caf::error network_handle::cancel() const {
  auto coordinator = coordinator_unless_done("nothing can be cancelled");
  if (!coordinator)
    return coordinator.error();
  if (*coordinator)
    caf::anon_send(*coordinator, cancel_atom_v, id_);
  return {};
}

caf::error network_handle::set_priority(double priority) const {
  if (!core_)
    return no_session();
  if (!std::isfinite(priority))
    return make_error(
        errc::invalid_experiment,
        fmt::format("set_priority: {} is not a finite number", priority));
  auto coordinator = coordinator_unless_done("no priority can be changed");
  if (!coordinator)
    return coordinator.error();
  if (*coordinator)
    caf::anon_send(*coordinator, priority_atom_v, id_, priority);
  return {};
}

caf::expected<size_t> wait_any(const std::vector<network_handle>& handles,
                               std::chrono::milliseconds timeout) {
  if (handles.empty())
    return make_error(errc::invalid_handle, "wait_any: no handles given");
  auto core = handles.front().core_;
  for (const auto& h : handles) {
    if (!h.core_)
      return no_session();
    if (h.core_ != core)
      return make_error(errc::invalid_handle,
                        "wait_any: the handles belong to different sessions");
  }
  std::unique_lock<std::mutex> g{core->mx};
  std::optional<size_t> found;
  auto any_done = [&] {
    for (size_t i = 0; i < handles.size(); ++i)
      if (core->done_locked(handles[i].id_)) {
        found = i;
        return true;
      }
    return false;
  };
  if (!core->cv.wait_for(g, timeout, any_done))
    return make_error(errc::timed_out,
                      fmt::format("wait_any: none of {} networks was done "
                                  "within {} ms",
                                  handles.size(), timeout.count()));
  return *found;
}

caf::expected<std::vector<network_result>>
wait_all(const std::vector<network_handle>& handles) {
  std::vector<network_result> results;
  for (const auto& h : handles) {
    auto r = h.wait();
    if (!r)
      return r.error();
    results.push_back(std::move(*r));
  }
  return results;
}

// -- the metrics stream -----------------------------------------------------

struct metrics_stream::impl {
  std::shared_ptr<detail::session_core> core;
  std::unique_ptr<results_store> store;
  int64_t cursor = 0;
};

metrics_stream::metrics_stream(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

metrics_stream::metrics_stream(metrics_stream&&) noexcept = default;
metrics_stream& metrics_stream::operator=(metrics_stream&&) noexcept = default;
metrics_stream::~metrics_stream() = default;

caf::expected<std::vector<epoch_metrics>>
metrics_stream::next(size_t max, std::chrono::milliseconds timeout) {
  auto& core = *impl_->core;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    uint64_t seen = 0;
    bool ended = false;
    {
      std::lock_guard<std::mutex> g{core.mx};
      seen = core.epochs_stored;
      ended = core.ended;
    }
    // Read after noting what was stored: a batch stored meanwhile is
    // either read now or wakes the wait below.
    auto got = impl_->store->epochs_after(impl_->cursor, max);
    if (!got)
      return got.error();
    if (!got->empty())
      return got;
    if (ended) {
      finished_ = true;
      return got;
    }
    std::unique_lock<std::mutex> g{core.mx};
    if (!core.cv.wait_until(g, deadline, [&] {
          return core.epochs_stored != seen || core.ended;
        }))
      return std::vector<epoch_metrics>{};
  }
}

// -- the session ------------------------------------------------------------

struct session::impl {
  experiment setup;
  session_options opts;
  std::shared_ptr<const dataset> data;
  std::string output_dir;
  std::optional<folder_lock> lock;
  // The system's configuration outlives it.
  caf::actor_system_config config;
  std::unique_ptr<caf::actor_system> system;
  caf::actor coordinator;
  /// Answers session_actor for CAF-native code.
  caf::actor gateway;
  std::shared_ptr<detail::session_core> core =
      std::make_shared<detail::session_core>();
  std::shared_ptr<std::atomic<bool>> stop =
      std::make_shared<std::atomic<bool>>(false);
  /// Submissions take ids and groups in turn.
  std::mutex submit_mx;
  uint64_t next_id = 0;
  int64_t next_group = 0;
  bool closed = false;
  std::optional<caf::expected<run_result>> result;
};

namespace {

/// What a session cannot do, said before anything starts: an adaptive
/// search needs the whole population up front (the setup's,
/// session_options::train_setup). (A custom learner's workers must be built
/// with it: a worker refuses a run whose learner kind is not its own.)
caf::error check_session_setup(const experiment& setup,
                               const session_options& opts) {
  if (!opts.train_setup && search_settings_of(setup).kind != search_kind::none)
    return make_error(errc::invalid_experiment,
                      "scheduler.search: a session that takes submissions "
                      "runs no adaptive search (its decisions need the whole "
                      "population up front: open it with train_setup); "
                      "submit networks and decide from their results "
                      "instead (docs/session.md)");
  return opts.tls.validate();
}

/// The networks the session knows from the start, as entries of its core:
/// the setup's (train_setup) or those stored before; those done keep their
/// stored result.
void add_known(detail::session_core& core, const run_plan& plan,
               const std::vector<network_result>& prior) {
  std::set<uint64_t> done;
  for (const auto* ids :
       {&plan.resumed_finished, &plan.resumed_failed, &plan.resumed_cancelled})
    done.insert(ids->begin(), ids->end());
  std::lock_guard<std::mutex> g{core.mx};
  for (const auto& spec : plan.specs) {
    auto& e = core.entries[spec.id];
    e.name = spec.name;
    e.latest.network_id = spec.id;
  }
  for (const auto& n : prior)
    if (done.count(n.id) > 0)
      core.entries[n.id].result = n;
}

} // namespace

session::session(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

namespace {

struct gateway_state {
  /// Requests waiting for a network's result, by id.
  std::unordered_map<uint64_t,
                     std::vector<caf::typed_response_promise<network_result>>>
      waiting;
  static inline const char* name = "actortrain.session";
};

/// Does `f` to network `id` of `owner` unless it is done: true when done
/// now, false when it was done already.
template <class F>
caf::result<bool> unless_done(session* owner, uint64_t id, F f) {
  auto h = owner->handle(id);
  if (!h)
    return h.error();
  if (h->done())
    return false;
  if (auto err = f(*h))
    return err;
  return true;
}

/// The session's typed interface (session_actor), through the same calls
/// its handles make. Detached: a submission checks and shards its data on
/// this thread, never on the threads the control actors share.
caf::behavior session_gateway(caf::stateful_actor<gateway_state>* self,
                              session* owner) {
  return {
      [=](submit_atom,
          network_config& cfg) -> caf::result<std::vector<uint64_t>> {
        auto handles = owner->submit(std::move(cfg));
        if (!handles)
          return handles.error();
        std::vector<uint64_t> ids;
        for (const auto& h : *handles)
          ids.push_back(h.id());
        return ids;
      },
      [=](wait_atom, uint64_t id) -> caf::result<network_result> {
        auto h = owner->handle(id);
        if (!h)
          return h.error();
        auto rp = self->make_response_promise<network_result>();
        self->state.waiting[id].push_back(rp);
        // Told on the session's own thread; a gateway gone by then is not.
        auto me = self->address();
        h->then([me, id](const caf::expected<network_result>&) {
          if (auto gateway = caf::actor_cast<caf::actor>(me))
            caf::anon_send(gateway, wait_atom_v, id, true);
        });
        return rp;
      },
      [=](wait_atom, uint64_t id, bool) {
        auto it = self->state.waiting.find(id);
        if (it == self->state.waiting.end())
          return;
        auto r = owner->handle(id)->wait_for(std::chrono::milliseconds{0});
        for (auto& rp : it->second) {
          if (r && *r)
            rp.deliver(**r);
          else
            rp.deliver(r ? r->error()
                         : make_error(errc::session_closed,
                                      "the session ended first"));
        }
        self->state.waiting.erase(it);
      },
      [=](cancel_atom, uint64_t id) {
        return unless_done(owner, id,
                           [](const network_handle& h) { return h.cancel(); });
      },
      [=](priority_atom, uint64_t id, double priority) {
        return unless_done(owner, id, [priority](const network_handle& h) {
          return h.set_priority(priority);
        });
      },
  };
}

} // namespace

caf::expected<std::unique_ptr<session>> session::open(const experiment& setup,
                                                      session_options opts) {
  if (auto err = check_session_setup(setup, opts))
    return err;
  if (opts.tune_allocator)
    tune_allocator();
  warn_about_blas(opts.on_event);
  auto ctx = make_run_context(setup, opts.make_learner);
  if (!ctx)
    return ctx.error();
  if (opts.train_setup)
    if (auto err = check_replica_slots(setup, setup.configs()))
      return err;
  auto p = std::make_unique<impl>();
  p->setup = setup;
  p->data = (*ctx)->data;
  if (opts.stop)
    p->stop = opts.stop;
  auto plan = std::make_shared<run_plan>();
  plan->exp = setup;
  plan->data = p->data;
  plan->scripts = (*ctx)->scripts;
  plan->make_learner = opts.make_learner;
  plan->on_event = opts.on_event;
  plan->fixed_population = opts.train_setup;
  if (opts.train_setup) {
    plan->specs = (*ctx)->specs;
    plan->shards = std::move((*ctx)->shards);
    for (const auto& cfg : setup.configs())
      plan->group_labels.push_back(cfg.label.empty() ? "all" : cfg.label);
  }
  ctx->reset();
  bool cluster = !setup.cluster.workers.empty();
  configure_system(p->config, cluster, opts.tls,
                   setup.cluster.worker_timeout_seconds);
  p->system = std::make_unique<caf::actor_system>(p->config);
  // The coordinator exists before the workers join: they serve it, and let
  // go of the run when it goes down.
  p->coordinator = p->system->spawn(actortrain::coordinator, plan);
  struct coordinator_guard {
    caf::actor& coord;
    bool armed = true;
    ~coordinator_guard() {
      if (armed)
        caf::anon_send_exit(coord, caf::exit_reason::user_shutdown);
    }
  } guard{p->coordinator};
  if (cluster)
    if (auto err = join_cluster(*p->system, *plan, p->coordinator,
                                opts.tls.enabled(), p->stop))
      return err;
  p->output_dir = opts.output_dir.empty() ? default_output_dir(setup.name)
                                          : opts.output_dir;
  plan->output_dir = p->output_dir;
  if (auto err =
          lock_output_folder(p->output_dir, setup.output.layout, p->lock))
    return err;
  auto opened = open_run_store(setup, !opts.make_learner, *plan);
  if (!opened)
    return opened.error();
  if (auto err = share_submissions(*p->system, *plan))
    return err;
  p->next_id = opened->next_id;
  p->next_group = opened->next_group;
  plan->on_progress = opts.on_progress;
  plan->progress_interval_seconds = opts.progress_interval_seconds;
  plan->progress_rows = opts.progress_rows;
  plan->stop = p->stop;
  auto core = p->core;
  core->db_path = plan->store->path();
  add_known(*core, *plan, opened->prior);
  plan->on_epochs = [core](const auto& epochs) {
    core->on_epochs(epochs);
  };
  plan->on_outcome = [core](const auto& r) {
    core->on_outcome(r);
  };
  core->coordinator = p->coordinator;
  caf::error failed;
  {
    caf::scoped_actor self{*p->system};
    self->request(p->coordinator, caf::infinite, run_atom_v)
        .receive([](bool) {},
                 [&](caf::error& err) { failed = std::move(err); });
  }
  if (failed)
    return failed;
  guard.armed = false;
  p->opts = std::move(opts);
  std::unique_ptr<session> s{new session(std::move(p))};
  s->impl_->gateway =
      s->impl_->system->spawn<caf::detached>(session_gateway, s.get());
  return s;
}

session::~session() {
  if (!impl_->closed) {
    stop();
    close();
  }
}

caf::expected<std::vector<network_handle>> session::submit(network_config cfg) {
  std::vector<network_config> configs{std::move(cfg)};
  return submit_configs(std::move(configs));
}

caf::expected<std::vector<network_handle>>
session::submit(const experiment& exp) {
  return submit_configs(exp.configs());
}

caf::expected<std::vector<network_handle>>
session::submit_configs(std::vector<network_config> configs) {
  auto& p = *impl_;
  std::lock_guard<std::mutex> g{p.submit_mx};
  if (p.closed)
    return make_error(errc::session_closed,
                      "the session is closed: no more networks can be "
                      "submitted");
  if (p.opts.train_setup)
    return make_error(errc::invalid_experiment,
                      "this session trains its setup's networks only "
                      "(session_options::train_setup): submit to a session "
                      "opened without it");
  for (size_t i = 0; i < configs.size(); ++i)
    if (configs[i].label.empty() && configs.size() == 1)
      configs[i].label =
          fmt::format("submission-{}", p.next_group + static_cast<int64_t>(i));
  if (auto err = check_replica_slots(p.setup, configs))
    return err;
  auto sub = prepare_submission(p.setup, *p.data, std::move(configs), p.next_id,
                                p.next_group, !p.opts.make_learner);
  if (!sub)
    return sub.error();
  std::vector<network_handle> handles;
  {
    // Known before any of them can finish.
    std::lock_guard<std::mutex> cg{p.core->mx};
    for (const auto& spec : sub->specs) {
      p.core->entries[spec.id].name = spec.name;
      handles.push_back(network_handle{p.core, spec.id});
    }
  }
  auto n_specs = sub->specs.size();
  auto n_groups = static_cast<int64_t>(sub->configs.size());
  caf::error failed;
  {
    caf::scoped_actor self{*p.system};
    self->request(p.coordinator, caf::infinite, submit_atom_v, std::move(*sub))
        .receive([](const std::vector<uint64_t>&) {},
                 [&](caf::error& err) { failed = std::move(err); });
  }
  if (failed) {
    std::lock_guard<std::mutex> cg{p.core->mx};
    for (const auto& h : handles)
      p.core->entries.erase(h.id());
    return failed;
  }
  p.next_id += n_specs;
  p.next_group += n_groups;
  return handles;
}

caf::expected<network_handle> session::handle(uint64_t id) const {
  std::lock_guard<std::mutex> g{impl_->core->mx};
  if (impl_->core->entries.count(id) == 0)
    return not_submitted(id);
  return network_handle{impl_->core, id};
}

session_actor session::actor() const {
  return caf::actor_cast<session_actor>(impl_->gateway);
}

std::vector<network_handle> session::networks() const {
  std::vector<uint64_t> ids;
  {
    std::lock_guard<std::mutex> g{impl_->core->mx};
    for (const auto& [id, e] : impl_->core->entries)
      ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  std::vector<network_handle> result;
  for (auto id : ids)
    result.push_back(network_handle{impl_->core, id});
  return result;
}

caf::error session::cancel(const network_handle& h) {
  if (!h.valid())
    return no_session();
  if (h.core_ != impl_->core)
    return make_error(errc::invalid_handle,
                      fmt::format("{} belongs to another session", h.name()));
  return h.cancel();
}

caf::expected<ensemble_result>
session::ensemble(const std::vector<network_handle>& members) const {
  std::vector<uint64_t> finished;
  std::vector<network_spec> specs;
  {
    std::lock_guard<std::mutex> g{impl_->core->mx};
    for (const auto& h : members) {
      if (!h.valid())
        return no_session();
      if (h.core_ != impl_->core)
        return make_error(errc::invalid_handle,
                          fmt::format("ensemble: {} belongs to another "
                                      "session",
                                      h.name()));
      const auto& e = impl_->core->entries.at(h.id());
      if (!e.result || e.result->status != network_status::finished)
        continue;
      finished.push_back(h.id());
      if (specs.size() <= h.id())
        specs.resize(h.id() + 1);
      specs[h.id()].id = h.id();
      specs[h.id()].name = e.name;
    }
  }
  ensemble_result result;
  result.label = "all";
  if (finished.empty())
    return result;
  auto store = results_store::open(impl_->core->db_path);
  if (!store)
    return store.error();
  // One group: the overall ensemble only.
  auto eval =
      evaluate_ensembles(*impl_->data, specs, {"all"}, finished, **store);
  if (!eval.missing.empty())
    return make_error(errc::storage_failed, eval.missing.front());
  if (eval.ensembles.empty())
    return result;
  return eval.ensembles.back();
}

caf::expected<metrics_stream> session::metrics() const {
  auto store = results_store::open(impl_->core->db_path);
  if (!store)
    return store.error();
  auto s = std::make_unique<metrics_stream::impl>();
  s->core = impl_->core;
  s->store = std::move(*store);
  return metrics_stream{std::move(s)};
}

caf::expected<run_result> session::close() {
  auto& p = *impl_;
  {
    std::lock_guard<std::mutex> g{p.submit_mx};
    if (p.closed)
      return p.result ? *p.result
                      : caf::expected<run_result>{make_error(
                            errc::session_closed, "the session is closing")};
    p.closed = true;
  }
  caf::expected<run_result> result{
      make_error(errc::run_aborted, "the session ended without a result")};
  {
    caf::scoped_actor self{*p.system};
    self->request(p.coordinator, caf::infinite, close_atom_v)
        .receive([&](run_result& r) { result = std::move(r); },
                 [&](caf::error& err) { result = std::move(err); });
  }
  p.core->end(result ? make_error(errc::session_closed, "it was closed")
                     : result.error());
  {
    std::lock_guard<std::mutex> g{p.core->mx};
    p.core->coordinator = nullptr;
  }
  // The coordinator shut its actors down; the system ends with them and
  // the gateway.
  caf::anon_send_exit(p.gateway, caf::exit_reason::user_shutdown);
  p.gateway = nullptr;
  p.coordinator = nullptr;
  p.system.reset();
  p.lock.reset();
  p.result = result;
  return result;
}

void session::stop() {
  impl_->stop->store(true);
}

const std::string& session::output_dir() const noexcept {
  return impl_->output_dir;
}

caf::actor_system& session::system() {
  return *impl_->system;
}

caf::actor session::coordinator() const {
  return impl_->coordinator;
}

} // namespace actortrain
