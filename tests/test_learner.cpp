#include <doctest/doctest.h>

#include <sstream>

#include <ATen/CPUGeneratorImpl.h>

#include "actortrain/error.hpp"
#include "actortrain/learner.hpp"
#include "models/max_pool.hpp"
#include "models/one_pass_adam.hpp"
#include "models/optimizer_state.hpp"
#include "test_support.hpp"

using namespace actortrain;

namespace {

std::vector<std::pair<std::string, torch::Tensor>>
initial_weights(const network_spec& spec, const dataset& data) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(spec.seed);
  learner_context ctx{spec, data, torch::kCPU, gen};
  return make_builtin_learner(ctx)->state();
}

bool same(const std::vector<std::pair<std::string, torch::Tensor>>& a,
          const std::vector<std::pair<std::string, torch::Tensor>>& b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].first != b[i].first || !a[i].second.equal(b[i].second))
      return false;
  return true;
}

std::shared_ptr<const dataset> small_data() {
  auto exp = test::tiny_experiment();
  auto data = load_dataset(exp.data);
  REQUIRE(data);
  return *data;
}

} // namespace

TEST_CASE("same seed, same initial weights, and different seeds, different") {
  auto data = small_data();
  auto specs = expand(test::tiny_experiment(3));
  // The global generator must not matter.
  torch::manual_seed(1);
  auto a = initial_weights(specs[0], *data);
  torch::manual_seed(2);
  auto b = initial_weights(specs[0], *data);
  auto c = initial_weights(specs[1], *data);
  CHECK(same(a, b));
  CHECK_FALSE(same(a, c));
  REQUIRE(a.size() == 4);
  CHECK(a[0].first == "1.weight");
  CHECK(a[0].second.sizes() == torch::IntArrayRef{16, 8});
  // PyTorch's default bound 1/sqrt(fan_in).
  CHECK(a[0].second.abs().max().item<double>() <= 1.0 / std::sqrt(8.0));
}

TEST_CASE("weights survive encoding as a LibTorch pickle") {
  auto data = small_data();
  auto spec = expand(test::tiny_experiment(1))[0];
  auto w = initial_weights(spec, *data);
  auto decoded = decode_weights(encode_weights(w));
  CHECK(same(w, decoded));
}

TEST_CASE("built-in CNNs need images large enough for their pooling") {
  auto tabular = small_data();
  model_options m;
  m.kind = model_kind::cnn;
  auto err = check_builtin_model(m, *tabular);
  REQUIRE(err);
  CHECK(to_string_pretty(err).find("needs image data") != std::string::npos);
  dataset images;
  images.feature_shape = {1, 8, 8};
  m.channels = {4, 4, 4, 4};
  err = check_builtin_model(m, images);
  REQUIRE(err);
  CHECK(to_string_pretty(err).find("4 pooling blocks shrink 8x8") !=
        std::string::npos);
  m.channels = {4, 4};
  CHECK_FALSE(check_builtin_model(m, images));
}

TEST_CASE("a CNN learner trains on images") {
  dataset d;
  d.task = task_kind::classification;
  d.classes = 2;
  d.feature_shape = {1, 8, 8};
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  d.train_x = torch::rand({16, 1, 8, 8}, gen);
  d.train_y = torch::randint(2, {16}, gen, torch::kInt64);
  network_spec spec;
  spec.seed = 9;
  spec.config.model.kind = model_kind::cnn;
  spec.config.model.channels = {4, 8};
  spec.config.model.hidden = {};
  spec.config.optimizer.lr = 0.01;
  auto lgen = at::make_generator<at::CPUGeneratorImpl>(spec.seed);
  learner_context ctx{spec, d, torch::kCPU, lgen};
  auto l = make_builtin_learner(ctx);
  auto first = l->train_step(d.train_x, d.train_y);
  double last = first;
  for (int i = 0; i < 30; ++i)
    last = l->train_step(d.train_x, d.train_y);
  CHECK(last < first);
  CHECK(l->predict(d.train_x).sizes() == torch::IntArrayRef{16, 2});
}

