#include "cluster/data_cache.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>

#include <fmt/format.h>

#include "actortrain/error.hpp"
#include "data/dataset_codec.hpp"
#include "setup/run_context.hpp"

namespace actortrain {

namespace fs = std::filesystem;

namespace {

bool well_formed(const std::string& hash) {
  return !hash.empty() && hash.size() <= 64 &&
         hash.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::vector<char> read_all(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

} // namespace

data_cache::data_cache(std::string dir) : dir_(std::move(dir)) {}

caf::error data_cache::create_folder() const {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec)
    return make_error(
        errc::io_failed,
        fmt::format("cannot create the data cache {}: {}", dir_, ec.message()));
  return {};
}

caf::error data_cache::check_writable() const {
  if (auto err = create_folder())
    return err;
  std::error_code ec;
  auto probe = path_of("write-check", ".part");
  {
    std::ofstream out{probe, std::ios::binary | std::ios::trunc};
    out << "actortrain";
    if (!out)
      return make_error(errc::io_failed,
                        fmt::format("cannot write in the data cache {}", dir_));
  }
  fs::remove(probe, ec);
  return {};
}

std::string data_cache::path_of(const std::string& hash,
                                const char* ext) const {
  return (fs::path{dir_} / (hash + ext)).string();
}

std::shared_ptr<const dataset> data_cache::find(const std::string& hash) {
  if (!well_formed(hash))
    return nullptr;
  auto path = path_of(hash, ".dataset");
  std::error_code ec;
  if (!fs::exists(path, ec))
    return nullptr;
  auto data = decode_dataset(read_all(path), path);
  if (data && content_hash(**data) == hash)
    return *data;
  fs::remove(path, ec);
  return nullptr;
}

caf::expected<uint64_t> data_cache::receive(const std::string& hash,
                                            uint64_t offset,
                                            const std::vector<char>& chunk,
                                            bool last) {
  if (!well_formed(hash))
    return make_error(errc::invalid_data,
                      fmt::format("'{}' is not a content hash", hash));
  if (auto err = create_folder())
    return err;
  std::error_code ec;
  auto part = path_of(hash, ".part");
  auto have = fs::exists(part, ec) ? fs::file_size(part, ec) : 0;
  if (offset != 0 && offset != have)
    return make_error(errc::invalid_data,
                      fmt::format("a chunk of the data at byte {}, after {} "
                                  "bytes received",
                                  offset, have));
  {
    std::ofstream out{part, offset == 0 ? std::ios::binary | std::ios::trunc
                                        : std::ios::binary | std::ios::app};
    out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    if (!out)
      return make_error(errc::io_failed, fmt::format("cannot write {}", part));
  }
  auto total = offset + chunk.size();
  if (!last)
    return total;
  auto data = decode_dataset(read_all(part), part);
  if (!data || content_hash(**data) != hash) {
    fs::remove(part, ec);
    return make_error(
        errc::invalid_data,
        fmt::format("the data received does not have content "
                    "hash {}{}",
                    hash, data ? "" : ": " + to_string_pretty(data.error())));
  }
  fs::rename(part, path_of(hash, ".dataset"), ec);
  if (ec)
    return make_error(errc::io_failed,
                      fmt::format("cannot keep {}: {}", part, ec.message()));
  return total;
}

} // namespace actortrain
