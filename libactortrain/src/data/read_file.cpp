#include "data/read_file.hpp"

#include <array>
#include <sys/stat.h>

#include <fmt/format.h>
#include <zlib.h>

#include "actortrain/error.hpp"

namespace actortrain {

caf::expected<std::string> read_file(const std::string& path,
                                     const char* what) {
  // A FIFO or a device would block or never end: only regular files are
  // data.
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    return make_error(errc::invalid_data,
                      fmt::format("{}: not a regular file, so it cannot be "
                                  "read as {}",
                                  path, what));
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr)
    return make_error(
        errc::invalid_data,
        fmt::format("{}: cannot open {} (missing or unreadable)", path, what));
  std::string bytes;
  std::array<char, 1 << 16> chunk;
  int n = 0;
  while ((n = gzread(file, chunk.data(), chunk.size())) > 0)
    bytes.append(chunk.data(), static_cast<size_t>(n));
  int errnum = 0;
  const char* msg = gzerror(file, &errnum);
  std::string gz_error = (n < 0 && msg != nullptr) ? msg : "";
  gzclose(file);
  if (n < 0)
    return make_error(errc::invalid_data,
                      fmt::format("{}: corrupt or truncated gzip stream ({})",
                                  path, gz_error));
  return bytes;
}

} // namespace actortrain
