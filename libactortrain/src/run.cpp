#include "actortrain/run.hpp"

#include <cmath>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <sys/file.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <fmt/format.h>
#include <zlib.h>

#include "actors/coordinator.hpp"
#include "actortrain/error.hpp"
#include "actortrain/learner.hpp"
#include "actortrain/type_ids.hpp"

namespace fs = std::filesystem;

namespace actortrain {

namespace {

std::string default_output_dir(const std::string& name) {
  auto t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%d-%H%M%S", &tm);
  return fmt::format("runs/{}-{}", name, buf);
}

/// Checks that every configuration fits the data, before anything trains.
caf::error check_fit(const experiment& exp, const dataset& data, bool builtin) {
  for (const auto& cfg : exp.configs()) {
    const auto& m = cfg.model;
    if (m.input > 0 && m.input != data.features())
      return make_error(errc::invalid_experiment,
                        fmt::format("model.input = {} does not match the "
                                    "data's {} features per sample ({})",
                                    m.input, data.features(),
                                    exp.data.train.empty() ? "synthetic data"
                                                           : exp.data.train));
    if (builtin)
      if (auto err = check_builtin_model(m, data))
        return err;
  }
  return {};
}

caf::expected<std::vector<torch::Tensor>>
make_shards(const experiment& exp, const std::vector<network_spec>& specs,
            const dataset& data) {
  const auto& scheme = exp.data.partition;
  auto n = data.train_x.size(0);
  // Shards depend on the number of networks per configuration only, so
  // configurations of equal size share them.
  std::map<int64_t, std::vector<torch::Tensor>> by_parts;
  std::vector<torch::Tensor> result;
  for (const auto& spec : specs) {
    if (scheme == "bootstrap") {
      result.push_back(bootstrap_indices(n, derive_seed(spec.seed, 0xB0075)));
      continue;
    }
    auto parts = spec.config.train.networks;
    auto i = by_parts.find(parts);
    if (i == by_parts.end())
      i = by_parts
              .emplace(parts,
                       partition(scheme, data, parts, spec.config.train.seed))
              .first;
    auto shard = i->second[static_cast<size_t>(spec.index_in_group)];
    if (shard.size(0) == 0)
      return make_error(errc::invalid_experiment,
                        fmt::format("data.partition: '{}' over {} networks "
                                    "leaves {} without training samples (the "
                                    "training set has {})",
                                    scheme, parts, spec.name, n));
    result.push_back(shard);
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    auto f = specs[i].config.train.validation_fraction;
    auto n_shard = result[i].size(0);
    if (f > 0 && n_shard - validation_samples(n_shard, f) < 1)
      return make_error(errc::invalid_experiment,
                        fmt::format("train.validation_fraction = {} leaves {} "
                                    "no training samples from its {}",
                                    f, specs[i].name, n_shard));
  }
  return result;
}

/// Reads one checkpoint file and checks it against its recorded CRC-32.
std::optional<std::vector<char>>
read_checkpoint(const results_store::checkpoint_entry& c) {
  std::ifstream in{c.path, std::ios::binary};
  if (!in)
    return std::nullopt;
  std::vector<char> bytes{std::istreambuf_iterator<char>{in}, {}};
  auto crc = crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()),
                   static_cast<uInt>(bytes.size()));
  if (bytes.empty() || crc != c.crc32)
    return std::nullopt;
  return bytes;
}

/// Opens the store of an earlier attempt at the same experiment and plans
/// what is left: finished and failed networks are kept as they are; the
/// others continue from their newest intact checkpoint (or from the start).
caf::error prepare_resume(const experiment& exp, run_plan& plan,
                          const std::string& db_path) {
  auto store = results_store::open(db_path, true);
  if (!store)
    return store.error();
  auto hash = (*store)->experiment_hash();
  if (!hash)
    return hash.error();
  auto mine = fingerprint(exp);
  auto prior = (*store)->read();
  if (!prior)
    return prior.error();
  if (*hash != mine || prior->networks.size() != plan.specs.size())
    return make_error(
        errc::invalid_experiment,
        fmt::format("{} holds a run of a different experiment (fingerprint "
                    "{}, this one is {}): its data, model, optimizer or "
                    "training settings changed, so resuming would mix "
                    "results; use another --output folder",
                    plan.output_dir, *hash, mine));
  for (const auto& n : prior->networks) {
    if (n.status == network_status::finished) {
      plan.resumed_finished.push_back(n.id);
      continue;
    }
    if (n.status == network_status::failed) {
      plan.resumed_failed.push_back(n.id);
      continue;
    }
    auto entries = (*store)->checkpoints(n.id);
    if (!entries)
      return entries.error();
    // Newest first; a truncated or corrupt file falls back to the one before.
    for (const auto& c : *entries) {
      if (auto bytes = read_checkpoint(c)) {
        plan.snapshots.emplace(n.id, std::move(*bytes));
        break;
      }
    }
  }
  if (auto err = (*store)->mark_resumed())
    return err;
  plan.store = std::move(*store);
  return {};
}

} // namespace

