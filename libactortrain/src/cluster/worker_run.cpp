#include "cluster/worker_run.hpp"

#include <unordered_set>

#include <fmt/format.h>

#include "actortrain/error.hpp"
#include "models/builtin_learner.hpp"
#include "training/data_parallel.hpp"
#include "training/replica_model.hpp"

namespace actortrain {

caf::error
check_model_hashes(const script_models& mine,
                   const std::map<std::string, std::string>& theirs) {
  for (const auto& [path, model] : mine) {
    auto i = theirs.find(path);
    if (i == theirs.end() || i->second != model->hash)
      return make_error(
          errc::invalid_data,
          fmt::format("the TorchScript module {} here differs from the "
                      "coordinator's: content hash {} on this worker, {} on "
                      "the coordinator",
                      path, model->hash,
                      i == theirs.end() ? "none" : i->second));
  }
  return {};
}

worker_run::worker_run(std::shared_ptr<const run_context> ctx,
                       bool setup_networks, bool verbose,
                       std::function<void(const std::string&)> log)
    : ctx_(std::move(ctx)), verbose_(verbose), log_(std::move(log)) {
  if (!setup_networks)
    return;
  for (size_t i = 0; i < ctx_->specs.size(); ++i)
    networks_.emplace(
        ctx_->specs[i].id,
        network_source{ctx_->specs[i], ctx_->shards[i],
                       script_for(ctx_->scripts, ctx_->specs[i].config)});
}

caf::expected<uint64_t>
worker_run::add(const std::vector<worker_submission>& subs) {
  std::vector<network_source> added;
  for (const auto& s : subs) {
    // Expanding and sharding takes a while: not under the lock the slots
    // take for every quantum.
    auto sub =
        prepare_submission(ctx_->exp, *ctx_->data, s.configs, s.first_id,
                           s.first_group, !ctx_->make_learner, s.model_files);
    if (!sub)
      return make_error(errc::invalid_experiment,
                        fmt::format("cannot train the networks submitted "
                                    "from id {} here: {}",
                                    s.first_id, to_string_pretty(sub.error())));
    if (auto err = check_model_hashes(sub->scripts, s.model_hashes))
      return err;
    for (size_t i = 0; i < sub->specs.size(); ++i)
      added.push_back(
          network_source{sub->specs[i], sub->shards[i],
                         script_for(sub->scripts, sub->specs[i].config)});
  }
  std::lock_guard<std::mutex> guard{mutex_};
  for (auto& n : added) {
    auto id = n.spec.id;
    networks_.insert_or_assign(id, std::move(n));
  }
  return networks_.size();
}

caf::expected<std::shared_ptr<network_group>>
worker_run::checkout(remote_quantum& q) {
  if (q.cached) {
    std::lock_guard<std::mutex> guard{mutex_};
    auto i = groups_.find(q.group_id);
    if (i == groups_.end())
      return make_error(
          errc::cluster_failed,
          fmt::format("group {} is not kept on this worker", q.group_id));
    return i->second;
  }
  std::unordered_set<uint64_t> seen;
  for (auto id : q.members)
    if (!seen.insert(id).second)
      return make_error(
          errc::cluster_failed,
          fmt::format("network {} appears twice in one quantum", id));
  for (const auto& s : q.states)
    if (seen.count(s.network_id) == 0)
      return make_error(errc::cluster_failed,
                        fmt::format("a state for network {}, which the "
                                    "quantum does not train",
                                    s.network_id));
  std::vector<network_source> sources;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    for (auto id : q.members) {
      auto i = networks_.find(id);
      if (i == networks_.end())
        return make_error(
            errc::cluster_failed,
            fmt::format("network {} is not part of this run", id));
      sources.push_back(i->second);
    }
  }
  if (sources.empty())
    return make_error(errc::cluster_failed, "a quantum without networks");
  // Building the models takes a while: not under the lock.
  std::vector<std::unique_ptr<network_runner>> members;
  for (const auto& n : sources)
    members.push_back(std::make_unique<network_runner>(
        n.spec, ctx_->data, n.shard, ctx_->make_learner, n.script));
  auto group = std::make_shared<network_group>(std::move(members));
  group->adopt(q.members, std::move(q.states));
  std::lock_guard<std::mutex> guard{mutex_};
  groups_[q.group_id] = group;
  return group;
}

void worker_run::forget(uint64_t group_id) {
  std::lock_guard<std::mutex> guard{mutex_};
  groups_.erase(group_id);
}

caf::expected<std::vector<runner_state>>
worker_run::export_group(uint64_t group_id) {
  std::shared_ptr<network_group> group;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    auto i = groups_.find(group_id);
    if (i == groups_.end())
      return make_error(
          errc::cluster_failed,
          fmt::format("group {} is not kept on this worker", group_id));
    group = std::move(i->second);
    groups_.erase(i);
  }
  // The group's trainer is waiting for these states, so no quantum of the
  // group runs meanwhile.
  try {
    return group->export_states();
  } catch (const std::exception& e) {
    return make_error(errc::cluster_failed,
                      fmt::format("the states of group {} could not be "
                                  "written: {}",
                                  group_id, e.what()));
  }
}

size_t worker_run::networks() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return networks_.size();
}

void worker_run::stop_quanta() {
  stop_->store(true);
}

void worker_run::log(const std::string& line) const {
  if (log_)
    log_(line);
}

/// The network's own learner, for its plan and loss (its weights are never
/// trained here), and the copy a replica's parts are computed in.
struct worker_run::replica_host {
  std::unique_ptr<builtin_learner> net;
  std::unique_ptr<replica_model> copy;
};

caf::expected<replica_gradient>
worker_run::replica_part(uint32_t slot, const replica_work& work) {
  std::shared_ptr<replica_host> host;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    auto key = std::make_pair(slot, work.network_id);
    auto i = replicas_.find(key);
    if (i != replicas_.end()) {
      host = i->second;
    } else {
      auto n = networks_.find(work.network_id);
      if (n == networks_.end())
        return make_error(
            errc::cluster_failed,
            fmt::format("network {} is not this run's here", work.network_id));
      if (n->second.script || ctx_->make_learner)
        return make_error(errc::cluster_failed,
                          fmt::format("network {} has no built-in model: its "
                                      "replicas train in the coordinator",
                                      work.network_id));
      // Its initial weights are overwritten by every part: any seed will do.
      auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
      learner_context lc{n->second.spec, *ctx_->data, torch::kCPU, gen};
      host = std::make_shared<replica_host>();
      host->net = std::make_unique<builtin_learner>(lc);
      host->copy = std::make_unique<replica_model>(*host->net, torch::kCPU);
      replicas_.emplace(key, host);
      if (verbose_)
        log(fmt::format("slot {}: computing replica parts of network {}", slot,
                        work.network_id));
    }
  }
  auto& copy = *host->copy;
  copy.take_weights(unflatten(work.weights, copy.params()));
  auto part = torch::tensor(work.samples, torch::kInt64);
  auto forward = [&](const torch::Tensor& x) {
    return copy.forward(x);
  };
  replica_gradient result;
  result.loss = replica_pass(forward, *host->net, *ctx_->data, part, work.batch,
                             torch::kCPU);
  result.gradient = flatten(copy.params(), true);
  return result;
}

} // namespace actortrain
