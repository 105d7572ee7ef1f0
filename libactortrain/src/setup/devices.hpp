#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/expected.hpp>

namespace actortrain {

/// The device of each of this process's slots, in slot order, from
/// `scheduler.devices` (or `--devices`): `cpu_slots` "cpu" slots for a CPU
/// entry (0: one per hardware thread), `streams_per_gpu` "cuda:N" slots for
/// each GPU. Empty or "auto": every GPU LibTorch sees, else the CPU. An error
/// names an entry that is not a device, a GPU this process cannot see, or a
/// device named twice.
caf::expected<std::vector<std::string>>
slot_devices(const std::vector<std::string>& devices, int64_t cpu_slots,
             int64_t streams_per_gpu);

/// The bytes of `device`'s memory its networks may use together: `fraction`
/// of a GPU's memory less `data_bytes` (the run's data, copied to each GPU
/// once: data/dataset_on_device); 0 (no limit) for a CPU or where it is not
/// known.
int64_t memory_budget(const std::string& device, double fraction,
                      int64_t data_bytes = 0);

/// The budget of a device of `total` bytes: `fraction` of it less
/// `data_bytes`, at least 1 (a device the data fills leaves each network
/// the device to itself, never no limit).
int64_t memory_budget_of(int64_t total, double fraction, int64_t data_bytes);

/// With a GPU among `slot_devices`: LibTorch's deterministic algorithms
/// (where it has them; a warning where not) and cuBLAS's deterministic
/// workspace (CUBLAS_WORKSPACE_CONFIG, unless set), so a run's results on
/// one model of GPU are a function of its experiment. Call before anything
/// runs on a GPU. Nothing on a CPU, whose kernels are deterministic already.
void make_gpus_deterministic(const std::vector<std::string>& slot_devices);

/// "2 slots on cpu, 4 on cuda:0" for the app and a worker to show.
std::string describe_slots(const std::vector<std::string>& slot_devices);

} // namespace actortrain