namespace {

/// See run_options::tune_allocator.
void tune_allocator() {
#ifdef __GLIBC__
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
  });
#endif
}

} // namespace

caf::expected<run_result> run(const experiment& exp, run_options opts) {
  if (auto err = exp.validate())
    return err;
  if (opts.tune_allocator)
    tune_allocator();
  auto data = load_dataset(exp.data);
  if (!data)
    return data.error();
  if (auto err = check_fit(exp, **data, !opts.make_learner))
    return err;
  auto plan = std::make_shared<run_plan>();
  plan->exp = exp;
  plan->specs = expand(exp);
  plan->data = *data;
  auto shards = make_shards(exp, plan->specs, **data);
  if (!shards)
    return shards.error();
  plan->shards = std::move(*shards);
  plan->output_dir =
      opts.output_dir.empty() ? default_output_dir(exp.name) : opts.output_dir;
  std::error_code ec;
  fs::create_directories(fs::path{plan->output_dir} / "weights", ec);
  if (!ec)
    fs::create_directories(fs::path{plan->output_dir} / "checkpoints", ec);
  if (ec)
    return make_error(errc::io_failed,
                      fmt::format("{}: cannot create the output folder: {}",
                                  plan->output_dir, ec.message()));
  // One run per folder at a time: a second process resuming the same folder
  // would interleave writes. The lock goes away with the process, even after
  // SIGKILL.
  auto lock_path = (fs::path{plan->output_dir} / ".lock").string();
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    if (lock_fd >= 0)
      ::close(lock_fd);
    return make_error(errc::io_failed,
                      fmt::format("{} is in use by another actortrain run",
                                  plan->output_dir));
  }
  struct lock_guard {
    int fd;
    ~lock_guard() {
      ::close(fd);
    }
  } folder_lock{lock_fd};
  auto db_path =
      (fs::path{plan->output_dir} / results_store::file_name).string();
  if (fs::exists(db_path)) {
    if (auto err = prepare_resume(exp, *plan, db_path))
      return err;
  } else {
    auto store = results_store::create(db_path);
    if (!store)
      return store.error();
    plan->store = std::move(*store);
    auto task = (*data)->task == task_kind::classification ? "classification"
                                                           : "regression";
    if (auto err = plan->store->begin_run(exp, plan->specs, task))
      return err;
  }
  plan->stop = opts.stop;
  plan->make_learner = std::move(opts.make_learner);
  plan->on_progress = std::move(opts.on_progress);
  plan->progress_interval_seconds = opts.progress_interval_seconds;
  caf::actor_system_config cfg;
  cfg.add_message_types<caf::id_block::actortrain>();
  cfg.add_error_category(
      caf::atom("actortrain"),
      [](uint8_t code, caf::atom_value cat, const caf::message& ctx) {
        return to_string_pretty(caf::error{code, cat, ctx});
      });
  // Work sharing wakes an idle worker through a condition variable at once;
  // work stealing polls with sleeps, which adds up to milliseconds to every
  // hop of a quantum when messages are sparse (docs/benchmarks.md).
  cfg.set("scheduler.policy", caf::atom("sharing"));
  caf::actor_system sys{cfg};
  auto coord = sys.spawn(coordinator, plan);
  caf::scoped_actor self{sys};
  caf::expected<run_result> result{
      make_error(errc::run_aborted, "the run ended without a result")};
  self->request(coord, caf::infinite, run_atom_v)
      .receive([&](run_result& r) { result = std::move(r); },
               [&](caf::error& err) { result = std::move(err); });
  return result;
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
