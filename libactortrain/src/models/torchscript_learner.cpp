#include "models/torchscript_learner.hpp"

#include <cmath>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>
#include <zlib.h>

#include "actortrain/error.hpp"
#include "data/read_file.hpp"
#include "models/builtin_learner.hpp"

namespace actortrain {

namespace {

caf::error invalid(std::string msg) {
  return make_error(errc::invalid_experiment, std::move(msg));
}

/// The reason in a LibTorch or TorchScript error, without the backtrace and
/// the interpreter's traceback of serialized code.
std::string reason_of(const std::exception& e) {
  auto* c10e = dynamic_cast<const c10::Error*>(&e);
  std::string text =
      c10e != nullptr ? c10e->what_without_backtrace() : e.what();
  std::vector<std::string> lines;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);)
    if (line.find_first_not_of(" \t") != std::string::npos)
      lines.push_back(line);
  if (lines.empty())
    return "unknown error";
  // "The following operation failed in the TorchScript interpreter. ...":
  // the last line says what failed.
  if (lines.front().rfind("The following operation failed", 0) == 0)
    return lines.back();
  return lines.front();
}

/// The process's global CPU generator is one, shared by every slot: a
/// module that draws from it (reset_parameters, dropout in forward) gets the
/// network's own generator in its place, one network at a time.
std::mutex& global_generator_mutex() {
  static std::mutex m;
  return m;
}

template <class F>
auto with_generator_as_global(at::Generator& gen, F&& f) -> decltype(f()) {
  std::lock_guard<std::mutex> lock{global_generator_mutex()};
  at::Generator global = at::detail::getDefaultCPUGenerator();
  struct swap_back {
    at::Generator& gen;
    at::Generator& global;
    at::Tensor saved;
    ~swap_back() {
      gen.set_state(global.get_state());
      global.set_state(saved);
    }
  } guard{gen, global, global.get_state()};
  global.set_state(gen.get_state());
  return f();
}

/// Whether forward draws random numbers (dropout, noise): such steps take
/// the network's generator as the global one.
bool draws_random(torch::jit::Module& m) {
  auto graph =
      torch::jit::toGraphFunction(m.get_method("forward").function()).graph();
  auto copy = graph->copy();
  torch::jit::Inline(*copy);
  static const char* const words[] = {"dropout",   "rand",        "bernoulli",
                                      "normal",    "uniform",     "multinomial",
                                      "poisson",   "exponential", "cauchy",
                                      "geometric", "rrelu"};
  std::function<bool(torch::jit::Block*)> visit = [&](torch::jit::Block* b) {
    for (auto* node : b->nodes()) {
      std::string kind = node->kind().toUnqualString();
      for (const auto* w : words)
        if (kind.find(w) != std::string::npos)
          return true;
      for (auto* sub : node->blocks())
        if (visit(sub))
          return true;
    }
    return false;
  };
  return visit(copy->block());
}

/// Draws a module's initial weights from `gen`: a module's own
/// reset_parameters method when it has one (the top module's covers
/// everything), else PyTorch's default rule for Linear and Conv layers on
/// every weight of two or more dimensions (U(+-1/sqrt(fan_in))) and the bias
/// next to it. Other parameters (norm layers' scales and shifts) keep the
/// values the file holds. Returns the number of tensors drawn or reset.
int64_t initialise(torch::jit::Module& top, at::Generator& gen) {
  torch::NoGradGuard no_grad;
  auto reset = [&](torch::jit::Module& m) {
    auto method = m.find_method("reset_parameters");
    if (!method)
      return false;
    with_generator_as_global(gen, [&] { (*method)({}); });
    return true;
  };
  if (reset(top))
    return 1;
  int64_t drawn = 0;
  for (auto m : top.modules()) {
    if (reset(m)) {
      ++drawn;
      continue;
    }
    double weight_bound = 0;
    for (const auto& p : m.named_parameters(/*recurse=*/false))
      if (p.name == "weight" && p.value.dim() >= 2)
        weight_bound =
            1.0 /
            std::sqrt(static_cast<double>(p.value.numel() / p.value.size(0)));
    for (const auto& p : m.named_parameters(/*recurse=*/false)) {
      auto t = p.value;
      if (t.dim() >= 2) {
        auto bound =
            1.0 / std::sqrt(static_cast<double>(t.numel() / t.size(0)));
        t.uniform_(-bound, bound, gen);
        ++drawn;
      } else if (p.name == "bias" && weight_bound > 0) {
        t.uniform_(-weight_bound, weight_bound, gen);
        ++drawn;
      }
    }
  }
  return drawn;
}

