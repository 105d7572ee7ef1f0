#include "actors/scheduling_policy.hpp"

#include <algorithm>

namespace actortrain {

scheduling_policy::~scheduling_policy() = default;

void scheduling_policy::report(const progress_report&) {
  // Static policies ignore progress.
}

void fifo_policy::enqueue(waiting_trainer w) {
  queue_.push_back(std::move(w));
}

std::optional<waiting_trainer> fifo_policy::next() {
  if (queue_.empty())
    return std::nullopt;
  auto w = std::move(queue_.front());
  queue_.pop_front();
  return w;
}

void fifo_policy::remove(const caf::actor_addr& trainer) {
  queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                              [&](const waiting_trainer& w) {
                                return w.trainer.address() == trainer;
                              }),
               queue_.end());
}

size_t fifo_policy::waiting() const {
  return queue_.size();
}

std::unique_ptr<scheduling_policy> make_policy(const std::string&) {
  return std::make_unique<fifo_policy>();
}

} // namespace actortrain
