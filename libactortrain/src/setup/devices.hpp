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

/// "2 slots on cpu, 4 on cuda:0" for the app and a worker to show.
std::string describe_slots(const std::vector<std::string>& slot_devices);

} // namespace actortrain