std::vector<int64_t> batch_shape(const model_options& m, const dataset& data) {
  std::vector<int64_t> shape{-1};
  const auto& sample =
      m.input_shape.empty() ? data.feature_shape : m.input_shape;
  shape.insert(shape.end(), sample.begin(), sample.end());
  return shape;
}

class torchscript_learner : public learner {
public:
  torchscript_learner(const learner_context& ctx, const script_model& model)
      : task_(ctx.data.task), classes_(ctx.data.outputs()),
        loss_(ctx.spec.config.model.loss),
        shape_(batch_shape(ctx.spec.config.model, ctx.data)),
        options_(ctx.spec.config.optimizer) {
    std::istringstream in{model.bytes};
    module_ = torch::jit::load(in, ctx.device);
    initialised_ = initialise(module_, ctx.generator);
    random_ = draws_random(module_);
    generator_ = ctx.generator.clone();
    std::vector<torch::Tensor> params;
    for (const auto& p : module_.parameters())
      params.push_back(p);
    optimizer_ = make_optimizer(options_, std::move(params));
  }

  double train_step(const torch::Tensor& inputs,
                    const torch::Tensor& targets) override {
    return train_step_on_device(inputs, targets).item<double>();
  }

  torch::Tensor train_step_on_device(const torch::Tensor& inputs,
                                     const torch::Tensor& targets) override {
    set_training(true);
    auto step = [&] {
      optimizer_->zero_grad();
      auto loss = loss_of(forward(inputs), targets);
      loss.backward();
      optimizer_->step();
      return loss.detach();
    };
    if (random_)
      return with_generator_as_global(generator_, step);
    return step();
  }

  torch::Tensor predict(const torch::Tensor& inputs) override {
    set_training(false);
    torch::NoGradGuard no_grad;
    return forward(inputs);
  }

  std::vector<std::pair<std::string, torch::Tensor>> state() override {
    std::vector<std::pair<std::string, torch::Tensor>> result;
    for (const auto& p : module_.named_parameters())
      result.emplace_back(p.name, p.value);
    for (const auto& b : module_.named_buffers())
      result.emplace_back(b.name, b.value);
    return result;
  }

  bool can_checkpoint() const override {
    return true;
  }

  void scale_learning_rate(double factor) override {
    for (auto& group : optimizer_->param_groups())
      group.options().set_lr(group.options().get_lr() * factor);
  }

  // Archive keys are positions, not names: a dotted name ("fc1.weight")
  // is not an attribute name the archive's own module can hold.
  void save(torch::serialize::OutputArchive& archive) override {
    torch::serialize::OutputArchive model;
    torch::serialize::OutputArchive optimizer;
    int64_t i = 0;
    for (const auto& p : module_.named_parameters())
      model.write(fmt::format("p{}", i++), p.value);
    i = 0;
    for (const auto& b : module_.named_buffers())
      model.write(fmt::format("b{}", i++), b.value, /*is_buffer=*/true);
    model.write("generator", generator_.get_state(), /*is_buffer=*/true);
    optimizer_->save(optimizer);
    archive.write("model", model);
    archive.write("optimizer", optimizer);
    write_learning_rate(archive, *optimizer_);
  }

  void load(torch::serialize::InputArchive& archive) override {
    torch::serialize::InputArchive model;
    torch::serialize::InputArchive optimizer;
    archive.read("model", model);
    archive.read("optimizer", optimizer);
    int64_t i = 0;
    for (const auto& p : module_.named_parameters()) {
      auto t = p.value;
      model.read(fmt::format("p{}", i++), t);
    }
    i = 0;
    for (const auto& b : module_.named_buffers()) {
      auto t = b.value;
      model.read(fmt::format("b{}", i++), t, /*is_buffer=*/true);
    }
    torch::Tensor state;
    model.read("generator", state, /*is_buffer=*/true);
    generator_.set_state(state);
    optimizer_->load(optimizer);
    read_learning_rate(archive, *optimizer_);
  }

