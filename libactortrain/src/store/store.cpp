#include "actortrain/store.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <utility>

#include <caf/config.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>
#include <torch/version.h>
#include <zlib.h>

#include "actortrain/error.hpp"
#include "actortrain/version.hpp"
#include "platform/blas_kernels.hpp"
#include "store/network_files.hpp"

namespace actortrain {

namespace {

constexpr const char* schema = R"sql(
CREATE TABLE run (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  name TEXT NOT NULL,
  experiment TEXT NOT NULL,
  experiment_path TEXT NOT NULL,
  task TEXT NOT NULL,
  experiment_hash TEXT NOT NULL,
  actortrain_version TEXT NOT NULL,
  libtorch_version TEXT NOT NULL,
  caf_version TEXT NOT NULL,
  blas TEXT NOT NULL DEFAULT '',
  networks INTEGER NOT NULL,
  resumes INTEGER NOT NULL DEFAULT 0,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  wall_seconds REAL,
  status TEXT NOT NULL
);
CREATE TABLE groups (
  id INTEGER PRIMARY KEY,
  label TEXT NOT NULL,
  config TEXT NOT NULL
);
CREATE TABLE networks (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  group_id INTEGER NOT NULL REFERENCES groups(id),
  index_in_group INTEGER NOT NULL,
  seed INTEGER NOT NULL,
  status TEXT NOT NULL,
  stop_reason TEXT,
  epochs INTEGER NOT NULL DEFAULT 0,
  steps INTEGER NOT NULL DEFAULT 0,
  weights TEXT
);
CREATE TABLE epoch_metrics (
  network_id INTEGER NOT NULL REFERENCES networks(id),
  epoch INTEGER NOT NULL,
  steps INTEGER NOT NULL,
  train_loss REAL,
  test_loss REAL,
  test_accuracy REAL,
  validation_loss REAL,
  validation_accuracy REAL,
  seconds REAL NOT NULL,
  PRIMARY KEY (network_id, epoch)
);
CREATE TABLE checkpoints (
  network_id INTEGER NOT NULL REFERENCES networks(id),
  step INTEGER NOT NULL,
  path TEXT NOT NULL,
  crc32 INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  at TEXT NOT NULL,
  PRIMARY KEY (network_id, step)
);
CREATE TABLE grants (
  network_id INTEGER NOT NULL REFERENCES networks(id),
  slot INTEGER NOT NULL,
  start REAL NOT NULL,
  end REAL NOT NULL,
  steps INTEGER NOT NULL,
  node TEXT NOT NULL DEFAULT '',
  moved_bytes INTEGER NOT NULL DEFAULT 0,
  device TEXT NOT NULL DEFAULT '',
  queued INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE final_metrics (
  network_id INTEGER PRIMARY KEY REFERENCES networks(id),
  train_loss REAL,
  test_loss REAL,
  test_accuracy REAL,
  seconds_per_step REAL,
  train_seconds REAL
);
CREATE TABLE errors (
  network_id INTEGER NOT NULL REFERENCES networks(id),
  epochs INTEGER NOT NULL,
  steps INTEGER NOT NULL,
  message TEXT NOT NULL,
  at TEXT NOT NULL
);
CREATE TABLE ensembles (
  group_id INTEGER PRIMARY KEY,
  label TEXT NOT NULL,
  networks INTEGER NOT NULL,
  accuracy REAL,
  loss REAL
);
)sql";

/// The tables added after the first release, also added to older stores
/// opened to resume: finished networks' files (their bytes in `stored_files`
/// when the run keeps them in the store, output.layout = "database"; the
/// same for checkpoints), and each ensemble's accuracy against its number of
/// members.
constexpr const char* files_table_sql = R"sql(CREATE TABLE IF NOT EXISTS files (
  network_id INTEGER NOT NULL REFERENCES networks(id),
  kind TEXT NOT NULL,
  path TEXT NOT NULL,
  crc32 INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (network_id, kind)
);
CREATE TABLE IF NOT EXISTS stored_files (
  network_id INTEGER NOT NULL REFERENCES networks(id),
  kind TEXT NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (network_id, kind)
);
CREATE TABLE IF NOT EXISTS stored_checkpoints (
  network_id INTEGER NOT NULL REFERENCES networks(id),
  step INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (network_id, step)
);
CREATE TABLE IF NOT EXISTS ensemble_curve (
  group_id INTEGER NOT NULL,
  members INTEGER NOT NULL,
  accuracy REAL,
  loss REAL,
  PRIMARY KEY (group_id, members)
);
CREATE TABLE IF NOT EXISTS decisions (
  time REAL NOT NULL,
  network_id INTEGER NOT NULL REFERENCES networks(id),
  epoch INTEGER NOT NULL,
  rung INTEGER NOT NULL,
  action TEXT NOT NULL,
  reason TEXT NOT NULL,
  donor INTEGER,
  old_hyperparameters TEXT,
  new_hyperparameters TEXT
);
CREATE TABLE IF NOT EXISTS kept_states (
  network_id INTEGER NOT NULL REFERENCES networks(id),
  epoch INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (network_id, epoch)
);
CREATE TABLE IF NOT EXISTS staleness (
  network_id INTEGER NOT NULL REFERENCES networks(id),
  staleness INTEGER NOT NULL,
  applied INTEGER NOT NULL,
  refused INTEGER NOT NULL,
  PRIMARY KEY (network_id, staleness)
);
CREATE TABLE IF NOT EXISTS data_sent (
  node TEXT NOT NULL,
  bytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS stalls (
  time REAL NOT NULL,
  quiet_seconds REAL NOT NULL,
  stopping INTEGER NOT NULL,
  report TEXT NOT NULL,
  ended REAL
);
CREATE TABLE IF NOT EXISTS continuations (
  at TEXT NOT NULL,
  from_hash TEXT NOT NULL,
  to_hash TEXT NOT NULL,
  description TEXT NOT NULL
);
)sql";

/// Whether `table` of `db` has `column` (stores written before PBT have
/// decisions without donors).
bool has_column(sqlite3* db, const char* table, const char* column) {
  auto sql = fmt::format("SELECT 1 FROM pragma_table_info('{}') WHERE name "
                         "= '{}'",
                         table, column);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
    return false;
  bool found = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return found;
}

/// Whether `db` has `table` (stores written by earlier versions lack the
/// newer ones: their readers answer with nothing).
bool has_table(sqlite3* db, const char* table) {
  auto sql = fmt::format("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                         "AND name = '{}'",
                         table);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
    return false;
  bool found = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return found;
}

/// Weights kept in the store pass through the write-ahead log: once folded
/// back into the database, a log that grew beyond this is cut back.
constexpr const char* journal_limit_sql = "PRAGMA journal_size_limit=67108864;";

/// The CRC-32 the store records for a file's bytes.
int64_t crc32_of(const std::vector<char>& bytes) {
  return static_cast<int64_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()),
            static_cast<uInt>(bytes.size())));
}

std::string now_iso() {
  auto t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

/// SQLite's message for the last failure on `db`, with the operating
/// system's reason where there is one ("disk I/O error" alone does not say
/// that the file system turned read-only).
std::string sqlite_message(sqlite3* db) {
  if (db == nullptr)
    return "out of memory";
  std::string msg = sqlite3_errmsg(db);
  auto code = sqlite3_extended_errcode(db);
  if ((code & 0xff) != SQLITE_IOERR)
    return msg;
  // SQLite keeps the OS's errno only now and then: name the operation.
  const char* what = code == SQLITE_IOERR_WRITE      ? "a write failed"
                     : code == SQLITE_IOERR_FSYNC    ? "a sync failed"
                     : code == SQLITE_IOERR_TRUNCATE ? "a truncate failed"
                     : code == SQLITE_IOERR_READ     ? "a read failed"
                                                     : nullptr;
  if (auto os = sqlite3_system_errno(db); os != 0)
    msg += fmt::format(" ({}{}{})", what ? what : "", what ? ": " : "",
                       std::strerror(os));
  else if (what != nullptr)
    msg += fmt::format(" ({}: is the file system full or read-only?)", what);
  return msg;
}

caf::error storage_error(sqlite3* db, const std::string& path,
                         const std::string& what) {
  return make_error(errc::storage_failed,
                    fmt::format("{}: {}: {}", path, what, sqlite_message(db)));
}

} // namespace