TEST_CASE("the model plan is the model: shapes, parameters and multiply-adds "
          "agree with the LibTorch modules it builds") {
  for (auto kind : {model_kind::mlp, model_kind::cnn}) {
    CAPTURE(name_of(kind));
    model_options m;
    m.kind = kind;
    m.hidden = {12, 5};
    m.channels = {3, 4};
    m.activation = activation_kind::tanh;
    std::vector<int64_t> sample = {2, 9, 7};
    auto plan = plan_model(m, sample, 6);
    REQUIRE(plan);
    auto net = build_builtin_model(*plan);
    REQUIRE(net->size() == plan->layers.size());
    // Run one sample through module by module: every layer's shapes are
    // the plan's.
    auto x = torch::rand({1, 2, 9, 7});
    double macs = 0;
    int64_t parameters = 0;
    size_t i = 0;
    for (auto& module : *net) {
      CAPTURE(i);
      const auto& layer = plan->layers[i++];
      std::vector<int64_t> in(x.sizes().begin() + 1, x.sizes().end());
      CHECK(in == layer.in);
      x = module.forward(x);
      std::vector<int64_t> out(x.sizes().begin() + 1, x.sizes().end());
      CHECK(out == layer.out);
      int64_t n = 0;
      for (auto& p : module.ptr()->parameters())
        n += p.numel();
      CHECK(n == layer.parameters);
      parameters += n;
      // A weight's every element is one multiply-add per output position.
      auto params = module.ptr()->parameters();
      double expected = 0;
      if (!params.empty())
        expected = static_cast<double>(params[0].numel()) *
                   (out.size() == 3 ? static_cast<double>(out[1] * out[2]) : 1);
      CHECK(layer.macs == expected);
      macs += expected;
    }
    CHECK(parameters == plan->parameters());
    CHECK(macs == plan->macs());
    CHECK(x.sizes() == torch::IntArrayRef{1, 6});
  }
  // Hand-counted: an MLP 4-3-2 has 4*3+3 + 3*2+2 parameters and 4*3+3*2
  // multiply-adds per sample.
  model_options mlp;
  mlp.hidden = {3};
  auto small = plan_model(mlp, {4}, 2);
  REQUIRE(small);
  CHECK(small->parameters() == 23);
  CHECK(small->macs() == 18);
  // Input 4, hidden 3 (linear and activation), output 2.
  CHECK(small->activations() == 4 + 3 + 3 + 2);
}

TEST_CASE("a learner's saved state carries its learning rate") {
  // LibTorch's optimizer archive keeps the state but not the options: a
  // checkpoint of a network whose rate a retry or a PBT copy changed must
  // still resume at that rate.
  auto data = small_data();
  network_spec spec;
  spec.seed = 3;
  spec.config.optimizer.kind = optimizer_kind::adam;
  spec.config.optimizer.lr = 0.01;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(spec.seed);
  learner_context ctx{spec, *data, torch::kCPU, gen};
  auto a = make_builtin_learner(ctx);
  a->train_step(data->train_x.slice(0, 0, 16), data->train_y.slice(0, 0, 16));
  a->scale_learning_rate(0.25);
  torch::serialize::OutputArchive out;
  a->save(out);
  std::ostringstream bytes;
  out.save_to(bytes);
  auto b = make_builtin_learner(ctx);
  torch::serialize::InputArchive in;
  std::istringstream from{bytes.str()};
  in.load_from(from);
  b->load(in);
  // Both step alike from here: the same weights, moments and rate.
  auto x = data->train_x.slice(0, 16, 48);
  auto y = data->train_y.slice(0, 16, 48);
  CHECK(a->train_step(x, y) == b->train_step(x, y));
  CHECK(same(a->state(), b->state()));
}

namespace {

/// Images with the cases that decide which index a window reports: ties
/// (ReLU's zeros and repeated values), NaNs, infinities, odd sizes.
torch::Tensor awkward_images(int64_t n, int64_t c, int64_t h, int64_t w) {
  torch::manual_seed(7);
  auto x = torch::relu(torch::randn({n, c, h, w}));
  x = torch::where(torch::rand_like(x) < 0.2, torch::round(x), x);
  // -0 ties +0: the first of the two wins, and its sign is the output's.
  x = torch::where(torch::rand_like(x) < 0.1, torch::full_like(x, -0.0), x);
  auto flat = x.view(-1);
  const auto inf = std::numeric_limits<float>::infinity();
  flat[3] = std::nanf("");
  flat[w + 2] = std::nanf("");
  flat[w + 3] = std::nanf("");
  flat[5] = -inf;
  flat[2 * w] = inf;
  flat[2 * w + 1] = inf;
  x.index_put_({0, 0, 4}, -inf); // a whole window of -inf
  return x;
}

bool same_bits(const torch::Tensor& a, const torch::Tensor& b) {
  return a.sizes() == b.sizes() && a.dtype() == b.dtype() &&
         std::memcmp(a.contiguous().data_ptr(), b.contiguous().data_ptr(),
                     a.numel() * a.element_size()) == 0;
}

} // namespace

