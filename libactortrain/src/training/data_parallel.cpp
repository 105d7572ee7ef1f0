#include "training/data_parallel.hpp"

#include <chrono>
#include <stdexcept>

#include <torch/torch.h>

#include "models/builtin_learner.hpp"
#include "training/replica_model.hpp"
#include "training/replica_team.hpp"
#include "training/straggler.hpp"

namespace actortrain {

data_parallel_step::data_parallel_step(size_t replicas) : replicas_(replicas) {}

data_parallel_step::~data_parallel_step() = default;

std::vector<int64_t> data_parallel_step::part_sizes(int64_t n,
                                                    size_t replicas) {
  auto r = static_cast<int64_t>(replicas);
  std::vector<int64_t> sizes(replicas, n / r);
  for (int64_t i = 0; i < n % r; ++i)
    ++sizes[static_cast<size_t>(i)];
  return sizes;
}

double data_parallel_step::operator()(builtin_learner& net, const dataset& data,
                                      const torch::Tensor& batch,
                                      torch::Device device,
                                      replica_team& team) {
  if (team.size() != replicas_)
    throw std::logic_error("a replicated step needs one thread per replica");
  auto leader_params = net.net()->parameters();
  if (copies_.size() + 1 != replicas_) {
    copies_.clear();
    for (size_t r = 1; r < replicas_; ++r)
      copies_.push_back(std::make_unique<replica_model>(net, device));
  }
  auto n = batch.size(0);
  auto sizes = part_sizes(n, replicas_);
  std::vector<int64_t> offsets(replicas_, 0);
  for (size_t r = 1; r < replicas_; ++r)
    offsets[r] = offsets[r - 1] + sizes[r - 1];
  std::vector<double> losses(replicas_, 0);
  net.net()->train();
  net.optimizer().zero_grad();
  const auto& slow = straggler::from_environment();
  team.run_all([&](size_t r) {
    auto started = std::chrono::steady_clock::now();
    if (r > 0)
      copies_[r - 1]->take_weights(leader_params);
    if (sizes[r] == 0)
      return;
    auto part = batch.narrow(0, offsets[r], sizes[r]);
    auto x = data.train_x.index_select(0, part).to(device);
    auto y = data.train_y.index_select(0, part).to(device);
    // The part's share of the batch's mean loss, so the summed gradients
    // are the whole batch's.
    auto share = static_cast<double>(sizes[r]) / static_cast<double>(n);
    auto out = r == 0 ? net.net()->forward(x) : copies_[r - 1]->forward(x);
    auto loss = net.loss_of(out, y);
    (loss * share).backward();
    losses[r] = loss.item<double>() * share;
    slow.pace(r, started);
  });
  {
    // Replica order, so the sum rounds the same way every time.
    torch::NoGradGuard no_grad;
    for (size_t r = 1; r < replicas_; ++r) {
      if (sizes[r] == 0)
        continue;
      const auto& theirs = copies_[r - 1]->params();
      for (size_t k = 0; k < leader_params.size(); ++k) {
        auto& g = leader_params[k].mutable_grad();
        if (!g.defined())
          g = theirs[k].grad().clone();
        else
          g.add_(theirs[k].grad());
      }
    }
  }
  net.optimizer().step();
  double loss = 0;
  for (auto l : losses)
    loss += l;
  return loss;
}

} // namespace actortrain