/// The prepared statements of one connection, kept by their SQL text for
/// the connection's life: the writes every quantum makes (epochs, grants,
/// checkpoints, outcomes) parse their SQL once per run instead of once per
/// call (parsing was most of the store's CPU in the coordinator).
class statement_cache {
public:
  explicit statement_cache(sqlite3* db) : db_(db) {}
  ~statement_cache() {
    for (auto& entry : idle_)
      sqlite3_finalize(entry.second);
  }
  statement_cache(const statement_cache&) = delete;
  statement_cache& operator=(const statement_cache&) = delete;

  /// The statement for `sql`, ready to bind; one in use (a statement whose
  /// rows are still being read while the same SQL runs again) is not
  /// shared: another is prepared. Null when SQLite cannot prepare it.
  sqlite3_stmt* take(const char* sql) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      auto i = idle_.find(std::string_view{sql});
      if (i == idle_.end())
        idle_.emplace(sql, nullptr);
      else if (i->second != nullptr)
        return std::exchange(i->second, nullptr);
    }
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt,
                           nullptr) != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return nullptr;
    }
    return stmt;
  }

  /// Takes `stmt` back, reset (a statement left mid-way would hold its read
  /// transaction open and keep WAL checkpoints from finishing).
  void give_back(const char* sql, sqlite3_stmt* stmt) {
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    std::lock_guard<std::mutex> guard{mtx_};
    auto& idle = idle_.find(std::string_view{sql})->second;
    if (idle == nullptr)
      idle = stmt;
    else // a second one, prepared while the first was in use
      sqlite3_finalize(stmt);
  }

private:
  sqlite3* db_;
  std::mutex mtx_;
  /// Every SQL text taken so far, with its statement while none uses it
  /// (null while one does): no allocation once a run's statements are in.
  std::map<std::string, sqlite3_stmt*, std::less<>> idle_;
};

namespace {

/// A prepared statement with positional binding: its own (finalized at the
/// end of its scope) or one of a connection's cache (given back there).
class statement {
public:
  statement(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
      sqlite3_finalize(stmt_);
      stmt_ = nullptr;
    }
  }
  statement(statement_cache& cache, const char* sql)
      : stmt_(cache.take(sql)), cache_(&cache), sql_(sql) {}
  ~statement() {
    if (cache_ != nullptr && stmt_ != nullptr)
      cache_->give_back(sql_, stmt_);
    else
      sqlite3_finalize(stmt_);
  }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;

  explicit operator bool() const {
    return stmt_ != nullptr;
  }

  template <class... Ts> statement& bind(const Ts&... xs) {
    int i = 0;
    (bind_one(++i, xs), ...);
    return *this;
  }

  /// Makes the statement ready to bind and run again.
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  /// Steps once; returns SQLITE_ROW, SQLITE_DONE or an error code.
  int step() {
    return sqlite3_step(stmt_);
  }

  int64_t integer(int col) const {
    return sqlite3_column_int64(stmt_, col);
  }
  double real(int col) const {
    if (sqlite3_column_type(stmt_, col) == SQLITE_NULL)
      return no_metric;
    return sqlite3_column_double(stmt_, col);
  }
  std::string text(int col) const {
    auto* p = sqlite3_column_text(stmt_, col);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  std::vector<char> blob(int col) const {
    auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
    auto n = sqlite3_column_bytes(stmt_, col);
    return p ? std::vector<char>(p, p + n) : std::vector<char>{};
  }

private:
  void bind_one(int i, int64_t x) {
    sqlite3_bind_int64(stmt_, i, x);
  }
  void bind_one(int i, int x) {
    sqlite3_bind_int64(stmt_, i, x);
  }
  void bind_one(int i, uint64_t x) {
    // SQLite integers are signed 64-bit: store the bit pattern.
    sqlite3_bind_int64(stmt_, i, static_cast<int64_t>(x));
  }
  void bind_one(int i, double x) {
    if (std::isnan(x))
      sqlite3_bind_null(stmt_, i);
    else
      sqlite3_bind_double(stmt_, i, x);
  }
  void bind_one(int i, const std::string& x) {
    sqlite3_bind_text(stmt_, i, x.data(), static_cast<int>(x.size()),
                      SQLITE_TRANSIENT);
  }
  void bind_one(int i, const char* x) {
    sqlite3_bind_text(stmt_, i, x, -1, SQLITE_TRANSIENT);
  }
  void bind_one(int i, const std::vector<char>& x) {
    // Bound without a copy: the bytes outlive the statement's step.
    sqlite3_bind_blob64(stmt_, i, x.data(), x.size(), SQLITE_STATIC);
  }

  sqlite3_stmt* stmt_ = nullptr;
  statement_cache* cache_ = nullptr;
  const char* sql_ = nullptr;
};

/// Every key of a section (option_keys.hpp), enums by their TOML names.
template <class Section> nlohmann::json section_json(const Section& x) {
  auto out = nlohmann::json::object();
  keys::for_each_row<Section>([&](const auto& row) {
    const auto& v = x.*(row.member);
    if constexpr (is_choice<std::decay_t<decltype(v)>>::value)
      out[row.name] = name_of(v);
    else
      out[row.name] = v;
  });
  return out;
}

nlohmann::json config_json(const network_config& c) {
  return {{"model", section_json(c.model)},
          {"optimizer", section_json(c.optimizer)},
          {"train", section_json(c.train)}};
}

/// The inverse of section_json: every key of a section from `j`. Keys
/// missing from `j` (a store written before the key existed) keep their
/// defaults; a value of the wrong type or an unknown choice is an error
/// naming the key.
template <class Section>
std::string section_from_json(const nlohmann::json& j, Section& x) {
  std::string problem;
  keys::for_each_row<Section>([&](const auto& row) {
    if (!problem.empty() || !j.contains(row.name))
      return;
    auto& v = x.*(row.member);
    using T = std::decay_t<decltype(v)>;
    try {
      if constexpr (is_choice<T>::value) {
        auto parsed =
            parse_choice<T>(j.at(row.name).template get<std::string>());
        if (!parsed)
          throw std::invalid_argument("unknown value");
        v = *parsed;
      } else {
        v = j.at(row.name).template get<T>();
      }
    } catch (const std::exception&) {
      problem = fmt::format("{}.{} = {}", keys::section<Section>::name,
                            row.name, j.at(row.name).dump());
    }
  });
  return problem;
}

/// A configuration as config_json wrote it; "" in `problem` when it reads.
network_config config_of_json(const std::string& text, std::string& problem) {
  network_config c;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    problem = "not a JSON object";
    return c;
  }
  auto section = [&](const char* name, auto& x) {
    if (problem.empty())
      problem = section_from_json(j.value(name, nlohmann::json::object()), x);
  };
  section("model", c.model);
  section("optimizer", c.optimizer);
  section("train", c.train);
  return c;
}

} // namespace

results_store::results_store(sqlite3* db, std::string path)
    : db_(db), path_(std::move(path)),
      statements_(std::make_unique<statement_cache>(db)) {}

results_store::~results_store() {
  statements_.reset(); // finalized before their connection closes
  if (writer_) {
    // Only when no other connection reads (then it fails at once, and the
    // store stays in WAL mode, as it is during a run).
    sqlite3_busy_timeout(db_, 0);
    sqlite3_exec(db_, "PRAGMA journal_mode=DELETE", nullptr, nullptr, nullptr);
  }
  sqlite3_close(db_);
}

caf::expected<std::unique_ptr<results_store>>
results_store::create(const std::string& path) {
  sqlite3* db = nullptr;
  auto flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    auto err = storage_error(db, path, "cannot create the results store");
    sqlite3_close(db);
    return err;
  }
  std::unique_ptr<results_store> store{new results_store(db, path)};
  sqlite3_busy_timeout(db, 5000);
  {
    statement probe{db, "SELECT count(*) FROM sqlite_master"};
    if (!probe || probe.step() != SQLITE_ROW)
      return storage_error(db, path, "not a SQLite database");
    if (probe.integer(0) > 0)
      return make_error(errc::storage_failed,
                        fmt::format("{}: already holds a run", path));
  }
  // WAL keeps readers (e.g. `actortrain results` during a run) from blocking
  // the aggregator; NORMAL sync is durable across process crashes in WAL.
  if (auto err = store->exec(std::string{"PRAGMA journal_mode=WAL; PRAGMA "
                                         "synchronous=NORMAL; PRAGMA "
                                         "foreign_keys=ON; "} +
                             journal_limit_sql))
    return err;
  if (auto err = store->exec(std::string{"BEGIN;"} + schema + files_table_sql +
                             "COMMIT;"))
    return err;
  store->writer_ = true;
  return store;
}