TEST_CASE("2x2 max pooling matches LibTorch's: values, indices, gradients") {
  for (auto shape : std::vector<std::vector<int64_t>>{
           {3, 2, 8, 8}, {2, 3, 7, 7}, {1, 1, 5, 6}, {4, 4, 28, 28}}) {
    CAPTURE(shape);
    auto x = awkward_images(shape[0], shape[1], shape[2], shape[3]);
    auto [expected, expected_indices] = at::max_pool2d_with_indices(x, {2, 2});
    {
      torch::NoGradGuard no_grad;
      CHECK(same_bits(max_pool_2x2(x), expected));
    }
    auto ours_in = x.clone().requires_grad_();
    auto theirs_in = x.clone().requires_grad_();
    auto ours = max_pool_2x2(ours_in);
    auto theirs = torch::max_pool2d(theirs_in, 2);
    CHECK(same_bits(ours.detach(), expected));
    CHECK(same_bits(theirs.detach(), expected));
    auto grad = torch::randn_like(ours);
    grad.view(-1)[0] = -0.0; // LibTorch's backward adds it to +0
    ours.backward(grad);
    theirs.backward(grad);
    // The gradient lands where the index says: the same bits means the
    // same window entries were chosen, ties and NaNs included.
    CHECK(same_bits(ours_in.grad(), theirs_in.grad()));
  }
  // Layouts the fast path does not take still pool, through LibTorch.
  auto x = awkward_images(2, 3, 8, 8);
  auto strided = x.transpose(2, 3);
  CHECK(same_bits(max_pool_2x2(strided), torch::max_pool2d(strided, 2)));
  auto doubles = x.to(torch::kFloat64);
  CHECK(same_bits(max_pool_2x2(doubles), torch::max_pool2d(doubles, 2)));
}

TEST_CASE("a built-in CNN trains the bits it trained with LibTorch's "
          "MaxPool2d") {
  model_options m;
  m.kind = model_kind::cnn;
  m.channels = {4, 8};
  m.hidden = {16};
  auto plan = plan_model(m, {1, 28, 28}, 10);
  REQUIRE(plan);
  auto ours = build_builtin_model(*plan);
  // The same network with LibTorch's pooling module in place of ours.
  torch::nn::Sequential theirs;
  auto copied = build_builtin_model(*plan);
  size_t layer = 0;
  for (const auto& module : *copied) {
    if (plan->layers[layer++].kind == planned_layer::pool)
      theirs->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2)));
    else
      theirs->push_back(module);
  }
  {
    torch::NoGradGuard no_grad;
    auto from = ours->parameters();
    auto to = theirs->parameters();
    REQUIRE(from.size() == to.size());
    for (size_t i = 0; i < from.size(); ++i)
      to[i].copy_(from[i]);
  }
  torch::optim::Adam ours_opt(ours->parameters(), 1e-2);
  torch::optim::Adam theirs_opt(theirs->parameters(), 1e-2);
  torch::manual_seed(3);
  for (int step = 0; step < 5; ++step) {
    auto x = torch::relu(torch::randn({16, 1, 28, 28}));
    auto y = torch::randint(0, 10, {16});
    for (auto [net, opt] : {std::pair{ours.ptr(), &ours_opt},
                            std::pair{theirs.ptr(), &theirs_opt}}) {
      opt->zero_grad();
      torch::nn::functional::cross_entropy(net->forward(x), y).backward();
      opt->step();
    }
  }
  auto a = ours->parameters();
  auto b = theirs->parameters();
  for (size_t i = 0; i < a.size(); ++i)
    CHECK(same_bits(a[i], b[i]));
  torch::NoGradGuard no_grad;
  auto x = torch::randn({8, 1, 28, 28});
  CHECK(same_bits(ours->forward(x), theirs->forward(x)));
}

