#pragma once

// Helpers shared by the tests: temporary folders, IDX writers, small
// synthetic experiments, running the app as a real process.

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "actortrain/experiment.hpp"

namespace actortrain::test {

/// A fresh folder under the system's temp folder, removed when destroyed.
class temp_dir {
public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::string& path() const {
    return path_;
  }
  /// `path()/name`.
  std::string operator/(const std::string& name) const;

private:
  std::string path_;
};

/// Writes a uint8 tensor as an IDX file (gzipped when `gzip`).
void write_idx(const std::string& path, const torch::Tensor& t,
               bool gzip = false);

/// Writes `text` to `path`.
void write_text(const std::string& path, const std::string& text);

/// A small, fast synthetic classification experiment.
experiment tiny_experiment(int64_t networks = 4, int64_t epochs = 2);

/// Result of running a process: exit code and combined output.
struct process_result {
  int exit_code = -1;
  std::string output;
};

/// Runs `command` through the shell, capturing stdout and stderr.
process_result run_process(const std::string& command);

/// The actortrain app's path.
std::string app();

} // namespace actortrain::test