namespace {

/// `path` as an SQLite URI that opens it immutable: for a store in a folder
/// this process cannot write, where SQLite cannot create the shared-memory
/// file a WAL database needs even to be read.
std::string immutable_uri(const std::string& path) {
  std::string uri = "file:";
  for (unsigned char c : path) {
    if (c == '%' || c == '?' || c == '#' || c < 0x20)
      uri += fmt::format("%{:02X}", c);
    else
      uri += static_cast<char>(c);
  }
  return uri + "?immutable=1";
}

} // namespace

bool results_store::holds_no_run(const std::string& path) {
  std::error_code ec;
  auto size = [&](const std::string& p) {
    auto n = std::filesystem::file_size(p, ec);
    return ec ? 0 : n;
  };
  if (size(path) == 0 && size(path + "-wal") == 0)
    return true;
  sqlite3* db = nullptr;
  // Read-write (the caller holds the folder): a write-ahead log left by a
  // crash is replayed first, so what it committed counts.
  bool empty = false;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) ==
      SQLITE_OK) {
    sqlite3_busy_timeout(db, 5000);
    statement tables{db, "SELECT count(*) FROM sqlite_master WHERE name = "
                         "'run'"};
    if (tables && tables.step() == SQLITE_ROW) {
      empty = tables.integer(0) == 0;
      if (!empty) {
        statement runs{db, "SELECT count(*) FROM run"};
        empty = runs && runs.step() == SQLITE_ROW && runs.integer(0) == 0;
      }
    }
  }
  sqlite3_close(db);
  return empty;
}

caf::expected<std::unique_ptr<results_store>>
results_store::open(const std::string& path, bool writable) {
  sqlite3* db = nullptr;
  auto flags = writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    auto err = storage_error(db, path, "cannot open the results store");
    sqlite3_close(db);
    return err;
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<results_store> store{new results_store(db, path)};
  int failure = SQLITE_OK;
  auto readable = [&failure](sqlite3* db) {
    statement probe{db, "SELECT count(*) FROM run"};
    if (probe && probe.step() == SQLITE_ROW)
      return true;
    failure = sqlite3_errcode(db) & 0xff;
    return false;
  };
  if (!readable(db) && !writable && failure == SQLITE_READONLY) {
    store.reset();
    db = nullptr;
    if (sqlite3_open_v2(immutable_uri(path).c_str(), &db,
                        SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
                        nullptr) != SQLITE_OK) {
      auto err = storage_error(db, path, "cannot open the results store");
      sqlite3_close(db);
      return err;
    }
    store.reset(new results_store(db, path));
  }
  if (!readable(db))
    return storage_error(db, path, "not an actortrain results store");
  // Stores written before finished networks' files were checksummed.
  if (writable) {
    if (auto err = store->exec(std::string{"PRAGMA journal_mode=WAL; "} +
                               files_table_sql + journal_limit_sql))
      return err;
    if (!has_column(db, "grants", "node"))
      if (auto err = store->exec(
              "ALTER TABLE grants ADD COLUMN node TEXT NOT NULL DEFAULT ''; "
              "ALTER TABLE grants ADD COLUMN moved_bytes INTEGER NOT NULL "
              "DEFAULT 0;"))
        return err;
    if (!has_column(db, "grants", "device"))
      if (auto err = store->exec(
              "ALTER TABLE grants ADD COLUMN device TEXT NOT NULL DEFAULT '';"))
        return err;
    if (!has_column(db, "grants", "queued"))
      if (auto err = store->exec("ALTER TABLE grants ADD COLUMN queued "
                                 "INTEGER NOT NULL DEFAULT 0;"))
        return err;
    if (!has_column(db, "run", "blas"))
      if (auto err = store->exec(
              "ALTER TABLE run ADD COLUMN blas TEXT NOT NULL DEFAULT '';"))
        return err;
    if (!has_column(db, "decisions", "donor"))
      if (auto err = store->exec(
              "ALTER TABLE decisions ADD COLUMN donor INTEGER; ALTER TABLE "
              "decisions ADD COLUMN old_hyperparameters TEXT; ALTER TABLE "
              "decisions ADD COLUMN new_hyperparameters TEXT;"))
        return err;
    store->writer_ = true;
  }
  return store;
}

caf::error results_store::exec(const std::string& sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &msg) != SQLITE_OK) {
    sqlite3_free(msg);
    auto text = sqlite_message(db_);
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return make_error(errc::storage_failed, fmt::format("{}: {}", path_, text));
  }
  return {};
}

caf::error results_store::transaction(const std::function<caf::error()>& body) {
  // Inside a batch, a change joins the batch's transaction.
  if (in_transaction_)
    return body();
  if (statement begin{*statements_, "BEGIN"}; begin.step() != SQLITE_DONE)
    return storage_error(db_, path_, "cannot begin a transaction");
  in_transaction_ = true;
  auto err = body();
  in_transaction_ = false;
  if (err) {
    exec("ROLLBACK");
    return err;
  }
  if (statement commit{*statements_, "COMMIT"}; commit.step() != SQLITE_DONE) {
    auto failed = storage_error(db_, path_, "cannot commit");
    exec("ROLLBACK");
    return failed;
  }
  return {};
}

caf::error results_store::batch(const std::function<caf::error()>& body) {
  return transaction(body);
}

namespace {

/// Records configurations as groups `first_group`, ... and their networks
/// as pending.
caf::error insert_networks(sqlite3* db, const std::string& path,
                           const std::vector<network_config>& configs,
                           int64_t first_group,
                           const std::vector<network_spec>& specs) {
  statement groups{db, "INSERT INTO groups (id, label, config) VALUES (?, "
                       "?, ?)"};
  for (size_t g = 0; g < configs.size(); ++g) {
    groups.bind(first_group + static_cast<int64_t>(g), configs[g].label,
                config_json(configs[g]).dump());
    if (groups.step() != SQLITE_DONE)
      return storage_error(db, path, "cannot record a configuration");
    groups.reset();
  }
  statement st{db, "INSERT INTO networks (id, name, group_id, "
                   "index_in_group, seed, status) VALUES (?, ?, ?, ?, ?, "
                   "'pending')"};
  for (const auto& spec : specs) {
    st.bind(static_cast<int64_t>(spec.id), spec.name, spec.group,
            spec.index_in_group, spec.seed);
    if (st.step() != SQLITE_DONE)
      return storage_error(db, path, "cannot record a network");
    st.reset();
  }
  return {};
}

} // namespace

caf::error results_store::begin_run(const experiment& exp,
                                    const std::vector<network_spec>& specs,
                                    task_kind task, const std::string& hash) {
  return transaction([&]() -> caf::error {
    {
      statement st{*statements_,
                   "INSERT INTO run (id, name, experiment, "
                   "experiment_path, task, experiment_hash, "
                   "actortrain_version, libtorch_version, caf_version, "
                   "blas, networks, started_at, status) VALUES (1, ?, ?, "
                   "?, ?, ?, ?, ?, ?, ?, ?, ?, 'running')"};
      st.bind(exp.name, exp.source_text, exp.source_path, name_of(task),
              hash.empty() ? fingerprint(exp) : hash, std::string{version()},
              std::string{TORCH_VERSION},
              fmt::format("{}.{}.{}", CAF_MAJOR_VERSION, CAF_MINOR_VERSION,
                          CAF_PATCH_VERSION),
              blas_description(), static_cast<int64_t>(specs.size()),
              now_iso());
      if (st.step() != SQLITE_DONE)
        return storage_error(db_, path_, "cannot record the run");
    }
    // A live session's run starts with no networks: its configurations
    // come with them (add_networks).
    if (specs.empty())
      return {};
    return insert_networks(db_, path_, exp.configs(), 0, specs);
  });
}

