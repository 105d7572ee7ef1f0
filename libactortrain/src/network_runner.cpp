#include "network_runner.hpp"

#include <cmath>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "actortrain/learner.hpp"

namespace actortrain {

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

/// Keeps LibTorch's long backtraces out of the results.
std::string describe(const std::exception& e) {
  if (auto* c10e = dynamic_cast<const c10::Error*>(&e))
    return c10e->what_without_backtrace();
  return e.what();
}

} // namespace

network_runner::network_runner(network_spec spec,
                               std::shared_ptr<const dataset> data,
                               torch::Tensor shard,
                               learner_factory make_learner)
    : spec_(std::move(spec)), data_(std::move(data)), shard_(std::move(shard)),
      make_learner_(std::move(make_learner)) {
  const auto& train = spec_.config.train;
  if (train.validation_fraction > 0) {
    // A seed-chosen part of the shard is held out for validation.
    auto n = shard_.size(0);
    auto n_val = std::max<int64_t>(
        1, static_cast<int64_t>(std::lround(n * train.validation_fraction)));
    auto gen = at::make_generator<at::CPUGeneratorImpl>(
        derive_seed(spec_.seed ^ 0x5A11DA7Eull, 0));
    auto perm = shard_.index_select(0, torch::randperm(n, gen, torch::kInt64));
    validation_ = perm.slice(0, n - n_val);
    shard_ = perm.slice(0, 0, n - n_val);
  }
  auto bs = train.batch_size;
  steps_per_epoch_ = (shard_.size(0) + bs - 1) / bs;
}

network_runner::~network_runner() = default;

trainer_info network_runner::info() const {
  trainer_info result;
  result.network_id = spec_.id;
  result.steps_total = steps_total();
  result.cost_hint = builtin_model_cost(spec_.config.model, *data_) *
                     static_cast<double>(spec_.config.train.batch_size);
  result.priority = spec_.config.train.priority;
  return result;
}

quantum_outcome network_runner::run_quantum(const slot_info& slot,
                                            const quantum_limits& limits) {
  quantum_outcome out;
  auto steps_before = step_;
  auto seconds_before = train_seconds_;
  try {
    if (!learner_) {
      device_ = torch::Device{slot.device};
      auto gen = at::make_generator<at::CPUGeneratorImpl>(spec_.seed);
      learner_context ctx{spec_, *data_, device_, gen};
      learner_ = make_learner_ ? make_learner_(ctx) : make_builtin_learner(ctx);
      if (!learner_)
        throw std::runtime_error("the learner factory returned no learner");
    }
    auto reason = train(limits, out);
    if (!out.progress.finished && !reason.empty())
      finish(out, reason);
  } catch (const std::exception& e) {
    fail(out, fmt::format("learner failed at epoch {}, step {}: {}",
                          step_ / steps_per_epoch_ + 1, step_, describe(e)));
  }
  fill_progress(out);
  out.progress.quantum_steps = step_ - steps_before;
  out.progress.quantum_seconds = train_seconds_ - seconds_before;
  return out;
}

std::string network_runner::train(const quantum_limits& limits,
                                  quantum_outcome& out) {
  const auto& train = spec_.config.train;
  auto bs = train.batch_size;
  auto n = shard_.size(0);
  auto epoch_at_start = step_ / steps_per_epoch_;
  auto target = limits.steps > 0
                    ? step_ + limits.steps
                    : (epoch_at_start + limits.epochs) * steps_per_epoch_;
  target = std::min(target, steps_total());
  double quantum_seconds = 0;
  while (step_ < target) {
    if (limits.seconds > 0 && quantum_seconds >= limits.seconds)
      return {};
    if (train.max_seconds > 0 && train_seconds_ >= train.max_seconds)
      return "max_seconds";
    auto epoch = step_ / steps_per_epoch_;
    auto pos = step_ % steps_per_epoch_;
    if (pos == 0 || !order_.defined()) {
      // Each epoch's order depends only on the network's seed and the epoch,
      // not on where quanta begin or end.
      auto gen = at::make_generator<at::CPUGeneratorImpl>(derive_seed(
          spec_.seed ^ 0xDA7A0DE5ull, static_cast<uint64_t>(epoch)));
      order_ = shard_.index_select(0, torch::randperm(n, gen, torch::kInt64));
      if (pos == 0) {
        epoch_loss_sum_ = 0;
        epoch_seconds_ = 0;
      }
    }
    auto idx = order_.slice(0, pos * bs, std::min(n, (pos + 1) * bs));
    auto t0 = clock_type::now();
    auto x = data_->train_x.index_select(0, idx).to(device_);
    auto y = data_->train_y.index_select(0, idx).to(device_);
    auto loss = learner_->train_step(x, y);
    auto scripted = learner_->last_step_seconds();
    auto dt = scripted >= 0 ? scripted : seconds_since(t0);
    epoch_seconds_ += dt;
    train_seconds_ += dt;
    quantum_seconds += dt;
    ++step_;
    if (!std::isfinite(loss)) {
      fail(out, fmt::format("non-finite loss ({}) at epoch {}, step {}", loss,
                            epoch + 1, step_));
      return {};
    }
    last_loss_ = loss;
    epoch_loss_sum_ += loss;
    if (step_ % steps_per_epoch_ == 0)
      if (auto reason = end_epoch(epoch + 1, out); !reason.empty())
        return reason;
  }
  if (step_ == steps_total())
    return "epochs";
  return {};
}

