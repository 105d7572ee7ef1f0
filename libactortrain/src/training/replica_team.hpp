#pragma once

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace actortrain {

class remote_part;

/// The threads of one replicated network's quantum: the slots it was granted
/// together. The leader's slot thread runs the step loop; each other slot's
/// thread serves as a helper and computes its replica's part of every step,
/// so each replica runs on its own slot with the slot's intra-op threads.
class replica_team {
public:
  /// A team of `replicas` threads: the leader (replica 0) and
  /// `replicas - 1` helpers, and `remotes`: worker slots granted with them,
  /// whose replicas' parts are computed there (synchronous replicas only).
  explicit replica_team(size_t replicas,
                        std::vector<std::shared_ptr<remote_part>> remotes = {});

  /// The threads in this process.
  size_t size() const noexcept {
    return replicas_;
  }

  const std::vector<std::shared_ptr<remote_part>>& remotes() const noexcept {
    return remotes_;
  }

  /// Helper `r` (1 .. size() - 1), on its own slot's thread: runs what the
  /// leader hands out until the leader finishes the quantum.
  void serve(size_t r);

  /// The leader: runs `task(r)` on every helper's thread and `task(0)` on
  /// the calling one, and returns once all are done; rethrows the first
  /// exception any of them threw (replica order).
  void run_all(const std::function<void(size_t)>& task);

  /// The leader ends the quantum: every helper returns from serve (also
  /// the ones that have not started serving yet).
  void finish();

private:
  size_t replicas_;
  std::vector<std::shared_ptr<remote_part>> remotes_;
  std::mutex mx_;
  std::condition_variable cv_;
  const std::function<void(size_t)>* task_ = nullptr;
  /// Bumped for each task handed out; helpers run each generation once.
  uint64_t generation_ = 0;
  size_t pending_ = 0;
  bool finished_ = false;
  std::vector<std::exception_ptr> errors_;
};

} // namespace actortrain