caf::error results_store::add_epochs(const std::vector<epoch_metrics>& ms) {
  return transaction([&]() -> caf::error {
    statement st{*statements_,
                 "INSERT OR REPLACE INTO epoch_metrics (network_id, "
                 "epoch, steps, train_loss, test_loss, test_accuracy, "
                 "validation_loss, validation_accuracy, seconds) VALUES "
                 "(?, ?, ?, ?, ?, ?, ?, ?, ?)"};
    for (const auto& m : ms) {
      st.bind(m.network_id, m.epoch, m.steps, m.train_loss, m.test_loss,
              m.test_accuracy, m.validation_loss, m.validation_accuracy,
              m.seconds);
      if (st.step() != SQLITE_DONE)
        return storage_error(db_, path_, "cannot record epoch metrics");
      st.reset();
    }
    return {};
  });
}

caf::error results_store::add_outcome(const network_outcome& o,
                                      const std::string& weights_path) {
  return transaction([&]() -> caf::error {
    statement st{*statements_,
                 "UPDATE networks SET status = ?, stop_reason = ?, "
                 "epochs = ?, steps = ?, weights = ? WHERE id = ?"};
    st.bind(to_string(o.status), to_string(o.stop_reason), o.epochs, o.steps,
            weights_path, o.network_id);
    if (st.step() != SQLITE_DONE)
      return storage_error(db_, path_, "cannot record a network's status");
    if (o.status == network_status::finished) {
      statement fin{*statements_,
                    "INSERT OR REPLACE INTO final_metrics (network_id, "
                    "train_loss, test_loss, test_accuracy, "
                    "seconds_per_step, train_seconds) VALUES (?, ?, ?, "
                    "?, ?, ?)"};
      fin.bind(o.network_id, o.train_loss, o.test_loss, o.test_accuracy,
               o.seconds_per_step, o.train_seconds);
      if (fin.step() != SQLITE_DONE)
        return storage_error(db_, path_, "cannot record final metrics");
    } else {
      statement err{*statements_,
                    "INSERT INTO errors (network_id, epochs, steps, "
                    "message, at) VALUES (?, ?, ?, ?, ?)"};
      err.bind(o.network_id, o.epochs, o.steps, o.error, now_iso());
      if (err.step() != SQLITE_DONE)
        return storage_error(db_, path_, "cannot record an error");
    }
    return {};
  });
}

std::string to_string(file_kind x) {
  return x == file_kind::weights ? "weights" : "predictions";
}

std::optional<file_kind> parse_file_kind(const std::string& text) {
  for (auto k : {file_kind::weights, file_kind::predictions})
    if (to_string(k) == text)
      return k;
  return std::nullopt;
}

caf::error results_store::add_file(uint64_t network_id, file_kind kind,
                                   const std::string& path,
                                   const std::vector<char>& bytes) {
  return transaction([&]() -> caf::error {
    auto crc = crc32_of(bytes);
    statement st{*statements_,
                 "INSERT OR REPLACE INTO files (network_id, kind, path, "
                 "crc32, bytes) VALUES (?, ?, ?, ?, ?)"};
    st.bind(network_id, to_string(kind), path, crc,
            static_cast<int64_t>(bytes.size()));
    if (st.step() != SQLITE_DONE)
      return storage_error(db_, path_, "cannot record a network's file");
    // Written to a file, its bytes must not linger here from an earlier
    // attempt that kept them in the store.
    statement data{*statements_,
                   path.empty()
                       ? "INSERT OR REPLACE INTO stored_files "
                         "(network_id, kind, data) VALUES (?, ?, ?)"
                       : "DELETE FROM stored_files WHERE network_id = ? "
                         "AND kind = ?"};
    if (path.empty())
      data.bind(network_id, to_string(kind), bytes);
    else
      data.bind(network_id, to_string(kind));
    if (data.step() != SQLITE_DONE)
      return storage_error(db_, path_, "cannot store a network's file");
    return {};
  });
}

caf::expected<std::vector<results_store::file_entry>>
results_store::files(uint64_t network_id) const {
  statement st{*statements_, "SELECT kind, path, crc32, bytes FROM files WHERE "
                             "network_id = ? ORDER BY kind"};
  if (!st)
    return storage_error(db_, path_, "cannot read a network's files");
  st.bind(network_id);
  std::vector<file_entry> result;
  while (st.step() == SQLITE_ROW) {
    auto kind = parse_file_kind(st.text(0));
    if (!kind)
      return make_error(errc::storage_failed,
                        fmt::format("{}: network {} has a file of unknown "
                                    "kind '{}'",
                                    path_, network_id, st.text(0)));
    result.push_back({*kind, st.text(1), static_cast<uint32_t>(st.integer(2)),
                      st.integer(3)});
  }
  return result;
}

namespace {

/// `bytes` when they have the size and CRC-32 recorded for them, else an
/// error that says what `where` lost.
caf::expected<std::vector<char>> checked(std::vector<char> bytes, int64_t size,
                                         uint32_t crc,
                                         const std::string& where) {
  if (static_cast<int64_t>(bytes.size()) != size)
    return make_error(errc::storage_failed,
                      fmt::format("{} has {} bytes where {} were written",
                                  where, bytes.size(), size));
  if (static_cast<uint32_t>(crc32_of(bytes)) != crc)
    return make_error(errc::storage_failed,
                      fmt::format("{} is damaged (its CRC-32 is not the one "
                                  "recorded)",
                                  where));
  return bytes;
}

/// The bytes of the file at `path`; an error naming it when it is missing.
caf::expected<std::vector<char>> read_whole_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return make_error(errc::storage_failed, fmt::format("{} is missing", path));
  std::vector<char> bytes{std::istreambuf_iterator<char>{in}, {}};
  if (in.bad())
    return make_error(errc::storage_failed,
                      fmt::format("{} cannot be read", path));
  return bytes;
}

} // namespace

std::string results_store::folder() const {
  auto slash = path_.find_last_of('/');
  return slash == std::string::npos ? "." : path_.substr(0, slash);
}

caf::expected<std::vector<char>>
results_store::file_bytes(uint64_t network_id, file_kind kind) const {
  auto entries = files(network_id);
  if (!entries)
    return entries.error();
  statement name{*statements_,
                 "SELECT name, status FROM networks WHERE id = ?"};
  name.bind(network_id);
  if (name.step() != SQLITE_ROW)
    return make_error(errc::storage_failed,
                      fmt::format("{}: no network {}", path_, network_id));
  auto network = name.text(0);
  auto entry = std::find_if(entries->begin(), entries->end(),
                            [&](const auto& e) { return e.kind == kind; });
  if (entry == entries->end()) {
    if (name.text(1) != "finished")
      return make_error(errc::storage_failed,
                        fmt::format("{}: {} has no {}: it did not finish",
                                    path_, network, to_string(kind)));
    // Finished before files were recorded: where such runs left them.
    return read_whole_file(network_file_path(folder(), network, kind));
  }
  if (!entry->path.empty()) {
    auto bytes = read_whole_file(entry->path);
    if (!bytes)
      return bytes.error();
    return checked(std::move(*bytes), entry->bytes, entry->crc32, entry->path);
  }
  auto where =
      fmt::format("the {} of {} in {}", to_string(kind), network, path_);
  statement st{*statements_,
               "SELECT data FROM stored_files WHERE network_id = ? AND "
               "kind = ?"};
  st.bind(network_id, to_string(kind));
  if (st.step() != SQLITE_ROW)
    return make_error(errc::storage_failed,
                      fmt::format("{} are missing", where));
  return checked(st.blob(0), entry->bytes, entry->crc32, where);
}

caf::error results_store::reopen_network(uint64_t network_id,
                                         bool keep_history) {
  return transaction([&]() -> caf::error {
    std::vector<const char*> sqls{
        "DELETE FROM files WHERE network_id = ?",
        "DELETE FROM stored_files WHERE network_id = ?",
        "DELETE FROM final_metrics WHERE network_id = ?",
        "UPDATE networks SET status = 'pending', stop_reason = NULL, "
        "weights = NULL WHERE id = ?"};
    if (!keep_history) {
      sqls.push_back("DELETE FROM epoch_metrics WHERE network_id = ?");
      sqls.push_back("UPDATE networks SET epochs = 0, steps = 0 WHERE id = ?");
    }
    for (const char* sql : sqls) {
      statement st{*statements_, sql};
      st.bind(network_id);
      if (st.step() != SQLITE_DONE)
        return storage_error(db_, path_, "cannot reopen a network");
    }
    return {};
  });
}

caf::error results_store::add_ensemble(const ensemble_result& e) {
  statement st{*statements_,
               "INSERT OR REPLACE INTO ensembles (group_id, label, "
               "networks, accuracy, loss) VALUES (?, ?, ?, ?, ?)"};
  st.bind(e.group, e.label, e.networks, e.accuracy, e.loss);
  if (st.step() != SQLITE_DONE)
    return storage_error(db_, path_, "cannot record an ensemble");
  return {};
}

