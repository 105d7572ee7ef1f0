#include "training/replica_model.hpp"

#include "models/builtin_learner.hpp"

namespace actortrain {

replica_model::replica_model(const builtin_learner& net, torch::Device device)
    : net_(build_builtin_model(net.plan())) {
  net_->to(device);
  net_->train();
  params_ = net_->parameters();
}

void replica_model::take_weights(const std::vector<torch::Tensor>& weights) {
  torch::NoGradGuard no_grad;
  for (size_t k = 0; k < params_.size(); ++k) {
    params_[k].copy_(weights[k]);
    params_[k].mutable_grad() = torch::Tensor{};
  }
}

} // namespace actortrain
