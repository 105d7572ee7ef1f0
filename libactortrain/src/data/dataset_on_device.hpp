#pragma once

#include <memory>

#include <torch/types.h>

#include "actortrain/dataset.hpp"

namespace actortrain {

/// `host`'s tensors on `device`: copied once per device (per dataset) and
/// shared by every network that trains there, so batches are gathered on
/// the device instead of copied to it each step. The copy keeps `host`
/// alive and lives while a network uses it. On the CPU, `host` itself.
std::shared_ptr<const dataset>
dataset_on(const std::shared_ptr<const dataset>& host,
           const torch::Device& device);

/// The bytes a copy of `data` takes on a device (its tensors').
int64_t device_bytes(const dataset& data);

} // namespace actortrain