caf::error
results_store::add_ensemble_curve(const std::vector<ensemble_point>& points) {
  return transaction([&]() -> caf::error {
    statement st{*statements_,
                 "INSERT OR REPLACE INTO ensemble_curve (group_id, "
                 "members, accuracy, loss) VALUES (?, ?, ?, ?)"};
    for (const auto& p : points) {
      st.bind(p.group, p.members, p.accuracy, p.loss);
      if (st.step() != SQLITE_DONE)
        return storage_error(db_, path_, "cannot record an ensemble curve");
      st.reset();
    }
    return {};
  });
}

caf::expected<std::vector<ensemble_point>>
results_store::ensemble_curve() const {
  std::vector<ensemble_point> result;
  // A store from before the curve was recorded has no table: no points.
  statement probe{db_, "SELECT count(*) FROM sqlite_master WHERE name = "
                       "'ensemble_curve'"};
  if (!probe || probe.step() != SQLITE_ROW)
    return storage_error(db_, path_, "cannot read the ensemble curve");
  if (probe.integer(0) == 0)
    return result;
  statement st{db_, "SELECT group_id, members, accuracy, loss FROM "
                    "ensemble_curve ORDER BY group_id, members"};
  if (!st)
    return storage_error(db_, path_, "cannot read the ensemble curve");
  while (st.step() == SQLITE_ROW)
    result.push_back({st.integer(0), st.integer(1), st.real(2), st.real(3)});
  return result;
}

caf::expected<std::vector<results_store::error_entry>>
results_store::errors() const {
  statement st{db_, "SELECT network_id, steps, message, at FROM errors "
                    "ORDER BY rowid"};
  if (!st)
    return storage_error(db_, path_, "cannot read the errors");
  std::vector<error_entry> result;
  while (st.step() == SQLITE_ROW)
    result.push_back({static_cast<uint64_t>(st.integer(0)), st.integer(1),
                      st.text(2), st.text(3)});
  return result;
}

caf::expected<results_store::provenance_entry>
results_store::provenance() const {
  // A store from before the BLAS was recorded, opened read-only, has no
  // column for it.
  auto blas = has_column(db_, "run", "blas") ? "blas" : "''";
  auto sql = fmt::format("SELECT experiment, experiment_path, "
                         "experiment_hash, actortrain_version, "
                         "libtorch_version, caf_version, started_at, "
                         "coalesce(finished_at, ''), {} FROM run WHERE id = 1",
                         blas);
  statement st{db_, sql.c_str()};
  if (!st || st.step() != SQLITE_ROW)
    return storage_error(db_, path_, "holds no run");
  return provenance_entry{st.text(0), st.text(1), st.text(2),
                          st.text(3), st.text(4), st.text(5),
                          st.text(6), st.text(7), st.text(8)};
}

caf::expected<std::string> results_store::experiment_hash() const {
  statement st{db_, "SELECT experiment_hash FROM run WHERE id = 1"};
  if (!st || st.step() != SQLITE_ROW)
    return storage_error(db_, path_, "holds no run");
  return st.text(0);
}

caf::error
results_store::record_continuation(const std::string& new_hash,
                                   const std::string& description,
                                   const std::vector<network_config>& configs) {
  return transaction([&]() -> caf::error {
    statement group{*statements_, "UPDATE groups SET config = ? WHERE id = ?"};
    for (size_t g = 0; g < configs.size(); ++g) {
      group.bind(config_json(configs[g]).dump(), static_cast<int64_t>(g));
      if (group.step() != SQLITE_DONE)
        return storage_error(db_, path_, "cannot record a continuation");
      group.reset();
    }
    statement ins{*statements_,
                  "INSERT INTO continuations (at, from_hash, to_hash, "
                  "description) SELECT ?, experiment_hash, ?, ? FROM run "
                  "WHERE id = 1"};
    ins.bind(now_iso(), new_hash, description);
    if (ins.step() != SQLITE_DONE)
      return storage_error(db_, path_, "cannot record a continuation");
    statement up{*statements_,
                 "UPDATE run SET experiment_hash = ? WHERE id = 1"};
    up.bind(new_hash);
    if (up.step() != SQLITE_DONE)
      return storage_error(db_, path_, "cannot record a continuation");
    return {};
  });
}

caf::expected<std::vector<std::string>> results_store::continuations() const {
  std::vector<std::string> result;
  if (!has_table(db_, "continuations"))
    return result;
  statement st{db_, "SELECT at, description FROM continuations ORDER BY "
                    "rowid"};
  if (!st)
    return storage_error(db_, path_, "cannot read the continuations");
  while (st.step() == SQLITE_ROW)
    result.push_back(fmt::format("{}: {}", st.text(0), st.text(1)));
  return result;
}

caf::expected<std::string> results_store::record_blas(const std::string& now) {
  constexpr std::string_view then = "; then ";
  auto prov = provenance();
  if (!prov)
    return prov.error();
  auto last = prov->blas.rfind(then);
  auto before = last == std::string::npos
                    ? prov->blas
                    : prov->blas.substr(last + then.size());
  if (before.empty() || now.empty() || before == now)
    return std::string{};
  statement st{*statements_,
               "UPDATE run SET blas = blas || ? || ? WHERE id = 1"};
  st.bind(std::string{then}, now);
  if (st.step() != SQLITE_DONE)
    return storage_error(db_, path_, "cannot record the BLAS");
  return before;
}

caf::error results_store::mark_resumed() {
  return exec("PRAGMA foreign_keys=ON; UPDATE run SET status = 'running', "
              "finished_at = NULL, resumes = resumes + 1 WHERE id = 1");
}

caf::error results_store::end_run(const std::string& status,
                                  double wall_seconds) {
  statement st{*statements_, "UPDATE run SET status = ?, finished_at = ?, "
                             "wall_seconds = ? WHERE id = 1"};
  st.bind(status, now_iso(), wall_seconds);
  if (st.step() != SQLITE_DONE)
    return storage_error(db_, path_, "cannot close the run");
  // Fold the WAL back into the main file so the database is one file again.
  sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr,
                            nullptr);
  return {};
}

