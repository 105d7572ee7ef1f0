#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "actortrain/learner_fwd.hpp"

namespace actortrain {

/// Mutually authenticated TLS for the links between a coordinator and its
/// workers (CAF's openssl module). All three set: TLS, and a peer must
/// present a certificate signed by `ca`; all empty: plain TCP.
struct tls_options {
  /// PEM certificate of this node.
  std::string certificate;
  /// PEM private key of `certificate`.
  std::string key;
  /// PEM certificate of the authority that signs every node's certificate.
  std::string ca;

  bool enabled() const {
    return !certificate.empty() || !key.empty() || !ca.empty();
  }

  /// Checks that all three are set together and the files exist; the error
  /// names the option and the file.
  caf::error validate() const;
};

/// How to run a worker node (`actortrain worker`).
struct worker_options {
  /// TCP port to listen on; 0 picks a free one (see `on_listening`).
  uint16_t port = 0;
  /// Address to listen on; loopback unless told otherwise.
  std::string bind = "127.0.0.1";
  /// CPU slots this node offers; 0: one per hardware thread.
  int64_t slots = 0;
  /// This node's devices, as `scheduler.devices` (empty: "auto"); a GPU
  /// offers the run's `scheduler.streams_per_gpu` slots.
  std::vector<std::string> devices;
  tls_options tls;
  /// Exit when the coordinator goes away instead of waiting for the next.
  bool exit_when_orphaned = false;
  /// Builds learners; empty: the built-in ones. Must match the
  /// coordinator's: a custom learner needs a worker built with it.
  learner_factory make_learner;
  /// Called once listening, with the port.
  std::function<void(uint16_t)> on_listening;
  /// Called with one line on each event (a run joined, a coordinator left,
  /// and with `verbose` every quantum).
  std::function<void(const std::string&)> on_event;
  bool verbose = false;
  /// A folder where data received from coordinators is kept (by content
  /// hash): a run whose data this worker lacks (the files are not at the
  /// coordinator's paths, or hold something else) gets it from the
  /// coordinator once. Empty: such a run is refused, as without a shared
  /// file system nothing else would train it.
  std::string cache_dir;
  /// Set to true to stop the worker.
  std::shared_ptr<std::atomic<bool>> stop;
  /// A coordinator from which nothing arrived for this long (coordinators
  /// send a heartbeat twice a second) is gone, as one whose connection
  /// closed: its run's live states here are dropped (its coordinator, if it
  /// lives, goes on from their checkpoints) and the worker serves the next
  /// (or exits, `exit_when_orphaned`). 0: never; otherwise at least 2.
  double coordinator_timeout_seconds = 120;
};

/// Runs a worker node until `stop` is set (or, with `exit_when_orphaned`,
/// its coordinator leaves). Serves one run at a time: a coordinator sends
/// its experiment, the worker checks that its copy of the data has the
/// coordinator's content hash and offers its slots; quanta of the run's
/// networks then run here. Returns an error when it cannot listen.
caf::error run_worker(worker_options opts);

/// The workers a file names (`actortrain run --workers-file FILE`): one
/// "host:port" a line; blank lines and lines starting with '#' are skipped,
/// spaces around an address ignored. An error names the file and the line
/// that is not host:port, or says the file names no worker.
caf::expected<std::vector<std::string>>
read_workers_file(const std::string& path);

} // namespace actortrain
