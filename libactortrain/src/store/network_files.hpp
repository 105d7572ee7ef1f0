#pragma once

#include <string>

#include <fmt/format.h>

#include "actortrain/store.hpp"

namespace actortrain {

/// Where a finished network's file of `kind` lies in the run folder
/// `output_dir`: weights/NAME.pt or weights/NAME.predictions.
inline std::string network_file_path(const std::string& output_dir,
                                     const std::string& name, file_kind kind) {
  return fmt::format("{}/weights/{}.{}", output_dir, name,
                     kind == file_kind::weights ? "pt" : "predictions");
}

} // namespace actortrain
