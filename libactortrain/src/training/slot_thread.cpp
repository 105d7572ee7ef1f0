#include "training/slot_thread.hpp"

#include <cstdlib>
#include <utility>

#include <ATen/Context.h>
#include <ATen/Parallel.h>

namespace actortrain {

slot_thread::slot_thread(std::string device, int64_t threads)
    : device_(std::move(device)), threads_(threads) {}

std::optional<c10::StreamGuard> slot_thread::enter() {
  if (!stream_) {
    at::set_num_threads(static_cast<int>(threads_));
    // Denormal floats take a slow path through the FPU (steps became 7x
    // slower once a network's Adam moments decayed into them:
    // docs/benchmarks.md, PBT): this thread flushes them to zero, on every
    // slot and every node alike, so results stay the same bits wherever a
    // network trains. ACTORTRAIN_KEEP_DENORMALS=1 keeps IEEE denormals (for
    // comparisons).
    at::globalContext().setFlushDenormal(
        std::getenv("ACTORTRAIN_KEEP_DENORMALS") == nullptr);
    stream_.emplace(device_);
  }
  return stream_->enter();
}

} // namespace actortrain
