#include <doctest/doctest.h>

#include <ATen/CPUGeneratorImpl.h>

#include "actortrain/error.hpp"
#include "actortrain/learner.hpp"
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

TEST_CASE("same seed, same initial weights; different seeds, different") {
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
  m.kind = "cnn";
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
  spec.config.model.kind = "cnn";
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
