#include "fusion/fused_model.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>
#include <torch/version.h>

#include "models/builtin_learner.hpp"
#include "models/max_pool.hpp"
#include "models/one_pass_adam.hpp"
#include "models/optimizer_state.hpp"

namespace actortrain {

/// One module of the built-in Sequential; `param` indexes the weight in
/// the stacked parameters (the bias follows it).
struct fused_layer {
  enum kind_t { conv, linear, pool, flatten, relu, tanh, sigmoid, gelu };
  kind_t kind;
  size_t param = 0;
};

namespace {

using layer = fused_layer;

/// The built-in model's layers as fusion runs them; `param` counts the
/// stacked weights and biases in the Sequential's order.
std::vector<layer> read_layers(const builtin_learner& l) {
  std::vector<layer> result;
  size_t param = 0;
  for (const auto& p : l.plan().layers) {
    switch (p.kind) {
    case planned_layer::conv:
      result.push_back({layer::conv, param});
      param += 2;
      break;
    case planned_layer::linear:
      result.push_back({layer::linear, param});
      param += 2;
      break;
    case planned_layer::pool:
      result.push_back({layer::pool, 0});
      break;
    case planned_layer::flatten:
      result.push_back({layer::flatten, 0});
      break;
    case planned_layer::activation:
      switch (l.plan().activation) {
      case activation_kind::relu:
        result.push_back({layer::relu, 0});
        break;
      case activation_kind::tanh:
        result.push_back({layer::tanh, 0});
        break;
      case activation_kind::sigmoid:
        result.push_back({layer::sigmoid, 0});
        break;
      case activation_kind::gelu:
        result.push_back({layer::gelu, 0});
        break;
      }
      break;
    }
  }
  return result;
}

} // namespace

bool fused_model::can_fuse(builtin_learner& member) {
  // Every planned layer has a fused kernel; the optimizer must too.
  return is_known(member.options().kind);
}

fused_model::fused_model(const std::vector<builtin_learner*>& members)
    : k_(static_cast<int64_t>(members.size())) {
  if (members.empty())
    throw std::invalid_argument("a fused model needs members");
  auto& first = *members.front();
  layers_ = read_layers(first);
  classification_ = first.task() == task_kind::classification;
  auto kind = first.options().kind;
  method_ = kind;
  auto first_params = first.net()->named_parameters();
  for (auto& p : first_params)
    names_.push_back(p.key());
  for (auto* m : members) {
    auto ps = m->net()->named_parameters();
    if (ps.size() != first_params.size() || m->options().kind != kind ||
        m->task() != first.task())
      throw std::invalid_argument("fused networks must share model, task and "
                                  "optimizer kind");
    for (size_t i = 0; i < ps.size(); ++i)
      if (ps[i].key() != names_[i] ||
          ps[i].value().sizes() != first_params[i].value().sizes())
        throw std::invalid_argument(
            fmt::format("fused networks differ in parameter '{}': [{}] vs [{}]",
                        names_[i], fmt::join(ps[i].value().sizes(), ", "),
                        fmt::join(first_params[i].value().sizes(), ", ")));
    lr_.push_back(m->learning_rate());
    momentum_.push_back(m->options().momentum);
    weight_decay_.push_back(m->options().weight_decay);
  }
  torch::NoGradGuard no_grad;
  steps_.assign(static_cast<size_t>(k_), 0);
  for (size_t i = 0; i < names_.size(); ++i) {
    std::vector<torch::Tensor> ws;
    std::vector<torch::Tensor> m1;
    std::vector<torch::Tensor> m2;
    for (size_t k = 0; k < members.size(); ++k) {
      auto& m = *members[k];
      auto p = m.net()->named_parameters()[names_[i]];
      ws.push_back(p.detach());
      torch::Tensor b1;
      torch::Tensor b2;
      if (auto* s = state_of(m.optimizer(), p)) {
        if (method_ == method::sgd) {
          b1 = static_cast<torch::optim::SGDParamState*>(s)->momentum_buffer();
        } else if (method_ == method::adam) {
          auto* a = static_cast<torch::optim::AdamParamState*>(s);
          b1 = a->exp_avg();
          b2 = a->exp_avg_sq();
          steps_[k] = a->step();
        } else {
          auto* a = static_cast<torch::optim::AdamWParamState*>(s);
          b1 = a->exp_avg();
          b2 = a->exp_avg_sq();
          steps_[k] = a->step();
        }
      }
      // A missing buffer is a zero one: momentum * 0 + g is exactly the
      // g that LibTorch's SGD starts its buffer with.
      m1.push_back(b1.defined() ? b1.detach() : torch::zeros_like(p));
      m2.push_back(b2.defined() ? b2.detach() : torch::zeros_like(p));
    }
    params_.push_back(torch::stack(ws).requires_grad_(true));
    moment1_.push_back(torch::stack(m1));
    if (method_ != method::sgd)
      moment2_.push_back(torch::stack(m2));
  }
  if (method_ == method::sgd) {
    // SGD keeps no step count: a member has stepped when it has a buffer.
    for (size_t k = 0; k < members.size(); ++k) {
      auto p = members[k]->net()->named_parameters()[names_[0]];
      auto* s = state_of(members[k]->optimizer(), p);
      steps_[k] = s != nullptr ? 1 : 0;
    }
  }
}

fused_model::~fused_model() = default;

torch::Tensor fused_model::per_member(const std::vector<double>& xs) const {
  auto like = params_.front();
  auto t = torch::tensor(xs, torch::kFloat64).to(like.scalar_type());
  return t.to(like.device());
}

torch::Tensor fused_model::broadcast(const torch::Tensor& values,
                                     const torch::Tensor& like) {
  std::vector<int64_t> shape(static_cast<size_t>(like.dim()), 1);
  shape[0] = values.size(0);
  return values.view(shape);
}

namespace {

torch::Tensor activate(layer::kind_t kind, const torch::Tensor& h) {
  switch (kind) {
  case layer::tanh:
    return torch::tanh(h);
  case layer::sigmoid:
    // sigmoid(x) = (1 + tanh(x / 2)) / 2: LibTorch's sigmoid kernel rounds
    // the last elements of a tensor differently from the others, so a
    // member's bits would depend on where in the stack it sits; tanh's
    // does not.
    return torch::tanh(h * 0.5).mul(0.5).add(0.5);
  case layer::gelu:
    return torch::gelu(h);
  default:
    return torch::relu(h);
  }
}

} // namespace

/// K linear layers at once: [K, B, in] x [K, out, in]^T + [K, out]. Its
/// backward computes the weight gradient in the weights' own layout (LibTorch's
/// bmm backward would produce it transposed and copy it over, a third
/// slower), skips the input gradient where nothing needs it (the first
/// layer), and computes each member's gradients with the operations its
/// unfused Linear uses, so they are bit-identical.
struct fused_linear : torch::autograd::Function<fused_linear> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx,
                               const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b) {
    ctx->save_for_backward({x, w});
    return torch::baddbmm(b.unsqueeze(1), x, w.transpose(1, 2));
  }

  static torch::autograd::variable_list
  backward(torch::autograd::AutogradContext* ctx,
           torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& w = saved[1];
    const auto& g = grads[0];
    torch::Tensor gx;
    if (ctx->needs_input_grad(0))
      gx = torch::bmm(g, w);
    return {gx, torch::bmm(g.transpose(1, 2), x), g.sum(1)};
  }
};

