#include <array>
#include <cstring>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "actortrain/dataset.hpp"
#include "actortrain/error.hpp"
#include "data/read_file.hpp"

namespace actortrain {

caf::expected<torch::Tensor> read_idx(const std::string& path) {
  auto fail = [&](const std::string& msg) {
    return make_error(errc::invalid_data, fmt::format("{}: {}", path, msg));
  };
  auto content = read_file(path, "IDX file");
  if (!content)
    return content.error();
  const auto& str = *content;
  std::vector<uint8_t> bytes(str.begin(), str.end());
  if (bytes.size() < 4)
    return fail("too short to be an IDX file");
  if (bytes[0] != 0 || bytes[1] != 0)
    return fail(fmt::format("wrong magic number 0x{:02x}{:02x}{:02x}{:02x}: "
                            "not an IDX file",
                            bytes[0], bytes[1], bytes[2], bytes[3]));
  if (bytes[2] != 0x08)
    return fail(fmt::format("unsupported IDX element type 0x{:02x} (only "
                            "unsigned bytes, 0x08, are supported)",
                            bytes[2]));
  auto dims = static_cast<size_t>(bytes[3]);
  if (dims == 0 || dims > 4)
    return fail(fmt::format("unsupported number of dimensions {}", dims));
  size_t header = 4 + 4 * dims;
  if (bytes.size() < header)
    return fail("truncated header");
  std::vector<int64_t> shape;
  size_t count = 1;
  for (size_t i = 0; i < dims; ++i) {
    const auto* p = bytes.data() + 4 + 4 * i;
    uint32_t d = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
                 (uint32_t{p[2]} << 8) | uint32_t{p[3]};
    shape.push_back(d);
    // Four dimensions of up to 2^32 overflow 64 bits: a wrapped product
    // could match the file's size and allocate nonsense.
    if (__builtin_mul_overflow(count, size_t{d}, &count))
      return fail(fmt::format("header promises a shape [{}...] of more "
                              "bytes than a file can hold",
                              fmt::join(shape, ", ")));
  }
  if (bytes.size() - header != count)
    return fail(
        fmt::format("{} data: header promises {} bytes, file has {}",
                    bytes.size() - header < count ? "truncated" : "trailing",
                    count, bytes.size() - header));
  if (count == 0)
    return fail(
        fmt::format("shape [{}] holds no data", fmt::join(shape, ", ")));
  auto result = torch::empty(shape, torch::kUInt8);
  std::memcpy(result.data_ptr<uint8_t>(), bytes.data() + header, count);
  return result;
}

} // namespace actortrain
