#pragma once

// Helpers shared by the tests: temporary folders, IDX writers, small
// synthetic experiments, running the app as a real process.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/expected.hpp>
#include <torch/types.h>

#include "actortrain/experiment.hpp"
#include "actortrain/learner.hpp"
#include "actortrain/run.hpp"

namespace actortrain::test {

/// `x` after a trip through CAF's binary serializer, as between nodes; the
/// error of the serializer or the deserializer otherwise.
template <class T> caf::expected<T> through_the_wire(T x) {
  std::vector<char> buf;
  caf::binary_serializer sink{nullptr, buf};
  if (auto err = sink(x))
    return err;
  T got;
  caf::binary_deserializer source{nullptr, buf};
  if (auto err = source(got))
    return err;
  return got;
}

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

/// The bytes of the file at `path` (none when it cannot be read).
std::vector<char> file_bytes(const std::string& path);

/// Whether `text` contains `part`.
bool contains(const std::string& text, const std::string& part);

/// A small, fast synthetic classification experiment.
/// A CAF configuration that knows actortrain's message types, for tests
/// that spawn the library's actors themselves (one for the whole binary).
caf::actor_system_config& actor_config();

experiment tiny_experiment(int64_t networks = 4, int64_t epochs = 2);

/// Result of running a process: exit code and combined output.
struct process_result {
  int exit_code = -1;
  std::string output;
};

/// Runs `command` through the shell, capturing stdout and stderr.
process_result run_process(const std::string& command);

/// Runs the app with `args` (a shell command line's rest), for at most 10
/// minutes.
process_result run_app(const std::string& args);

/// A process running in the background, its stdout and stderr going to a
/// file; killed (SIGKILL) and reaped when destroyed, so tests leave no
/// stray processes.
class background_process {
public:
  /// Starts `command` through the shell, output to `log_path`.
  background_process(const std::string& command, std::string log_path);
  ~background_process();
  background_process(const background_process&) = delete;
  background_process& operator=(const background_process&) = delete;

  /// Waits up to `seconds` for the output to contain `text`; false if not.
  bool wait_for(const std::string& text, double seconds) const;
  /// Waits up to `seconds` for the output to contain `text` `count` times.
  bool wait_for_count(const std::string& text, size_t count,
                      double seconds) const;
  /// Everything the process wrote so far.
  std::string output() const;
  /// Sends `signal`; then waits up to `seconds` for the process to end and
  /// returns its exit status (-1: still running, -2: killed by a signal).
  int stop(int signal, double seconds);
  bool running();
  int pid() const {
    return pid_;
  }

private:
  int pid_ = -1;
  std::string log_;
  bool reaped_ = false;
  int status_ = 0;
};

/// Starts `actortrain worker --port 0 ARGS` and waits until it listens;
/// `port()` is the port it picked.
class worker_process {
public:
  worker_process(const std::string& args, const std::string& log_path);
  uint16_t port() const {
    return port_;
  }
  std::string address() const;
  background_process& process() {
    return proc_;
  }

private:
  background_process proc_;
  uint16_t port_ = 0;
};

/// The number `sql` counts in the store of the run folder `out` (0 while
/// there is none), read while a run may be writing it.
int64_t count_in_store(const std::string& out, const char* sql);

/// CPU seconds (user and system) the process `pid` has used so far (0 when
/// it cannot be read).
double cpu_seconds_of(int pid);

/// A port that was free a moment ago on 127.0.0.1.
uint16_t free_port();

/// A port on 127.0.0.1 that accepts connections (the kernel completes them)
/// and never answers: another program than an actortrain worker, as a web
/// server waiting for a request line is. Closed when destroyed.
class silent_listener {
public:
  silent_listener();
  ~silent_listener();
  silent_listener(const silent_listener&) = delete;
  silent_listener& operator=(const silent_listener&) = delete;
  /// "127.0.0.1:port".
  std::string address() const;

private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

/// Every finished network's weights in the run folder `out`, by file name
/// ("net-0000.pt"), read through its results store wherever the run kept
/// them (output.layout); a damaged one fails the test.
std::map<std::string, std::vector<char>> stored_weights(const std::string& out);

/// Every decision the search stored in the run folder `out`, as "network
/// epoch rung action donor new-hyperparameters", sorted: what it decided,
/// whatever order the records were written in.
std::vector<std::string> stored_decisions(const std::string& out);

/// The largest difference of `a` from `ref`, relative to `ref`'s largest
/// magnitude.
double relative_error(const torch::Tensor& a, const torch::Tensor& ref);

/// relative_error over named tensors (weights), the worst one; the names
/// must match.
double max_relative_error(
    const std::vector<std::pair<std::string, torch::Tensor>>& a,
    const std::vector<std::pair<std::string, torch::Tensor>>& ref);

/// Runs `exp` into the folder `out`; fails the test when it does not run.
run_result run_ok(const experiment& exp, const std::string& out);

/// stored_weights, decoded: each network's named tensors by file name.
std::map<std::string, std::vector<std::pair<std::string, torch::Tensor>>>
decoded_weights(const std::string& out);

/// The actortrain app's path.
std::string app();

/// A learner of the user's own that forwards to the built-in one: tests
/// derive from it and override the calls they script (a fault, a step
/// time). `checkpoints`: whether it checkpoints (saves and loads the
/// built-in learner's state), as a learner of one's own may or may not.
class forwarding_learner : public learner {
public:
  forwarding_learner(const learner_context& ctx, bool checkpoints);

  double train_step(const torch::Tensor& x, const torch::Tensor& y) override;
  torch::Tensor predict(const torch::Tensor& x) override;
  std::vector<std::pair<std::string, torch::Tensor>> state() override;
  bool can_checkpoint() const override;
  void save(torch::serialize::OutputArchive& archive) override;
  void load(torch::serialize::InputArchive& archive) override;
  void scale_learning_rate(double factor) override;

private:
  std::unique_ptr<learner> inner_;
  bool checkpoints_;
};

} // namespace actortrain::test
