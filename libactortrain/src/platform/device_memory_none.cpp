// Device memory in a build whose LibTorch has no CUDA: no GPU to measure.
#include "platform/device_memory.hpp"

namespace actortrain {

std::optional<int64_t> device_memory_total(const std::string&) {
  return {};
}

device_memory_probe::device_memory_probe(const std::string&) {}

int64_t device_memory_probe::peak() const {
  return 0;
}

} // namespace actortrain
