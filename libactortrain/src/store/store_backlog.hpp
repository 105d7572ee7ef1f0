#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "protocol/messages.hpp"

namespace actortrain {

/// The bytes of checkpoints and results that trainers handed to the
/// aggregator and the store has not yet written (output.unwritten_mb): a
/// gauge the trainers raise when they send, the aggregator lowers once a
/// batch is written (or failed), and the scheduler reads before it grants.
/// Training can produce states faster than the store writes them (large
/// networks, fast devices); without it the difference piles up in the
/// coordinator's memory. Shared by the actors of one run, in one process.
class store_backlog {
public:
  /// `limit`: bytes; 0 holds nothing back.
  explicit store_backlog(int64_t limit) : limit_(limit) {}

  void sent(int64_t bytes) {
    auto now = bytes_.fetch_add(bytes) + bytes;
    auto peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
  }

  void written(int64_t bytes) {
    bytes_.fetch_sub(bytes);
  }

  /// More waits to be written than the limit: no new quanta until less.
  bool over() const {
    return limit_ > 0 && bytes_.load() > limit_;
  }

  int64_t bytes() const {
    return bytes_.load();
  }
  /// The most that waited at once.
  int64_t peak() const {
    return peak_.load();
  }

  /// What the store writes of an outcome: its weights and predictions.
  static int64_t bytes_of(const network_outcome& o) {
    return static_cast<int64_t>(o.weights.size() +
                                o.test_predictions.size() * sizeof(float));
  }

private:
  int64_t limit_;
  std::atomic<int64_t> bytes_{0};
  std::atomic<int64_t> peak_{0};
};

} // namespace actortrain
