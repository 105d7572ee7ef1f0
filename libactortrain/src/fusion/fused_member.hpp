#pragma once

#include <functional>
#include <memory>

#include "actortrain/learner.hpp"

namespace actortrain {

class builtin_learner;
class fused_model;

/// One network of a fused model, seen as a learner: its runner evaluates,
/// checkpoints and saves it as if it were alone, while its group steps all
/// members together.
class fused_member : public learner {
public:
  /// `make_blank` builds a built-in learner for this network; unstacking
  /// overwrites its weights and optimizer state.
  fused_member(std::shared_ptr<fused_model> model, int64_t index,
               std::function<std::unique_ptr<builtin_learner>()> make_blank);
  ~fused_member() override;

  /// Members step only together, through their group.
  double train_step(const torch::Tensor& inputs,
                    const torch::Tensor& targets) override;
  torch::Tensor predict(const torch::Tensor& inputs) override;
  std::vector<std::pair<std::string, torch::Tensor>> state() override;
  bool can_checkpoint() const override;
  /// Writes what the unfused network's learner writes, so a checkpoint taken
  /// fused resumes unfused and the other way around.
  void save(torch::serialize::OutputArchive& archive) override;
  void load(torch::serialize::InputArchive& archive) override;
  void scale_learning_rate(double factor) override;

  /// This network on its own again, exactly where it is.
  std::unique_ptr<builtin_learner> unstack() const;

private:
  std::shared_ptr<fused_model> model_;
  int64_t index_;
  std::function<std::unique_ptr<builtin_learner>()> make_blank_;
};

} // namespace actortrain
