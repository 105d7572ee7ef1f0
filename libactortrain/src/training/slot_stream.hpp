#pragma once

#include <optional>
#include <string>

#include <c10/core/Stream.h>
#include <c10/core/StreamGuard.h>

namespace actortrain {

/// A GPU slot's own CUDA stream: its quanta run on it, so networks on one
/// GPU overlap instead of queueing on the default stream. LibTorch's
/// device-generic stream API builds against a CPU-only LibTorch and reaches
/// CUDA at run time, so one code path serves every build. On a CPU slot it
/// is nothing.
class slot_stream {
public:
  /// `device` as a slot names it ("cpu", "cuda:1"). For a GPU, takes a
  /// stream from LibTorch's pool: call it on the slot's thread.
  explicit slot_stream(const std::string& device);

  /// Makes the slot's device and stream current on the calling thread until
  /// the guard goes (a thread's current stream is its own: set it on the
  /// slot's thread, every quantum). Empty on a CPU slot.
  std::optional<c10::StreamGuard> enter() const;

  bool on_gpu() const noexcept {
    return stream_.has_value();
  }

private:
  std::optional<c10::Stream> stream_;
};

} // namespace actortrain
