#include "network_group.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <tuple>

#include <ATen/CPUGeneratorImpl.h>

#include "builtin_learner.hpp"
#include "fusion/fused_member.hpp"
#include "fusion/fused_model.hpp"

namespace actortrain {

network_group::network_group(
    std::vector<std::unique_ptr<network_runner>> members, bool fuse)
    : members_(std::move(members)), fuse_(fuse && members_.size() > 1) {}

network_group::~network_group() = default;

int64_t network_group::steps_total() const {
  int64_t n = 0;
  for (const auto& m : members_)
    n += m->steps_total();
  return n;
}

trainer_info network_group::info() const {
  auto result = members_.front()->info();
  result.steps_total = steps_total();
  for (const auto& m : members_)
    result.priority =
        std::max(result.priority, m->spec().config.train.priority);
  return result;
}

std::vector<uint64_t> network_group::unfinished() const {
  std::vector<uint64_t> result;
  for (const auto& m : members_)
    if (!m->done())
      result.push_back(m->spec().id);
  return result;
}

runner_state network_group::export_state(uint64_t network_id) {
  for (auto& m : members_)
    if (m->spec().id == network_id)
      return m->export_state();
  runner_state result;
  result.network_id = network_id;
  return result;
}

void network_group::adopt(const std::vector<uint64_t>& unfinished,
                          std::vector<runner_state> states) {
  // The live models here are stale: the group trained elsewhere since.
  fused_.reset();
  fused_members_.clear();
  for (auto& m : members_) {
    auto id = m->spec().id;
    m->done_ =
        std::find(unfinished.begin(), unfinished.end(), id) == unfinished.end();
    auto s =
        std::find_if(states.begin(), states.end(), [id](const runner_state& x) {
          return x.network_id == id;
        });
    if (!m->done_ && s != states.end())
      m->import_state(std::move(*s));
  }
}

quantum_report network_group::run_quantum(const slot_info& slot,
                                          const quantum_limits& limits,
                                          bool export_states) {
  auto n = members_.size();
  std::vector<quantum_outcome> outs(n);
  std::vector<network_runner::quantum_mark> marks(n);
  std::vector<size_t> active;
  for (size_t i = 0; i < n; ++i) {
    auto& m = *members_[i];
    if (m.done())
      continue;
    active.push_back(i);
    marks[i] = m.begin_quantum();
    m.guarded(outs[i], [&] { m.prepare(slot); });
  }
  // Members at the same step of equally long epochs (so their batches have
  // the same size at every step) form a cohort that can step together.
  std::map<std::tuple<int64_t, int64_t, int64_t>, std::vector<size_t>> cohorts;
  for (auto i : active) {
    const auto& m = *members_[i];
    if (!m.done() && m.learner_)
      cohorts[{m.step(), m.shard_.size(0), m.spec_.config.train.batch_size}]
          .push_back(i);
  }
  for (auto& [key, cohort] : cohorts) {
    if (fuse_ && cohort.size() > 1) {
      run_fused(cohort, limits, outs);
    } else {
      for (auto i : cohort)
        run_alone(i, limits, outs);
    }
  }
  quantum_report report;
  if (export_states) {
    unstack(outs);
    for (auto i : active) {
      auto& m = *members_[i];
      if (!m.done())
        m.guarded(outs[i], [&] { report.states.push_back(m.export_state()); });
    }
  }
  for (auto i : active) {
    members_[i]->end_quantum(marks[i], outs[i]);
    report.networks.push_back(std::move(outs[i]));
  }
  report.progress = progress(report.networks);
  return report;
}

void network_group::run_alone(size_t i, const quantum_limits& limits,
                              std::vector<quantum_outcome>& outs) {
  if (std::find(fused_members_.begin(), fused_members_.end(), i) !=
      fused_members_.end())
    unstack(outs);
  auto& m = *members_[i];
  if (!m.learner_)
    return;
  m.guarded(outs[i],
            [&] { m.conclude(limits, m.train(limits, outs[i]), outs[i]); });
}

void network_group::run_fused(const std::vector<size_t>& cohort,
                              const quantum_limits& limits,
                              std::vector<quantum_outcome>& outs) {
  if (fused_members_ != cohort) {
    unstack(outs);
    if (!stack(cohort)) {
      for (auto i : cohort)
        run_alone(i, limits, outs);
      return;
    }
  }
  using clock_type = std::chrono::steady_clock;
  auto k = cohort.size();
  const auto& first = *members_[cohort.front()];
  const auto& data = *first.data_;
  auto device = first.device_;
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
      if (auto reason = f(m); !reason.empty()) {
        m.conclude(limits, reason, outs[cohort[j]]);
        ended[j] = true;
      }
    });
    if (m.done() || !m.learner_)
      ended[j] = true;
    stop = stop || ended[j];
  };
  double quantum_seconds = 0;
  auto sample_shape = data.train_x.sizes().slice(1).vec();
  while (!stop) {
    for (size_t j = 0; j < k; ++j)
      stop = stop || members_[cohort[j]]->step() >= targets[j];
    if (stop || (limits.seconds > 0 && quantum_seconds >= limits.seconds))
      break;
    std::vector<torch::Tensor> batches(k);
    for (size_t j = 0; j < k; ++j)
      each(j, [&](network_runner& m) { return m.before_step(batches[j]); });
    if (stop)
      break;
    auto t0 = clock_type::now();
    std::vector<double> losses;
    try {
      auto b = batches.front().size(0);
      std::vector<int64_t> shape{static_cast<int64_t>(k), b};
      shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
      auto idx = torch::cat(batches);
      auto x = data.train_x.index_select(0, idx).view(shape).to(device);
      auto y = data.train_y.index_select(0, idx)
                   .view({static_cast<int64_t>(k), b})
                   .to(device);
      losses = fused_->train_step(x, y);
    } catch (const std::exception&) {
      // Every member fails this step, as each would have alone; the fused
      // model's state is no longer trustworthy.
      for (size_t j = 0; j < k; ++j)
        each(j, [&](network_runner&) -> std::string { throw; });
      fused_.reset();
      fused_members_.clear();
      return;
    }
    auto dt = std::chrono::duration<double>(clock_type::now() - t0).count() /
              static_cast<double>(k);
    quantum_seconds += dt * static_cast<double>(k);
    for (size_t j = 0; j < k; ++j)
      each(j, [&](network_runner& m) {
        return m.after_step(losses[j], dt, outs[cohort[j]]);
      });
  }
  // The others end their quantum here: a checkpoint when one is due.
  for (size_t j = 0; j < k; ++j) {
    if (ended[j])
      continue;
    auto& m = *members_[cohort[j]];
    auto& out = outs[cohort[j]];
    m.guarded(out, [&] { m.conclude(limits, {}, out); });
  }
}

bool network_group::stack(const std::vector<size_t>& cohort) {
  std::vector<builtin_learner*> learners;
  for (auto i : cohort) {
    auto* b = dynamic_cast<builtin_learner*>(members_[i]->learner_.get());
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
      learner_context ctx{m.spec_, *m.data_, m.device_, gen};
      return std::make_unique<builtin_learner>(ctx);
    };
    m.learner_ = std::make_unique<fused_member>(model, static_cast<int64_t>(k),
                                                make_blank);
  }
  fused_ = std::move(model);
  fused_members_ = cohort;
  return true;
}

void network_group::unstack(std::vector<quantum_outcome>& outs) {
  for (auto i : fused_members_) {
    auto& m = *members_[i];
    auto* member = dynamic_cast<fused_member*>(m.learner_.get());
    if (member == nullptr)
      continue;
    m.guarded(outs[i], [&] { m.learner_ = member->unstack(); });
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
    seconds += m->st_.train_seconds;
  }
  for (const auto& o : outs) {
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
