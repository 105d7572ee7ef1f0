#include "scripted_models.hpp"

#include <fmt/format.h>
#include <torch/script.h>

namespace actortrain::test {

namespace {

torch::jit::Module
new_module(const std::string& name,
           const std::shared_ptr<torch::jit::CompilationUnit>& cu) {
  torch::jit::Module m{"__torch__." + name, cu, /*shouldMangle=*/true};
  // Python's modules have it; Module::train sets it.
  m.register_attribute("training", c10::BoolType::get(), true);
  return m;
}

} // namespace

void write_scripted_mlp(const std::string& path, const scripted_mlp& spec) {
  auto cu = std::make_shared<torch::jit::CompilationUnit>();
  auto top = new_module("MLP", cu);
  std::string body = "    h = x\n";
  std::string reset;
  auto layers = spec.widths.size() - 1;
  for (size_t i = 0; i < layers; ++i) {
    auto fc = new_module("Linear", cu);
    fc.register_parameter(
        "weight",
        torch::zeros({spec.widths[i + 1], spec.widths[i]}).requires_grad_(),
        false);
    fc.register_parameter(
        "bias", torch::zeros({spec.widths[i + 1]}).requires_grad_(), false);
    fc.define(R"(
def forward(self, x):
    return torch.addmm(self.bias, x, self.weight.t())
)");
    top.register_module(fmt::format("fc{}", i), fc);
    body += fmt::format("    h = self.fc{}.forward(h)\n", i);
    if (i + 1 < layers) {
      body += "    h = torch.relu(h)\n";
      if (spec.dropout > 0)
        body += fmt::format("    h = torch.dropout(h, {}, self.training)\n",
                            spec.dropout);
    }
    reset += fmt::format("    self.fc{0}.weight.uniform_(-{1}, {1})\n"
                         "    self.fc{0}.bias.uniform_(-{1}, {1})\n",
                         i, spec.reset_bound);
  }
  std::string src = "def forward(self, x):\n" + body + "    return h\n";
  if (spec.reset_bound > 0)
    src += "\ndef reset_parameters(self):\n" + reset;
  top.define(src);
  top.save(path);
}

void write_scripted_module(
    const std::string& path, const std::string& forward_body,
    const std::vector<std::pair<std::string, std::vector<int64_t>>>& params) {
  auto cu = std::make_shared<torch::jit::CompilationUnit>();
  auto m = new_module("Custom", cu);
  for (const auto& [name, shape] : params)
    m.register_parameter(name, torch::zeros(shape).requires_grad_(), false);
  m.define("def forward(self, x):\n" + forward_body + "\n");
  m.save(path);
}

} // namespace actortrain::test
