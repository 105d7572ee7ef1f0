#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "actortrain/dataset.hpp"

namespace actortrain {

/// The coordinator's data for workers that lack it (started with a data
/// cache): encoded once, when the first such worker asks, shared by every
/// worker link, and sent in chunks of `chunk_bytes`.
class data_shipment {
public:
  static constexpr size_t chunk_bytes = size_t{16} << 20;

  data_shipment(std::shared_ptr<const dataset> data, std::string hash);

  const std::string& hash() const {
    return hash_;
  }

  /// The encoded data (thread-safe).
  std::shared_ptr<const std::vector<char>> bytes();

private:
  std::shared_ptr<const dataset> data_;
  std::string hash_;
  std::mutex mutex_;
  std::shared_ptr<const std::vector<char>> bytes_;
};

} // namespace actortrain
