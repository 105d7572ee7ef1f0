#pragma once

#include <optional>
#include <string>

#include <caf/error.hpp>

#include "actortrain/experiment.hpp"

// The output folder of a run or a live session: its default name, its lock
// and its layout.

namespace actortrain {

/// "runs/<name>-<YYYYmmdd-HHMMSS>".
std::string default_output_dir(const std::string& name);

/// Holds the output folder's lock while the run uses it: one run per folder
/// at a time, since a second process resuming the same folder would
/// interleave writes. Closing the file releases it, even after SIGKILL.
class folder_lock {
public:
  explicit folder_lock(int fd) : fd_(fd) {}
  folder_lock(const folder_lock&) = delete;
  folder_lock& operator=(const folder_lock&) = delete;
  ~folder_lock();

private:
  int fd_;
};

/// Creates the output folder (and its weights and checkpoints folders when
/// the run keeps files there), and takes its lock.
caf::error lock_output_folder(const std::string& dir, output_layout layout,
                              std::optional<folder_lock>& lock);

/// A results store that holds no run (a crash before its first commits,
/// or a truncated file) holds nothing to resume: it is removed, so the run
/// starts afresh instead of failing for ever.
void discard_empty_store(const std::string& db_path);

/// See run_options::tune_allocator.
void tune_allocator();

} // namespace actortrain