torch::Tensor fused_model::forward(const torch::Tensor& x) const {
  auto b = x.size(1);
  // Images travel as [K, B, C, H, W] and each member convolves its own (one
  // grouped convolution is slower on CPU than K small ones); everything else
  // is one operation for all members: features as [K, B, F] through batched
  // matrix products.
  auto h = layers_.front().kind == layer::conv ? x : x.reshape({k_, b, -1});
  for (const auto& l : layers_) {
    switch (l.kind) {
    case layer::conv: {
      const auto& w = params_[l.param];
      const auto& bias = params_[l.param + 1];
      std::vector<torch::Tensor> outs;
      outs.reserve(static_cast<size_t>(k_));
      for (int64_t k = 0; k < k_; ++k)
        outs.push_back(torch::conv2d(h[k], w[k], bias[k], 1,
                                     {w.size(3) / 2, w.size(4) / 2}));
      h = torch::stack(outs);
      break;
    }
    case layer::pool: {
      auto s = h.sizes().vec();
      auto pooled = max_pool_2x2(h.reshape({k_ * b, s[2], s[3], s[4]}));
      h = pooled.view({k_, b, s[2], pooled.size(2), pooled.size(3)});
      break;
    }
    case layer::flatten:
      h = h.reshape({k_, b, -1});
      break;
    case layer::linear:
      h = fused_linear::apply(h, params_[l.param], params_[l.param + 1]);
      break;
    default:
      h = activate(l.kind, h);
    }
  }
  return h;
}

