// The actortrain command-line app: run an experiment, read its results.

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <thread>
#include <unistd.h>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "actortrain/actortrain.hpp"
#include "actortrain/store.hpp"
#include "csv_export.hpp"
#include "progress_display.hpp"
#include "report/report_page.hpp"
#include "report/report_refresher.hpp"
#include "results_format.hpp"
#include "status_view.hpp"

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
                 [--devices auto|cpu,cuda,cuda:N,...]
                 [--workers HOST:PORT,... | --workers-file FILE]
                 [--no-local] [TLS]
  actortrain continue DIR --epochs N [--slots N] [--quiet]
                 [--devices auto|cpu,cuda,cuda:N,...]
                 [--workers HOST:PORT,... | --workers-file FILE]
                 [--no-local] [TLS]
                 (a finished run trained on to N epochs: its networks go
                  on from their final states)
  actortrain worker [--port P] [--bind ADDR] [--slots K] [--once]
                    [--devices auto|cpu,cuda,cuda:N,...]
                    [--cache DIR] [--coordinator-timeout S] [--verbose]
                    [TLS]
                    (--cache: data this worker lacks comes from the
                     coordinator, once, and is kept in DIR;
                     --coordinator-timeout: a coordinator silent for S
                     seconds is gone, default 120, 0: never)
  actortrain results DIR [--format table|json|csv]
  actortrain status DIR [--watch]
  actortrain report DIR [--output FILE]     (one HTML file; default
                                             DIR/report.html)
  actortrain export DIR --epochs FILE.csv   (every epoch's metrics; - for
                                             stdout)
  actortrain export DIR --weights FOLDER [--network NAME]
                                            (finished networks' weights as
                                             FOLDER/NAME.pt)
  actortrain version

TLS (mutual, on both sides): --tls-cert FILE --tls-key FILE --tls-ca FILE

exit codes: 0 ok, 1 some networks failed, 2 usage error,
            3 invalid experiment or data (nothing trained),
            4 storage, runtime or cluster error (a worker refused or
              none could be reached),
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

/// Reads a TLS option at args[i] into `tls`; false when args[i] is none.
bool tls_option(const std::vector<std::string>& args, size_t& i,
                actortrain::tls_options& tls) {
  const auto& a = args[i];
  if (i + 1 >= args.size())
    return false;
  if (a == "--tls-cert")
    tls.certificate = args[++i];
  else if (a == "--tls-key")
    tls.key = args[++i];
  else if (a == "--tls-ca")
    tls.ca = args[++i];
  else
    return false;
  return true;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> result;
  size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string::npos)
      comma = text.size();
    if (comma > start)
      result.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return result;
}

/// What `run` and `continue` take on their command line.
struct run_args {
  std::string target;
  actortrain::run_options opts;
  int64_t slots = -1;
  int64_t epochs = -1;
  bool quiet = false;
  std::vector<std::string> workers;
  std::vector<std::string> devices;
  bool no_local = false;
};

/// Parses `run`'s options (and, for `continue`, --epochs); nothing and a
/// usage error printed when they are wrong.
std::optional<run_args> parse_run_args(const std::vector<std::string>& args,
                                       bool epochs_option) {
  run_args r;
  auto count = [&](const std::string& name, const std::string& text,
                   int64_t& out) {
    try {
      size_t used = 0;
      out = std::stoll(text, &used);
      if (used != text.size())
        throw std::invalid_argument(text);
    } catch (const std::exception&) {
      fail_usage(fmt::format("{}: '{}' is not a number", name, text));
      return false;
    }
    if (out < 1) {
      fail_usage(fmt::format("{} must be >= 1", name));
      return false;
    }
    return true;
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if ((a == "--output" || a == "-o") && i + 1 < args.size() && !epochs_option)
      r.opts.output_dir = args[++i];
    else if (a == "--slots" && i + 1 < args.size()) {
      if (!count("--slots", args[++i], r.slots))
        return std::nullopt;
    } else if (a == "--epochs" && i + 1 < args.size() && epochs_option) {
      if (!count("--epochs", args[++i], r.epochs))
        return std::nullopt;
    } else if (a == "--quiet" || a == "-q")
      r.quiet = true;
    else if (a == "--workers" && i + 1 < args.size())
      r.workers = split_list(args[++i]);
    else if (a == "--devices" && i + 1 < args.size())
      r.devices = split_list(args[++i]);
    else if (a == "--workers-file" && i + 1 < args.size()) {
      auto workers = actortrain::read_workers_file(args[++i]);
      if (!workers) {
        fmt::print(stderr, "actortrain: --workers-file: {}\n",
                   actortrain::to_string_pretty(workers.error()));
        return std::nullopt;
      }
      r.workers = std::move(*workers);
    } else if (a == "--no-local")
      r.no_local = true;
    else if (tls_option(args, i, r.opts.tls))
      continue;
    else if (!a.empty() && a[0] == '-') {
      fail_usage(fmt::format("unknown option '{}'", a));
      return std::nullopt;
    } else if (r.target.empty())
      r.target = a;
    else {
      fail_usage(fmt::format("unexpected argument '{}'", a));
      return std::nullopt;
    }
  }
  return r;
}

