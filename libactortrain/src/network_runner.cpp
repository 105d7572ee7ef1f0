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
  auto n = shard_.size(0);
  auto bs = spec_.config.train.batch_size;
  steps_per_epoch_ = (n + bs - 1) / bs;
}

network_runner::~network_runner() = default;

quantum_outcome network_runner::run_quantum(const slot_info& slot,
                                            int64_t steps, int64_t epochs) {
  quantum_outcome out;
  auto epoch = step_ / steps_per_epoch_;
  try {
    if (!learner_) {
      device_ = torch::Device{slot.device};
      auto gen = at::make_generator<at::CPUGeneratorImpl>(spec_.seed);
      learner_context ctx{spec_, *data_, device_, gen};
      learner_ = make_learner_ ? make_learner_(ctx) : make_builtin_learner(ctx);
      if (!learner_)
        throw std::runtime_error("the learner factory returned no learner");
    }
    auto target =
        steps > 0 ? step_ + steps : (epoch + epochs) * steps_per_epoch_;
    train_until(std::min(target, steps_total()), out);
    if (!out.progress.finished && step_ == steps_total())
      finish(out);
  } catch (const std::exception& e) {
    fail(out, fmt::format("learner failed at epoch {}, step {}: {}",
                          step_ / steps_per_epoch_ + 1, step_, describe(e)));
  }
  fill_progress(out);
  return out;
}

void network_runner::train_until(int64_t target_step, quantum_outcome& out) {
  const auto& train = spec_.config.train;
  auto bs = train.batch_size;
  auto n = shard_.size(0);
  while (step_ < target_step) {
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
    auto dt = seconds_since(t0);
    epoch_seconds_ += dt;
    train_seconds_ += dt;
    ++step_;
    if (!std::isfinite(loss)) {
      fail(out, fmt::format("non-finite loss ({}) at epoch {}, step {}", loss,
                            epoch + 1, step_));
      return;
    }
    last_loss_ = loss;
    epoch_loss_sum_ += loss;
    if (step_ % steps_per_epoch_ == 0) {
      epoch_metrics m;
      m.network_id = spec_.id;
      m.epoch = epoch + 1;
      m.steps = step_;
      m.train_loss = epoch_loss_sum_ / static_cast<double>(steps_per_epoch_);
      m.seconds = epoch_seconds_;
      auto every = train.eval_every;
      bool last = m.epoch == train.epochs;
      if (last || (every > 0 && m.epoch % every == 0)) {
        auto ev = evaluate();
        m.test_loss = ev.loss;
        m.test_accuracy = ev.accuracy;
        if (last)
          last_predictions_ = ev.predictions;
      }
      last_epoch_ = m;
      out.epochs.push_back(m);
    }
  }
}

network_runner::evaluation network_runner::evaluate() {
  const auto& d = *data_;
  constexpr int64_t chunk = 4096; // bounds evaluation memory
  std::vector<torch::Tensor> outs;
  auto n = d.test_x.size(0);
  for (int64_t i = 0; i < n; i += chunk) {
    auto x = d.test_x.slice(0, i, std::min(n, i + chunk)).to(device_);
    outs.push_back(learner_->predict(x).detach().to(torch::kCPU));
  }
  auto out = torch::cat(outs).to(torch::kFloat32);
  evaluation ev;
  if (d.task == task_kind::classification) {
    if (out.dim() != 2 || out.size(1) != d.classes)
      throw std::runtime_error(fmt::format(
          "predict returned shape {} for {} test samples; expected [{}, {}]",
          fmt::join(out.sizes(), "x"), n, n, d.classes));
    ev.loss =
        torch::nn::functional::cross_entropy(out, d.test_y).item<double>();
    ev.accuracy =
        out.argmax(1).eq(d.test_y).to(torch::kFloat64).mean().item<double>();
    ev.predictions = torch::softmax(out, 1);
  } else {
    out = out.reshape({-1});
    if (out.size(0) != n)
      throw std::runtime_error(fmt::format(
          "predict returned {} values for {} test samples", out.size(0), n));
    ev.loss = torch::mse_loss(out, d.test_y).item<double>();
    ev.accuracy = no_metric;
    ev.predictions = out;
  }
  if (!std::isfinite(ev.loss))
    throw std::runtime_error(fmt::format("non-finite test loss ({})", ev.loss));
  return ev;
}

void network_runner::fail(quantum_outcome& out, const std::string& reason) {
  out.progress.finished = true;
  auto& o = out.outcome;
  o.network_id = spec_.id;
  o.status = network_status::failed;
  o.error = reason;
  o.epochs = step_ / steps_per_epoch_;
  o.steps = step_;
  o.train_seconds = train_seconds_;
  learner_.reset();
}

void network_runner::finish(quantum_outcome& out) {
  out.progress.finished = true;
  auto& o = out.outcome;
  o.network_id = spec_.id;
  o.status = network_status::finished;
  o.epochs = spec_.config.train.epochs;
  o.steps = step_;
  o.train_loss = last_epoch_.train_loss;
  o.test_loss = last_epoch_.test_loss;
  o.test_accuracy = last_epoch_.test_accuracy;
  o.train_seconds = train_seconds_;
  o.seconds_per_step = step_ > 0 ? train_seconds_ / step_ : 0;
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