namespace {

/// The run's row: name, task, wall time, status, resumes; and how many of
/// the resumes continued it to a larger budget.
caf::error read_run_row(sqlite3* db_, const std::string& path_,
                        run_result& result) {
  statement st{db_, "SELECT name, task, wall_seconds, status, resumes FROM "
                    "run WHERE id = 1"};
  if (!st || st.step() != SQLITE_ROW)
    return storage_error(db_, path_, "holds no run");
  result.name = st.text(0);
  auto task = parse_choice<task_kind>(st.text(1));
  if (!task)
    return make_error(
        errc::invalid_data,
        fmt::format("{}: the run has an unknown task '{}'", path_, st.text(1)));
  result.task = *task;
  auto wall = st.real(2);
  result.wall_seconds = std::isnan(wall) ? 0 : wall;
  result.status = st.text(3);
  result.resumes = st.integer(4);
  if (!has_table(db_, "continuations"))
    return {};
  statement count{db_, "SELECT count(*) FROM continuations"};
  if (!count || count.step() != SQLITE_ROW)
    return storage_error(db_, path_, "cannot read the continuations");
  result.continuations = count.integer(0);
  return {};
}

std::optional<network_status> parse_network_status(const std::string& text) {
  for (auto x : {network_status::pending, network_status::finished,
                 network_status::failed, network_status::cancelled})
    if (text == to_string(x))
      return x;
  return std::nullopt;
}

/// Every network with its final metrics, last error and stop reason.
caf::error read_networks(sqlite3* db_, const std::string& path_,
                         run_result& result) {
  statement st{
      db_, "SELECT n.id, n.name, n.group_id, g.label, n.seed, n.status, "
           "n.epochs, n.steps, f.train_loss, f.test_loss, "
           "f.test_accuracy, f.seconds_per_step, f.train_seconds, "
           "n.weights, (SELECT message FROM errors e WHERE "
           "e.network_id = n.id ORDER BY rowid DESC LIMIT 1), "
           "n.stop_reason FROM networks n JOIN groups g ON g.id = n.group_id "
           "LEFT JOIN final_metrics f ON f.network_id = n.id "
           "ORDER BY n.id"};
  if (!st)
    return storage_error(db_, path_, "cannot read networks");
  int rc = 0;
  while ((rc = st.step()) == SQLITE_ROW) {
    network_result n;
    n.id = static_cast<uint64_t>(st.integer(0));
    n.name = st.text(1);
    n.group = st.integer(2);
    n.group_label = st.text(3);
    n.seed = static_cast<uint64_t>(st.integer(4));
    auto status = parse_network_status(st.text(5));
    if (!status)
      return make_error(errc::invalid_data,
                        fmt::format("{}: network {} has an unknown status "
                                    "'{}'",
                                    path_, n.id, st.text(5)));
    n.status = *status;
    n.epochs = st.integer(6);
    n.steps = st.integer(7);
    n.train_loss = st.real(8);
    n.test_loss = st.real(9);
    n.test_accuracy = st.real(10);
    auto sps = st.real(11);
    n.seconds_per_step = std::isnan(sps) ? 0 : sps;
    auto ts = st.real(12);
    n.train_seconds = std::isnan(ts) ? 0 : ts;
    n.weights_path = st.text(13);
    // Finished with no path: its weights are rows of this store.
    n.weights_in_store =
        n.status == network_status::finished && n.weights_path.empty();
    n.error = st.text(14);
    auto reason = parse_stop_reason(st.text(15));
    if (!reason)
      return make_error(errc::invalid_data,
                        fmt::format("{}: network {} has an unknown stop "
                                    "reason '{}'",
                                    path_, n.id, st.text(15)));
    n.stop_reason = *reason;
    result.networks.push_back(std::move(n));
  }
  if (rc != SQLITE_DONE)
    return storage_error(db_, path_, "cannot read networks");
  return {};
}

/// Each slot's grants and busy time, from the recorded schedule.
caf::error read_slot_usage(sqlite3* db_, const std::string& path_,
                           run_result& result) {
  // Stores of earlier versions, read without writing, lack the columns.
  auto column = [&](const char* name) {
    return has_column(db_, "grants", name) ? fmt::format("max({})", name)
                                           : std::string{"''"};
  };
  auto sql = fmt::format("SELECT slot, count(*), sum(end - start), "
                         "min(start), max(end), {}, {} FROM grants GROUP BY "
                         "slot ORDER BY slot",
                         column("device"), column("node"));
  statement st{db_, sql.c_str()};
  if (!st)
    return storage_error(db_, path_, "cannot read the schedule");
  double first = 0;
  double last = 0;
  while (st.step() == SQLITE_ROW) {
    slot_usage u;
    u.slot = static_cast<uint32_t>(st.integer(0));
    u.grants = st.integer(1);
    u.busy_seconds = st.real(2);
    first = result.slots.empty() ? st.real(3) : std::min(first, st.real(3));
    last = std::max(last, st.real(4));
    u.device = st.text(5);
    u.node = st.text(6);
    result.slots.push_back(u);
  }
  // Busy fractions share one span: from the first grant to the last release
  // on any slot.
  for (auto& u : result.slots)
    u.busy_fraction = last > first ? u.busy_seconds / (last - first) : 0;
  // By node: a run with worker nodes only (every grant here names none).
  // Stores of earlier versions, read without writing, have no nodes.
  if (!has_column(db_, "grants", "node") || !has_table(db_, "data_sent"))
    return {};
  auto by_node = fmt::format(
      "SELECT g.node, count(DISTINCT g.slot), count(*), sum(g.end - "
      "g.start), sum(g.moved_bytes > 0), sum(g.moved_bytes), (SELECT "
      "coalesce(sum(d.bytes), 0) FROM data_sent d WHERE d.node = g.node), "
      "{} FROM grants g GROUP BY g.node HAVING (SELECT count(*) FROM grants "
      "WHERE node != '') > 0 ORDER BY g.node",
      has_column(db_, "grants", "queued") ? "sum(g.queued)" : "0");
  statement nodes{db_, by_node.c_str()};
  if (!nodes)
    return storage_error(db_, path_, "cannot read the schedule");
  while (nodes.step() == SQLITE_ROW) {
    node_usage n;
    n.node = nodes.text(0);
    n.slots = nodes.integer(1);
    n.grants = nodes.integer(2);
    n.busy_seconds = nodes.real(3);
    n.moves_in = nodes.integer(4);
    n.moved_bytes_in = nodes.integer(5);
    n.data_bytes_in = nodes.integer(6);
    n.queued_grants = nodes.integer(7);
    auto span = (last - first) * static_cast<double>(n.slots);
    n.busy_fraction = span > 0 ? n.busy_seconds / span : 0;
    result.nodes.push_back(std::move(n));
  }
  return {};
}

caf::error read_ensembles(sqlite3* db_, const std::string& path_,
                          run_result& result) {
  statement st{db_, "SELECT group_id, label, networks, accuracy, loss FROM "
                    "ensembles ORDER BY group_id"};
  if (!st)
    return storage_error(db_, path_, "cannot read ensembles");
  while (st.step() == SQLITE_ROW) {
    ensemble_result e;
    e.group = st.integer(0);
    e.label = st.text(1);
    e.networks = st.integer(2);
    e.accuracy = st.real(3);
    e.loss = st.real(4);
    result.ensembles.push_back(std::move(e));
  }
  return {};
}

} // namespace

caf::expected<run_result> results_store::read() const {
  run_result result;
  result.database_path = path_;
  for (auto part :
       {read_run_row, read_networks, read_slot_usage, read_ensembles})
    if (auto err = part(db_, path_, result))
      return err;
  auto stalled = stalls();
  if (!stalled)
    return stalled.error();
  result.stalls = std::move(*stalled);
  return result;
}

caf::error results_store::add_error(uint64_t network_id, int64_t steps,
                                    const std::string& message) {
  statement st{*statements_,
               "INSERT INTO errors (network_id, epochs, steps, message, "
               "at) VALUES (?, -1, ?, ?, ?)"};
  st.bind(network_id, steps, message, now_iso());
  if (st.step() != SQLITE_DONE)
    return storage_error(db_, path_, "cannot record an error");
  return {};
}

caf::error results_store::add_kept_state(uint64_t network_id, int64_t epoch,
                                         const std::vector<char>& bytes) {
  return transaction([&]() -> caf::error {
    statement ins{*statements_,
                  "INSERT OR REPLACE INTO kept_states (network_id, epoch, "
                  "data) VALUES (?, ?, ?)"};
    ins.bind(network_id, epoch, bytes);
    if (ins.step() != SQLITE_DONE)
      return storage_error(db_, path_, "cannot keep a PBT state");
    // The two newest, as the trainer keeps them.
    statement old{*statements_,
                  "DELETE FROM kept_states WHERE network_id = ? AND "
                  "epoch NOT IN (SELECT epoch FROM kept_states WHERE "
                  "network_id = ? ORDER BY epoch DESC LIMIT 2)"};
    old.bind(network_id, network_id);
    if (old.step() != SQLITE_DONE)
      return storage_error(db_, path_, "cannot drop old PBT states");
    return {};
  });
}

caf::expected<std::map<uint64_t, std::set<int64_t>>>
results_store::kept_epochs() const {
  std::map<uint64_t, std::set<int64_t>> result;
  if (!has_table(db_, "kept_states"))
    return result;
  statement st{db_, "SELECT network_id, epoch FROM kept_states"};
  if (!st)
    return storage_error(db_, path_, "cannot read PBT states");
  while (st.step() == SQLITE_ROW)
    result[static_cast<uint64_t>(st.integer(0))].insert(st.integer(1));
  return result;
}

caf::expected<std::vector<char>>
results_store::kept_state(uint64_t network_id, int64_t epoch) const {
  statement st{*statements_, "SELECT data FROM kept_states WHERE network_id "
                             "= ? AND epoch = ?"};
  st.bind(network_id, epoch);
  if (st.step() != SQLITE_ROW)
    return make_error(errc::storage_failed,
                      fmt::format("{} holds no PBT state of network {} at "
                                  "epoch {}",
                                  path_, network_id, epoch));
  return st.blob(0);
}

