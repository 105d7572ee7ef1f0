// The actortrain command-line app: run an experiment, read its results.

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include <fmt/format.h>

#include "actortrain/actortrain.hpp"
#include "progress_display.hpp"
#include "results_format.hpp"

namespace {

/// Exit codes (documented in the README).
enum exit_code : int {
  ok = 0,
  networks_failed = 1,
  usage_error = 2,
  invalid_input = 3,
  runtime_error = 4,
  interrupted = 5,
};

/// The run's stop flag, set by the first SIGINT / SIGTERM (lock-free, so
/// async-signal-safe); a second signal exits at once. The store stays
/// consistent either way: every write is an SQLite transaction.
std::shared_ptr<std::atomic<bool>> stop_flag;
std::atomic<int> signals_seen{0};

extern "C" void on_signal(int) {
  if (signals_seen.fetch_add(1) > 0)
    _exit(130);
  if (stop_flag)
    stop_flag->store(true);
}

constexpr const char* usage = R"(usage:
  actortrain run EXPERIMENT.toml [--output DIR] [--slots N] [--quiet]
  actortrain results DIR [--format table|json]
  actortrain version

exit codes: 0 ok, 1 some networks failed, 2 usage error,
            3 invalid experiment or data (nothing trained),
            4 storage or runtime error,
            5 stopped by SIGINT / SIGTERM (run the same command to resume)
)";

int fail_usage(const std::string& msg) {
  fmt::print(stderr, "actortrain: {}\n{}", msg, usage);
  return usage_error;
}

int exit_for(const caf::error& err) {
  using actortrain::errc;
  if (actortrain::is(err, errc::run_aborted))
    return interrupted;
  if (actortrain::is(err, errc::invalid_experiment) ||
      actortrain::is(err, errc::invalid_data))
    return invalid_input;
  return runtime_error;
}

int cmd_run(const std::vector<std::string>& args) {
  std::string path;
  actortrain::run_options opts;
  int64_t slots = -1;
  bool quiet = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if ((a == "--output" || a == "-o") && i + 1 < args.size())
      opts.output_dir = args[++i];
    else if (a == "--slots" && i + 1 < args.size()) {
      try {
        slots = std::stoll(args[++i]);
      } catch (const std::exception&) {
        return fail_usage(
            fmt::format("--slots: '{}' is not a number", args[i]));
      }
      if (slots < 1)
        return fail_usage("--slots must be >= 1");
    } else if (a == "--quiet" || a == "-q")
      quiet = true;
    else if (!a.empty() && a[0] == '-')
      return fail_usage(fmt::format("unknown option '{}'", a));
    else if (path.empty())
      path = a;
    else
      return fail_usage(fmt::format("unexpected argument '{}'", a));
  }
  if (path.empty())
    return fail_usage("run: missing EXPERIMENT.toml");
  auto exp = actortrain::load_experiment(path);
  if (!exp) {
    fmt::print(stderr, "actortrain: {}\n",
               actortrain::to_string_pretty(exp.error()));
    return exit_for(exp.error());
  }
  if (slots > 0)
    exp->scheduler.slots = slots;
  actortrain::app::progress_display display{stderr};
  if (!quiet)
    opts.on_progress = [&](const actortrain::run_status& s) {
      display.update(s);
    };
  if (!quiet)
    fmt::print(stderr, "actortrain: running '{}': {} networks\n", exp->name,
               exp->total_networks());
  stop_flag = std::make_shared<std::atomic<bool>>(false);
  opts.stop = stop_flag;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  auto result = actortrain::run(*exp, std::move(opts));
  display.close();
  if (!result) {
    fmt::print(stderr, "actortrain: {}\n",
               actortrain::to_string_pretty(result.error()));
    return exit_for(result.error());
  }
  fmt::print("{}", actortrain::app::format_summary(*result));
  return result->count(actortrain::network_status::failed) > 0 ? networks_failed
                                                               : ok;
}

int cmd_results(const std::vector<std::string>& args) {
  std::string dir;
  std::string format = "table";
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--format" && i + 1 < args.size())
      format = args[++i];
    else if (!args[i].empty() && args[i][0] == '-')
      return fail_usage(fmt::format("unknown option '{}'", args[i]));
    else if (dir.empty())
      dir = args[i];
    else
      return fail_usage(fmt::format("unexpected argument '{}'", args[i]));
  }
  if (dir.empty())
    return fail_usage("results: missing DIR");
  if (format != "table" && format != "json")
    return fail_usage(
        fmt::format("--format: expected table or json, got '{}'", format));
  auto result = actortrain::read_results(dir);
  if (!result) {
    fmt::print(stderr, "actortrain: {}\n",
               actortrain::to_string_pretty(result.error()));
    return runtime_error;
  }
  fmt::print("{}", format == "json" ? actortrain::app::format_json(*result)
                                    : actortrain::app::format_table(*result));
  return ok;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty())
    return fail_usage("missing command");
  auto cmd = args.front();
  args.erase(args.begin());
  if (cmd == "run")
    return cmd_run(args);
  if (cmd == "results")
    return cmd_results(args);
  if (cmd == "version" || cmd == "--version") {
    fmt::print("actortrain {}\n", actortrain::version());
    return ok;
  }
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    fmt::print("{}", usage);
    return ok;
  }
  return fail_usage(fmt::format("unknown command '{}'", cmd));
}