step_losses fused_model::train_step_on_device(const torch::Tensor& inputs,
                                              const torch::Tensor& targets) {
  auto out = forward(inputs);
  auto b = inputs.size(1);
  namespace F = torch::nn::functional;
  if (classification_) {
    auto per_sample =
        F::cross_entropy(out.reshape({k_ * b, -1}), targets.reshape({k_ * b}),
                         F::CrossEntropyFuncOptions().reduction(torch::kNone))
            .view({k_, b});
    // The sum's gradient with respect to each member's weights is that
    // member's own loss gradient.
    per_sample.mean(1).sum().backward();
    optimizer_step();
    return {per_sample.detach(), true};
  }
  auto losses = F::mse_loss(out.reshape({k_, b}), targets.reshape({k_, b}),
                            F::MSELossFuncOptions().reduction(torch::kNone))
                    .mean(1);
  losses.sum().backward();
  optimizer_step();
  return {losses.detach(), false};
}

std::vector<double> fused_model::train_step(const torch::Tensor& inputs,
                                            const torch::Tensor& targets) {
  return read_losses({train_step_on_device(inputs, targets)}).front();
}

namespace {

// LibTorch's Adam defaults, as make_optimizer builds it.
constexpr double beta1 = 0.9;
constexpr double beta2 = 0.999;
constexpr double eps = 1e-8;

/// Adam's update of stacked members with per-member [K, 1, ...] scalars:
/// each element from its member's elements alone. `weight_decay` undefined
/// for AdamW (its decay is applied to p before).
void adam_with_tensors(torch::Tensor& p, torch::Tensor g, torch::Tensor& m1,
                       torch::Tensor& m2, const torch::Tensor& weight_decay,
                       const torch::Tensor& sqrt_bc2,
                       const torch::Tensor& neg_step_size) {
  if (weight_decay.defined())
    g = g.addcmul(p, weight_decay);
  m1.mul_(beta1).add_(g, 1 - beta1);
  m2.mul_(beta2).addcmul_(g, g, 1 - beta2);
  auto denom = (m2.sqrt() / sqrt_bc2).add_(eps);
  p.add_(neg_step_size * m1 / denom);
}

/// One member's scalars as the [K, 1] tensors hold them (float from
/// double); the decay op is applied even at 0, as there: Adam's on the
/// gradient (`decay` the weight decay), AdamW's on p (`decay` the factor
/// 1 - lr * weight decay).
adam_scalars member_scalars(bool adamw, double sqrt_bc2, double neg_step,
                            double decay) {
  auto s = adam_scalars_of(beta1, beta2, eps, sqrt_bc2, neg_step);
  return adamw ? with_shrinking_weights(s, decay)
               : with_gradient_decay(s, decay);
}

/// Whether the one pass gives the tensor formula's bits here (Adam's, or
/// AdamW's with `adamw`): three members with their own steps, rates and
/// decays.
bool one_pass_agrees_with_tensors(bool adamw, uint64_t seed) {
  if (!(adamw ? one_pass_adamw::active() : one_pass_adam::active()))
    return false;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const int64_t k = 3;
  const int64_t n = 517;
  auto p = torch::randn({k, n}, gen);
  auto m1 = torch::randn({k, n}, gen) * 1e-2;
  auto m2 = torch::rand({k, n}, gen) * 1e-4;
  auto g = torch::randn({k, n}, gen);
  // Adam: weight decays; AdamW: the factors 1 - lr * weight decay.
  const std::vector<double> decay =
      adamw ? std::vector<double>{1, 1 - 1e-3 * 1e-2, 1 - 3e-2 * 0.3}
            : std::vector<double>{0, 1e-2, 0.3};
  const std::vector<double> sqrt_bc2{std::sqrt(1 - std::pow(beta2, 1.0)),
                                     std::sqrt(1 - std::pow(beta2, 7.0)),
                                     std::sqrt(1 - std::pow(beta2, 300.0))};
  const std::vector<double> neg_step{-1e-3 / (1 - beta1), -3e-2, -1e-4};
  auto column = [&](const std::vector<double>& xs) {
    return torch::tensor(xs, torch::kFloat64).to(torch::kFloat32).view({k, 1});
  };
  auto tp = p.clone();
  auto t1 = m1.clone();
  auto t2 = m2.clone();
  if (adamw)
    tp.mul_(column(decay));
  adam_with_tensors(tp, g, t1, t2, adamw ? torch::Tensor{} : column(decay),
                    column(sqrt_bc2), column(neg_step));
  for (int64_t i = 0; i < k; ++i) {
    auto at = static_cast<size_t>(i);
    adam_in_one_pass(
        p.data_ptr<float>() + i * n, g.data_ptr<float>() + i * n,
        m1.data_ptr<float>() + i * n, m2.data_ptr<float>() + i * n, n,
        member_scalars(adamw, sqrt_bc2[at], neg_step[at], decay[at]));
  }
  return tp.equal(p) && t1.equal(m1) && t2.equal(m2);
}

bool on_cpu_as_floats(const torch::Tensor& t) {
  return t.device().is_cpu() && t.scalar_type() == torch::kFloat32 &&
         t.is_contiguous();
}

/// Whether this stacked parameter's Adam (or AdamW) step can run in one
/// pass.
bool adam_fits_one_pass(bool adamw, const torch::Tensor& p,
                        const torch::Tensor& g, const torch::Tensor& m1,
                        const torch::Tensor& m2) {
  // Each checked once, when a group of its kind first steps.
  auto agrees = [](bool w) {
    if (w) {
      static const bool adamw_agrees = one_pass_agrees_with_tensors(true, 23);
      return adamw_agrees;
    }
    static const bool adam_agrees = one_pass_agrees_with_tensors(false, 23);
    return adam_agrees;
  };
  return agrees(adamw) && on_cpu_as_floats(p) && on_cpu_as_floats(g) &&
         on_cpu_as_floats(m1) && on_cpu_as_floats(m2);
}

} // namespace

