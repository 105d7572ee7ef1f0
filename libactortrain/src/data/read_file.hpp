#pragma once

#include <string>

#include <caf/expected.hpp>

namespace actortrain {

/// Reads a whole file, gunzipping it when it is gzip-compressed (zlib reads
/// plain files transparently). Errors name the file.
caf::expected<std::string> read_file(const std::string& path, const char* what);

} // namespace actortrain
