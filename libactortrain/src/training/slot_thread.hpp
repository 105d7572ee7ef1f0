#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "training/slot_stream.hpp"

namespace actortrain {

/// What a slot's own thread sets on itself (a local slot's executor and a
/// worker's alike, so that a network gets the same bits on either): once,
/// LibTorch's intra-op thread count, which is per calling thread, and
/// denormals flushed to zero; for every piece of work, the slot's device
/// and stream.
class slot_thread {
public:
  slot_thread(std::string device, int64_t threads);

  /// On the slot's thread, before each piece of work: sets the thread up
  /// the first time; the guard keeps the slot's stream current until it
  /// goes (empty on a CPU slot).
  std::optional<c10::StreamGuard> enter();

private:
  std::string device_;
  int64_t threads_;
  /// Made on the slot's thread, at its first work.
  std::optional<slot_stream> stream_;
};

} // namespace actortrain