bool fused_model::one_pass_adam_agrees(uint64_t seed) {
  return one_pass_agrees_with_tensors(false, seed) &&
         one_pass_agrees_with_tensors(true, seed);
}

void fused_model::optimizer_step() {
  torch::NoGradGuard no_grad;
  for (auto& s : steps_)
    ++s;
  // One formula whatever the members' values: per-member hyperparameters
  // are [K, 1, ...] tensors even where every member has the same value.
  // Every operation below computes each element from that member's own
  // elements alone, so a member gets the same bits in a group of any size
  // or composition, alone included (LibTorch's scalar calls would round
  // differently from the tensor ones, and only some groups would use them).
  if (!hyper_) {
    // Fixed until a learning rate is scaled: made once, not every step.
    std::vector<double> neg_lr;
    std::vector<double> decay;
    for (size_t k = 0; k < lr_.size(); ++k) {
      neg_lr.push_back(-lr_[k]);
      decay.push_back(1 - lr_[k] * weight_decay_[k]);
    }
    hyper_ = hyperparameters{per_member(neg_lr), per_member(momentum_),
                             per_member(weight_decay_), per_member(decay)};
  }
  const auto& h = *hyper_;
  torch::Tensor neg_step_size;
  torch::Tensor sqrt_bc2;
  std::vector<double> neg_step_of;
  std::vector<double> sqrt_bc2_of;
  if (method_ != method::sgd) {
    for (size_t k = 0; k < steps_.size(); ++k) {
      auto n = static_cast<double>(steps_[k]);
      neg_step_of.push_back(-lr_[k] / (1 - std::pow(beta1, n)));
      sqrt_bc2_of.push_back(std::sqrt(1 - std::pow(beta2, n)));
    }
    neg_step_size = per_member(neg_step_of);
    sqrt_bc2 = per_member(sqrt_bc2_of);
  }
  const bool adamw = method_ == method::adamw;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i];
    auto g = p.grad();
    if (!g.defined())
      continue;
    auto& m1 = moment1_[i];
    if (method_ == method::sgd) {
      auto d = g.addcmul(p, broadcast(h.weight_decay, p));
      // momentum 0 leaves d as it is: 0 * m1 + d == d.
      m1.mul_(broadcast(h.momentum, p)).add_(d);
      p.addcmul_(m1, broadcast(h.neg_lr, p));
    } else if (adam_fits_one_pass(adamw, p, g, m1, moment2_[i])) {
      // Each member's slice in one pass, with the scalars the tensors
      // below hold (float from double), so the same bits.
      const int64_t n = p.numel() / k_;
      for (int64_t k = 0; k < k_; ++k) {
        auto at = static_cast<size_t>(k);
        const auto s = member_scalars(adamw, sqrt_bc2_of[at], neg_step_of[at],
                                      adamw ? 1 - lr_[at] * weight_decay_[at]
                                            : weight_decay_[at]);
        adam_in_one_pass(p.data_ptr<float>() + k * n,
                         g.data_ptr<float>() + k * n,
                         m1.data_ptr<float>() + k * n,
                         moment2_[i].data_ptr<float>() + k * n, n, s);
      }
    } else {
      if (adamw)
        p.mul_(broadcast(h.decay, p));
      adam_with_tensors(p, g, m1, moment2_[i],
                        adamw ? torch::Tensor{} : broadcast(h.weight_decay, p),
                        broadcast(sqrt_bc2, p), broadcast(neg_step_size, p));
    }
    p.mutable_grad() = torch::Tensor{};
  }
}

