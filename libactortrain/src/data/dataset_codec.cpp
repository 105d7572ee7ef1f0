#include "data/dataset_codec.hpp"

#include <sstream>

#include <fmt/format.h>
#include <torch/serialize.h>

#include "actortrain/error.hpp"

namespace actortrain {

namespace {

constexpr int64_t codec_format = 1;

} // namespace

std::vector<char> encode_dataset(const dataset& data) {
  torch::serialize::OutputArchive archive;
  archive.write("format", torch::tensor({codec_format}, torch::kInt64));
  archive.write(
      "task", torch::tensor({static_cast<int64_t>(data.task)}, torch::kInt64));
  archive.write("classes", torch::tensor({data.classes}, torch::kInt64));
  archive.write("feature_shape",
                torch::tensor(data.feature_shape, torch::kInt64));
  archive.write("train_x", data.train_x);
  archive.write("train_y", data.train_y);
  archive.write("test_x", data.test_x);
  archive.write("test_y", data.test_y);
  std::ostringstream os;
  archive.save_to(os);
  auto str = os.str();
  return std::vector<char>(str.begin(), str.end());
}

caf::expected<std::shared_ptr<const dataset>>
decode_dataset(const std::vector<char>& bytes, const std::string& what) {
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(bytes.data(), bytes.size());
    auto read = [&](const char* name) {
      torch::Tensor t;
      archive.read(name, t);
      return t;
    };
    if (read("format").item<int64_t>() != codec_format)
      return make_error(errc::invalid_data,
                        fmt::format("{}: an unknown dataset format", what));
    auto data = std::make_shared<dataset>();
    data->task = static_cast<task_kind>(read("task").item<int64_t>());
    data->classes = read("classes").item<int64_t>();
    auto shape = read("feature_shape").contiguous();
    data->feature_shape.assign(shape.data_ptr<int64_t>(),
                               shape.data_ptr<int64_t>() + shape.numel());
    data->train_x = read("train_x");
    data->train_y = read("train_y");
    data->test_x = read("test_x");
    data->test_y = read("test_y");
    return std::shared_ptr<const dataset>{std::move(data)};
  } catch (const std::exception& e) {
    return make_error(errc::invalid_data,
                      fmt::format("{}: not a dataset: {}", what, e.what()));
  }
}

} // namespace actortrain
