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
  so.output_dir = std::move(opts.output_dir);
  so.make_learner = std::move(opts.make_learner);
  so.on_progress = std::move(opts.on_progress);
  so.progress_interval_seconds = opts.progress_interval_seconds;
  so.progress_rows = opts.progress_rows;
  so.tune_allocator = opts.tune_allocator;
  so.train_setup = true;
  so.stop = std::move(opts.stop);
  so.tls = std::move(opts.tls);
  so.on_event = std::move(opts.on_event);
  auto s = session::open(exp, std::move(so));
  if (!s)
    return s.error();
  return (*s)->close();
}

caf::expected<run_result> read_results(const std::string& output_dir) {
  fs::path p{output_dir};
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
