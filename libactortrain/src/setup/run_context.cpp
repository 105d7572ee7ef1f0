#include "setup/run_context.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <thread>

#include <fmt/format.h>
#include <zlib.h>

#include "actortrain/error.hpp"
#include "actortrain/learner.hpp"
#include "setup/devices.hpp"

namespace actortrain {

namespace {

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
    if (builtin && m.kind != model_kind::torchscript)
      if (auto err = check_builtin_model(m, data))
        return err;
    auto replicas = cfg.train.replicas;
    if (replicas > 1 && !builtin)
      return make_error(errc::invalid_experiment,
                        fmt::format("train.replicas = {}: replicas need a "
                                    "built-in model; a learner of your own "
                                    "trains on one slot",
                                    replicas));
    if (replicas > 1 && m.kind == model_kind::torchscript)
      return make_error(errc::invalid_experiment,
                        fmt::format("train.replicas = {}: replicas need a "
                                    "built-in model (mlp or cnn); a "
                                    "TorchScript module trains on one slot",
                                    replicas));
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
    if (scheme == partition_scheme::bootstrap) {
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
                                    name_of(scheme), parts, spec.name, n));
    result.push_back(shard);
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    auto f = specs[i].config.train.validation_fraction;
    auto n_shard = result[i].size(0);
    auto train_n = n_shard - validation_samples(n_shard, f);
    if (f > 0 && train_n < 1)
      return make_error(errc::invalid_experiment,
                        fmt::format("train.validation_fraction = {} leaves {} "
                                    "no training samples from its {}",
                                    f, specs[i].name, n_shard));
    // Step counts are int64: epochs x steps per epoch must fit, with room.
    const auto& t = specs[i].config.train;
    auto steps_per_epoch = (train_n + t.batch_size - 1) / t.batch_size;
    if (t.epochs > (std::numeric_limits<int64_t>::max() / 4) / steps_per_epoch)
      return make_error(errc::invalid_experiment,
                        fmt::format("train.epochs = {} of {} steps each is "
                                    "more steps than {} can count",
                                    t.epochs, steps_per_epoch, specs[i].name));
  }
  return result;
}

} // namespace

std::vector<std::string> local_slot_devices(const experiment& exp) {
  if (!exp.cluster.local)
    return {};
  const auto& s = exp.scheduler;
  auto devices = slot_devices(s.devices, s.slots, s.streams_per_gpu);
  // make_run_context refused a bad list before anything asks for slots.
  return devices ? *devices
                 : *slot_devices({"cpu"}, s.slots, s.streams_per_gpu);
}

int64_t local_slots(const experiment& exp) {
  return static_cast<int64_t>(local_slot_devices(exp).size());
}

caf::error check_replica_slots(const experiment& run,
                               const std::vector<network_config>& configs) {
  auto slots = run.cluster.local ? local_slots(run) : 0;
  for (const auto& cfg : configs) {
    auto r = cfg.train.replicas;
    if (r <= 1 || r <= slots)
      continue;
    // The leader runs the steps in this process; synchronous replicas may
    // have their other parts computed on workers' slots.
    auto spans =
        cfg.train.sync != sync_kind::async && !run.cluster.workers.empty();
    if (slots > 0 && spans)
      continue;
    if (slots == 0)
      return make_error(
          errc::invalid_experiment,
          fmt::format("train.replicas = {}: a replicated network's steps run "
                      "in this process, and the run has no slot here "
                      "(cluster.local = false)",
                      r));
    return make_error(
        errc::invalid_experiment,
        fmt::format("train.replicas = {} needs {} slots at once, and the run "
                    "has {} here (scheduler.slots){}",
                    r, r, slots,
                    cfg.train.sync == sync_kind::async
                        ? "; asynchronous replicas all train in this process"
                        : "; synchronous replicas also use the slots of "
                          "cluster.workers"));
  }
  return {};
}

caf::expected<std::shared_ptr<run_context>>
make_run_context(const experiment& exp, learner_factory make_learner) {
  if (auto err = exp.validate())
    return err;
  auto data = load_dataset(exp.data);
  if (!data)
    return data.error();
  return make_run_context(exp, std::move(make_learner), std::move(*data));
}

caf::expected<std::shared_ptr<run_context>>
make_run_context(const experiment& exp, learner_factory make_learner,
                 std::shared_ptr<const dataset> loaded,
                 const std::map<std::string, std::string>& files) {
  if (auto err = exp.validate())
    return err;
  if (exp.cluster.local) {
    const auto& s = exp.scheduler;
    if (auto devices = slot_devices(s.devices, s.slots, s.streams_per_gpu);
        !devices)
      return devices.error();
  }
  caf::expected<std::shared_ptr<const dataset>> data{std::move(loaded)};
  if (auto err = check_fit(exp, **data, !make_learner))
    return err;
  auto ctx = std::make_shared<run_context>();
  ctx->exp = exp;
  ctx->data = *data;
  ctx->specs = expand(exp);
  auto shards = make_shards(exp, ctx->specs, **data);
  if (!shards)
    return shards.error();
  ctx->shards = std::move(*shards);
  if (!make_learner) {
    auto scripts = load_script_models(exp, **data, files);
    if (!scripts)
      return scripts.error();
    ctx->scripts = std::move(*scripts);
  }
  ctx->make_learner = std::move(make_learner);
  return ctx;
}

caf::expected<submission>
prepare_submission(const experiment& session, const dataset& data,
                   std::vector<network_config> configs, uint64_t first_id,
                   int64_t first_group, bool builtin,
                   const std::map<std::string, std::string>& files) {
  if (configs.empty())
    return make_error(errc::invalid_experiment,
                      "nothing to submit: no configuration given");
  auto exp = session;
  exp.base = configs.front();
  exp.variants.clear();
  if (configs.size() > 1)
    exp.variants = configs;
  if (auto err = exp.validate())
    return err;
  if (auto err = check_fit(exp, data, builtin))
    return err;
  submission sub;
  sub.first_group = first_group;
  sub.specs = expand(exp, first_id, first_group);
  auto shards = make_shards(exp, sub.specs, data);
  if (!shards)
    return shards.error();
  sub.shards = std::move(*shards);
  if (builtin) {
    auto scripts = load_script_models(exp, data, files);
    if (!scripts)
      return scripts.error();
    sub.scripts = std::move(*scripts);
  }
  sub.configs = std::move(configs);
  return sub;
}

std::string content_hash(const dataset& data) {
  // CRC-32 of each tensor's bytes and of its shape: fast (zlib) and enough
  // to tell two copies of a dataset apart.
  std::string result;
  for (const auto* t :
       {&data.train_x, &data.train_y, &data.test_x, &data.test_y}) {
    auto c = t->contiguous();
    auto sizes = c.sizes().vec();
    auto crc = crc32_z(0L, reinterpret_cast<const Bytef*>(sizes.data()),
                       sizes.size() * sizeof(int64_t));
    crc = crc32_z(crc, reinterpret_cast<const Bytef*>(c.data_ptr()),
                  static_cast<size_t>(c.numel() * c.element_size()));
    result += fmt::format("{:08x}", crc);
  }
  return result;
}

} // namespace actortrain
