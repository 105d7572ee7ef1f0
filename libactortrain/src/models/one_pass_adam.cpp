// Compiled with -ffp-contract=off (CMakeLists.txt): every fused
// multiply-add below is the explicit std::fma LibTorch's rounding needs, and
// no other.
#include "models/one_pass_adam.hpp"

#include <cmath>
#include <cstdlib>
#include <string>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include "models/optimizer_state.hpp"

namespace actortrain {

namespace {

/// One element as LibTorch 1.13's composite ops compute it:
///   AdamW: p.mul_(1 - lr * wd)      p * keep
///   Adam: grad.add(p, wd)           fma(p, wd, g)      (vectorized fmadd)
///   exp_avg.mul_(b1).add_(g, 1-b1)  fma(g, 1-b1, m*b1)
///   exp_avg_sq.mul_(b2)
///     .addcmul_(g, g, 1-b2)         fma((1-b2)*g, g, v*b2)
///   sqrt(v) / sqrt(bc2) + eps
///   p.addcdiv_(m, denom, -step)     p + (-step*m) / denom
template <bool decays, bool shrinks>
inline void update(float* __restrict p, const float* __restrict grad,
                   float* __restrict m, float* __restrict v, int64_t begin,
                   int64_t end, const adam_scalars& s) {
  for (int64_t i = begin; i < end; ++i) {
    const float w = shrinks ? p[i] * s.keep : p[i];
    const float g = decays ? std::fma(p[i], s.weight_decay, grad[i]) : grad[i];
    const float m2 = std::fma(g, s.one_minus_beta1, m[i] * s.beta1);
    const float v2 = std::fma(s.one_minus_beta2 * g, g, v[i] * s.beta2);
    const float denom = std::sqrt(v2) / s.sqrt_bias_correction2 + s.eps;
    p[i] = w + (s.minus_step_size * m2) / denom;
    m[i] = m2;
    v[i] = v2;
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
// Compiled for the FMA instructions (and vectorized with them); without
// them std::fma is a library call per element, and the check at first use
// does not run: active() is false.
#define ACTORTRAIN_FMA_TARGET __attribute__((target("avx2,fma")))
bool has_fma() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#else
#define ACTORTRAIN_FMA_TARGET
bool has_fma() {
  return false;
}
#endif

ACTORTRAIN_FMA_TARGET void update_fma(float* p, const float* grad, float* m,
                                      float* v, int64_t begin, int64_t end,
                                      const adam_scalars& s) {
  if (s.decays)
    update<true, false>(p, grad, m, v, begin, end, s);
  else if (s.shrinks)
    update<false, true>(p, grad, m, v, begin, end, s);
  else
    update<false, false>(p, grad, m, v, begin, end, s);
}

bool takes(const torch::Tensor& t) {
  return t.defined() && t.device().is_cpu() &&
         t.scalar_type() == torch::kFloat32 && t.is_contiguous() &&
         !t.is_sparse();
}

/// What differs between LibTorch's Adam and AdamW here.
template <class Optimizer> struct flavour;
template <> struct flavour<torch::optim::Adam> {
  using options = torch::optim::AdamOptions;
  using state = torch::optim::AdamParamState;
  static constexpr bool decoupled = false;
};
template <> struct flavour<torch::optim::AdamW> {
  using options = torch::optim::AdamWOptions;
  using state = torch::optim::AdamWParamState;
  static constexpr bool decoupled = true;
};

/// Whether every parameter with a gradient can be updated here.
template <class Optimizer> bool all_taken(torch::optim::Optimizer& opt) {
  using f = flavour<Optimizer>;
  for (auto& group : opt.param_groups()) {
    if (static_cast<typename f::options&>(group.options()).amsgrad())
      return false;
    for (auto& p : group.params()) {
      if (!p.grad().defined())
        continue;
      if (!takes(p) || !takes(p.grad()) || p.grad().numel() != p.numel())
        return false;
      if (auto* s = state_of(opt, p)) {
        auto* a = static_cast<typename f::state*>(s);
        if (!takes(a->exp_avg()) || !takes(a->exp_avg_sq()))
          return false;
      }
    }
  }
  return true;
}

} // namespace

adam_scalars adam_scalars_of(double beta1, double beta2, double eps,
                             double sqrt_bias_correction2,
                             double minus_step_size) {
  adam_scalars s{};
  s.beta1 = static_cast<float>(beta1);
  s.one_minus_beta1 = static_cast<float>(1 - beta1);
  s.beta2 = static_cast<float>(beta2);
  s.one_minus_beta2 = static_cast<float>(1 - beta2);
  s.sqrt_bias_correction2 = static_cast<float>(sqrt_bias_correction2);
  s.eps = static_cast<float>(eps);
  s.minus_step_size = static_cast<float>(minus_step_size);
  s.weight_decay = 0;
  s.decays = false;
  return s;
}

adam_scalars with_gradient_decay(adam_scalars s, double weight_decay) {
  s.weight_decay = static_cast<float>(weight_decay);
  s.decays = true;
  s.shrinks = false;
  s.keep = 1;
  return s;
}

adam_scalars with_shrinking_weights(adam_scalars s, double keep) {
  s.weight_decay = 0;
  s.decays = false;
  s.shrinks = true;
  s.keep = static_cast<float>(keep);
  return s;
}

void adam_in_one_pass(float* p, const float* grad, float* exp_avg,
                      float* exp_avg_sq, int64_t n, const adam_scalars& s) {
  // Elements are independent: any split gives the same bits (and the
  // split LibTorch's elementwise ops make, so each element is computed on
  // the thread that would have computed it there).
  at::parallel_for(0, n, 32768, [&](int64_t begin, int64_t end) {
    update_fma(p, grad, exp_avg, exp_avg_sq, begin, end, s);
  });
}

namespace {

/// Updates every parameter of `opt` (an Optimizer: Adam or AdamW) in one
/// pass each.
template <class Optimizer> void step_in_one_pass(torch::optim::Optimizer& opt) {
  using f = flavour<Optimizer>;
  torch::NoGradGuard no_grad;
  for (auto& group : opt.param_groups()) {
    auto& o = static_cast<typename f::options&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined())
        continue;
      auto* state = state_of(opt, p);
      if (state == nullptr) {
        // As LibTorch's Adam and AdamW start a parameter's state.
        auto s = std::make_unique<typename f::state>();
        s->step(0);
        s->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        s->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        state = s.get();
        opt.state()[state_key(p)] = std::move(s);
      }
      auto& a = static_cast<typename f::state&>(*state);
      a.step(a.step() + 1);
      const double beta1 = std::get<0>(o.betas());
      const double beta2 = std::get<1>(o.betas());
      const double bias_correction1 =
          1 - std::pow(beta1, static_cast<double>(a.step()));
      const double bias_correction2 =
          1 - std::pow(beta2, static_cast<double>(a.step()));
      auto s =
          adam_scalars_of(beta1, beta2, o.eps(), std::sqrt(bias_correction2),
                          -(o.lr() / bias_correction1));
      // As LibTorch's: no decay op at all when the decay is 0.
      if (o.weight_decay() != 0)
        s = f::decoupled
                ? with_shrinking_weights(s, 1 - o.lr() * o.weight_decay())
                : with_gradient_decay(s, o.weight_decay());
      adam_in_one_pass(p.data_ptr<float>(), p.grad().data_ptr<float>(),
                       a.exp_avg().template data_ptr<float>(),
                       a.exp_avg_sq().template data_ptr<float>(), p.numel(), s);
    }
  }
}

/// Ten steps of both on the same odd-sized parameters (a vector tail
/// included), with and without weight decay, gradients large and small:
/// true when every bit of weights and moments agrees.
template <class Optimizer> bool agrees_with_libtorch() {
  using f = flavour<Optimizer>;
  for (double decay : {0.0, 1e-2}) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(17);
    auto theirs = torch::randn({1031}, gen).requires_grad_();
    auto ours = theirs.detach().clone().requires_grad_();
    auto options = typename f::options(3e-3).weight_decay(decay);
    Optimizer reference({theirs}, options);
    Optimizer one_pass({ours}, options);
    for (int step = 0; step < 10; ++step) {
      auto grad = torch::randn({1031}, gen) * (step % 3 == 2 ? 1e-4 : 1.0);
      theirs.mutable_grad() = grad.clone();
      ours.mutable_grad() = grad.clone();
      reference.step();
      step_in_one_pass<Optimizer>(one_pass);
    }
    auto* a = static_cast<typename f::state*>(state_of(reference, theirs));
    auto* b = static_cast<typename f::state*>(state_of(one_pass, ours));
    if (!theirs.equal(ours) || !a->exp_avg().equal(b->exp_avg()) ||
        !a->exp_avg_sq().equal(b->exp_avg_sq()))
      return false;
  }
  return true;
}

/// Whether one pass is on for `Optimizer` in this process.
/// ACTORTRAIN_ONE_PASS_ADAM=0 steps with LibTorch's ops (the same bits,
/// slower): to compare, or to rule this out.
template <class Optimizer> bool agrees_here() {
  const char* env = std::getenv("ACTORTRAIN_ONE_PASS_ADAM");
  if (env != nullptr && std::string{env} == "0")
    return false;
  return has_fma() && agrees_with_libtorch<Optimizer>();
}

/// `opt`'s step: in one pass where it agrees and takes every tensor.
template <class Optimizer>
torch::Tensor step_of(Optimizer& opt, bool active,
                      torch::optim::Optimizer::LossClosure closure) {
  if (!active || !all_taken<Optimizer>(opt))
    return opt.Optimizer::step(std::move(closure));
  torch::Tensor loss;
  if (closure) {
    torch::AutoGradMode enable_grad(true);
    loss = closure();
  }
  step_in_one_pass<Optimizer>(opt);
  return loss;
}

} // namespace

bool one_pass_adam::active() {
  static const bool agrees = agrees_here<torch::optim::Adam>();
  return agrees;
}

torch::Tensor one_pass_adam::step(LossClosure closure) {
  return step_of<torch::optim::Adam>(*this, active(), std::move(closure));
}

bool one_pass_adamw::active() {
  static const bool agrees = agrees_here<torch::optim::AdamW>();
  return agrees;
}

torch::Tensor one_pass_adamw::step(LossClosure closure) {
  return step_of<torch::optim::AdamW>(*this, active(), std::move(closure));
}

} // namespace actortrain