/// Trains `exp` as `r` says: the progress display, the report, the summary.
int train(actortrain::experiment& exp, run_args& r) {
  auto& opts = r.opts;
  if (r.slots > 0)
    exp.scheduler.slots = r.slots;
  if (!r.devices.empty())
    exp.scheduler.devices = r.devices;
  if (!r.workers.empty())
    exp.cluster.workers = r.workers;
  if (r.no_local)
    exp.cluster.local = false;
  if (auto err = exp.validate()) {
    fmt::print(stderr, "actortrain: {}\n", actortrain::to_string_pretty(err));
    return exit_for(err);
  }
  // Cluster events go to stderr, even with --quiet: they explain slowdowns.
  opts.on_event = [](const std::string& line) {
    fmt::print(stderr, "actortrain: {}\n", line);
  };
  actortrain::app::progress_display display{stderr};
  // DIR/report.html is rewritten every minute while the run trains, and at
  // its end.
  actortrain::app::report_refresher refresher{std::chrono::seconds{60}};
  bool quiet = r.quiet;
  opts.on_progress = [&](const actortrain::run_status& s) {
    refresher.set_dir(s.output_dir);
    if (!quiet)
      display.update(s);
  };
  if (!quiet)
    fmt::print(stderr, "actortrain: running '{}': {} networks\n", exp.name,
               exp.total_networks());
  stop_flag = std::make_shared<std::atomic<bool>>(false);
  opts.stop = stop_flag;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  auto result = actortrain::run(exp, std::move(opts));
  display.close();
  refresher.stop();
  // The report of what is stored, also for a run that stopped or failed
  // part way (its folder is known once it started).
  auto dir = result ? result->output_dir : refresher.dir();
  std::string report;
  if (!dir.empty()) {
    if (auto err = actortrain::app::write_report(dir))
      fmt::print(stderr, "actortrain: no report: {}\n",
                 actortrain::to_string_pretty(err));
    else
      report = dir + "/report.html";
  }
  if (!result) {
    fmt::print(stderr, "actortrain: {}\n",
               actortrain::to_string_pretty(result.error()));
    return exit_for(result.error());
  }
  fmt::print("{}", actortrain::app::format_summary(*result));
  if (!report.empty())
    fmt::print("report: {}\n", report);
  return result->count(actortrain::network_status::failed) > 0 ? networks_failed
                                                               : ok;
}

int cmd_run(const std::vector<std::string>& args) {
  auto r = parse_run_args(args, false);
  if (!r)
    return usage_error;
  if (r->target.empty())
    return fail_usage("run: missing EXPERIMENT.toml");
  auto exp = actortrain::load_experiment(r->target);
  if (!exp) {
    fmt::print(stderr, "actortrain: {}\n",
               actortrain::to_string_pretty(exp.error()));
    return exit_for(exp.error());
  }
  return train(*exp, *r);
}

