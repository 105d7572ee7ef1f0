#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "actortrain/network_spec.hpp"
#include "actortrain/results.hpp"

struct sqlite3;

namespace actortrain {

class statement_cache;

/// The files a finished network leaves: rows of the store (output.layout =
/// "database") or files in its run folder's weights folder ("files").
enum class file_kind : uint8_t {
  /// `NAME.pt`: its weights (`encode_weights`), loadable from C++ and Python.
  weights,
  /// `NAME.predictions`: its test predictions (float32, row-major), from
  /// which the ensembles are evaluated and a resumed run rebuilds them
  /// without retraining.
  predictions,
};

std::string to_string(file_kind x);

/// The kind named `text` ("weights", "predictions"), if any.
std::optional<file_kind> parse_file_kind(const std::string& text);

/// One configuration of a run as its store recorded it.
struct stored_configuration {
  int64_t group = 0;
  network_config config;
};

/// The durable results of a run: one SQLite database (WAL) per run folder.
/// Only the aggregator writes to it while a run is in progress.
class results_store {
public:
  /// File name of the database inside a run folder.
  static constexpr const char* file_name = "results.db";

  ~results_store();
  results_store(const results_store&) = delete;
  results_store& operator=(const results_store&) = delete;

  /// Creates a new store at `path`; fails if it already holds a run.
  static caf::expected<std::unique_ptr<results_store>>
  create(const std::string& path);

  /// Whether the file at `path` is empty, or a database in which no run was
  /// ever recorded (a crash while the store was being created): nothing in
  /// it to resume or to read. False for anything else, a file that is not
  /// a database included (opening it names the problem).
  static bool holds_no_run(const std::string& path);

  /// Opens an existing store, read-only unless `writable` (to resume).
  static caf::expected<std::unique_ptr<results_store>>
  open(const std::string& path, bool writable = false);

  /// Where a run came from: its experiment and the versions that ran it.
  struct provenance_entry {
    /// The experiment file's text, as the run started.
    std::string experiment;
    std::string experiment_path;
    std::string experiment_hash;
    std::string actortrain_version;
    std::string libtorch_version;
    std::string caf_version;
    /// ISO 8601, UTC; `finished_at` is empty while the run is in progress.
    std::string started_at;
    std::string finished_at;
    /// The BLAS that multiplied the matrices (e.g. "OpenBLAS 0.3.21
    /// DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64"): other kernels
    /// round differently. Empty for another BLAS or an older store.
    std::string blas;
  };

  caf::expected<provenance_entry> provenance() const;

  /// The fingerprint of the experiment the run was started with.
  caf::expected<std::string> experiment_hash() const;

  /// Marks a stopped or crashed run as running again.
  caf::error mark_resumed();

  /// A run resumes on the BLAS `now`: when it differs from the one it ran
  /// with last, provenance's `blas` becomes "BEFORE; then NOW", so the mix is
  /// on record. Answers BEFORE then, empty otherwise (or for a store that
  /// recorded no BLAS).
  caf::expected<std::string> record_blas(const std::string& now);

  /// A finished run continues to a larger budget: its fingerprint becomes
  /// `new_hash`, its configurations `configs`, and the change is recorded
  /// with `description`.
  caf::error record_continuation(const std::string& new_hash,
                                 const std::string& description,
                                 const std::vector<network_config>& configs);
  /// Each continuation recorded, "AT: DESCRIPTION", oldest first.
  caf::expected<std::vector<std::string>> continuations() const;

  /// Records a new run; `hash` is what experiment_hash() returns (empty:
  /// fingerprint(exp)).
  caf::error begin_run(const experiment& exp,
                       const std::vector<network_spec>& specs, task_kind task,
                       const std::string& hash = {});
  /// Runs `body` as one transaction: the changes it makes are committed
  /// together (one commit instead of one each), or not at all when it
  /// returns an error.
  caf::error batch(const std::function<caf::error()>& body);

  /// Appends per-epoch metrics, in one transaction.
  caf::error add_epochs(const std::vector<epoch_metrics>& metrics);
  caf::error add_outcome(const network_outcome& o,
                         const std::string& weights_path);
  caf::error add_ensemble(const ensemble_result& e);
  /// Records points of ensembles' accuracy against their number of members,
  /// in one transaction.
  caf::error add_ensemble_curve(const std::vector<ensemble_point>& points);

