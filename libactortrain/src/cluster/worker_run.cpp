#include "cluster/worker_run.hpp"

#include <unordered_set>

#include <fmt/format.h>

#include "actortrain/error.hpp"

namespace actortrain {

worker_run::worker_run(std::shared_ptr<const run_context> ctx, bool verbose,
                       std::function<void(const std::string&)> log)
    : ctx_(std::move(ctx)), verbose_(verbose), log_(std::move(log)) {
  for (size_t i = 0; i < ctx_->specs.size(); ++i)
    spec_index_.emplace(ctx_->specs[i].id, i);
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
  std::vector<std::unique_ptr<network_runner>> members;
  for (auto id : q.members) {
    auto i = spec_index_.find(id);
    if (i == spec_index_.end())
      return make_error(errc::cluster_failed,
                        fmt::format("network {} is not part of this run", id));
    members.push_back(std::make_unique<network_runner>(
        ctx_->specs[i->second], ctx_->data, ctx_->shards[i->second],
        ctx_->make_learner,
        script_for(ctx_->scripts, ctx_->specs[i->second].config)));
  }
  if (members.empty())
    return make_error(errc::cluster_failed, "a quantum without networks");
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

void worker_run::log(const std::string& line) const {
  if (log_)
    log_(line);
}

} // namespace actortrain
