#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "actortrain/dataset.hpp"

namespace actortrain {

/// A worker's cache of the datasets coordinators sent it, one file per
/// content hash (`DIR/HASH.dataset`), so data travels to a worker once and
/// no shared file system is needed. Used by one actor at a time.
class data_cache {
public:
  explicit data_cache(std::string dir);

  const std::string& dir() const {
    return dir_;
  }

  /// Creates the folder if need be and checks that files can be written
  /// there: an error naming the folder and the reason otherwise (a worker
  /// says so when it starts, not when data first arrives).
  caf::error check_writable() const;

  /// The cached dataset whose content hash is `hash`, or null. A file that
  /// does not decode to that hash is removed (it is sent again).
  std::shared_ptr<const dataset> find(const std::string& hash);

  /// Takes the next chunk of the dataset `hash`, which starts `offset`
  /// bytes in (0 starts over); with `last`, checks the whole against the
  /// hash and keeps it. Answers the bytes received so far; an error when a
  /// chunk is out of order or the whole does not have the hash.
  caf::expected<uint64_t> receive(const std::string& hash, uint64_t offset,
                                  const std::vector<char>& chunk, bool last);

private:
  /// Creates the folder if need be; an error naming it otherwise.
  caf::error create_folder() const;

  std::string path_of(const std::string& hash, const char* ext) const;

  std::string dir_;
};

} // namespace actortrain