  /// The recorded ensemble curve points, by group, then members (none for a
  /// run that has not ended, or a store older than the curve).
  caf::expected<std::vector<ensemble_point>> ensemble_curve() const;

  /// Records a file a finished network left, with the CRC-32 and size of
  /// its bytes, so that a resumed run checks it before reusing it. An empty
  /// `path` keeps the bytes in the store itself.
  caf::error add_file(uint64_t network_id, file_kind kind,
                      const std::string& path, const std::vector<char>& bytes);

  /// A recorded file of a finished network.
  struct file_entry {
    file_kind kind = file_kind::weights;
    /// Empty when its bytes are kept in the store.
    std::string path;
    uint32_t crc32 = 0;
    int64_t bytes = 0;
  };

  /// The recorded files of a network.
  caf::expected<std::vector<file_entry>> files(uint64_t network_id) const;

  /// The bytes of a finished network's file of `kind`, wherever the run
  /// kept them (the store or the run folder), checked against the size and
  /// CRC-32 recorded when they were written: an error names what is missing,
  /// truncated or damaged. Weights decode with `decode_weights`.
  caf::expected<std::vector<char>> file_bytes(uint64_t network_id,
                                              file_kind kind) const;

  /// The run folder this store lies in.
  std::string folder() const;

  /// Forgets that a network finished (its files, final and epoch metrics),
  /// so that it is trained again: its files were lost or damaged. With
  /// `keep_history` its epochs stay: it continues from its final state to
  /// a larger budget.
  caf::error reopen_network(uint64_t network_id, bool keep_history = false);
  /// Records a failure of a network (retried or final).
  caf::error add_error(uint64_t network_id, int64_t steps,
                       const std::string& message);

  /// PBT: a network's learner state at interval epoch `epoch`, which other
  /// networks may copy; the two newest of each network are kept, so that a
  /// resumed run's exploits copy what an uninterrupted run's would.
  caf::error add_kept_state(uint64_t network_id, int64_t epoch,
                            const std::vector<char>& bytes);

  /// The epochs of every network's kept states, by network id.
  caf::expected<std::map<uint64_t, std::set<int64_t>>> kept_epochs() const;

  /// A network's kept state of `epoch`; an error naming both when the store
  /// has none.
  caf::expected<std::vector<char>> kept_state(uint64_t network_id,
                                              int64_t epoch) const;

  /// Adds asynchronous replicas' pushes by staleness to the network's
  /// counts (a resumed network's add up).
  caf::error add_staleness(const std::vector<staleness_count>& counts);

  /// Every network's pushes by staleness (asynchronous replicas), by
  /// network id, then staleness; none for a run without them.
  caf::expected<std::vector<staleness_count>> staleness() const;

  /// A recorded failure: retried, or the network's last.
  struct error_entry {
    uint64_t network_id = 0;
    int64_t steps = 0;
    std::string message;
    /// ISO 8601, UTC.
    std::string at;
  };

  /// Every recorded failure, in the order they happened.
  caf::expected<std::vector<error_entry>> errors() const;

  /// Records a checkpoint file written for a network, with the CRC-32 of its
  /// bytes (kept in the store itself when `path` is empty), and forgets all
  /// but the two latest; returns the paths of the checkpoint files that are
  /// no longer needed.
  caf::expected<std::vector<std::string>>
  add_checkpoint(uint64_t network_id, int64_t step, const std::string& path,
                 const std::vector<char>& bytes);

  /// A recorded checkpoint.
  struct checkpoint_entry {
    int64_t step = 0;
    /// Empty when its bytes are kept in the store.
    std::string path;
    uint32_t crc32 = 0;
    int64_t bytes = 0;
  };

  /// Forgets a network's checkpoints (it is done) but the one at
  /// `keep_step` (its final state, which a larger budget continues from);
  /// returns the paths of those forgotten.
  caf::expected<std::vector<std::string>>
  drop_checkpoints(uint64_t network_id, int64_t keep_step = -1);

  /// The recorded checkpoints of a network, newest first.
  caf::expected<std::vector<checkpoint_entry>>
  checkpoints(uint64_t network_id) const;

