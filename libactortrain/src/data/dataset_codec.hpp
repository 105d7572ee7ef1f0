#pragma once

#include <memory>
#include <vector>

#include <caf/expected.hpp>

#include "actortrain/dataset.hpp"

namespace actortrain {

/// A dataset as bytes (a LibTorch archive of its tensors, shape and
/// classes), to send to a worker that lacks it and to cache there.
std::vector<char> encode_dataset(const dataset& data);

/// The dataset `bytes` hold; an error (naming `what`) when they are not one.
caf::expected<std::shared_ptr<const dataset>>
decode_dataset(const std::vector<char>& bytes, const std::string& what);

} // namespace actortrain
