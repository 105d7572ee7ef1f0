#include "cluster/data_shipment.hpp"

#include "data/dataset_codec.hpp"

namespace actortrain {

data_shipment::data_shipment(std::shared_ptr<const dataset> data,
                             std::string hash)
    : data_(std::move(data)), hash_(std::move(hash)) {}

std::shared_ptr<const std::vector<char>> data_shipment::bytes() {
  std::lock_guard<std::mutex> guard{mutex_};
  if (!bytes_)
    bytes_ = std::make_shared<const std::vector<char>>(encode_dataset(*data_));
  return bytes_;
}

} // namespace actortrain