caf::error
results_store::add_staleness(const std::vector<staleness_count>& counts) {
  return transaction([&]() -> caf::error {
    statement st{*statements_,
                 "INSERT INTO staleness (network_id, staleness, applied, "
                 "refused) VALUES (?, ?, ?, ?) ON CONFLICT (network_id, "
                 "staleness) DO UPDATE SET applied = applied + "
                 "excluded.applied, refused = refused + excluded.refused"};
    for (const auto& c : counts) {
      st.reset();
      st.bind(c.network_id, c.staleness, c.applied, c.refused);
      if (st.step() != SQLITE_DONE)
        return storage_error(db_, path_, "cannot record staleness counts");
    }
    return {};
  });
}

caf::expected<std::vector<staleness_count>> results_store::staleness() const {
  std::vector<staleness_count> result;
  if (!has_table(db_, "staleness"))
    return result;
  statement st{db_, "SELECT network_id, staleness, applied, refused FROM "
                    "staleness ORDER BY network_id, staleness"};
  if (!st)
    return storage_error(db_, path_, "cannot read staleness counts");
  while (st.step() == SQLITE_ROW)
    result.push_back({static_cast<uint64_t>(st.integer(0)), st.integer(1),
                      st.integer(2), st.integer(3)});
  return result;
}

caf::expected<std::vector<std::string>>
results_store::add_checkpoint(uint64_t network_id, int64_t step,
                              const std::string& path,
                              const std::vector<char>& bytes) {
  std::vector<std::string> stale;
  auto crc = crc32_of(bytes);
  auto err = transaction([&]() -> caf::error {
    statement ins{*statements_,
                  "INSERT OR REPLACE INTO checkpoints (network_id, step, "
                  "path, crc32, bytes, at) VALUES (?, ?, ?, ?, ?, ?)"};
    ins.bind(network_id, step, path, crc, static_cast<int64_t>(bytes.size()),
             now_iso());
    if (ins.step() != SQLITE_DONE)
      return storage_error(db_, path_, "cannot record a checkpoint");
    if (path.empty()) {
      statement data{*statements_, "INSERT OR REPLACE INTO stored_checkpoints "
                                   "(network_id, step, data) VALUES (?, ?, ?)"};
      data.bind(network_id, step, bytes);
      if (data.step() != SQLITE_DONE)
        return storage_error(db_, path_, "cannot store a checkpoint");
    }
    statement old{*statements_,
                  "SELECT path FROM checkpoints WHERE network_id = ? "
                  "ORDER BY step DESC LIMIT -1 OFFSET 2"};
    old.bind(network_id);
    while (old.step() == SQLITE_ROW)
      if (auto p = old.text(0); !p.empty())
        stale.push_back(std::move(p));
    for (const char* sql :
         {"DELETE FROM stored_checkpoints WHERE network_id = ? AND step NOT "
          "IN (SELECT step FROM checkpoints WHERE network_id = ? ORDER BY "
          "step DESC LIMIT 2)",
          "DELETE FROM checkpoints WHERE network_id = ? AND step NOT IN "
          "(SELECT step FROM checkpoints WHERE network_id = ? ORDER BY step "
          "DESC LIMIT 2)"}) {
      statement del{*statements_, sql};
      del.bind(network_id, network_id);
      if (del.step() != SQLITE_DONE)
        return storage_error(db_, path_, "cannot forget old checkpoints");
    }
    return {};
  });
  if (err)
    return err;
  return stale;
}

caf::expected<std::vector<std::string>>
results_store::drop_checkpoints(uint64_t network_id, int64_t keep_step) {
  auto entries = checkpoints(network_id);
  if (!entries)
    return entries.error();
  for (const char* sql : {"DELETE FROM stored_checkpoints WHERE network_id = ? "
                          "AND step != ?",
                          "DELETE FROM checkpoints WHERE network_id = ? AND "
                          "step != ?"}) {
    statement st{*statements_, sql};
    st.bind(network_id, keep_step);
    if (st.step() != SQLITE_DONE)
      return storage_error(db_, path_, "cannot forget checkpoints");
  }
  std::vector<std::string> paths;
  for (auto& e : *entries)
    if (!e.path.empty() && e.step != keep_step)
      paths.push_back(std::move(e.path));
  return paths;
}

caf::expected<std::vector<results_store::checkpoint_entry>>
results_store::checkpoints(uint64_t network_id) const {
  statement st{*statements_,
               "SELECT step, path, crc32, bytes FROM checkpoints WHERE "
               "network_id = ? ORDER BY step DESC"};
  if (!st)
    return storage_error(db_, path_, "cannot read checkpoints");
  st.bind(network_id);
  std::vector<checkpoint_entry> result;
  while (st.step() == SQLITE_ROW)
    result.push_back({st.integer(0), st.text(1),
                      static_cast<uint32_t>(st.integer(2)), st.integer(3)});
  return result;
}

caf::expected<std::vector<char>>
results_store::checkpoint_bytes(uint64_t network_id,
                                const checkpoint_entry& c) const {
  if (!c.path.empty()) {
    auto bytes = read_whole_file(c.path);
    if (!bytes)
      return bytes.error();
    return checked(std::move(*bytes), c.bytes, c.crc32, c.path);
  }
  auto where = fmt::format("the checkpoint of network {} at step {} in {}",
                           network_id, c.step, path_);
  statement st{*statements_,
               "SELECT data FROM stored_checkpoints WHERE network_id = ? "
               "AND step = ?"};
  st.bind(network_id, c.step);
  if (st.step() != SQLITE_ROW)
    return make_error(errc::storage_failed,
                      fmt::format("{} is missing", where));
  return checked(st.blob(0), c.bytes, c.crc32, where);
}

caf::expected<std::optional<results_store::checkpoint_read>>
results_store::latest_checkpoint(uint64_t network_id) const {
  auto entries = checkpoints(network_id);
  if (!entries)
    return entries.error();
  for (const auto& c : *entries)
    if (auto bytes = checkpoint_bytes(network_id, c))
      return checkpoint_read{c.step, std::move(*bytes)};
  return std::optional<checkpoint_read>{};
}

caf::error results_store::add_data_sent(const std::string& node,
                                        uint64_t bytes) {
  statement st{*statements_,
               "INSERT INTO data_sent (node, bytes) VALUES (?, ?)"};
  st.bind(node, bytes);
  if (st.step() != SQLITE_DONE)
    return storage_error(db_, path_, "cannot record the data sent");
  return {};
}

caf::error results_store::add_stall(const stall_record& r) {
  statement st{*statements_, "INSERT INTO stalls (time, quiet_seconds, "
                             "stopping, report) VALUES (?, ?, ?, ?)"};
  st.bind(r.time, r.quiet_seconds, static_cast<int64_t>(r.stopping), r.report);
  if (st.step() != SQLITE_DONE)
    return storage_error(db_, path_, "cannot record the stall report");
  return {};
}

caf::error results_store::end_stall(double said, double time) {
  statement st{*statements_, "UPDATE stalls SET ended = ? WHERE ended IS "
                             "NULL AND time >= ? AND time <= ?"};
  st.bind(time, said, time);
  if (st.step() != SQLITE_DONE)
    return storage_error(db_, path_, "cannot record the end of a stall");
  return {};
}

caf::error results_store::add_grants(const std::vector<grant_record>& records) {
  return transaction([&]() -> caf::error {
    statement st{*statements_,
                 "INSERT INTO grants (network_id, slot, start, end, "
                 "steps, node, moved_bytes, device, queued) VALUES (?, ?, "
                 "?, ?, ?, ?, ?, ?, ?)"};
    for (const auto& r : records) {
      st.bind(r.network_id, static_cast<int64_t>(r.slot), r.start, r.end,
              r.steps, r.node, r.moved_bytes, r.device,
              static_cast<int64_t>(r.queued));
      if (st.step() != SQLITE_DONE)
        return storage_error(db_, path_, "cannot record the schedule");
      st.reset();
    }
    return {};
  });
}

caf::expected<std::vector<grant_record>> results_store::grants() const {
  // A store written before nodes or devices were recorded, opened read-only.
  auto column = [&](const char* name, const char* missing) {
    return has_column(db_, "grants", name) ? name : missing;
  };
  auto sql = fmt::format("SELECT network_id, slot, start, end, steps, {}, "
                         "{}, {}, {} FROM grants ORDER BY start, rowid",
                         column("node", "''"), column("moved_bytes", "0"),
                         column("device", "''"), column("queued", "0"));
  statement st{db_, sql.c_str()};
  if (!st)
    return storage_error(db_, path_, "cannot read the schedule");
  std::vector<grant_record> result;
  while (st.step() == SQLITE_ROW) {
    grant_record r;
    r.network_id = static_cast<uint64_t>(st.integer(0));
    r.slot = static_cast<uint32_t>(st.integer(1));
    r.start = st.real(2);
    r.end = st.real(3);
    r.steps = st.integer(4);
    r.node = st.text(5);
    r.moved_bytes = st.integer(6);
    r.device = st.text(7);
    r.queued = st.integer(8) != 0;
    result.push_back(r);
  }
  return result;
}

