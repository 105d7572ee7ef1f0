#include "training/network_group.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <tuple>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include "fusion/fused_member.hpp"
#include "fusion/fused_model.hpp"
#include "fusion/grouping.hpp"
#include "models/builtin_learner.hpp"
#include "training/data_parallel.hpp"
#include "training/parameter_server.hpp"
#include "training/replica_team.hpp"
#include "training/straggler.hpp"

namespace actortrain {

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

/// Whether a quantum that has trained `steps` steps for `seconds` ends
/// before its next step: its seconds are up, or the run (or the worker
/// running it) is stopping. A stopping quantum still makes one step, so
/// that one granted while the stop spreads is not a round trip for
/// nothing. Ending at any step keeps the results: a network's steps are
/// the same whichever quantum runs them.
bool quantum_over(const quantum_limits& limits, double seconds, int64_t steps) {
  if (limits.seconds > 0 && seconds >= limits.seconds)
    return true;
  return steps > 0 && limits.stopping && limits.stopping->load();
}

} // namespace

network_group::network_group(
    std::vector<std::unique_ptr<network_runner>> members, bool fuse)
    : members_(std::move(members)) {
  for (const auto& m : members_)
    fused_path_.push_back(fuse && trains_fused(fusion_profile(
                                      m->spec(), m->data(), m->train_samples(),
                                      m->custom_learner())));
}

network_group::~network_group() = default;

int64_t network_group::steps_total() const {
  int64_t n = 0;
  for (const auto& m : members_)
    n += m->steps_total();
  return n;
}

trainer_info network_group::info() const {
  const auto& front = *members_.front();
  auto result = front.info();
  result.steps_total = steps_total();
  // The built-in model's multiply-adds per step: the estimator's guess
  // until the group has run.
  result.cost_hint = front.cost_hint();
  for (const auto& m : members_) {
    result.priority =
        std::max(result.priority, m->spec().config.train.priority);
    result.members.push_back(m->spec().id);
    result.member_epochs.push_back(m->spec().config.train.epochs);
    result.member_lrs.push_back(m->spec().config.optimizer.lr);
    result.member_priorities.push_back(m->spec().config.train.priority);
    result.memory_bytes += m->memory_estimate();
  }
  result.slots = slots_needed();
  result.spans_nodes =
      result.slots > 1 &&
      members_.front()->spec().config.train.sync != sync_kind::async;
  return result;
}

bool network_group::split_fused() {
  size_t fused = 0;
  for (size_t i = 0; i < members_.size(); ++i)
    fused += fused_path_[i] && !members_[i]->done() ? 1 : 0;
  auto now = std::min(max_cohort_, fused);
  if (now <= 1)
    return false;
  max_cohort_ = (now + 1) / 2;
  return true;
}

int64_t network_group::device_moves() const {
  int64_t moves = 0;
  for (const auto& m : members_)
    moves += m->device_moves();
  return moves;
}

std::vector<uint64_t> network_group::unfinished() const {
  std::vector<uint64_t> result;
  for (const auto& m : members_)
    if (!m->done())
      result.push_back(m->spec().id);
  return result;
}

std::vector<runner_state> network_group::export_states() {
  std::vector<quantum_outcome> outs(members_.size());
  unstack(outs);
  std::vector<runner_state> states;
  for (auto& m : members_)
    if (!m->done())
      states.push_back(m->export_state());
  return states;
}

void network_group::adopt(const std::vector<uint64_t>& unfinished,
                          std::vector<runner_state> states) {
  // The live models here are stale: the group trained elsewhere since.
  fused_.reset();
  fused_members_.clear();
  for (auto& m : members_) {
    auto id = m->spec().id;
    bool done =
        std::find(unfinished.begin(), unfinished.end(), id) == unfinished.end();
    m->set_done(done);
    auto s =
        std::find_if(states.begin(), states.end(), [id](const runner_state& x) {
          return x.network_id == id;
        });
    if (!done && s != states.end())
      m->import_state(std::move(*s));
  }
}

int64_t network_group::slots_needed() const {
  return members_.size() == 1 ? members_.front()->spec().config.train.replicas
                              : 1;
}

