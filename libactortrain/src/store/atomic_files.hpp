#pragma once

#include <string>
#include <vector>

#include <caf/error.hpp>

namespace actortrain {

/// One file to write: its final path and its bytes.
struct file_write {
  std::string path;
  const std::vector<char>* bytes = nullptr;
};

/// Writes every file atomically and durably: each to a temporary file, then
/// one sync of the file system for all of them (instead of an fsync each,
/// which costs a journal commit per file), then each renamed into place and
/// the folders synced. A reader sees a file whole or not at all. Returns one
/// error (empty when it worked) per file.
std::vector<caf::error>
write_files_atomically(const std::vector<file_write>& files);

} // namespace actortrain
