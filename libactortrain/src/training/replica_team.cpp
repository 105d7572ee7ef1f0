#include "training/replica_team.hpp"

#include "training/remote_part.hpp"

namespace actortrain {

replica_team::replica_team(size_t replicas,
                           std::vector<std::shared_ptr<remote_part>> remotes)
    : replicas_(replicas), remotes_(std::move(remotes)), errors_(replicas) {}

void replica_team::serve(size_t r) {
  uint64_t seen = 0;
  std::unique_lock<std::mutex> lock{mx_};
  for (;;) {
    cv_.wait(lock, [&] { return finished_ || generation_ != seen; });
    if (finished_)
      return;
    seen = generation_;
    const auto* task = task_;
    lock.unlock();
    std::exception_ptr error;
    try {
      (*task)(r);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    errors_[r] = error;
    if (--pending_ == 0)
      cv_.notify_all();
  }
}

void replica_team::run_all(const std::function<void(size_t)>& task) {
  {
    std::lock_guard<std::mutex> guard{mx_};
    task_ = &task;
    pending_ = replicas_ - 1;
    ++generation_;
    for (auto& e : errors_)
      e = nullptr;
  }
  cv_.notify_all();
  try {
    task(0);
  } catch (...) {
    errors_[0] = std::current_exception();
  }
  std::unique_lock<std::mutex> lock{mx_};
  // The helpers still read `task`: wait for all of them before it goes.
  cv_.wait(lock, [&] { return pending_ == 0; });
  task_ = nullptr;
  for (auto& e : errors_)
    if (e)
      std::rethrow_exception(e);
}

void replica_team::finish() {
  {
    std::lock_guard<std::mutex> guard{mx_};
    finished_ = true;
  }
  cv_.notify_all();
}

} // namespace actortrain
