#pragma once

// The plan's layers as LibTorch's own modules: actortrain's built-in model
// (one plan builds both) with LibTorch's MaxPool2d in place of actortrain's
// faster pooling kernel, as a program written against LibTorch has them.

#include <actortrain/learner.hpp>
#include <torch/torch.h>

inline torch::nn::Sequential
libtorch_layers(const actortrain::model_plan& plan) {
  auto ours = actortrain::build_builtin_model(plan);
  torch::nn::Sequential net;
  size_t layer = 0;
  for (const auto& module : *ours) {
    if (plan.layers[layer++].kind == actortrain::planned_layer::pool)
      net->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2)));
    else
      net->push_back(module);
  }
  return net;
}
