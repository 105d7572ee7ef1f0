#include "actortrain/learner.hpp"

#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/serialize.h>

#include "actortrain/error.hpp"
#include "models/builtin_learner.hpp"
#include "models/max_pool.hpp"
#include "models/one_pass_adam.hpp"

namespace actortrain {

learner::~learner() = default;

torch::Tensor learner::train_step_on_device(const torch::Tensor& inputs,
                                            const torch::Tensor& targets) {
  return torch::tensor(train_step(inputs, targets), torch::kFloat64);
}

double learner::last_step_seconds() const {
  return -1;
}

bool learner::can_checkpoint() const {
  return false;
}

void learner::save(torch::serialize::OutputArchive&) {
  throw std::logic_error("this learner does not implement save()");
}

void learner::load(torch::serialize::InputArchive&) {
  throw std::logic_error("this learner does not implement load()");
}

void learner::scale_learning_rate(double) {
  // A learner of its own may not have one learning rate to scale.
}

model_plan builtin_model_plan(const model_options& m, const dataset& d) {
  auto plan = plan_model(m, d.feature_shape, d.outputs());
  if (plan)
    return std::move(*plan);
  // A model the data cannot take fails before training (run_context); for
  // estimates, plan its dense layers alone.
  auto dense = m;
  dense.kind = model_kind::mlp;
  return std::move(*plan_model(dense, {d.features()}, d.outputs()));
}

double builtin_model_cost(const model_options& m, const dataset& d) {
  return builtin_model_plan(m, d).macs();
}

void init_parameters(torch::nn::Module& module, torch::Generator& generator) {
  torch::NoGradGuard no_grad;
  for (auto& sub : module.modules(/*include_self=*/true)) {
    auto params = sub->named_parameters(/*recurse=*/false);
    auto* weight = params.find("weight");
    if (weight == nullptr || weight->dim() < 2)
      continue;
    // PyTorch's default for Linear and Conv: kaiming_uniform(a = sqrt(5)),
    // which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same for biases.
    auto fan_in = weight->numel() / weight->size(0);
    auto bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    weight->uniform_(-bound, bound, generator);
    if (auto* bias = params.find("bias"); bias != nullptr && bias->defined())
      bias->uniform_(-bound, bound, generator);
  }
}

std::unique_ptr<torch::optim::Optimizer>
make_optimizer(const optimizer_options& opts,
               std::vector<torch::Tensor> params) {
  if (opts.kind == optimizer_kind::sgd)
    return std::make_unique<torch::optim::SGD>(
        std::move(params), torch::optim::SGDOptions(opts.lr)
                               .momentum(opts.momentum)
                               .weight_decay(opts.weight_decay));
  if (opts.kind == optimizer_kind::adamw)
    return std::make_unique<one_pass_adamw>(
        std::move(params),
        torch::optim::AdamWOptions(opts.lr).weight_decay(opts.weight_decay));
  return std::make_unique<one_pass_adam>(
      std::move(params),
      torch::optim::AdamOptions(opts.lr).weight_decay(opts.weight_decay));
}

namespace {

torch::nn::AnyModule activation(activation_kind kind) {
  switch (kind) {
  case activation_kind::tanh:
    return torch::nn::AnyModule(torch::nn::Tanh());
  case activation_kind::sigmoid:
    return torch::nn::AnyModule(torch::nn::Sigmoid());
  case activation_kind::gelu:
    return torch::nn::AnyModule(torch::nn::GELU());
  case activation_kind::relu:
    break;
  }
  return torch::nn::AnyModule(torch::nn::ReLU());
}

} // namespace

torch::nn::Sequential build_builtin_model(const model_plan& plan) {
  torch::nn::Sequential net;
  for (const auto& l : plan.layers) {
    switch (l.kind) {
    case planned_layer::conv:
      net->push_back(torch::nn::Conv2d(
          torch::nn::Conv2dOptions(l.in[0], l.out[0], 3).padding(1)));
      break;
    case planned_layer::activation:
      net->push_back(activation(plan.activation));
      break;
    case planned_layer::pool:
      net->push_back(torch::nn::Functional(max_pool_2x2));
      break;
    case planned_layer::flatten:
      net->push_back(torch::nn::Flatten());
      break;
    case planned_layer::linear:
      net->push_back(torch::nn::Linear(l.in[0], l.out[0]));
      break;
    }
  }
  return net;
}

builtin_learner::builtin_learner(const learner_context& ctx)
    : plan_(builtin_model_plan(ctx.spec.config.model, ctx.data)),
      net_(build_builtin_model(plan_)), task_(ctx.data.task),
      options_(ctx.spec.config.optimizer) {
  init_parameters(*net_, ctx.generator);
  net_->to(ctx.device);
  optimizer_ = make_optimizer(options_, net_->parameters());
}

torch::Tensor
builtin_learner::train_step_on_device(const torch::Tensor& inputs,
                                      const torch::Tensor& targets) {
  net_->train();
  optimizer_->zero_grad();
  auto loss = loss_of(net_->forward(inputs), targets);
  loss.backward();
  optimizer_->step();
  return loss.detach();
}

double builtin_learner::train_step(const torch::Tensor& inputs,
                                   const torch::Tensor& targets) {
  return train_step_on_device(inputs, targets).item<double>();
}

torch::Tensor builtin_learner::predict(const torch::Tensor& inputs) {
  net_->eval();
  torch::NoGradGuard no_grad;
  return net_->forward(inputs);
}

std::vector<std::pair<std::string, torch::Tensor>> builtin_learner::state() {
  std::vector<std::pair<std::string, torch::Tensor>> result;
  for (auto& p : net_->named_parameters())
    result.emplace_back(p.key(), p.value());
  for (auto& b : net_->named_buffers())
    result.emplace_back(b.key(), b.value());
  return result;
}

bool builtin_learner::can_checkpoint() const {
  return true;
}

void builtin_learner::scale_learning_rate(double factor) {
  for (auto& group : optimizer_->param_groups())
    group.options().set_lr(group.options().get_lr() * factor);
}

double builtin_learner::learning_rate() const {
  return optimizer_->param_groups().front().options().get_lr();
}

void write_learning_rate(torch::serialize::OutputArchive& archive,
                         torch::optim::Optimizer& optimizer) {
  archive.write(
      "lr", torch::tensor(optimizer.param_groups().front().options().get_lr(),
                          torch::kFloat64));
}

void read_learning_rate(torch::serialize::InputArchive& archive,
                        torch::optim::Optimizer& optimizer) {
  torch::Tensor lr;
  // Snapshots written before the rate was kept restore none.
  if (!archive.try_read("lr", lr))
    return;
  for (auto& group : optimizer.param_groups())
    group.options().set_lr(lr.item<double>());
}

void builtin_learner::save(torch::serialize::OutputArchive& archive) {
  torch::serialize::OutputArchive model;
  torch::serialize::OutputArchive optimizer;
  net_->save(model);
  optimizer_->save(optimizer);
  archive.write("model", model);
  archive.write("optimizer", optimizer);
  write_learning_rate(archive, *optimizer_);
}

void builtin_learner::load(torch::serialize::InputArchive& archive) {
  torch::serialize::InputArchive model;
  torch::serialize::InputArchive optimizer;
  archive.read("model", model);
  archive.read("optimizer", optimizer);
  net_->load(model);
  optimizer_->load(optimizer);
  read_learning_rate(archive, *optimizer_);
}

torch::Tensor builtin_learner::loss_of(const torch::Tensor& out,
                                       const torch::Tensor& y) const {
  if (task_ == task_kind::classification)
    return torch::nn::functional::cross_entropy(out, y);
  return torch::mse_loss(out.view({-1}), y);
}

std::unique_ptr<learner> make_builtin_learner(const learner_context& ctx) {
  return std::make_unique<builtin_learner>(ctx);
}

std::vector<char>
encode_weights(const std::vector<std::pair<std::string, torch::Tensor>>& w) {
  c10::Dict<std::string, torch::Tensor> dict;
  // A copy of its own: a view (a fused network's weights) would otherwise
  // write its whole underlying storage.
  for (auto& [name, t] : w)
    dict.insert(
        name,
        t.detach().to(torch::kCPU).clone(torch::MemoryFormat::Contiguous));
  return torch::pickle_save(c10::IValue{dict});
}

std::vector<std::pair<std::string, torch::Tensor>>
decode_weights(const std::vector<char>& bytes) {
  auto value = torch::pickle_load(bytes);
  std::vector<std::pair<std::string, torch::Tensor>> result;
  for (auto& entry : value.toGenericDict())
    result.emplace_back(entry.key().toStringRef(), entry.value().toTensor());
  return result;
}

} // namespace actortrain

namespace actortrain {

caf::error check_builtin_model(const model_options& m, const dataset& data) {
  auto plan = plan_model(m, data.feature_shape, data.outputs());
  return plan ? caf::error{} : plan.error();
}

} // namespace actortrain
