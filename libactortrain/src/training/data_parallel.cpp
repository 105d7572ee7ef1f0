#include "training/data_parallel.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include <torch/torch.h>

#include "models/builtin_learner.hpp"
#include "training/remote_part.hpp"
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

double
replica_pass(const std::function<torch::Tensor(const torch::Tensor&)>& forward,
             const builtin_learner& net, const dataset& data,
             const torch::Tensor& part, int64_t batch, torch::Device device) {
  auto index = part.to(data.train_x.device());
  auto x = data.train_x.index_select(0, index).to(device);
  auto y = data.train_y.index_select(0, index).to(device);
  // The part's share of the batch's mean loss, so the summed gradients are
  // the whole batch's.
  auto share = static_cast<double>(part.size(0)) / static_cast<double>(batch);
  auto loss = net.loss_of(forward(x), y);
  (loss * share).backward();
  return loss.item<double>() * share;
}

std::vector<char> flatten(const std::vector<torch::Tensor>& tensors,
                          bool gradients) {
  std::vector<char> flat;
  for (const auto& t : tensors) {
    auto v = gradients ? t.grad() : t.detach();
    if (!v.defined())
      v = torch::zeros_like(t);
    v = v.to(torch::kCPU, torch::kFloat32).contiguous();
    const auto* bytes = static_cast<const char*>(v.data_ptr());
    flat.insert(flat.end(), bytes, bytes + v.nbytes());
  }
  return flat;
}

std::vector<torch::Tensor> unflatten(const std::vector<char>& flat,
                                     const std::vector<torch::Tensor>& like) {
  std::vector<torch::Tensor> result;
  size_t at = 0;
  for (const auto& t : like) {
    auto v = torch::empty(t.sizes(), torch::kFloat32);
    auto n = v.nbytes();
    if (at + n > flat.size())
      throw std::invalid_argument("a replica's values do not fit its model");
    std::memcpy(v.data_ptr(), flat.data() + at, n);
    result.push_back(v.to(t.device(), t.scalar_type()));
    at += n;
  }
  if (at != flat.size())
    throw std::invalid_argument("a replica's values do not fit its model");
  return result;
}

void data_parallel_step::compute_part(size_t r, builtin_learner& net,
                                      const dataset& data,
                                      const torch::Tensor& batch,
                                      torch::Device device) {
  auto started = std::chrono::steady_clock::now();
  if (r > 0)
    copies_[r - 1]->take_weights(leader_params_);
  if (sizes_[r] == 0)
    return;
  auto part = batch.narrow(0, offsets_[r], sizes_[r]);
  auto forward = [&](const torch::Tensor& x) {
    return r == 0 ? net.net()->forward(x) : copies_[r - 1]->forward(x);
  };
  losses_[r] = replica_pass(forward, net, data, part, batch.size(0), device);
  straggler::from_environment().pace(r, started);
}

double data_parallel_step::operator()(uint64_t id, builtin_learner& net,
                                      const dataset& data,
                                      const torch::Tensor& batch,
                                      torch::Device device,
                                      replica_team& team) {
  auto threads = team.size();
  const auto& remotes = team.remotes();
  auto slots = threads + remotes.size();
  if (threads == 0 || slots > replicas_)
    throw std::logic_error("a replicated step needs a thread here and at "
                           "most one slot per replica");
  leader_params_ = net.net()->parameters();
  if (copies_.size() + 1 != replicas_) {
    copies_.clear();
    for (size_t r = 1; r < replicas_; ++r)
      copies_.push_back(std::make_unique<replica_model>(net, device));
  }
  auto n = batch.size(0);
  sizes_ = part_sizes(n, replicas_);
  offsets_.assign(replicas_, 0);
  for (size_t r = 1; r < replicas_; ++r)
    offsets_[r] = offsets_[r - 1] + sizes_[r - 1];
  losses_.assign(replicas_, 0);
  net.net()->train();
  net.optimizer().zero_grad();
  // Parts threads .. slots - 1 on the workers' slots: sent first, so they
  // compute while this process does its parts.
  std::vector<bool> sent(replicas_, false);
  if (!remotes.empty()) {
    auto weights = flatten(leader_params_, false);
    auto index = batch.to(torch::kCPU).contiguous();
    for (size_t r = threads; r < slots; ++r) {
      if (sizes_[r] == 0)
        continue;
      auto part = index.narrow(0, offsets_[r], sizes_[r]);
      replica_work work{
          id, weights,
          std::vector<int64_t>(part.data_ptr<int64_t>(),
                               part.data_ptr<int64_t>() + part.numel()),
          n};
      remotes[r - threads]->send(std::move(work));
      sent[r] = true;
    }
  }
  team.run_all([&](size_t t) {
    compute_part(t, net, data, batch, device);
    for (auto r = slots + t; r < replicas_; r += threads)
      compute_part(r, net, data, batch, device);
  });
  // The workers' gradients; a part whose slot was lost is computed here,
  // to the same bits.
  std::vector<std::vector<torch::Tensor>> received(replicas_);
  for (size_t r = threads; r < slots; ++r) {
    if (!sent[r])
      continue;
    auto got = remotes[r - threads]->receive();
    if (got) {
      try {
        received[r] = unflatten(got->gradient, leader_params_);
        losses_[r] = got->loss;
        continue;
      } catch (const std::invalid_argument&) {
        // Computed for another model: do it here.
      }
    }
    compute_part(r, net, data, batch, device);
  }
  {
    // Replica order, so the sum rounds the same way every time.
    torch::NoGradGuard no_grad;
    for (size_t r = 1; r < replicas_; ++r) {
      if (sizes_[r] == 0)
        continue;
      for (size_t k = 0; k < leader_params_.size(); ++k) {
        const auto& theirs = received[r].empty()
                                 ? copies_[r - 1]->params()[k].grad()
                                 : received[r][k];
        auto& g = leader_params_[k].mutable_grad();
        if (!g.defined())
          g = theirs.clone();
        else
          g.add_(theirs);
      }
    }
  }
  net.optimizer().step();
  double loss = 0;
  for (auto l : losses_)
    loss += l;
  return loss;
}

} // namespace actortrain
