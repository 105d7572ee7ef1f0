#include "training/network_runner.hpp"

#include <cmath>
#include <sstream>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/csrc/jit/serialization/import.h>

#include "actortrain/error.hpp"
#include "actortrain/learner.hpp"
#include "data/dataset_on_device.hpp"
#include "models/torchscript_learner.hpp"

namespace actortrain {

namespace {

/// A loss that became NaN or infinite.
struct non_finite_loss : std::runtime_error {
  using std::runtime_error::runtime_error;
};

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
                               learner_factory make_learner,
                               std::shared_ptr<const script_model> script)
    : spec_(std::move(spec)), data_(std::move(data)), shard_(std::move(shard)),
      make_learner_(std::move(make_learner)), script_(std::move(script)) {
  const auto& train = spec_.config.train;
  if (train.validation_fraction > 0) {
    // A seed-chosen part of the shard is held out for validation.
    auto n = shard_.size(0);
    auto n_val = validation_samples(n, train.validation_fraction);
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

double network_runner::cost_hint() const {
  auto batch = static_cast<double>(spec_.config.train.batch_size);
  if (script_)
    return static_cast<double>(script_->parameters) * batch;
  return builtin_model_cost(spec_.config.model, *data_) * batch;
}

/// Rows an evaluation runs through the model at once (evaluate()).
constexpr int64_t evaluation_chunk = 1024;

int64_t network_runner::memory_estimate() const {
  if (make_learner_)
    return 0;
  auto batch = spec_.config.train.batch_size;
  if (script_) {
    // Weights, gradients and two optimizer moments; a batch's inputs,
    // training and evaluating.
    auto inputs = static_cast<double>(data_->features());
    return static_cast<int64_t>(
        4.0 * (4.0 * static_cast<double>(script_->parameters) +
               2.0 * static_cast<double>(batch + evaluation_chunk) * inputs));
  }
  auto plan = builtin_model_plan(spec_.config.model, *data_);
  return static_cast<int64_t>(plan.training_bytes(batch) +
                              4.0 * static_cast<double>(evaluation_chunk) *
                                  plan.activations());
}

trainer_info network_runner::info() const {
  trainer_info result;
  result.network_id = spec_.id;
  result.steps_total = steps_total();
  result.priority = spec_.config.train.priority;
  return result;
}

network_runner::quantum_mark network_runner::begin_quantum() const {
  return {st_.step, st_.train_seconds};
}

void network_runner::end_quantum(const quantum_mark& mark,
                                 quantum_outcome& out) const {
  fill_progress(out);
  out.progress.quantum_steps = std::max<int64_t>(0, st_.step - mark.step);
  out.progress.quantum_seconds =
      std::max(0.0, st_.train_seconds - mark.train_seconds);
}

void network_runner::on_exception(quantum_outcome& out, std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const c10::OutOfMemoryError& e) {
    // Not the network's fault: the device was too full. It keeps nothing
    // of this quantum and continues from its last snapshot, the same bits
    // as if this had not happened, once the scheduler finds it room.
    out.failures.push_back(fmt::format(
        "out of memory on {} at epoch {}, step {}: waits for memory, then "
        "continues from step {} ({})",
        device_.str(), st_.step / steps_per_epoch_ + 1, st_.step,
        rollback_step(), describe(e)));
    out.out_of_memory = true;
    roll_back();
  } catch (const non_finite_loss& e) {
    on_failure(out, e.what());
  } catch (const std::exception& e) {
    on_failure(out, fmt::format("learner failed at epoch {}, step {}: {}",
                                st_.step / steps_per_epoch_ + 1, st_.step,
                                describe(e)));
  } catch (...) {
    on_failure(out, fmt::format("learner failed at epoch {}, step {} with "
                                "an unknown exception",
                                st_.step / steps_per_epoch_ + 1, st_.step));
  }
}

void network_runner::conclude(const quantum_limits& limits, stop_reason reason,
                              quantum_outcome& out) {
  if (reason != stop_reason::none) {
    finish(out, reason);
    return;
  }
  // Besides the checkpoints at epoch ends (after_step): one at the end of
  // every quantum while the run is stopping, and after a PBT copy (a worker
  // lost later falls back to a checkpoint, which must not predate the
  // copy).
  bool stopping = limits.stopping && limits.stopping->load();
  if (learner_->can_checkpoint() && (copied_since_snapshot_ || stopping) &&
      st_.step > last_snapshot_step_) {
    out.checkpoint = snapshot();
    out.checkpoint_step = st_.step;
    out.checkpoint_retries = retries_;
  }
}

void network_runner::prepare(const slot_info& slot) {
  // Granted a slot on another device of this node (another GPU): the
  // network moves there the way it moves to another node, through its
  // state's bytes, and continues bit for bit. A learner that cannot save
  // its state stays where it is (the slot's thread drives it there).
  if (learner_ && torch::Device{slot.device} != device_ && state_movable()) {
    import_state(export_state());
    ++device_moves_;
  }
  build_and_restore(slot);
  // PBT's copy comes after any restore: it replaces the learner's state,
  // whatever that was.
  if (!transplant_)
    return;
  auto t = std::move(*transplant_);
  transplant_.reset();
  copied_since_snapshot_ = true;
  torch::serialize::InputArchive archive;
  archive.load_from(t.learner.data(), t.learner.size(), device_);
  learner_->load(archive);
  if (t.lr_factor != 1)
    learner_->scale_learning_rate(t.lr_factor);
}

void network_runner::transplant(std::vector<char> learner, double lr_factor) {
  transplant_ = pending_transplant{std::move(learner), lr_factor};
}

namespace {

/// An archive's bytes with every tensor on the CPU: what a runner on a GPU
/// stores and sends, so that any machine reads it (Python's torch.load
/// included, without a map_location). On a CPU, the bytes as they are.
std::vector<char> host_bytes(torch::serialize::OutputArchive& archive,
                             const torch::Device& device) {
  std::ostringstream os;
  archive.save_to(os);
  if (!device.is_cpu()) {
    std::istringstream in{os.str()};
    auto module = torch::jit::load(in, torch::Device{torch::kCPU});
    os = std::ostringstream{};
    module.save(os);
  }
  auto str = os.str();
  return std::vector<char>(str.begin(), str.end());
}

} // namespace

std::vector<char> network_runner::learner_bytes() {
  torch::serialize::OutputArchive archive;
  learner_->save(archive);
  return host_bytes(archive, device_);
}

void network_runner::build_and_restore(const slot_info& slot) {
  bool rebuilt = !learner_;
  if (rebuilt) {
    device_ = torch::Device{slot.device};
    device_data_ = dataset_on(data_, device_);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(spec_.seed);
    learner_context ctx{spec_, *data_, device_, gen};
    if (make_learner_)
      learner_ = make_learner_(ctx);
    else if (spec_.config.model.kind == model_kind::torchscript)
      learner_ = script_ ? make_torchscript_learner(ctx, *script_) : nullptr;
    else
      learner_ = make_builtin_learner(ctx);
    if (!learner_)
      throw std::runtime_error("the learner factory returned no learner");
  }
  if (pending_) {
    auto pending = std::move(*pending_);
    pending_.reset();
    if (pending.live) {
      // A live state from another node: it already carries the retries'
      // learning rate, and retries still go back to its own last_good.
      auto last_good = std::move(last_good_);
      auto step = last_snapshot_step_;
      auto retries = snapshot_retries_;
      restore(pending.bytes);
      last_good_ = std::move(last_good);
      last_snapshot_step_ = step;
      snapshot_retries_ = retries;
      return;
    }
    restore(pending.bytes);
  }
  // After a failure, each retry trains with a smaller learning rate: the
  // original one times factor^retries.
  auto factor = spec_.config.train.retry_lr_factor;
  if (rebuilt && retries_ > snapshot_retries_ && factor != 1)
    learner_->scale_learning_rate(
        std::pow(factor, static_cast<double>(retries_ - snapshot_retries_)));
}

void network_runner::on_failure(quantum_outcome& out,
                                const std::string& reason) {
  const auto& train = spec_.config.train;
  if (retries_ >= train.max_retries) {
    fail(out, retries_ > 0
                  ? fmt::format("{} (after {} retries)", reason, retries_)
                  : reason);
    return;
  }
  ++retries_;
  roll_back();
  out.failures.push_back(fmt::format("{}; retry {} of {} from step {}", reason,
                                     retries_, train.max_retries,
                                     rollback_step()));
}

void network_runner::roll_back() {
  // The next quantum rebuilds the learner and continues from the last good
  // snapshot, or from the start when there is none.
  learner_.reset();
  order_ = torch::Tensor{};
  predictions_step_ = -1;
  if (!last_good_.empty()) {
    pending_ = pending_restore{last_good_, false};
  } else {
    st_ = training_state{};
    last_snapshot_step_ = 0;
    snapshot_retries_ = 0;
  }
}

namespace {

constexpr int64_t snapshot_format = 1;

} // namespace

/// Visits every scalar a snapshot holds, by name: saving and restoring walk
/// the same list, so they cannot disagree about the fields.
template <class State, class F>
void for_each_field(State& st, int64_t& retries, F&& f) {
  f("step", st.step);
  f("epoch_loss_sum", st.epoch_loss_sum);
  f("epoch_seconds", st.epoch_seconds);
  f("train_seconds", st.train_seconds);
  f("last_loss", st.last_loss);
  f("best_validation_loss", st.best_validation_loss);
  f("epochs_without_improvement", st.epochs_without_improvement);
  f("epoch", st.last_epoch.epoch);
  f("epoch_steps", st.last_epoch.steps);
  f("epoch_train_loss", st.last_epoch.train_loss);
  f("epoch_test_loss", st.last_epoch.test_loss);
  f("epoch_test_accuracy", st.last_epoch.test_accuracy);
  f("epoch_validation_loss", st.last_epoch.validation_loss);
  f("epoch_validation_accuracy", st.last_epoch.validation_accuracy);
  f("epoch_seconds_total", st.last_epoch.seconds);
  f("retries", retries);
}

std::vector<char> network_runner::snapshot() {
  auto bytes = encode();
  copied_since_snapshot_ = false;
  last_good_ = bytes;
  last_snapshot_step_ = st_.step;
  return bytes;
}

bool network_runner::state_movable() const {
  return !learner_ || learner_->can_checkpoint();
}

runner_state network_runner::export_state() {
  runner_state result;
  result.network_id = spec_.id;
  // A runner waiting to restore a snapshot hands it on as it is: as the
  // live state when it is one, otherwise (a retry or a resume waiting) the
  // importer restores last_good like this runner would have.
  if (learner_ && !pending_)
    result.live = encode();
  else if (pending_ && pending_->live)
    result.live = pending_->bytes;
  else if (pending_ && last_good_.empty())
    result.last_good = pending_->bytes;
  if (result.last_good.empty())
    result.last_good = last_good_;
  result.last_good_step = last_snapshot_step_;
  result.retries = retries_;
  result.last_good_retries = snapshot_retries_;
  return result;
}

void network_runner::import_state(runner_state state) {
  learner_.reset();
  order_ = torch::Tensor{};
  predictions_step_ = -1;
  retries_ = state.retries;
  last_good_ = std::move(state.last_good);
  last_snapshot_step_ = state.last_good_step;
  snapshot_retries_ = state.last_good_retries;
  if (!state.live.empty()) {
    pending_ = pending_restore{std::move(state.live), true};
  } else if (!last_good_.empty()) {
    // A failure was waiting for its retry: it restores last_good.
    pending_ = pending_restore{last_good_, false};
  } else {
    pending_.reset();
    st_ = training_state{};
  }
}

std::vector<char> network_runner::encode() {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive learner_state;
  learner_->save(learner_state);
  archive.write("learner", learner_state);
  archive.write("format", torch::tensor({snapshot_format}, torch::kInt64));
  // The seed identifies the network across runs of the same experiment.
  archive.write(
      "seed", torch::tensor({static_cast<int64_t>(spec_.seed)}, torch::kInt64));
  auto retries = retries_;
  for_each_field(st_, retries, [&](const char* name, auto& x) {
    archive.write(name,
                  torch::tensor({static_cast<double>(x)}, torch::kFloat64));
  });
  return host_bytes(archive, device_);
}

void network_runner::restore(const std::vector<char>& bytes) {
  // Onto this runner's device, whichever device wrote it (a GPU run
  // resumes on a CPU machine and the reverse).
  torch::serialize::InputArchive archive;
  archive.load_from(bytes.data(), bytes.size(), device_);
  auto scalar = [&](const char* name) {
    torch::Tensor t;
    archive.read(name, t);
    if (t.numel() != 1)
      throw std::runtime_error(fmt::format("snapshot field '{}' is not a "
                                           "scalar",
                                           name));
    return t;
  };
  if (scalar("format").item<int64_t>() != snapshot_format)
    throw std::runtime_error("unknown snapshot format");
  if (static_cast<uint64_t>(scalar("seed").item<int64_t>()) != spec_.seed)
    throw std::runtime_error("the snapshot belongs to another network");
  training_state st;
  int64_t retries = 0;
  for_each_field(st, retries, [&](const char* name, auto& x) {
    x = static_cast<std::decay_t<decltype(x)>>(scalar(name).item<double>());
  });
  st.last_epoch.network_id = spec_.id;
  if (st.step < 0 || st.step > steps_total())
    throw std::runtime_error("the snapshot's step is out of range");
  torch::serialize::InputArchive learner_state;
  archive.read("learner", learner_state);
  learner_->load(learner_state);
  st_ = st;
  // The optimizer state carries the learning rate of that moment: retries
  // since then still have to scale it.
  snapshot_retries_ = retries;
  order_ = torch::Tensor{};
  predictions_step_ = -1;
  last_good_ = bytes;
  last_snapshot_step_ = st_.step;
}

caf::error network_runner::resume_from(std::vector<char> bytes) {
  if (bytes.empty())
    return make_error(errc::invalid_data, "empty snapshot");
  pending_ = pending_restore{std::move(bytes), false};
  return {};
}

int64_t network_runner::quantum_target(const quantum_limits& limits) const {
  auto epoch_at_start = st_.step / steps_per_epoch_;
  auto target = limits.steps > 0
                    ? st_.step + limits.steps
                    : (epoch_at_start + limits.epochs) * steps_per_epoch_;
  // The search decides at epoch ends: a quantum never runs past one.
  if (limits.search.epoch_boundaries)
    target = std::min(target, (epoch_at_start + 1) * steps_per_epoch_);
  return std::min(target, steps_total());
}

stop_reason network_runner::before_step(torch::Tensor& batch) {
  // after_step starts an epoch's sums; a snapshot written before it did
  // (2026-12-06) holds the last epoch's at an epoch boundary.
  if (at_epoch_end()) {
    st_.epoch_loss_sum = 0;
    st_.epoch_seconds = 0;
  }
  return before_step_at(st_.step, batch);
}

stop_reason network_runner::before_step_at(int64_t step, torch::Tensor& batch) {
  const auto& train = spec_.config.train;
  if (train.max_seconds > 0 && st_.train_seconds >= train.max_seconds)
    return stop_reason::max_seconds;
  auto bs = train.batch_size;
  auto n = shard_.size(0);
  auto epoch = step / steps_per_epoch_;
  auto pos = step % steps_per_epoch_;
  if (!order_.defined() || order_epoch_ != epoch ||
      order_.device() != device_) {
    // Each epoch's order depends only on the network's seed and the epoch,
    // not on where quanta begin or end. Drawn on the CPU, then on the
    // device once an epoch.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(
        derive_seed(spec_.seed ^ 0xDA7A0DE5ull, static_cast<uint64_t>(epoch)));
    order_ = shard_.index_select(0, torch::randperm(n, gen, torch::kInt64))
                 .to(device_);
    order_epoch_ = epoch;
  }
  batch = order_.slice(0, pos * bs, std::min(n, (pos + 1) * bs));
  return stop_reason::none;
}

stop_reason network_runner::after_step(double loss, double seconds,
                                       quantum_outcome& out) {
  auto epoch = st_.step / steps_per_epoch_;
  st_.epoch_seconds += seconds;
  st_.train_seconds += seconds;
  ++st_.step;
  if (!std::isfinite(loss))
    throw non_finite_loss{fmt::format(
        "non-finite loss ({}) at epoch {}, step {}",
        // A NaN's sign bit means nothing: "-nan" reads as a bug.
        std::isnan(loss) ? std::string{"nan"} : fmt::format("{}", loss),
        epoch + 1, st_.step)};
  st_.last_loss = loss;
  st_.epoch_loss_sum += loss;
  if (at_epoch_end()) {
    auto reason = end_epoch(epoch + 1, out);
    // Asynchronous replicas may book steps of the next epoch before the
    // next before_step: its sums start now.
    st_.epoch_loss_sum = 0;
    st_.epoch_seconds = 0;
    if (reason != stop_reason::none)
      return reason;
    // A checkpoint every `checkpoint_every` epochs, at the epoch's end
    // whatever the quanta: where a retry goes back to (and a lost worker's
    // networks fall back to) does not depend on how the run was sliced.
    auto every = spec_.config.train.checkpoint_every;
    if (every > 0 && (epoch + 1) % every == 0 && st_.step < steps_total() &&
        learner_->can_checkpoint()) {
      out.checkpoint = snapshot();
      out.checkpoint_step = st_.step;
      out.checkpoint_retries = retries_;
    }
  }
  if (st_.step == steps_total())
    return stop_reason::epochs;
  return stop_reason::none;
}

std::unique_ptr<learner>
network_runner::swap_learner(std::unique_ptr<learner> next) {
  std::swap(learner_, next);
  return next;
}

stop_reason network_runner::end_epoch(int64_t epoch, quantum_outcome& out) {
  const auto& train = spec_.config.train;
  epoch_metrics m;
  m.network_id = spec_.id;
  m.epoch = epoch;
  m.steps = st_.step;
  m.train_loss = st_.epoch_loss_sum / static_cast<double>(steps_per_epoch_);
  m.seconds = st_.epoch_seconds;
  bool targets = train.target_accuracy > 0 || train.target_loss > 0;
  bool has_validation = validation_.defined();
  if (has_validation && (targets || train.patience > 0 || search_validation_)) {
    auto ev =
        evaluate(device_data().train_x.index_select(0, validation_.to(device_)),
                 data_->train_y.index_select(0, validation_), false);
    m.validation_loss = ev.loss;
    m.validation_accuracy = ev.accuracy;
  }
  // The last epoch is always evaluated on the test set; so is any epoch that
  // may stop the network (so its final metrics are those of that epoch).
  bool last = epoch == train.epochs;
  bool periodic = train.eval_every > 0 && epoch % train.eval_every == 0;
  bool may_stop = targets || train.patience > 0 || search_test_;
  if (last || periodic || may_stop) {
    auto ev = evaluate(device_data().test_x, data_->test_y, true);
    m.test_loss = ev.loss;
    m.test_accuracy = ev.accuracy;
    last_predictions_ = ev.predictions;
    predictions_step_ = st_.step;
  }
  st_.last_epoch = m;
  out.epochs.push_back(m);
  // Stopping rules, on the validation split when there is one.
  auto loss = has_validation ? m.validation_loss : m.test_loss;
  auto accuracy = has_validation ? m.validation_accuracy : m.test_accuracy;
  if (train.target_accuracy > 0 && accuracy >= train.target_accuracy)
    return stop_reason::target;
  if (train.target_loss > 0 && loss <= train.target_loss)
    return stop_reason::target;
  if (train.patience > 0) {
    if (m.validation_loss < st_.best_validation_loss) {
      st_.best_validation_loss = m.validation_loss;
      st_.epochs_without_improvement = 0;
    } else if (++st_.epochs_without_improvement >= train.patience) {
      return stop_reason::early_stopping;
    }
  }
  return stop_reason::none;
}

std::pair<torch::Tensor, torch::Tensor>
network_runner::gather(const torch::Tensor& batch) const {
  const auto& d = device_data();
  auto index = batch.to(d.train_x.device());
  return {d.train_x.index_select(0, index), d.train_y.index_select(0, index)};
}

network_runner::evaluation network_runner::evaluate(const torch::Tensor& x,
                                                    const torch::Tensor& y,
                                                    bool keep_predictions) {
  const auto& d = *data_;
  // Bounds evaluation memory; small enough that its tensors stay in the
  // allocator's heap (and the cache) instead of being mapped per chunk.
  std::vector<torch::Tensor> outs;
  auto n = x.size(0);
  for (int64_t i = 0; i < n; i += evaluation_chunk) {
    auto part = x.slice(0, i, std::min(n, i + evaluation_chunk)).to(device_);
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
  done_ = true;
  out.progress.finished = true;
  auto& o = out.outcome;
  o.network_id = spec_.id;
  o.status = status;
  o.epochs = st_.step / steps_per_epoch_;
  o.steps = st_.step;
  o.train_seconds = st_.train_seconds;
  o.seconds_per_step = st_.step > 0 ? st_.train_seconds / st_.step : 0;
  return o;
}

void network_runner::fail(quantum_outcome& out, const std::string& reason) {
  end(out, network_status::failed).error = reason;
  learner_.reset();
}

void network_runner::finish(quantum_outcome& out, stop_reason reason) {
  if (predictions_step_ != st_.step) {
    // Stopped where the test set was not evaluated (max_seconds): do it now,
    // so final metrics and predictions match the final weights.
    auto ev = evaluate(device_data().test_x, data_->test_y, true);
    st_.last_epoch.test_loss = ev.loss;
    st_.last_epoch.test_accuracy = ev.accuracy;
    last_predictions_ = ev.predictions;
  }
  auto& o = end(out, network_status::finished);
  o.stop_reason = reason;
  o.train_loss = st_.last_epoch.train_loss;
  o.test_loss = st_.last_epoch.test_loss;
  o.test_accuracy = st_.last_epoch.test_accuracy;
  auto p = last_predictions_.contiguous();
  o.test_predictions.assign(p.data_ptr<float>(),
                            p.data_ptr<float>() + p.numel());
  o.weights = encode_weights(learner_->state());
  // Its final state (weights, optimizer, data position), kept so that a
  // larger train.epochs continues from here instead of training again.
  if (reason == stop_reason::epochs && learner_->can_checkpoint() &&
      st_.step > last_snapshot_step_) {
    out.checkpoint = snapshot();
    out.checkpoint_step = st_.step;
    out.checkpoint_retries = retries_;
  }
  learner_.reset();
}

void network_runner::fill_progress(quantum_outcome& out) const {
  auto& p = out.progress;
  p.network_id = spec_.id;
  p.steps_done = st_.step;
  p.steps_total = steps_total();
  p.epoch = st_.step / steps_per_epoch_;
  p.loss = st_.last_loss;
  p.seconds_per_step = st_.step > 0 ? st_.train_seconds / st_.step : 0;
}

} // namespace actortrain