quantum_report network_group::run_quantum(const slot_info& slot,
                                          const quantum_limits& limits,
                                          replica_team* team) {
  auto n = members_.size();
  std::vector<quantum_outcome> outs(n);
  std::vector<network_runner::quantum_mark> marks(n);
  std::vector<size_t> active;
  // On another device than the stacked model's (another GPU), the members
  // get their own learners back and move (network_runner::prepare); the
  // next cohort stacks them there.
  if (!fused_members_.empty() &&
      members_[fused_members_.front()]->device() != torch::Device{slot.device})
    unstack(outs);
  // A PBT copy loads into a network's own learner: a fused member is
  // unstacked first (the next cohort stacks it again).
  for (auto i : fused_members_)
    for (const auto& t : limits.search.transplants)
      if (t.network_id == members_[i]->spec().id) {
        unstack(outs);
        break;
      }
  for (size_t i = 0; i < n; ++i) {
    auto& m = *members_[i];
    if (m.done())
      continue;
    active.push_back(i);
    marks[i] = m.begin_quantum();
    m.evaluate_for_search(limits.search);
    for (const auto& t : limits.search.transplants)
      if (t.network_id == m.spec().id)
        m.transplant(t.learner, t.lr_factor);
    m.guarded(outs[i], [&] {
      m.prepare(slot);
      // The steps a restore brings (a move, a fall back, a resume) are not
      // this quantum's.
      marks[i] = m.begin_quantum();
    });
    // The search stopped it: it finishes where it is, with its weights.
    const auto& stop = limits.search.stop;
    if (m.ready() &&
        std::find(stop.begin(), stop.end(), m.spec().id) != stop.end())
      m.guarded(outs[i],
                [&] { m.conclude(limits, stop_reason::search, outs[i]); });
  }
  // Members at the same step of equally long epochs (so their batches have
  // the same size at every step) form a cohort that can step together.
  std::map<std::tuple<int64_t, int64_t, int64_t>, std::vector<size_t>> cohorts;
  for (auto i : active) {
    const auto& m = *members_[i];
    if (!m.done() && m.ready() && fused_path_[i])
      cohorts[{m.step(), m.train_samples(), m.spec().config.train.batch_size}]
          .push_back(i);
  }
  // After running out of memory, a cohort steps in parts (split_fused).
  for (auto& [key, cohort] : cohorts)
    for (size_t at = 0; at < cohort.size(); at += max_cohort_) {
      std::vector<size_t> part(
          cohort.begin() + static_cast<std::ptrdiff_t>(at),
          cohort.begin() + static_cast<std::ptrdiff_t>(
                               std::min(cohort.size(), at + max_cohort_)));
      if (!run_fused(part, limits, outs))
        for (auto i : part)
          run_alone(i, limits, outs);
    }
  for (auto i : active) {
    if (fused_path_[i])
      continue;
    if (members_[i]->spec().config.train.replicas > 1)
      run_replicated(i, limits, outs, team);
    else
      run_alone(i, limits, outs);
  }
  // PBT: the versions other networks may copy, taken at interval epochs.
  if (auto every = limits.search.keep_every; every > 0)
    for (auto i : active) {
      auto& m = *members_[i];
      if (!m.done() && m.ready())
        m.guarded(outs[i], [&] {
          auto epoch = m.completed_epochs();
          if (epoch > 0 && epoch % every == 0 && m.at_epoch_end()) {
            outs[i].kept_state = m.learner_bytes();
            outs[i].kept_epoch = epoch;
          }
        });
    }
  quantum_report report;
  for (auto i : active) {
    members_[i]->end_quantum(marks[i], outs[i]);
    report.networks.push_back(std::move(outs[i]));
  }
  report.progress = progress(report.networks);
  return report;
}

bool network_group::defer_losses(const network_runner& m) {
  const char* forced = std::getenv("ACTORTRAIN_DEFER_LOSSES");
  if (forced != nullptr && std::string_view{forced} == "1")
    return true;
  if (forced != nullptr && std::string_view{forced} == "0")
    return false;
  return !m.device().is_cpu();
}

