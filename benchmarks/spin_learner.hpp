#pragma once

// A learner whose steps cost a scripted amount of real time (a busy wait on
// the slot's thread) and compute nothing: workloads with known costs, so a
// schedule's makespan can be compared with its lower bound.

#include <chrono>
#include <functional>
#include <thread>

#include <actortrain/learner.hpp>

namespace actortrain::bench {

/// Spins the calling thread for `seconds`.
inline void spin_for(double seconds) {
  auto until = std::chrono::steady_clock::now() +
               std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                   std::chrono::duration<double>(seconds));
  while (std::chrono::steady_clock::now() < until) {
  }
}

class spin_learner : public learner {
public:
  /// `cost(network id, step index)`: seconds the step takes.
  using cost_fn = std::function<double(uint64_t, int64_t)>;

  /// With `sleep`, a step sleeps instead of spinning: it costs no CPU, so
  /// more slots than cores run at once (benchmarks of the runtime itself).
  spin_learner(const learner_context& ctx, cost_fn cost, bool sleep = false)
      : id_(ctx.spec.id), classes_(ctx.data.outputs()), cost_(std::move(cost)),
        sleep_(sleep) {}

  double train_step(const torch::Tensor&, const torch::Tensor&) override {
    auto seconds = cost_(id_, steps_++);
    if (sleep_)
      std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    else
      spin_for(seconds);
    return 1.0;
  }
  torch::Tensor predict(const torch::Tensor& x) override {
    return torch::zeros({x.size(0), classes_});
  }
  std::vector<std::pair<std::string, torch::Tensor>> state() override {
    return {{"bias", torch::zeros({classes_})}};
  }

private:
  uint64_t id_;
  int64_t classes_;
  cost_fn cost_;
  bool sleep_;
  int64_t steps_ = 0;
};

} // namespace actortrain::bench
