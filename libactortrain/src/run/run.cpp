#include "actortrain/run.hpp"

#include <filesystem>

#include <fmt/format.h>

#include "actortrain/error.hpp"
#include "actortrain/session.hpp"
#include "actortrain/store.hpp"

namespace fs = std::filesystem;

namespace actortrain {

caf::expected<run_result> run(const experiment& exp, run_options opts) {
  // One path: a batch run is a session that trains its setup's networks,
  // opened and closed.
  session_options so;
  static_cast<run_options&>(so) = std::move(opts);
  so.train_setup = true;
  auto s = session::open(exp, std::move(so));
  if (!s)
    return s.error();
  return (*s)->close();
}

caf::expected<run_result> read_results(const std::string& output_dir) {
  fs::path p{output_dir};
  if (!fs::exists(p))
    return make_error(errc::storage_failed,
                      fmt::format("{}: no such folder (a run's output folder, "
                                  "or its results.db, is expected)",
                                  output_dir));
  if (fs::is_directory(p))
    p /= results_store::file_name;
  if (!fs::exists(p))
    return make_error(errc::storage_failed,
                      fmt::format("{}: no results store here (expected {})",
                                  output_dir, p.string()));
  auto store = results_store::open(p.string());
  if (!store)
    return store.error();
  auto result = (*store)->read();
  if (result)
    result->output_dir = p.parent_path().string();
  return result;
}

} // namespace actortrain
