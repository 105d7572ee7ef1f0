#include "actortrain/learner.hpp"

#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/serialize.h>

#include "actortrain/error.hpp"
#include "builtin_learner.hpp"

namespace actortrain {

learner::~learner() = default;

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

double builtin_model_cost(const model_options& m, const dataset& d) {
  double macs = 0;
  auto in = static_cast<double>(d.features());
  if (m.kind == "cnn" && d.is_image()) {
    auto c = static_cast<double>(d.feature_shape[0]);
    auto h = d.feature_shape[1];
    auto w = d.feature_shape[2];
    for (auto out : m.channels) {
      macs += c * static_cast<double>(out) * 9.0 * static_cast<double>(h * w);
      c = static_cast<double>(out);
      h /= 2;
      w /= 2;
    }
    in = c * static_cast<double>(h * w);
  }
  for (auto width : m.hidden) {
    macs += in * static_cast<double>(width);
    in = static_cast<double>(width);
  }
  return macs + in * static_cast<double>(d.outputs());
}

namespace {

/// Parameters of the built-in model, and activations per sample that the
/// backward pass keeps.
struct model_size {
  double parameters = 0;
  double activations = 0;
};

model_size size_of(const model_options& m, const dataset& d) {
  model_size size;
  size.activations = static_cast<double>(d.features());
  auto in = static_cast<double>(d.features());
  if (m.kind == "cnn" && d.is_image()) {
    auto c = static_cast<double>(d.feature_shape[0]);
    auto h = d.feature_shape[1];
    auto w = d.feature_shape[2];
    for (auto out : m.channels) {
      auto o = static_cast<double>(out);
      size.parameters += c * o * 9.0 + o;
      // Convolution output, activation, pooled output.
      size.activations += 2.0 * o * static_cast<double>(h * w);
      h /= 2;
      w /= 2;
      size.activations += o * static_cast<double>(h * w);
      c = o;
    }
    in = c * static_cast<double>(h * w);
  }
  for (auto width : m.hidden) {
    auto o = static_cast<double>(width);
    size.parameters += in * o + o;
    size.activations += 2.0 * o;
    in = o;
  }
  auto outputs = static_cast<double>(d.outputs());
  size.parameters += in * outputs + outputs;
  size.activations += outputs;
  return size;
}

} // namespace

double builtin_model_parameters(const model_options& m, const dataset& d) {
  return size_of(m, d).parameters;
}

double builtin_model_bytes(const model_options& m, const dataset& d,
                           int64_t batch_size) {
  auto size = size_of(m, d);
  // Weights, gradients and two optimizer buffers; activations twice: forward
  // values and their gradients.
  return 4.0 * (4.0 * size.parameters +
                2.0 * static_cast<double>(batch_size) * size.activations);
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
  if (opts.kind == "sgd")
    return std::make_unique<torch::optim::SGD>(
        std::move(params), torch::optim::SGDOptions(opts.lr)
                               .momentum(opts.momentum)
                               .weight_decay(opts.weight_decay));
  if (opts.kind == "adamw")
    return std::make_unique<torch::optim::AdamW>(
        std::move(params),
        torch::optim::AdamWOptions(opts.lr).weight_decay(opts.weight_decay));
  return std::make_unique<torch::optim::Adam>(
      std::move(params),
      torch::optim::AdamOptions(opts.lr).weight_decay(opts.weight_decay));
}

namespace {

torch::nn::AnyModule activation(const std::string& name) {
  if (name == "tanh")
    return torch::nn::AnyModule(torch::nn::Tanh());
  if (name == "sigmoid")
    return torch::nn::AnyModule(torch::nn::Sigmoid());
  if (name == "gelu")
    return torch::nn::AnyModule(torch::nn::GELU());
  return torch::nn::AnyModule(torch::nn::ReLU());
}

torch::nn::Sequential build_model(const model_options& m, const dataset& d) {
  torch::nn::Sequential net;
  int64_t in = d.features();
  if (m.kind == "cnn") {
    auto channels = d.feature_shape[0];
    auto h = d.feature_shape[1];
    auto w = d.feature_shape[2];
    for (auto c : m.channels) {
      net->push_back(torch::nn::Conv2d(
          torch::nn::Conv2dOptions(channels, c, 3).padding(1)));
      net->push_back(activation(m.activation));
      net->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2)));
      channels = c;
      h /= 2;
      w /= 2;
    }
    in = channels * h * w;
  }
  net->push_back(torch::nn::Flatten());
  for (auto width : m.hidden) {
    net->push_back(torch::nn::Linear(in, width));
    net->push_back(activation(m.activation));
    in = width;
  }
  net->push_back(torch::nn::Linear(in, d.outputs()));
  return net;
}

} // namespace

builtin_learner::builtin_learner(const learner_context& ctx)
    : net_(build_model(ctx.spec.config.model, ctx.data)), task_(ctx.data.task),
      options_(ctx.spec.config.optimizer) {
  init_parameters(*net_, ctx.generator);
  net_->to(ctx.device);
  optimizer_ = make_optimizer(options_, net_->parameters());
}

double builtin_learner::train_step(const torch::Tensor& inputs,
                                   const torch::Tensor& targets) {
  net_->train();
  optimizer_->zero_grad();
  auto loss = loss_of(net_->forward(inputs), targets);
  loss.backward();
  optimizer_->step();
  return loss.item<double>();
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

void builtin_learner::save(torch::serialize::OutputArchive& archive) {
  torch::serialize::OutputArchive model;
  torch::serialize::OutputArchive optimizer;
  net_->save(model);
  optimizer_->save(optimizer);
  archive.write("model", model);
  archive.write("optimizer", optimizer);
}

void builtin_learner::load(torch::serialize::InputArchive& archive) {
  torch::serialize::InputArchive model;
  torch::serialize::InputArchive optimizer;
  archive.read("model", model);
  archive.read("optimizer", optimizer);
  net_->load(model);
  optimizer_->load(optimizer);
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
  if (m.kind != "cnn")
    return {};
  if (!data.is_image())
    return make_error(errc::invalid_experiment,
                      fmt::format("model.kind = 'cnn' needs image data "
                                  "(channels x height x width), but the "
                                  "data's samples have shape [{}]",
                                  fmt::join(data.feature_shape, ", ")));
  auto h = data.feature_shape[1];
  auto w = data.feature_shape[2];
  for (size_t i = 0; i < m.channels.size(); ++i) {
    h /= 2;
    w /= 2;
  }
  if (h < 1 || w < 1)
    return make_error(errc::invalid_experiment,
                      fmt::format("model.channels: {} pooling blocks shrink "
                                  "{}x{} images below 1x1",
                                  m.channels.size(), data.feature_shape[1],
                                  data.feature_shape[2]));
  return {};
}

} // namespace actortrain