std::string network_runner::end_epoch(int64_t epoch, quantum_outcome& out) {
  const auto& train = spec_.config.train;
  epoch_metrics m;
  m.network_id = spec_.id;
  m.epoch = epoch;
  m.steps = step_;
  m.train_loss = epoch_loss_sum_ / static_cast<double>(steps_per_epoch_);
  m.seconds = epoch_seconds_;
  bool targets = train.target_accuracy > 0 || train.target_loss > 0;
  bool has_validation = validation_.defined();
  if (has_validation && (targets || train.patience > 0)) {
    auto ev = evaluate(data_->train_x.index_select(0, validation_),
                       data_->train_y.index_select(0, validation_), false);
    m.validation_loss = ev.loss;
    m.validation_accuracy = ev.accuracy;
  }
  // The last epoch is always evaluated on the test set; so is any epoch that
  // may stop the network (so its final metrics are those of that epoch).
  bool last = epoch == train.epochs;
  bool periodic = train.eval_every > 0 && epoch % train.eval_every == 0;
  bool may_stop = targets || train.patience > 0;
  if (last || periodic || may_stop) {
    auto ev = evaluate(data_->test_x, data_->test_y, true);
    m.test_loss = ev.loss;
    m.test_accuracy = ev.accuracy;
    last_predictions_ = ev.predictions;
    predictions_step_ = step_;
  }
  last_epoch_ = m;
  out.epochs.push_back(m);
  // Stopping rules, on the validation split when there is one.
  auto loss = has_validation ? m.validation_loss : m.test_loss;
  auto accuracy = has_validation ? m.validation_accuracy : m.test_accuracy;
  if (train.target_accuracy > 0 && accuracy >= train.target_accuracy)
    return "target";
  if (train.target_loss > 0 && loss <= train.target_loss)
    return "target";
  if (train.patience > 0) {
    if (m.validation_loss < best_validation_loss_) {
      best_validation_loss_ = m.validation_loss;
      epochs_without_improvement_ = 0;
    } else if (++epochs_without_improvement_ >= train.patience) {
      return "early_stopping";
    }
  }
  return {};
}

network_runner::evaluation network_runner::evaluate(const torch::Tensor& x,
                                                    const torch::Tensor& y,
                                                    bool keep_predictions) {
  const auto& d = *data_;
  constexpr int64_t chunk = 4096; // bounds evaluation memory
  std::vector<torch::Tensor> outs;
  auto n = x.size(0);
  for (int64_t i = 0; i < n; i += chunk) {
    auto part = x.slice(0, i, std::min(n, i + chunk)).to(device_);
    outs.push_back(learner_->predict(part).detach().to(torch::kCPU));
  }
  auto out = torch::cat(outs).to(torch::kFloat32);
  evaluation ev;
  if (d.task == task_kind::classification) {
    if (out.dim() != 2 || out.size(1) != d.classes)
      throw std::runtime_error(
          fmt::format("predict returned shape [{}] for {} samples; expected "
                      "[{}, {}]",
                      fmt::join(out.sizes(), ", "), n, n, d.classes));
    ev.loss = torch::nn::functional::cross_entropy(out, y).item<double>();
    ev.accuracy = out.argmax(1).eq(y).to(torch::kFloat64).mean().item<double>();
    if (keep_predictions)
      ev.predictions = torch::softmax(out, 1);
  } else {
    out = out.reshape({-1});
    if (out.size(0) != n)
      throw std::runtime_error(fmt::format(
          "predict returned {} values for {} samples", out.size(0), n));
    ev.loss = torch::mse_loss(out, y).item<double>();
    if (keep_predictions)
      ev.predictions = out;
  }
  if (!std::isfinite(ev.loss))
    throw std::runtime_error(
        fmt::format("non-finite evaluation loss ({})", ev.loss));
  return ev;
}

network_outcome& network_runner::end(quantum_outcome& out,
                                     network_status status) {
  out.progress.finished = true;
  auto& o = out.outcome;
  o.network_id = spec_.id;
  o.status = status;
  o.epochs = step_ / steps_per_epoch_;
  o.steps = step_;
  o.train_seconds = train_seconds_;
  o.seconds_per_step = step_ > 0 ? train_seconds_ / step_ : 0;
  return o;
}

void network_runner::fail(quantum_outcome& out, const std::string& reason) {
  end(out, network_status::failed).error = reason;
  learner_.reset();
}

void network_runner::finish(quantum_outcome& out, const std::string& reason) {
  if (predictions_step_ != step_) {
    // Stopped where the test set was not evaluated (max_seconds): do it now,
    // so final metrics and predictions match the final weights.
    auto ev = evaluate(data_->test_x, data_->test_y, true);
    last_epoch_.test_loss = ev.loss;
    last_epoch_.test_accuracy = ev.accuracy;
    last_predictions_ = ev.predictions;
  }
  auto& o = end(out, network_status::finished);
  o.stop_reason = reason;
  o.train_loss = last_epoch_.train_loss;
  o.test_loss = last_epoch_.test_loss;
  o.test_accuracy = last_epoch_.test_accuracy;
  auto p = last_predictions_.contiguous();
  o.test_predictions.assign(p.data_ptr<float>(),
                            p.data_ptr<float>() + p.numel());
  o.weights = encode_weights(learner_->state());
  learner_.reset();
}

void network_runner::fill_progress(quantum_outcome& out) const {
  auto& p = out.progress;
  p.network_id = spec_.id;
  p.steps_done = step_;
  p.steps_total = steps_total();
  p.epoch = step_ / steps_per_epoch_;
  p.loss = last_loss_;
  p.seconds_per_step = step_ > 0 ? train_seconds_ / step_ : 0;
}

} // namespace actortrain