void network_group::train_cohort(const std::vector<size_t>& cohort,
                                 const quantum_limits& limits,
                                 const cohort_step& step,
                                 std::vector<quantum_outcome>& outs) {
  auto k = cohort.size();
  std::vector<int64_t> targets;
  for (auto i : cohort)
    targets.push_back(members_[i]->quantum_target(limits));
  std::vector<bool> ended(k, false);
  // Runs `f` for member j; a member that stops or fails in it ends the
  // cohort's quantum after this step.
  bool stop = false;
  auto each = [&](size_t j, auto&& f) {
    auto& m = *members_[cohort[j]];
    m.guarded(outs[cohort[j]], [&] {
      if (auto reason = f(m); reason != stop_reason::none) {
        m.conclude(limits, reason, outs[cohort[j]]);
        ended[j] = true;
      }
    });
    if (m.done() || !m.ready())
      ended[j] = true;
    stop = stop || ended[j];
  };
  // Every member fails this step, as each would have alone.
  // (Those that ended while their earlier steps were booked keep that end.)
  auto fail_all = [&](const std::exception_ptr& e) {
    for (size_t j = 0; j < k; ++j)
      if (!ended[j])
        each(j, [&](network_runner&) -> stop_reason {
          std::rethrow_exception(e);
        });
  };
  // Steps run but not booked yet: on a GPU their losses are read back
  // together (one wait for the device every few steps, not one a step).
  // Booking in order gives every member what booking each step at once
  // would: a member that fails at a step skips the later ones (it goes
  // back to its snapshot), and the others' steps are their own.
  std::vector<stepped> pending;
  auto limit = defer_losses(*members_[cohort.front()]) ? max_pending_steps : 1;
  auto issued = [&](size_t j) {
    return members_[cohort[j]]->step() + static_cast<int64_t>(pending.size());
  };
  double quantum_seconds = 0;
  // Books the pending steps; false when their losses could not be read (a
  // device error: every member fails).
  auto book = [&] {
    if (pending.empty())
      return true;
    auto t0 = clock_type::now();
    std::vector<std::vector<double>> losses;
    try {
      std::vector<step_losses> values;
      for (auto& p : pending)
        values.push_back(std::move(p.losses));
      losses = read_losses(values);
    } catch (const std::exception&) {
      pending.clear();
      fail_all(std::current_exception());
      return false;
    }
    // The wait for the device is the pending steps' compute time too.
    auto wait = seconds_since(t0);
    quantum_seconds += wait;
    auto share = wait / static_cast<double>(pending.size() * k);
    for (size_t p = 0; p < pending.size(); ++p) {
      auto seconds = pending[p].seconds + (pending[p].clocked ? share : 0);
      for (size_t j = 0; j < k; ++j)
        if (!ended[j])
          each(j, [&](network_runner& m) {
            return m.after_step(losses[p][j], seconds, outs[cohort[j]]);
          });
    }
    pending.clear();
    return true;
  };
  int64_t steps = 0;
  while (!stop) {
    for (size_t j = 0; j < k; ++j)
      stop = stop || issued(j) >= targets[j];
    if (stop || quantum_over(limits, quantum_seconds, steps))
      break;
    std::vector<torch::Tensor> batches(k);
    for (size_t j = 0; j < k; ++j)
      each(j, [&](network_runner& m) {
        // Pending steps never cross an epoch's end (booked there), so only
        // a step inside an epoch is asked for ahead of the booked ones.
        return pending.empty() ? m.before_step(batches[j])
                               : m.before_step_at(issued(j), batches[j]);
      });
    if (stop)
      break;
    try {
      pending.push_back(step(batches));
    } catch (const std::exception&) {
      auto e = std::current_exception();
      if (book())
        fail_all(e);
      return;
    }
    quantum_seconds += pending.back().seconds * static_cast<double>(k);
    ++steps;
    bool epoch_end = false;
    for (size_t j = 0; j < k; ++j)
      epoch_end = epoch_end || members_[cohort[j]]->epoch_ends_at(issued(j));
    if (epoch_end || static_cast<int64_t>(pending.size()) >= limit)
      if (!book())
        return;
  }
  if (!book())
    return;
  // The others end their quantum here: done when their budget is (a
  // network resumed at its last step), else a checkpoint when one is due.
  for (size_t j = 0; j < k; ++j) {
    if (ended[j])
      continue;
    auto& m = *members_[cohort[j]];
    auto& out = outs[cohort[j]];
    m.guarded(out, [&] {
      m.conclude(limits,
                 m.step() == m.steps_total() ? stop_reason::epochs
                                             : stop_reason::none,
                 out);
    });
  }
}

void network_group::run_alone(size_t i, const quantum_limits& limits,
                              std::vector<quantum_outcome>& outs) {
  if (std::find(fused_members_.begin(), fused_members_.end(), i) !=
      fused_members_.end())
    unstack(outs);
  auto& m = *members_[i];
  if (!m.ready())
    return;
  auto step = [&m](const std::vector<torch::Tensor>& batches) {
    auto t0 = clock_type::now();
    auto [x, y] = m.gather(batches.front());
    auto& l = m.current_learner();
    stepped result;
    result.losses.values = l.train_step_on_device(x, y);
    // A learner may say how long its step took (tests script it).
    auto scripted = l.last_step_seconds();
    result.clocked = scripted < 0;
    result.seconds = result.clocked ? seconds_since(t0) : scripted;
    return result;
  };
  train_cohort({i}, limits, step, outs);
}