caf::error
results_store::add_decisions(const std::vector<decision_record>& records) {
  return transaction([&]() -> caf::error {
    statement st{*statements_,
                 "INSERT INTO decisions (time, network_id, epoch, rung, "
                 "action, reason, donor, old_hyperparameters, "
                 "new_hyperparameters) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                 "?)"};
    for (const auto& r : records) {
      st.bind(r.time, r.network_id, r.epoch, r.rung, r.action, r.reason,
              r.donor, r.old_hyperparameters, r.new_hyperparameters);
      if (st.step() != SQLITE_DONE)
        return storage_error(db_, path_,
                             "cannot record the search's decisions");
      st.reset();
    }
    return {};
  });
}

caf::expected<std::vector<stored_configuration>>
results_store::configurations() const {
  std::vector<stored_configuration> result;
  statement st{db_, "SELECT id, label, config FROM groups ORDER BY id"};
  if (!st)
    return storage_error(db_, path_, "cannot read the configurations");
  while (st.step() == SQLITE_ROW) {
    stored_configuration c;
    c.group = st.integer(0);
    std::string problem;
    c.config = config_of_json(st.text(2), problem);
    if (!problem.empty())
      return make_error(errc::storage_failed,
                        fmt::format("{}: configuration {} cannot be read "
                                    "back ({})",
                                    path_, c.group, problem));
    c.config.label = st.text(1);
    result.push_back(std::move(c));
  }
  return result;
}

caf::expected<double> results_store::schedule_seconds() const {
  double latest = 0;
  for (auto [table, sql] :
       {std::pair{"grants", "SELECT coalesce(max(end), 0) FROM grants"},
        std::pair{"decisions", "SELECT coalesce(max(time), 0) FROM decisions"},
        std::pair{"stalls", "SELECT coalesce(max(time), 0) FROM stalls"}}) {
    if (!has_table(db_, table))
      continue;
    statement st{db_, sql};
    if (!st || st.step() != SQLITE_ROW)
      return storage_error(db_, path_, "cannot read the schedule");
    latest = std::max(latest, st.real(0));
  }
  return latest;
}

caf::expected<std::vector<stall_record>> results_store::stalls() const {
  std::vector<stall_record> result;
  if (!has_table(db_, "stalls"))
    return result;
  statement st{db_, "SELECT time, quiet_seconds, stopping, report, ended "
                    "FROM stalls ORDER BY rowid"};
  if (!st)
    return storage_error(db_, path_, "cannot read the stall reports");
  while (st.step() == SQLITE_ROW) {
    stall_record r;
    r.time = st.real(0);
    r.quiet_seconds = st.real(1);
    r.stopping = st.integer(2) != 0;
    r.report = st.text(3);
    r.ended = st.real(4); // NULL: NaN
    result.push_back(std::move(r));
  }
  return result;
}

caf::expected<std::vector<decision_record>> results_store::decisions() const {
  std::vector<decision_record> result;
  if (!has_table(db_, "decisions"))
    return result;
  bool exploits = has_column(db_, "decisions", "donor");
  statement st{db_, exploits ? "SELECT time, network_id, epoch, rung, action, "
                               "reason, coalesce(donor, -1), "
                               "coalesce(old_hyperparameters, ''), "
                               "coalesce(new_hyperparameters, '') FROM "
                               "decisions ORDER BY rowid"
                             : "SELECT time, network_id, epoch, rung, action, "
                               "reason FROM decisions ORDER BY rowid"};
  if (!st)
    return storage_error(db_, path_, "cannot read the search's decisions");
  while (st.step() == SQLITE_ROW) {
    decision_record r;
    r.time = st.real(0);
    r.network_id = static_cast<uint64_t>(st.integer(1));
    r.epoch = st.integer(2);
    r.rung = st.integer(3);
    r.action = st.text(4);
    r.reason = st.text(5);
    if (exploits) {
      r.donor = st.integer(6);
      r.old_hyperparameters = st.text(7);
      r.new_hyperparameters = st.text(8);
    }
    result.push_back(std::move(r));
  }
  return result;
}

namespace {

/// The columns every epoch query selects first, in this order.
constexpr const char* epoch_columns =
    "epoch, steps, train_loss, test_loss, test_accuracy, seconds, "
    "validation_loss, validation_accuracy";

epoch_metrics read_epoch(const statement& st, uint64_t network_id) {
  epoch_metrics m;
  m.network_id = network_id;
  m.epoch = st.integer(0);
  m.steps = st.integer(1);
  m.train_loss = st.real(2);
  m.test_loss = st.real(3);
  m.test_accuracy = st.real(4);
  m.seconds = st.real(5);
  m.validation_loss = st.real(6);
  m.validation_accuracy = st.real(7);
  return m;
}

/// Runs `sql`, which selects epoch_columns and then the network id, over
/// every network at once.
caf::expected<std::vector<epoch_metrics>>
read_epochs_of_all(sqlite3* db, const std::string& path,
                   const std::string& sql) {
  statement st{db, sql.c_str()};
  if (!st)
    return storage_error(db, path, "cannot read epoch metrics");
  std::vector<epoch_metrics> result;
  while (st.step() == SQLITE_ROW)
    result.push_back(read_epoch(st, static_cast<uint64_t>(st.integer(8))));
  return result;
}

} // namespace

caf::expected<std::vector<epoch_metrics>>
results_store::epochs(uint64_t network_id) const {
  auto sql = fmt::format("SELECT {} FROM epoch_metrics WHERE network_id = ? "
                         "ORDER BY epoch",
                         epoch_columns);
  statement st{db_, sql.c_str()};
  if (!st)
    return storage_error(db_, path_, "cannot read epoch metrics");
  st.bind(network_id);
  std::vector<epoch_metrics> result;
  while (st.step() == SQLITE_ROW)
    result.push_back(read_epoch(st, network_id));
  return result;
}

caf::expected<std::vector<epoch_metrics>> results_store::all_epochs() const {
  auto sql = fmt::format("SELECT {}, network_id FROM epoch_metrics ORDER BY "
                         "network_id, epoch",
                         epoch_columns);
  return read_epochs_of_all(db_, path_, sql);
}

caf::expected<std::vector<epoch_metrics>> results_store::latest_epochs() const {
  auto sql = fmt::format("SELECT {}, e.network_id FROM epoch_metrics e JOIN "
                         "(SELECT network_id, MAX(epoch) AS last FROM "
                         "epoch_metrics GROUP BY network_id) m ON "
                         "e.network_id = m.network_id AND e.epoch = m.last "
                         "ORDER BY e.network_id",
                         epoch_columns);
  return read_epochs_of_all(db_, path_, sql);
}

caf::expected<std::vector<epoch_metrics>>
results_store::epochs_after(int64_t& cursor, size_t limit) const {
  auto sql = fmt::format("SELECT {}, network_id, rowid FROM epoch_metrics "
                         "WHERE rowid > ? ORDER BY rowid LIMIT ?",
                         epoch_columns);
  statement st{db_, sql.c_str()};
  if (!st)
    return storage_error(db_, path_, "cannot read epoch metrics");
  st.bind(cursor, static_cast<int64_t>(limit));
  std::vector<epoch_metrics> result;
  while (st.step() == SQLITE_ROW) {
    result.push_back(read_epoch(st, static_cast<uint64_t>(st.integer(8))));
    cursor = st.integer(9);
  }
  return result;
}

caf::error
results_store::add_networks(const std::vector<network_config>& configs,
                            int64_t first_group,
                            const std::vector<network_spec>& specs) {
  return transaction([&]() -> caf::error {
    if (auto err = insert_networks(db_, path_, configs, first_group, specs))
      return err;
    statement count{*statements_, "UPDATE run SET networks = networks + ?"};
    count.bind(static_cast<int64_t>(specs.size()));
    if (count.step() != SQLITE_DONE)
      return storage_error(db_, path_, "cannot count the networks");
    return {};
  });
}

} // namespace actortrain