/// `continue DIR --epochs N`: the experiment DIR holds, read back from its
/// store, with every configuration's train.epochs set to N, trained on in
/// DIR: its finished networks go on from their final states.
int cmd_continue(const std::vector<std::string>& args) {
  auto r = parse_run_args(args, true);
  if (!r)
    return usage_error;
  if (r->target.empty())
    return fail_usage("continue: missing DIR");
  if (r->epochs < 1)
    return fail_usage("continue: say how far: --epochs N");
  auto db =
      std::filesystem::path{r->target} / actortrain::results_store::file_name;
  if (!std::filesystem::exists(db)) {
    fmt::print(stderr, "actortrain: {}: no results store here (expected {})\n",
               r->target, db.string());
    return runtime_error;
  }
  auto store = actortrain::results_store::open(db.string());
  if (!store) {
    fmt::print(stderr, "actortrain: {}\n",
               actortrain::to_string_pretty(store.error()));
    return exit_for(store.error());
  }
  auto prov = (*store)->provenance();
  store->reset();
  if (!prov) {
    fmt::print(stderr, "actortrain: {}\n",
               actortrain::to_string_pretty(prov.error()));
    return exit_for(prov.error());
  }
  if (prov->experiment.empty()) {
    fmt::print(stderr,
               "actortrain: {} was not run from an experiment file: run "
               "your program again on it with the larger train.epochs\n",
               r->target);
    return invalid_input;
  }
  auto exp =
      actortrain::parse_experiment(prov->experiment, prov->experiment_path);
  if (!exp) {
    fmt::print(stderr, "actortrain: {}\n",
               actortrain::to_string_pretty(exp.error()));
    return exit_for(exp.error());
  }
  exp->source_text = prov->experiment;
  exp->source_path = prov->experiment_path;
  exp->base.train.epochs = r->epochs;
  for (auto& v : exp->variants)
    v.train.epochs = r->epochs;
  r->opts.output_dir = r->target;
  return train(*exp, *r);
}

int cmd_worker(const std::vector<std::string>& args) {
  actortrain::worker_options opts;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    auto number = [&](const char* name, int64_t lo, int64_t hi, int64_t& out) {
      try {
        size_t used = 0;
        out = std::stoll(args[i], &used);
        if (used == args[i].size() && out >= lo && out <= hi)
          return true;
      } catch (const std::exception&) {
      }
      fail_usage(fmt::format("{}: '{}' is not a number from {} to {}", name,
                             args[i], lo, hi));
      return false;
    };
    if (a == "--port" && i + 1 < args.size()) {
      ++i;
      int64_t port = 0;
      if (!number("--port", 0, 65535, port))
        return usage_error;
      opts.port = static_cast<uint16_t>(port);
    } else if (a == "--slots" && i + 1 < args.size()) {
      ++i;
      if (!number("--slots", 1, 4096, opts.slots))
        return usage_error;
    } else if (a == "--bind" && i + 1 < args.size())
      opts.bind = args[++i];
    else if (a == "--devices" && i + 1 < args.size())
      opts.devices = split_list(args[++i]);
    else if (a == "--once")
      opts.exit_when_orphaned = true;
    else if (a == "--cache" && i + 1 < args.size())
      opts.cache_dir = args[++i];
    else if (a == "--coordinator-timeout" && i + 1 < args.size()) {
      ++i;
      int64_t seconds = 0;
      if (!number("--coordinator-timeout", 0, 86400, seconds))
        return usage_error;
      if (auto problem = actortrain::peer_timeout_problem(
              static_cast<double>(seconds), "--coordinator-timeout",
              "coordinators");
          !problem.empty())
        return fail_usage(problem);
      opts.coordinator_timeout_seconds = static_cast<double>(seconds);
    } else if (a == "--verbose" || a == "-v")
      opts.verbose = true;
    else if (tls_option(args, i, opts.tls))
      continue;
    else
      return fail_usage(fmt::format("worker: unknown argument '{}'", a));
  }
  auto bind = opts.bind;
  opts.on_listening = [bind](uint16_t port) {
    // One line on stdout, for scripts (and tests) that asked for port 0.
    fmt::print("actortrain worker listening on {}:{}\n", bind, port);
    std::fflush(stdout);
  };
  opts.on_event = [](const std::string& line) {
    fmt::print(stderr, "actortrain worker: {}\n", line);
  };
  stop_flag = std::make_shared<std::atomic<bool>>(false);
  opts.stop = stop_flag;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  if (auto err = actortrain::run_worker(std::move(opts))) {
    fmt::print(stderr, "actortrain worker: {}\n",
               actortrain::to_string_pretty(err));
    return exit_for(err);
  }
  return ok;
}

/// The arguments of a command that reads a run folder: its DIR, the
/// options that take a value, and the flags given.
struct folder_args {
  std::string dir;
  std::map<std::string, std::string> values;
  std::set<std::string> flags;
};

