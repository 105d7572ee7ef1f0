#include "setup/devices.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <thread>

#include <ATen/Context.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/cuda.h>

#include "actortrain/error.hpp"
#include "platform/device_memory.hpp"

namespace actortrain {

namespace {

caf::error bad_device(const std::string& entry, const std::string& why) {
  return make_error(errc::invalid_experiment,
                    fmt::format("scheduler.devices: '{}' {}", entry, why));
}

} // namespace

caf::expected<std::vector<std::string>>
slot_devices(const std::vector<std::string>& devices, int64_t cpu_slots,
             int64_t streams_per_gpu) {
  auto gpus = static_cast<int64_t>(torch::cuda::device_count());
  std::vector<std::string> wanted;
  auto automatic =
      devices.empty() || (devices.size() == 1 && devices.front() == "auto");
  if (automatic) {
    for (int64_t g = 0; g < gpus; ++g)
      wanted.push_back(fmt::format("cuda:{}", g));
    if (wanted.empty())
      wanted.emplace_back("cpu");
  }
  for (const auto& d : automatic ? std::vector<std::string>{} : devices) {
    if (d == "auto")
      return bad_device(d, "stands alone: list devices, or give \"auto\" "
                           "only");
    if (d == "cpu") {
      wanted.push_back(d);
      continue;
    }
    if (d == "cuda") {
      if (gpus == 0)
        return bad_device(d, "names every GPU, and LibTorch sees none here "
                             "(no GPU, or a LibTorch built without CUDA)");
      for (int64_t g = 0; g < gpus; ++g)
        wanted.push_back(fmt::format("cuda:{}", g));
      continue;
    }
    auto digits = d.size() > 5 ? d.substr(5) : std::string{};
    if (d.rfind("cuda:", 0) != 0 || digits.empty() || digits.size() > 4 ||
        !std::all_of(digits.begin(), digits.end(),
                     [](unsigned char c) { return std::isdigit(c) != 0; }))
      return bad_device(d, "is not a device: expected \"auto\", \"cpu\", "
                           "\"cuda\" or \"cuda:N\"");
    auto g = std::stoll(digits);
    if (g >= gpus)
      return bad_device(d, fmt::format("is not a GPU of this machine: "
                                       "LibTorch sees {} GPU{}{}",
                                       gpus, gpus == 1 ? "" : "s",
                                       gpus == 0 ? " (no GPU, or a LibTorch "
                                                   "built without CUDA)"
                                                 : ""));
    wanted.push_back(fmt::format("cuda:{}", g));
  }
  for (size_t i = 0; i < wanted.size(); ++i)
    if (std::find(wanted.begin(), wanted.begin() + static_cast<long>(i),
                  wanted[i]) != wanted.begin() + static_cast<long>(i))
      return bad_device(wanted[i], "is named twice");
  std::vector<std::string> slots;
  for (const auto& d : wanted) {
    auto n =
        d == "cpu"
            ? (cpu_slots > 0
                   ? cpu_slots
                   : std::max<int64_t>(1, std::thread::hardware_concurrency()))
            : streams_per_gpu;
    slots.insert(slots.end(), static_cast<size_t>(n), d);
  }
  return slots;
}

int64_t memory_budget_of(int64_t total, double fraction, int64_t data_bytes) {
  auto budget = static_cast<int64_t>(fraction * static_cast<double>(total));
  return std::max<int64_t>(1, budget - data_bytes);
}

int64_t memory_budget(const std::string& device, double fraction,
                      int64_t data_bytes) {
  auto total = device_memory_total(device);
  return total ? memory_budget_of(*total, fraction, data_bytes) : 0;
}

void make_gpus_deterministic(const std::vector<std::string>& slot_devices) {
  if (std::all_of(slot_devices.begin(), slot_devices.end(),
                  [](const std::string& d) { return d == "cpu"; }))
    return;
  // cuBLAS reads it when it starts: before the first product on a GPU.
  ::setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
  at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/true);
}

std::string describe_slots(const std::vector<std::string>& slot_devices) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < slot_devices.size();) {
    auto j = i;
    while (j < slot_devices.size() && slot_devices[j] == slot_devices[i])
      ++j;
    parts.push_back(fmt::format("{} on {}", j - i, slot_devices[i]));
    i = j;
  }
  return fmt::format("{} slot{}: {}", slot_devices.size(),
                     slot_devices.size() == 1 ? "" : "s",
                     fmt::join(parts, ", "));
}

} // namespace actortrain
