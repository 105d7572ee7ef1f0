#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace actortrain {

// The one seam to CUDA's memory statistics: device_memory_cuda.cpp where
// the Torch package has CUDA (TARGET torch_cuda), device_memory_none.cpp
// elsewhere, where nothing is known and nothing limits.

/// The memory of GPU `device` ("cuda:N") in bytes; none for a CPU, or in a
/// build without CUDA.
std::optional<int64_t> device_memory_total(const std::string& device);

/// Measures the device memory a quantum adds on its slot's device: made
/// when the quantum starts, read when it ends. The device's peak statistic
/// is shared by its slots, so with several quanta on one GPU at once a
/// quantum's peak can include what the others allocated meanwhile: an
/// estimate on the safe side (it admits fewer, never more).
class device_memory_probe {
public:
  explicit device_memory_probe(const std::string& device);

  /// The most bytes in use on the device during the quantum beyond those in
  /// use when it started; 0 where nothing is measured.
  int64_t peak() const;

private:
  int index_ = -1;
  int64_t start_ = 0;
};

} // namespace actortrain
