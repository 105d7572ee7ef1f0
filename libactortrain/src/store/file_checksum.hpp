#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace actortrain {

/// A file's size and the CRC-32 of its bytes (zlib's, as the store records).
struct file_checksum {
  int64_t bytes = 0;
  uint32_t crc32 = 0;
};

/// Reads the file at `path` in chunks (weights may be large) and returns its
/// checksum; nothing when it cannot be opened or read.
std::optional<file_checksum> checksum_file(const std::string& path);

} // namespace actortrain