  /// A recorded checkpoint's bytes, checked against its size and CRC-32.
  caf::expected<std::vector<char>>
  checkpoint_bytes(uint64_t network_id, const checkpoint_entry& c) const;

  /// A network's newest intact checkpoint: its step and bytes.
  struct checkpoint_read {
    int64_t step = 0;
    std::vector<char> bytes;
  };

  /// The newest of a network's recorded checkpoints whose bytes are intact
  /// (a truncated or corrupt one falls back to the one before); none when
  /// it has none.
  caf::expected<std::optional<checkpoint_read>>
  latest_checkpoint(uint64_t network_id) const;

  /// Appends part of the schedule, in one transaction.
  caf::error add_grants(const std::vector<grant_record>& records);
  /// Appends decisions of the adaptive search, in one transaction.
  caf::error add_decisions(const std::vector<decision_record>& records);
  /// Records that the run reported a stall, and that the stall first
  /// reported at `said` ended at `time` (a quantum started or ended again):
  /// each of its reports since then, not ended yet, records it.
  caf::error add_stall(const stall_record& r);
  caf::error end_stall(double said, double time);
  /// Records that `bytes` of the run's data were sent to worker `node`
  /// (it lacked them; see docs/cluster.md).
  caf::error add_data_sent(const std::string& node, uint64_t bytes);
  caf::error end_run(const std::string& status, double wall_seconds);

  /// Reads every network, ensemble and the run's metadata.
  caf::expected<run_result> read() const;

  /// The recorded schedule, in grant order.
  caf::expected<std::vector<grant_record>> grants() const;

  /// The adaptive search's decisions, in the order they were taken (none
  /// for a run without one).
  caf::expected<std::vector<decision_record>> decisions() const;

  /// The stalls the run reported, oldest first (none for a store from
  /// before they were recorded).
  caf::expected<std::vector<stall_record>> stalls() const;

  /// How far the recorded schedule's clock got: the latest release,
  /// decision or stall report, in seconds; 0 for a run that recorded none. A
  /// resumed or continued run's scheduler starts its clock there, so that the
  /// attempts' grants follow each other instead of overlapping.
  caf::expected<double> schedule_seconds() const;

  /// Per-epoch metrics of one network, in epoch order.
  caf::expected<std::vector<epoch_metrics>> epochs(uint64_t network_id) const;

  /// Per-epoch metrics of every network, by network id, then epoch: one
  /// query for all (an export of 10^4 networks must not ask 10^4 times).
  caf::expected<std::vector<epoch_metrics>> all_epochs() const;

  /// The latest epoch's metrics of every network that has one, by id, in
  /// one query (a status display of 10^4 networks).
  caf::expected<std::vector<epoch_metrics>> latest_epochs() const;

  /// The epochs recorded after `cursor` (0: from the first), at most
  /// `limit`, in the order they were recorded (so each network's in epoch
  /// order); `cursor` moves past them. A live reader calls it again and gets
  /// each epoch once (an epoch recorded again after a resume comes again).
  caf::expected<std::vector<epoch_metrics>> epochs_after(int64_t& cursor,
                                                         size_t limit) const;

  /// Every configuration (group) of the run, by group id, as recorded:
  /// what a reopened session rebuilds its networks from. A configuration
  /// that cannot be read back is an error naming its group and key.
  caf::expected<std::vector<stored_configuration>> configurations() const;

  /// Records networks submitted to a live session: their configurations
  /// become groups `first_group`, `first_group + 1`, ... and the run counts
  /// them, in one transaction.
  caf::error add_networks(const std::vector<network_config>& configs,
                          int64_t first_group,
                          const std::vector<network_spec>& specs);

  const std::string& path() const noexcept {
    return path_;
  }

private:
  results_store(sqlite3* db, std::string path);
  caf::error exec(const std::string& sql);
  /// Runs `body` between BEGIN and COMMIT; rolls back when it fails.
  caf::error transaction(const std::function<caf::error()>& body);

  bool in_transaction_ = false;

  sqlite3* db_;
  std::string path_;
  /// Prepared statements of the per-quantum and per-network writes and
  /// reads, kept for the connection's life.
  std::unique_ptr<statement_cache> statements_;
  /// Opened to write: on close it leaves WAL mode, so that readers after
  /// the run find one file and leave no -wal / -shm beside it.
  bool writer_ = false;
};

} // namespace actortrain
