#include "actortrain/error.hpp"

#include <caf/message.hpp>

namespace actortrain {

std::string to_string(errc x) {
  switch (x) {
  case errc::invalid_experiment:
    return "invalid_experiment";
  case errc::invalid_data:
    return "invalid_data";
  case errc::learner_failed:
    return "learner_failed";
  case errc::non_finite_loss:
    return "non_finite_loss";
  case errc::storage_failed:
    return "storage_failed";
  case errc::io_failed:
    return "io_failed";
  case errc::run_aborted:
    return "run_aborted";
  case errc::cluster_failed:
    return "cluster_failed";
  case errc::timed_out:
    return "timed_out";
  case errc::session_closed:
    return "session_closed";
  case errc::invalid_handle:
    return "invalid_handle";
  case errc::data_needed:
    return "data_needed";
  }
  return "unknown";
}

caf::error make_error(errc code, std::string message) {
  return caf::make_error(code, std::move(message));
}

bool is(const caf::error& err, errc code) {
  // An empty error has no category to ask (CAF 0.17 dereferences it).
  return err && err.category() == caf::atom("actortrain") &&
         err.code() == static_cast<uint8_t>(code);
}

std::string to_string_pretty(const caf::error& err) {
  if (!err)
    return {};
  auto& ctx = err.context();
  if (err.category() == caf::atom("actortrain")) {
    if (ctx.size() == 1 && ctx.match_element<std::string>(0))
      return ctx.get_as<std::string>(0);
    return to_string(static_cast<errc>(err.code()));
  }
  return caf::to_string(err);
}

} // namespace actortrain
