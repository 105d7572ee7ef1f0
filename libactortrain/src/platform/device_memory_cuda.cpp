// Device memory through CUDA: compiled only where the Torch package has
// CUDA (TARGET torch_cuda); device_memory_none.cpp elsewhere.
#include "platform/device_memory.hpp"

#include <algorithm>

#include <ATen/cuda/CUDAContext.h>
#include <c10/core/Device.h>
#include <c10/cuda/CUDACachingAllocator.h>

namespace actortrain {

namespace {

/// The CUDA index of `device`, or -1 for another device.
int cuda_index(const std::string& device) {
  c10::Device d{device};
  if (!d.is_cuda())
    return -1;
  return d.has_index() ? d.index() : 0;
}

/// The caching allocator's bytes allocated on `index`: now and the peak
/// since its last reset. Statistic 0 is the aggregate over pool kinds in
/// LibTorch 1.13 and 2.x alike (the enum moved namespaces between them).
std::pair<int64_t, int64_t> allocated(int index) {
  auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(
      static_cast<c10::DeviceIndex>(index));
  const auto& a = stats.allocated_bytes[0];
  return {a.current, a.peak};
}

} // namespace

std::optional<int64_t> device_memory_total(const std::string& device) {
  auto index = cuda_index(device);
  if (index < 0)
    return {};
  return static_cast<int64_t>(
      at::cuda::getDeviceProperties(index)->totalGlobalMem);
}

device_memory_probe::device_memory_probe(const std::string& device)
    : index_(cuda_index(device)) {
  if (index_ < 0)
    return;
  c10::cuda::CUDACachingAllocator::resetPeakStats(
      static_cast<c10::DeviceIndex>(index_));
  start_ = allocated(index_).first;
}

int64_t device_memory_probe::peak() const {
  if (index_ < 0)
    return 0;
  return std::max<int64_t>(0, allocated(index_).second - start_);
}

} // namespace actortrain