void network_group::run_replicated(size_t i, const quantum_limits& limits,
                                   std::vector<quantum_outcome>& outs,
                                   replica_team* team) {
  auto& m = *members_[i];
  if (!m.ready())
    return;
  auto replicas = static_cast<size_t>(m.spec().config.train.replicas);
  auto* net = dynamic_cast<builtin_learner*>(&m.current_learner());
  auto sync = m.spec().config.train.sync != sync_kind::async;
  // Synchronous replicas take what was granted (a thread here at least, its
  // parts on worker slots too); asynchronous ones a thread per replica here.
  auto fits = team != nullptr &&
              (sync ? team->size() >= 1 &&
                          team->size() + team->remotes().size() <= replicas
                    : team->size() == replicas && team->remotes().empty());
  if (!fits || net == nullptr) {
    m.guarded(outs[i], [&] {
      throw std::runtime_error(fmt::format(
          "train.replicas = {} needs {} slots granted together{}", replicas,
          replicas, net == nullptr ? " and a built-in model" : ""));
    });
    return;
  }
  if (m.spec().config.train.sync == sync_kind::async) {
    run_async(i, *net, limits, outs, *team);
    return;
  }
  if (!parallel_ || parallel_->replicas() != replicas)
    parallel_ = std::make_unique<data_parallel_step>(replicas);
  auto step = [&](const std::vector<torch::Tensor>& batches) {
    auto t0 = clock_type::now();
    // The learner may have been rebuilt (a retry, a resume): look it up.
    auto& learner = dynamic_cast<builtin_learner&>(m.current_learner());
    auto loss = (*parallel_)(m.spec().id, learner, m.data(), batches.front(),
                             m.device(), *team);
    stepped result;
    result.losses.values = torch::tensor({loss}, torch::kFloat64);
    result.seconds = seconds_since(t0);
    return result;
  };
  train_cohort({i}, limits, step, outs);
}

void network_group::run_async(size_t i, builtin_learner& master,
                              const quantum_limits& limits,
                              std::vector<quantum_outcome>& outs,
                              replica_team& team) {
  auto& m = *members_[i];
  auto& out = outs[i];
  const auto& train = m.spec().config.train;
  if (!server_)
    server_ = std::make_unique<parameter_server>(team.size(), train.staleness);
  auto& server = *server_;
  server.forget_steps();
  auto target = m.quantum_target(limits);
  // Everything below `mx` is the server's and the runner's bookkeeping;
  // the replicas' passes run outside it.
  std::mutex mx;
  int64_t issued = m.step();
  const int64_t first = issued;
  bool stop = false;
  auto reason = stop_reason::none;
  double quantum_seconds = 0;
  auto last = clock_type::now();
  bool threw = false;
  m.guarded(out, [&] {
    server.attach(master, m.device());
    const auto& slow = straggler::from_environment();
    // A failure is the runner's to retry (guarded): no conclusion here.
    try {
      team.run_all([&](size_t r) {
        for (;;) {
          int64_t step = 0;
          torch::Tensor batch;
          int64_t version = 0;
          {
            std::lock_guard<std::mutex> lock{mx};
            if (stop || issued >= target ||
                quantum_over(limits, quantum_seconds, issued - first))
              return;
            auto why = m.before_step_at(issued, batch);
            if (why != stop_reason::none) {
              stop = true;
              reason = why;
              return;
            }
            step = issued++;
            version = server.pull(r);
          }
          auto [x, y] = m.gather(batch);
          for (;;) {
            auto started = clock_type::now();
            auto loss = master.loss_of(server.forward(r, x), y);
            loss.backward();
            auto value = loss.item<double>();
            slow.pace(r, started);
            std::lock_guard<std::mutex> lock{mx};
            // A step in flight when the network stopped is dropped: the next
            // quantum hands out the steps after the booked ones again.
            if (stop)
              return;
            auto verdict = server.push(r, step, version);
            if (verdict == parameter_server::verdict::stale) {
              version = server.pull(r);
              continue;
            }
            if (verdict == parameter_server::verdict::duplicate)
              break;
            // One update's share of the time: the wall time since the last.
            auto now = clock_type::now();
            auto seconds = std::chrono::duration<double>(now - last).count();
            last = now;
            quantum_seconds += seconds;
            try {
              auto why = m.after_step(value, seconds, out);
              if (why != stop_reason::none) {
                stop = true;
                reason = why;
              }
            } catch (...) {
              stop = true;
              throw;
            }
            break;
          }
        }
      });
    } catch (...) {
      threw = true;
      throw;
    }
  });
  out.staleness = server.take_counts(m.spec().id);
  if (threw || m.done() || !m.ready())
    return;
  if (reason == stop_reason::none && m.step() == m.steps_total())
    reason = stop_reason::epochs;
  m.guarded(out, [&] { m.conclude(limits, reason, out); });
}

