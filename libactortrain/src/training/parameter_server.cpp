#include "training/parameter_server.hpp"

#include <stdexcept>

#include <torch/torch.h>

#include "models/builtin_learner.hpp"
#include "training/replica_model.hpp"

namespace actortrain {

parameter_server::parameter_server(size_t replicas, int64_t staleness)
    : staleness_(staleness), copies_(replicas) {}

parameter_server::~parameter_server() = default;

void parameter_server::attach(builtin_learner& master, torch::Device device) {
  master_ = &master;
  for (auto& c : copies_)
    if (!c)
      c = std::make_unique<replica_model>(master, device);
}

torch::Tensor parameter_server::forward(size_t r, const torch::Tensor& x) {
  return copies_.at(r)->forward(x);
}

int64_t parameter_server::pull(size_t r) {
  if (master_ == nullptr)
    throw std::logic_error("a parameter server needs its master weights");
  copies_.at(r)->take_weights(master_->net()->parameters());
  return version_;
}

parameter_server::verdict parameter_server::push(size_t r, int64_t step,
                                                 int64_t version) {
  if (applied_steps_.count(step) > 0)
    return verdict::duplicate;
  auto age = version_ - version;
  if (age > staleness_) {
    ++counts_[age].second;
    return verdict::stale;
  }
  {
    torch::NoGradGuard no_grad;
    auto params = master_->net()->parameters();
    const auto& mine = copies_.at(r)->params();
    for (size_t k = 0; k < params.size(); ++k) {
      const auto& g = mine[k].grad();
      if (g.defined())
        params[k].mutable_grad() = g.clone();
      else
        params[k].mutable_grad() = torch::Tensor{};
    }
  }
  master_->optimizer().step();
  ++version_;
  applied_steps_.insert(step);
  ++counts_[age].first;
  return verdict::applied;
}

std::vector<staleness_count>
parameter_server::take_counts(uint64_t network_id) {
  std::vector<staleness_count> result;
  for (const auto& [age, n] : counts_)
    result.push_back({network_id, age, n.first, n.second});
  counts_.clear();
  return result;
}

} // namespace actortrain
