#include "fusion/fused_member.hpp"

#include <stdexcept>

#include "fusion/fused_model.hpp"
#include "models/builtin_learner.hpp"

namespace actortrain {

fused_member::fused_member(
    std::shared_ptr<fused_model> model, int64_t index,
    std::function<std::unique_ptr<builtin_learner>()> make_blank)
    : model_(std::move(model)), index_(index),
      make_blank_(std::move(make_blank)) {}

fused_member::~fused_member() = default;

double fused_member::train_step(const torch::Tensor&, const torch::Tensor&) {
  throw std::logic_error("a fused network steps only with its group");
}

torch::Tensor fused_member::predict(const torch::Tensor& inputs) {
  return model_->predict(index_, inputs);
}

std::vector<std::pair<std::string, torch::Tensor>> fused_member::state() {
  return model_->state(index_);
}

bool fused_member::can_checkpoint() const {
  return true;
}

void fused_member::save(torch::serialize::OutputArchive& archive) {
  unstack()->save(archive);
}

void fused_member::load(torch::serialize::InputArchive&) {
  // Snapshots are restored into a network's own learner before it joins a
  // fused model.
  throw std::logic_error("a fused network cannot load a snapshot");
}

void fused_member::scale_learning_rate(double factor) {
  model_->scale_learning_rate(index_, factor);
}

std::unique_ptr<builtin_learner> fused_member::unstack() const {
  auto blank = make_blank_();
  model_->unstack(index_, *blank);
  return blank;
}

} // namespace actortrain