/// Reads `args` of `command`: one DIR, options in `valued` (each takes the
/// next argument) and `flags`. Prints a usage error and returns nothing when
/// they are wrong.
std::optional<folder_args>
parse_folder_args(const char* command, const std::vector<std::string>& args,
                  const std::set<std::string>& valued,
                  const std::set<std::string>& flags) {
  folder_args out;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (valued.count(a) > 0 && i + 1 < args.size())
      out.values[a] = args[++i];
    else if (flags.count(a) > 0)
      out.flags.insert(a);
    else if (!a.empty() && a[0] == '-') {
      fail_usage(fmt::format("unknown option '{}'", a));
      return std::nullopt;
    } else if (out.dir.empty())
      out.dir = a;
    else {
      fail_usage(fmt::format("unexpected argument '{}'", a));
      return std::nullopt;
    }
  }
  if (out.dir.empty()) {
    fail_usage(fmt::format("{}: missing DIR", command));
    return std::nullopt;
  }
  return out;
}

/// Prints a storage or runtime error and gives its exit code.
int fail_runtime(const caf::error& err) {
  fmt::print(stderr, "actortrain: {}\n", actortrain::to_string_pretty(err));
  return runtime_error;
}

int cmd_results(const std::vector<std::string>& args) {
  auto parsed = parse_folder_args("results", args, {"--format"}, {});
  if (!parsed)
    return usage_error;
  auto format = parsed->values.count("--format") > 0
                    ? parsed->values["--format"]
                    : std::string{"table"};
  if (format != "table" && format != "json" && format != "csv")
    return fail_usage(
        fmt::format("--format: expected table, json or csv, got '{}'", format));
  auto result = actortrain::read_results(parsed->dir);
  if (!result)
    return fail_runtime(result.error());
  std::vector<actortrain::decision_record> decisions;
  if (format != "csv") {
    auto store = actortrain::results_store::open(result->database_path);
    if (!store)
      return fail_runtime(store.error());
    auto ds = (*store)->decisions();
    if (!ds)
      return fail_runtime(ds.error());
    decisions = std::move(*ds);
  }
  if (format == "json")
    fmt::print("{}", actortrain::app::format_json(*result, decisions));
  else if (format == "csv")
    fmt::print("{}", actortrain::app::format_csv(*result));
  else
    fmt::print("{}{}", actortrain::app::format_table(*result),
               actortrain::app::format_decisions(*result, decisions));
  return ok;
}

