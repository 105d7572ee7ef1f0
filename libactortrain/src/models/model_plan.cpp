#include "actortrain/model_plan.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "actortrain/error.hpp"

namespace actortrain {

namespace {

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (auto x : shape)
    n *= x;
  return n;
}

} // namespace

int64_t model_plan::parameters() const {
  int64_t n = 0;
  for (const auto& l : layers)
    n += l.parameters;
  return n;
}

double model_plan::macs() const {
  double n = 0;
  for (const auto& l : layers)
    n += l.macs;
  return n;
}

double model_plan::activations() const {
  auto n = static_cast<double>(numel(input));
  for (const auto& l : layers)
    if (l.kind != planned_layer::flatten)
      n += static_cast<double>(numel(l.out));
  return n;
}

double model_plan::training_bytes(int64_t batch_size) const {
  return 4.0 * (4.0 * static_cast<double>(parameters()) +
                2.0 * static_cast<double>(batch_size) * activations());
}

caf::expected<model_plan> plan_model(const model_options& m,
                                     const std::vector<int64_t>& sample,
                                     int64_t outputs) {
  model_plan plan;
  plan.input = sample;
  plan.activation = m.activation;
  auto shape = sample;
  auto add = [&](planned_layer::kind_t kind, std::vector<int64_t> out,
                 int64_t parameters, double macs) {
    plan.layers.push_back({kind, shape, out, parameters, macs});
    shape = std::move(out);
  };
  if (m.kind == model_kind::cnn) {
    if (sample.size() != 3)
      return make_error(errc::invalid_experiment,
                        fmt::format("model.kind = 'cnn' needs image data "
                                    "(channels x height x width), but the "
                                    "data's samples have shape [{}]",
                                    fmt::join(sample, ", ")));
    if ((sample[1] >> m.channels.size()) < 1 ||
        (sample[2] >> m.channels.size()) < 1)
      return make_error(errc::invalid_experiment,
                        fmt::format("model.channels: {} pooling blocks shrink "
                                    "{}x{} images below 1x1",
                                    m.channels.size(), sample[1], sample[2]));
    for (auto c : m.channels) {
      auto in_c = shape[0];
      auto h = shape[1];
      auto w = shape[2];
      add(planned_layer::conv, {c, h, w}, in_c * c * 9 + c,
          static_cast<double>(in_c * c * 9 * h * w));
      add(planned_layer::activation, shape, 0, 0);
      add(planned_layer::pool, {c, h / 2, w / 2}, 0, 0);
    }
  }
  add(planned_layer::flatten, {numel(shape)}, 0, 0);
  for (auto width : m.hidden) {
    auto in = shape[0];
    add(planned_layer::linear, {width}, in * width + width,
        static_cast<double>(in * width));
    add(planned_layer::activation, shape, 0, 0);
  }
  auto in = shape[0];
  add(planned_layer::linear, {outputs}, in * outputs + outputs,
      static_cast<double>(in * outputs));
  return plan;
}

} // namespace actortrain
