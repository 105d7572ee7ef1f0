#include "scheduling/scheduling_policy.hpp"

namespace actortrain {

scheduling_policy::~scheduling_policy() = default;

void scheduling_policy::add(const trainer_info& info) {
  networks_[info.network_id].priority = info.priority;
  estimator_.add(info);
}

void scheduling_policy::forget(uint64_t network_id) {
  networks_.erase(network_id);
  estimator_.remove(network_id);
}

void scheduling_policy::report(const progress_report& progress) {
  auto i = networks_.find(progress.network_id);
  if (i != networks_.end() && progress.quantum_steps > 0)
    i->second.started = true;
  estimator_.report(progress);
}

void scheduling_policy::enqueue(waiting_trainer w) {
  auto i = networks_.find(w.network_id);
  if (i == networks_.end()) {
    trainer_info info;
    info.network_id = w.network_id;
    add(info);
    i = networks_.find(w.network_id);
  }
  const auto& n = i->second;
  auto seq = seq_++;
  // Fresh networks are ordered by their unscaled cost guess; see fresh_rank.
  auto estimate = n.started ? estimator_.remaining(w.network_id)
                            : estimator_.cost_guess(w.network_id);
  rank r{key(n, estimate, seq), w.network_id, seq};
  where_[w.trainer.address()] = {n.started, r};
  (n.started ? started_ : fresh_).emplace(r, std::move(w));
}

void scheduling_policy::set_score(uint64_t network_id, double score) {
  // Set while the trainer holds its slot: its next join ranks it.
  if (auto i = networks_.find(network_id); i != networks_.end())
    i->second.score = score;
}

void scheduling_policy::set_priority(uint64_t network_id, double priority) {
  auto i = networks_.find(network_id);
  if (i == networks_.end())
    return;
  i->second.priority = priority;
  for (auto& [addr, where] : where_) {
    auto& [started, r] = where;
    if (std::get<1>(r) != network_id)
      continue;
    auto& q = started ? started_ : fresh_;
    auto node = q.extract(r);
    if (node.empty())
      return;
    // The same place in the join order: only the key changes, so a policy
    // that ignores priorities keeps its order.
    auto seq = std::get<2>(r);
    auto estimate = started ? estimator_.remaining(network_id)
                            : estimator_.cost_guess(network_id);
    r = rank{key(i->second, estimate, seq), network_id, seq};
    node.key() = r;
    q.insert(std::move(node));
    return;
  }
}

scheduling_policy::rank
scheduling_policy::fresh_rank(const queue::value_type& entry) const {
  auto id = entry.second.network_id;
  const auto& n = networks_.at(id);
  return {key(n, estimator_.remaining(id), std::get<2>(entry.first)), id,
          std::get<2>(entry.first)};
}

waiting_trainer scheduling_policy::take(queue& q, queue::iterator i) {
  auto w = std::move(i->second);
  q.erase(i);
  where_.erase(w.trainer.address());
  return w;
}

std::optional<waiting_trainer> scheduling_policy::next() {
  return next_if([](const waiting_trainer&) { return true; });
}

std::optional<waiting_trainer> scheduling_policy::next_if(
    const std::function<bool(const waiting_trainer&)>& accept) {
  // The two queues merged: the best fresh network, keyed with today's
  // estimate, against the best started one.
  auto f = fresh_.begin();
  auto s = started_.begin();
  while (f != fresh_.end() || s != started_.end()) {
    bool fresh =
        s == started_.end() || (f != fresh_.end() && fresh_rank(*f) < s->first);
    auto& i = fresh ? f : s;
    if (accept(i->second))
      return take(fresh ? fresh_ : started_, i);
    ++i;
  }
  return std::nullopt;
}

double scheduling_policy::remaining(uint64_t network_id) const {
  return estimator_.remaining(network_id);
}

void scheduling_policy::remove(const caf::actor_addr& trainer) {
  auto i = where_.find(trainer);
  if (i == where_.end())
    return;
  auto [started, r] = i->second;
  (started ? started_ : fresh_).erase(r);
  where_.erase(i);
}

size_t scheduling_policy::waiting() const {
  return started_.size() + fresh_.size();
}

namespace {

/// Run to completion: the lowest network id keeps precedence, so a started
/// network gets its next quantum before a later one starts.
class fifo_policy : public scheduling_policy {
  double key(const network&, double, uint64_t) const override {
    return 0;
  }
};

/// Time slicing: every network goes to the back of the queue after each
/// quantum; networks that have not run yet get their first quantum first,
/// in network order.
class round_robin_policy : public scheduling_policy {
  double key(const network& n, double, uint64_t seq) const override {
    return n.started ? static_cast<double>(seq) : -1.0;
  }
};

/// Estimated remaining time, shortest first: the best mean completion time.
class shortest_remaining_policy : public scheduling_policy {
  double key(const network&, double estimate, uint64_t) const override {
    return estimate;
  }
};

/// Estimated remaining time, longest first: the longest networks start
/// early, so none is left running alone at the end (a short makespan).
class longest_remaining_policy : public scheduling_policy {
  double key(const network&, double estimate, uint64_t) const override {
    return -estimate;
  }
};

/// User-given weights (`train.priority`), higher first; equal weights run to
/// completion in network order.
class priority_policy : public scheduling_policy {
  double key(const network& n, double, uint64_t) const override {
    return -n.priority;
  }
};

/// For an adaptive search: every network gets its first quantum (the
/// search's first rung with ASHA's grace epochs, one epoch otherwise) before
/// any gets a second, in network order; then the network whose latest
/// score is best goes next. The configurations that look best are trained
/// deepest first, so a good one reaches its full budget early, while the
/// search still sees every configuration.
class best_first_policy : public scheduling_policy {
  double key(const network& n, double, uint64_t) const override {
    return n.started ? -n.score : -std::numeric_limits<double>::infinity();
  }
};

} // namespace

std::unique_ptr<scheduling_policy> make_policy(policy_kind kind) {
  switch (kind) {
  case policy_kind::fifo:
    return std::make_unique<fifo_policy>();
  case policy_kind::round_robin:
    return std::make_unique<round_robin_policy>();
  case policy_kind::shortest_remaining:
    return std::make_unique<shortest_remaining_policy>();
  case policy_kind::longest_remaining:
    return std::make_unique<longest_remaining_policy>();
  case policy_kind::priority:
    return std::make_unique<priority_policy>();
  case policy_kind::best_first:
    return std::make_unique<best_first_policy>();
  }
  return nullptr;
}

} // namespace actortrain
