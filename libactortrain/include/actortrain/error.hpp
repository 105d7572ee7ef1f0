#pragma once

#include <cstdint>
#include <string>

#include <caf/error.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>

namespace actortrain {

/// Error codes of actortrain; they travel between actors as `caf::error`
/// whose context holds a human-readable message naming what is wrong.
enum class errc : uint8_t {
  /// The experiment file or struct is malformed or out of range.
  invalid_experiment = 1,
  /// A data file is missing, corrupt or does not fit the model.
  invalid_data,
  /// A learner threw while building, training or evaluating.
  learner_failed,
  /// A loss became NaN or infinite.
  non_finite_loss,
  /// The results store could not be opened, read or written.
  storage_failed,
  /// An output folder or other file-system precondition is violated.
  io_failed,
  /// The run was stopped before every network finished.
  run_aborted,
  /// A worker node could not be reached, refused to join, or was lost.
  cluster_failed,
  /// A wait on a live session's networks ran out of time.
  timed_out,
  /// A live session is closed (or stopped), or a handle belongs to no
  /// session or to another one.
  session_closed,
  invalid_handle,
  /// A worker started with a data cache lacks the run's data: the
  /// coordinator sends it.
  data_needed,
};

/// Returns the name of `x`, e.g. "invalid_experiment".
std::string to_string(errc x);

/// Builds an error of code `code` whose context is `message`.
caf::error make_error(errc code, std::string message);

/// Renders `err` as "message" for actortrain errors and with CAF's own
/// renderer otherwise; never empty for a non-empty error.
std::string to_string_pretty(const caf::error& err);

/// Returns whether `err` is an actortrain error with code `code`.
bool is(const caf::error& err, errc code);

} // namespace actortrain

CAF_ERROR_CODE_ENUM(actortrain::errc, "actortrain")