torch::Tensor fused_model::predict(int64_t k,
                                   const torch::Tensor& inputs) const {
  torch::NoGradGuard no_grad;
  auto h = inputs;
  for (const auto& l : layers_) {
    switch (l.kind) {
    case layer::conv: {
      const auto& w = params_[l.param][k];
      h = torch::conv2d(h, w, params_[l.param + 1][k], 1,
                        {w.size(2) / 2, w.size(3) / 2});
      break;
    }
    case layer::pool:
      h = max_pool_2x2(h);
      break;
    case layer::flatten:
      h = h.flatten(1);
      break;
    case layer::linear:
      h = torch::linear(h, params_[l.param][k], params_[l.param + 1][k]);
      break;
    default:
      h = activate(l.kind, h);
    }
  }
  return h;
}

std::vector<std::pair<std::string, torch::Tensor>>
fused_model::state(int64_t k) const {
  std::vector<std::pair<std::string, torch::Tensor>> result;
  for (size_t i = 0; i < names_.size(); ++i)
    result.emplace_back(names_[i], params_[i][k].detach());
  return result;
}

void fused_model::unstack(int64_t k, builtin_learner& target) const {
  torch::NoGradGuard no_grad;
  auto& opt = target.optimizer();
  opt.state().clear();
  auto ps = target.net()->named_parameters();
  auto ku = static_cast<size_t>(k);
  for (size_t i = 0; i < names_.size(); ++i) {
    auto& p = ps[names_[i]];
    p.copy_(params_[i][k]);
    auto key = state_key(p);
    if (steps_[ku] == 0)
      continue;
    // Only what LibTorch's own optimizer would hold after these steps.
    if (method_ == method::sgd) {
      if (momentum_[ku] == 0)
        continue;
      auto s = std::make_unique<torch::optim::SGDParamState>();
      s->momentum_buffer(moment1_[i][k].clone());
      opt.state()[key] = std::move(s);
    } else if (method_ == method::adam) {
      auto s = std::make_unique<torch::optim::AdamParamState>();
      s->step(steps_[ku]);
      s->exp_avg(moment1_[i][k].clone());
      s->exp_avg_sq(moment2_[i][k].clone());
      opt.state()[key] = std::move(s);
    } else {
      auto s = std::make_unique<torch::optim::AdamWParamState>();
      s->step(steps_[ku]);
      s->exp_avg(moment1_[i][k].clone());
      s->exp_avg_sq(moment2_[i][k].clone());
      opt.state()[key] = std::move(s);
    }
  }
  for (auto& group : opt.param_groups())
    group.options().set_lr(lr_[ku]);
}

void fused_model::scale_learning_rate(int64_t k, double factor) {
  lr_[static_cast<size_t>(k)] *= factor;
  hyper_.reset();
}

} // namespace actortrain