/// Whether a process holds the run folder's lock (it is training there).
/// A shared lock is tried for an instant and given back at once.
bool writer_alive(const std::string& dir) {
  int fd = ::open((dir + "/.lock").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  bool locked = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return locked;
}

/// Columns of the terminal on stdout; 0 (no limit) when not a terminal.
size_t terminal_width() {
  winsize ws{};
  if (::isatty(STDOUT_FILENO) && ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
    return ws.ws_col;
  return 0;
}

int cmd_status(const std::vector<std::string>& args) {
  auto parsed = parse_folder_args("status", args, {}, {"--watch", "-w"});
  if (!parsed)
    return usage_error;
  bool watch = !parsed->flags.empty();
  stop_flag = std::make_shared<std::atomic<bool>>(false);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  bool tty = ::isatty(STDOUT_FILENO);
  for (;;) {
    // The store is read through SQLite's WAL: the writer is never blocked.
    auto result = actortrain::read_results(parsed->dir);
    if (!result)
      return fail_runtime(result.error());
    auto store = actortrain::results_store::open(result->database_path);
    if (!store)
      return fail_runtime(store.error());
    auto latest = (*store)->latest_epochs();
    if (!latest)
      return fail_runtime(latest.error());
    actortrain::app::run_liveness live;
    live.writer_alive = writer_alive(result->output_dir);
    auto text = actortrain::app::format_status(*result, *latest, live,
                                               terminal_width());
    if (watch && tty)
      fmt::print("\x1b[H\x1b[2J"); // redraw from the top, not scroll
    fmt::print("{}", text);
    std::fflush(stdout);
    if (!watch || !live.writer_alive || stop_flag->load())
      return ok;
    for (int i = 0; i < 20 && !stop_flag->load(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds{100});
    if (stop_flag->load())
      return ok;
    if (!tty)
      fmt::print("\n");
  }
}

int cmd_report(const std::vector<std::string>& args) {
  auto parsed = parse_folder_args("report", args, {"--output", "-o"}, {});
  if (!parsed)
    return usage_error;
  std::string file;
  for (const auto& [key, value] : parsed->values)
    file = value;
  if (file.empty())
    file = parsed->dir + "/report.html";
  if (auto err = actortrain::app::write_report(parsed->dir, file))
    return fail_runtime(err);
  fmt::print("{}\n", file);
  return ok;
}

/// Writes `text` to `path` ("-": stdout); false (and says why) when it
/// cannot.
bool write_output(const std::string& path, const char* data, size_t size) {
  if (path == "-") {
    std::fwrite(data, 1, size, stdout);
    return true;
  }
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  out.write(data, static_cast<std::streamsize>(size));
  out.close();
  if (!out)
    fmt::print(stderr, "actortrain: cannot write {}: {}\n", path,
               std::strerror(errno));
  return static_cast<bool>(out);
}

/// Every epoch's metrics of the run in `result` as CSV.
int export_epochs(const actortrain::run_result& result,
                  actortrain::results_store& store, const std::string& file) {
  auto all = store.all_epochs();
  if (!all)
    return fail_runtime(all.error());
  std::unordered_map<uint64_t, std::vector<actortrain::epoch_metrics>> epochs;
  for (auto& e : *all)
    epochs[e.network_id].push_back(e);
  auto csv = actortrain::app::format_epochs_csv(result, epochs);
  return write_output(file, csv.data(), csv.size()) ? ok : runtime_error;
}

/// Each finished network's weights (or only `only`'s) as `folder/NAME.pt`,
/// wherever the run kept them: the one-file-per-network layout, after the
/// fact.
int export_weights(const actortrain::run_result& result,
                   const actortrain::results_store& store,
                   const std::string& folder, const std::string& only) {
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec) {
    fmt::print(stderr, "actortrain: cannot create {}: {}\n", folder,
               ec.message());
    return runtime_error;
  }
  int written = 0;
  for (const auto& n : result.networks) {
    if (!only.empty() && n.name != only)
      continue;
    if (n.status != actortrain::network_status::finished) {
      if (only.empty())
        continue;
      fmt::print(stderr, "actortrain: {} did not finish: it has no weights\n",
                 n.name);
      return runtime_error;
    }
    auto bytes = store.file_bytes(n.id, actortrain::file_kind::weights);
    if (!bytes)
      return fail_runtime(bytes.error());
    auto path = fmt::format("{}/{}.pt", folder, n.name);
    if (!write_output(path, bytes->data(), bytes->size()))
      return runtime_error;
    ++written;
  }
  if (!only.empty() && written == 0) {
    fmt::print(stderr, "actortrain: {} holds no network named '{}'\n",
               result.output_dir, only);
    return runtime_error;
  }
  fmt::print(stderr, "{} weights file{} written to {}\n", written,
             written == 1 ? "" : "s", folder);
  return ok;
}

int cmd_export(const std::vector<std::string>& args) {
  auto parsed = parse_folder_args("export", args,
                                  {"--epochs", "--weights", "--network"}, {});
  if (!parsed)
    return usage_error;
  auto epochs_file = parsed->values["--epochs"];
  auto weights_folder = parsed->values["--weights"];
  auto network = parsed->values["--network"];
  if (epochs_file.empty() && weights_folder.empty())
    return fail_usage("export: say what to export: --epochs FILE.csv or "
                      "--weights FOLDER");
  if (!network.empty() && weights_folder.empty())
    return fail_usage("export: --network NAME goes with --weights FOLDER");
  auto result = actortrain::read_results(parsed->dir);
  if (!result)
    return fail_runtime(result.error());
  auto store = actortrain::results_store::open(result->database_path);
  if (!store)
    return fail_runtime(store.error());
  if (!epochs_file.empty())
    if (auto rc = export_epochs(*result, **store, epochs_file); rc != ok)
      return rc;
  if (!weights_folder.empty())
    return export_weights(*result, **store, weights_folder, network);
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
  if (cmd == "continue")
    return cmd_continue(args);
  if (cmd == "worker")
    return cmd_worker(args);
  if (cmd == "results")
    return cmd_results(args);
  if (cmd == "status")
    return cmd_status(args);
  if (cmd == "export")
    return cmd_export(args);
  if (cmd == "report")
    return cmd_report(args);
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