namespace {

/// Parameters of a small MLP's shapes (a vector tail included), equal in
/// both copies.
std::vector<torch::Tensor> adam_parameters(uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<torch::Tensor> ps;
  for (auto shape : std::vector<std::vector<int64_t>>{
           {128, 784}, {128}, {10, 128}, {10}, {1031}})
    ps.push_back(torch::randn(shape, gen).requires_grad_());
  return ps;
}

std::vector<torch::Tensor> copies(const std::vector<torch::Tensor>& ps) {
  std::vector<torch::Tensor> out;
  for (const auto& p : ps)
    out.push_back(p.detach().clone().requires_grad_());
  return out;
}

/// `steps` steps of both optimizers on the same gradients (scales from
/// 1 to 1e-30, so squares underflow), the learning rate lowered half
/// way as a retry does; CHECKs every parameter and moment bit.
template <class State = torch::optim::AdamParamState>
void check_same_steps(torch::optim::Optimizer& ours,
                      torch::optim::Optimizer& theirs,
                      const std::vector<torch::Tensor>& a,
                      const std::vector<torch::Tensor>& b, int steps) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const double scales[] = {1.0, 1e-3, 1e-30, 10.0};
  for (int step = 0; step < steps; ++step) {
    for (size_t i = 0; i < a.size(); ++i) {
      auto grad = torch::randn(a[i].sizes(), gen) * scales[step % 4];
      a[i].mutable_grad() = grad.clone();
      b[i].mutable_grad() = grad.clone();
    }
    if (step == steps / 2)
      for (auto* opt : {&ours, &theirs})
        for (auto& g : opt->param_groups())
          g.options().set_lr(g.options().get_lr() * 0.5);
    ours.step();
    theirs.step();
  }
  for (size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    CHECK(same_bits(a[i].detach(), b[i].detach()));
    auto* x = static_cast<State*>(state_of(ours, a[i]));
    auto* y = static_cast<State*>(state_of(theirs, b[i]));
    REQUIRE(x != nullptr);
    REQUIRE(y != nullptr);
    CHECK(x->step() == y->step());
    CHECK(same_bits(x->exp_avg(), y->exp_avg()));
    CHECK(same_bits(x->exp_avg_sq(), y->exp_avg_sq()));
  }
}

} // namespace

TEST_CASE("the one-pass Adam gives LibTorch's Adam's bits") {
#if defined(__x86_64__) && defined(__GNUC__)
  // Where LibTorch's kernels fuse multiply-adds, the one pass is on.
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    CHECK(one_pass_adam::active());
#endif
  for (double decay : {0.0, 1e-2}) {
    for (auto betas : {std::tuple<double, double>{0.9, 0.999},
                       std::tuple<double, double>{0.8, 0.99}}) {
      CAPTURE(decay);
      auto options =
          torch::optim::AdamOptions(2e-3).weight_decay(decay).betas(betas).eps(
              1e-6);
      auto a = adam_parameters(11);
      auto b = copies(a);
      one_pass_adam ours(a, options);
      torch::optim::Adam theirs(b, options);
      check_same_steps(ours, theirs, a, b, 40);
    }
  }
  // AdamW the same way (its decay scales the weights).
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    CHECK(one_pass_adamw::active());
#endif
  for (double decay : {0.0, 1e-2, 0.3}) {
    CAPTURE(decay);
    auto options = torch::optim::AdamWOptions(2e-3).weight_decay(decay);
    auto a = adam_parameters(13);
    auto b = copies(a);
    one_pass_adamw ours(a, options);
    torch::optim::AdamW theirs(b, options);
    check_same_steps<torch::optim::AdamWParamState>(ours, theirs, a, b, 40);
  }
  // What it does not take is LibTorch's own step: amsgrad, doubles.
  auto amsgrad = torch::optim::AdamOptions(1e-3).amsgrad(true);
  auto a = adam_parameters(12);
  auto b = copies(a);
  one_pass_adam ours(a, amsgrad);
  torch::optim::Adam theirs(b, amsgrad);
  check_same_steps(ours, theirs, a, b, 6);
}

TEST_CASE("the one-pass Adam's state is LibTorch's: saved by one, loaded by "
          "the other, the same steps follow") {
  auto options = torch::optim::AdamOptions(1e-3);
  auto a = adam_parameters(21);
  auto b = copies(a);
  one_pass_adam ours(a, options);
  torch::optim::Adam theirs(b, options);
  check_same_steps(ours, theirs, a, b, 5);
  // Swap: each continues from the other's saved state.
  torch::serialize::OutputArchive from_ours;
  torch::serialize::OutputArchive from_theirs;
  ours.save(from_ours);
  theirs.save(from_theirs);
  std::ostringstream ours_bytes;
  std::ostringstream theirs_bytes;
  from_ours.save_to(ours_bytes);
  from_theirs.save_to(theirs_bytes);
  auto c = copies(a);
  auto d = copies(b);
  torch::optim::Adam plain(c, options);
  one_pass_adam one_pass(d, options);
  torch::serialize::InputArchive into_plain;
  torch::serialize::InputArchive into_one_pass;
  std::istringstream ours_in{ours_bytes.str()};
  std::istringstream theirs_in{theirs_bytes.str()};
  into_plain.load_from(ours_in);
  into_one_pass.load_from(theirs_in);
  plain.load(into_plain);
  one_pass.load(into_one_pass);
  check_same_steps(one_pass, plain, d, c, 5);
}