  int64_t initialised() const noexcept {
    return initialised_;
  }

  torch::Tensor forward(const torch::Tensor& inputs) {
    // The plain interpreter: the optimising executor would run the first
    // calls of a module one way and later ones another, so a resumed
    // network would not repeat the uninterrupted one's bits.
    torch::jit::GraphOptimizerEnabledGuard plain{false};
    auto out = module_.forward({inputs.reshape(shape_)});
    if (!out.isTensor())
      throw std::runtime_error(fmt::format(
          "the module's forward returned a {}, not a tensor", out.tagKind()));
    return out.toTensor();
  }

  torch::Tensor loss_of(const torch::Tensor& out,
                        const torch::Tensor& y) const {
    auto kind = loss_;
    if (kind == loss_kind::automatic)
      kind = task_ == task_kind::classification ? loss_kind::cross_entropy
                                                : loss_kind::mse;
    if (kind == loss_kind::cross_entropy)
      return torch::nn::functional::cross_entropy(out, y);
    if (task_ == task_kind::classification)
      return torch::mse_loss(out,
                             torch::one_hot(y, classes_).to(out.scalar_type()));
    return torch::mse_loss(out.view({-1}), y);
  }

  torch::jit::Module& module() noexcept {
    return module_;
  }

private:
  void set_training(bool on) {
    if (training_ != on)
      module_.train(on);
    training_ = on;
  }

  task_kind task_;
  int64_t classes_;
  loss_kind loss_;
  std::vector<int64_t> shape_;
  optimizer_options options_;
  torch::jit::Module module_;
  int64_t initialised_ = 0;
  bool random_ = false;
  std::optional<bool> training_;
  at::Generator generator_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
};

std::string shape_text(at::IntArrayRef shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

/// Builds one network's learner from the file and tries a training step on
/// two samples; the error says what does not fit.
caf::error check_module(const network_config& cfg, const script_model& model,
                        const dataset& data, int64_t& parameters) {
  const auto& m = cfg.model;
  auto where = cfg.label.empty() ? std::string{}
                                 : fmt::format(" (sweep point {})", cfg.label);
  if (!m.input_shape.empty()) {
    int64_t n = 1;
    for (auto x : m.input_shape)
      n *= x;
    if (n != data.features())
      return invalid(fmt::format("model.input_shape = {} holds {} values per "
                                 "sample, but the data's samples have {} "
                                 "(shape {}){}",
                                 shape_text(m.input_shape), n, data.features(),
                                 shape_text(data.feature_shape), where));
  }
  try {
    std::istringstream in{model.bytes};
    auto probe = torch::jit::load(in);
    if (!probe.find_method("forward"))
      return invalid(fmt::format("model.path: the module in {} has no "
                                 "forward method{}",
                                 model.path, where));
  } catch (const std::exception& e) {
    return invalid(fmt::format("model.path: {} is not a TorchScript module "
                               "(save one with "
                               "torch.jit.save(torch.jit.script(model), "
                               "path)): {}{}",
                               model.path, reason_of(e), where));
  }
  network_spec spec;
  spec.config = cfg;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  learner_context ctx{spec, data, torch::Device{torch::kCPU}, gen};
  std::unique_ptr<torchscript_learner> l;
  try {
    l = std::make_unique<torchscript_learner>(ctx, model);
  } catch (const std::exception& e) {
    return invalid(fmt::format("model.path: the module in {} cannot be "
                               "initialised: {}{}",
                               model.path, reason_of(e), where));
  }
  parameters = 0;
  for (const auto& p : l->module().parameters())
    parameters += p.numel();
  if (parameters == 0)
    return invalid(fmt::format("model.path: the module in {} has no "
                               "parameters to train{}",
                               model.path, where));
  if (l->initialised() == 0)
    return invalid(fmt::format(
        "model.path: the module in {} has no weight of two or more "
        "dimensions and no reset_parameters method, so every network would "
        "start from the same values; add a reset_parameters method "
        "(@torch.jit.export) that draws them{}",
        model.path, where));
  auto n = std::min<int64_t>(2, data.train_x.size(0));
  auto x = data.train_x.slice(0, 0, n);
  auto y = data.train_y.slice(0, 0, n);
  std::vector<int64_t> in_shape = batch_shape(m, data);
  in_shape[0] = n;
  auto given = m.input_shape.empty() ? "the data's samples"
                                     : "the samples as model.input_shape";
  torch::Tensor out;
  try {
    out = l->forward(x);
  } catch (const std::exception& e) {
    return invalid(fmt::format("model: the module in {} does not take a batch "
                               "of shape {} ({}): {}{}",
                               model.path, shape_text(in_shape), given,
                               reason_of(e), where));
  }
  bool fits = data.task == task_kind::classification
                  ? (out.dim() == 2 && out.size(0) == n &&
                     out.size(1) == data.outputs())
                  : ((out.dim() == 1 && out.size(0) == n) ||
                     (out.dim() == 2 && out.size(0) == n && out.size(1) == 1));
  if (!fits) {
    auto needed =
        data.task == task_kind::classification
            ? fmt::format("[{}, {}] (one logit per class of {})", n,
                          data.outputs(), data.outputs())
            : fmt::format("[{}] or [{}, 1] (one value per sample)", n, n);
    return invalid(fmt::format("model: the module in {} returns shape {} for "
                               "a batch of shape {}; the data needs {}{}",
                               model.path, shape_text(out.sizes()),
                               shape_text(in_shape), needed, where));
  }
  try {
    auto loss = l->loss_of(out, y);
    if (!loss.requires_grad())
      return invalid(fmt::format("model: the output of the module in {} does "
                                 "not depend on its parameters (no gradient "
                                 "flows back){}",
                                 model.path, where));
    l->train_step(x, y);
  } catch (const std::exception& e) {
    return invalid(fmt::format("model: a training step of the module in {} "
                               "fails on a batch of shape {}: {}{}",
                               model.path, shape_text(in_shape), reason_of(e),
                               where));
  }
  return {};
}

} // namespace