bool network_group::run_fused(const std::vector<size_t>& cohort,
                              const quantum_limits& limits,
                              std::vector<quantum_outcome>& outs) {
  if (fused_members_ != cohort) {
    unstack(outs);
    if (!stack(cohort))
      return false;
  }
  auto k = static_cast<int64_t>(cohort.size());
  const auto& first = *members_[cohort.front()];
  auto sample_shape = first.data().train_x.sizes().slice(1).vec();
  auto step = [&](const std::vector<torch::Tensor>& batches) {
    auto t0 = clock_type::now();
    auto b = batches.front().size(0);
    std::vector<int64_t> shape{k, b};
    shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
    // The members' batches gathered on the device at once: every member of
    // a cohort has the same data and device.
    auto [x, y] = first.gather(torch::cat(batches));
    x = x.view(shape);
    y = y.view({k, b});
    stepped result;
    result.losses = fused_->train_step_on_device(x, y);
    result.seconds = seconds_since(t0) / static_cast<double>(k);
    return result;
  };
  train_cohort(cohort, limits, step, outs);
  // A member that finished or failed has left the fused model (its learner
  // is gone): the others get their own learners back, and the next quantum
  // stacks whoever is left. The model is no longer trustworthy after a
  // failed step either.
  if (!std::all_of(cohort.begin(), cohort.end(),
                   [&](size_t i) { return members_[i]->ready(); }))
    unstack(outs);
  return true;
}

bool network_group::stack(const std::vector<size_t>& cohort) {
  std::vector<builtin_learner*> learners;
  for (auto i : cohort) {
    auto* b = dynamic_cast<builtin_learner*>(&members_[i]->current_learner());
    if (b == nullptr || !fused_model::can_fuse(*b))
      return false;
    learners.push_back(b);
  }
  std::shared_ptr<fused_model> model;
  try {
    model = std::make_shared<fused_model>(learners);
  } catch (const std::invalid_argument&) {
    return false;
  }
  for (size_t k = 0; k < cohort.size(); ++k) {
    auto& m = *members_[cohort[k]];
    auto make_blank = [&m] {
      // Its initial weights are overwritten at once: any seed will do.
      auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
      learner_context ctx{m.spec(), m.data(), m.device(), gen};
      return std::make_unique<builtin_learner>(ctx);
    };
    m.swap_learner(std::make_unique<fused_member>(
        model, static_cast<int64_t>(k), make_blank));
  }
  fused_ = std::move(model);
  fused_members_ = cohort;
  return true;
}

void network_group::unstack(std::vector<quantum_outcome>& outs) {
  for (auto i : fused_members_) {
    auto& m = *members_[i];
    if (!m.ready())
      continue;
    auto* member = dynamic_cast<fused_member*>(&m.current_learner());
    if (member == nullptr)
      continue;
    m.guarded(outs[i], [&] { m.swap_learner(member->unstack()); });
  }
  fused_.reset();
  fused_members_.clear();
}

progress_report
network_group::progress(const std::vector<quantum_outcome>& outs) const {
  progress_report p;
  p.network_id = id();
  p.finished = true;
  double seconds = 0;
  double loss_sum = 0;
  int64_t losses = 0;
  for (const auto& m : members_) {
    p.steps_done += m->step();
    p.steps_total += m->steps_total();
    p.finished = p.finished && m->done();
    p.pinned = p.pinned || (!m->done() && !m->state_movable());
    seconds += m->train_seconds();
  }
  for (const auto& o : outs) {
    for (const auto& e : o.epochs)
      p.epochs.push_back(e);
    if (o.progress.finished)
      p.done.push_back(o.progress.network_id);
    p.quantum_steps += o.progress.quantum_steps;
    p.quantum_seconds += o.progress.quantum_seconds;
    p.epoch = std::max(p.epoch, o.progress.epoch);
    if (std::isfinite(o.progress.loss)) {
      loss_sum += o.progress.loss;
      ++losses;
    }
  }
  if (losses > 0)
    p.loss = loss_sum / static_cast<double>(losses);
  p.seconds_per_step =
      p.steps_done > 0 ? seconds / static_cast<double>(p.steps_done) : 0;
  return p;
}

} // namespace actortrain
