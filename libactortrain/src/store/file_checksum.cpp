#include "store/file_checksum.hpp"

#include <fstream>
#include <vector>

#include <zlib.h>

namespace actortrain {

std::optional<file_checksum> checksum_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return std::nullopt;
  std::vector<char> chunk(1 << 20);
  file_checksum sum;
  auto crc = crc32(0L, Z_NULL, 0);
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    auto got = in.gcount();
    crc = crc32(crc, reinterpret_cast<const Bytef*>(chunk.data()),
                static_cast<uInt>(got));
    sum.bytes += got;
  }
  if (in.bad())
    return std::nullopt;
  sum.crc32 = static_cast<uint32_t>(crc);
  return sum;
}

} // namespace actortrain