std::unique_ptr<learner> make_torchscript_learner(const learner_context& ctx,
                                                  const script_model& model) {
  return std::make_unique<torchscript_learner>(ctx, model);
}

caf::expected<script_models>
load_script_models(const experiment& exp, const dataset& data,
                   const std::map<std::string, std::string>& files) {
  std::map<std::string, std::shared_ptr<script_model>> loaded;
  // One check per distinct way a configuration uses a file: a sweep over
  // learning rates checks the module once.
  std::set<std::string> checked;
  for (const auto& cfg : exp.configs()) {
    const auto& m = cfg.model;
    if (m.kind != model_kind::torchscript)
      continue;
    auto& model = loaded[m.path];
    if (!model) {
      auto sent = files.find(m.path);
      auto bytes = sent != files.end()
                       ? caf::expected<std::string>{sent->second}
                       : read_file(m.path, "a TorchScript module");
      if (!bytes)
        return invalid(
            fmt::format("model.path: {}", to_string_pretty(bytes.error())));
      model = std::make_shared<script_model>();
      model->path = m.path;
      auto crc = crc32_z(0L, reinterpret_cast<const Bytef*>(bytes->data()),
                         bytes->size());
      model->hash = fmt::format("{:08x}-{}", crc, bytes->size());
      model->bytes = std::move(*bytes);
    }
    auto key = fmt::format("{}|{}|{}|{}", m.path, fmt::join(m.input_shape, ","),
                           name_of(m.loss), name_of(cfg.optimizer.kind));
    if (!checked.insert(key).second)
      continue;
    if (auto err = check_module(cfg, *model, data, model->parameters))
      return err;
  }
  return script_models(loaded.begin(), loaded.end());
}

std::shared_ptr<const script_model> script_for(const script_models& models,
                                               const network_config& config) {
  if (config.model.kind != model_kind::torchscript)
    return nullptr;
  auto i = models.find(config.model.path);
  return i == models.end() ? nullptr : i->second;
}

} // namespace actortrain
