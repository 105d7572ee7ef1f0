#include "scheduling/search_rule.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "actortrain/experiment.hpp"
#include "config/resolved_metric.hpp"

namespace actortrain {

search_settings search_settings_of(const experiment& exp) {
  const auto& s = exp.scheduler;
  search_settings r;
  r.kind = s.search;
  r.mode = s.asha;
  r.deterministic = s.deterministic;
  r.grace_epochs = s.grace_epochs;
  r.reduction_factor = s.reduction_factor;
  r.min_samples = s.min_samples;
  auto metric = resolved_metric(exp);
  r.source = metric;
  r.metric = name_of(metric);
  r.minimize = metric == search_metric::validation_loss ||
               metric == search_metric::test_loss ||
               metric == search_metric::train_loss;
  r.brackets = std::max<int64_t>(1, s.brackets);
  if (s.search == search_kind::hyperband && s.brackets == 0) {
    // As many brackets as fit: the last one's first rung is at or beyond
    // the longest budget, so it trains its networks in full (HyperBand's
    // most patient bracket).
    int64_t longest = 0;
    for (const auto& cfg : exp.configs())
      longest = std::max(longest, cfg.train.epochs);
    int64_t rung = s.grace_epochs;
    r.brackets = 1;
    while (rung * s.reduction_factor <= longest) {
      rung *= s.reduction_factor;
      ++r.brackets;
    }
  }
  if (s.search == search_kind::median || s.search == search_kind::pbt)
    r.brackets = 1;
  r.interval_epochs = s.interval_epochs;
  r.quantile = s.quantile;
  r.resample_probability = s.resample_probability;
  r.perturb_down = s.perturb_down;
  r.perturb_up = s.perturb_up;
  r.seed = exp.base.train.seed;
  for (const auto& range : exp.search_space)
    if (range.key == "optimizer.lr") {
      r.lr_log = range.log;
      r.lr_lo = range.lo;
      r.lr_hi = range.hi;
    }
  return r;
}

const char* name_of(search_action x) {
  switch (x) {
  case search_action::go_on:
    return "continue";
  case search_action::stop:
    return "stop";
  case search_action::wait:
    return "wait";
  case search_action::promote:
    return "promote";
  case search_action::exploit:
    return "exploit";
  }
  return "?";
}

double percentile(std::vector<double> xs, double p) {
  std::sort(xs.begin(), xs.end());
  auto pos = p / 100.0 * static_cast<double>(xs.size() - 1);
  auto lo = static_cast<size_t>(std::floor(pos));
  auto hi = std::min(lo + 1, xs.size() - 1);
  auto f = pos - static_cast<double>(lo);
  return xs[lo] + (xs[hi] - xs[lo]) * f;
}

search_rule::search_rule(search_settings settings)
    : settings_(std::move(settings)) {
  settings_.brackets = std::max<int64_t>(1, settings_.brackets);
}

std::vector<int64_t> search_rule::rungs_of(int64_t bracket,
                                           int64_t epochs) const {
  std::vector<int64_t> result;
  if (median())
    return result;
  int64_t rung = settings_.grace_epochs;
  for (int64_t b = 0; b < bracket && rung < epochs; ++b)
    rung *= settings_.reduction_factor;
  for (; rung < epochs; rung *= settings_.reduction_factor)
    result.push_back(rung);
  return result;
}

void search_rule::add(uint64_t id, int64_t epochs, double lr) {
  network n;
  n.epochs = epochs;
  n.lr = lr;
  n.bracket =
      static_cast<int64_t>(id % static_cast<uint64_t>(settings_.brackets));
  n.rungs = rungs_of(n.bracket, epochs);
  nets_[id] = std::move(n);
}

double search_rule::score(const epoch_metrics& m) const noexcept {
  switch (settings_.source) {
  case search_metric::automatic:
  case search_metric::validation_accuracy:
    return m.validation_accuracy;
  case search_metric::validation_loss:
    return -m.validation_loss;
  case search_metric::test_accuracy:
    return m.test_accuracy;
  case search_metric::test_loss:
    return -m.test_loss;
  case search_metric::train_loss:
    return -m.train_loss;
  }
  return m.validation_accuracy;
}

bool search_rule::pauses() const noexcept {
  return settings_.deterministic || pbt() ||
         (!median() && settings_.mode == asha_mode::promotion);
}

void search_rule::exploited(uint64_t id, bool ok) {
  auto i = nets_.find(id);
  if (i == nets_.end())
    return;
  i->second.waiting = false;
  if (ok)
    i->second.lr = i->second.pending_lr;
}

double search_rule::learning_rate(uint64_t id) const {
  auto i = nets_.find(id);
  return i == nets_.end() ? 0 : i->second.lr;
}

namespace {

/// splitmix64: the search's generator, a pure function of its input.
uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

double unit(uint64_t bits) {
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

/// Best first, ties by network id.
void rank(std::vector<std::pair<double, uint64_t>>& xs) {
  std::sort(xs.begin(), xs.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
}

} // namespace

void search_rule::exploit_or_go_on(
    uint64_t id, int64_t epoch,
    std::vector<std::pair<double, uint64_t>> population, search_action keep,
    std::vector<search_decision>& out) {
  const auto& s = settings_;
  rank(population);
  auto total = population.size();
  // As Ray's PBT: ceil(n x quantile) networks at each end, at most half.
  auto count = std::min(
      total / 2,
      static_cast<size_t>(std::ceil(static_cast<double>(total) * s.quantile)));
  size_t at = 0;
  while (at < total && population[at].second != id)
    ++at;
  auto& n = nets_.at(id);
  auto place = fmt::format("ranked {} of {} at epoch {} ({} {:.4g})", at + 1,
                           total, epoch, s.metric, value(n.last_score));
  if (count == 0 || at < total - count) {
    go_on(id, epoch, keep,
          fmt::format("{}; the bottom {} exploit the top {}", place, count,
                      count),
          out);
    return;
  }
  auto bits =
      mix(mix(mix(s.seed ^ 0x5EA2C4B7ull) ^ static_cast<uint64_t>(epoch)) ^ id);
  auto pick = static_cast<size_t>(bits % count);
  auto donor = population[pick].second;
  const auto& d = nets_.at(donor);
  double new_lr = 0;
  std::string how;
  if (s.lr_hi > 0 && unit(mix(bits ^ 1)) < s.resample_probability) {
    auto u = unit(mix(bits ^ 2));
    new_lr = s.lr_log ? std::exp(std::log(s.lr_lo) +
                                 (std::log(s.lr_hi) - std::log(s.lr_lo)) * u)
                      : s.lr_lo + (s.lr_hi - s.lr_lo) * u;
    how = fmt::format("drawn again from [{:.4g}, {:.4g}]", s.lr_lo, s.lr_hi);
  } else {
    auto factor = (mix(bits ^ 3) & 1) != 0 ? s.perturb_up : s.perturb_down;
    new_lr = d.interval_lr * factor;
    how = fmt::format("{:.4g} x the donor's {:.4g}", factor, d.interval_lr);
  }
  n.waiting = true;
  n.waiting_at = epoch;
  n.pending_lr = new_lr;
  search_decision x{
      id, n.epoch, epoch, search_action::exploit,
      fmt::format("{}: copies network {} (ranked {}, {} {:.4g}) at epoch "
                  "{}; learning rate {:.4g} ({}) instead of {:.4g}",
                  place, donor, pick + 1, s.metric, value(d.last_score),
                  d.last_interval, new_lr, how, n.lr)};
  x.donor = donor;
  x.version = d.last_interval;
  x.old_lr = n.lr;
  x.donor_lr = d.interval_lr;
  x.new_lr = new_lr;
  out.push_back(std::move(x));
}

bool search_rule::waiting(uint64_t id) const {
  auto i = nets_.find(id);
  return i != nets_.end() && i->second.waiting;
}

bool search_rule::stopped(uint64_t id) const {
  auto i = nets_.find(id);
  return i != nets_.end() && i->second.stopped;
}

std::vector<int64_t> search_rule::rungs(uint64_t id) const {
  auto i = nets_.find(id);
  return i == nets_.end() ? std::vector<int64_t>{} : i->second.rungs;
}

int64_t search_rule::bracket(uint64_t id) const {
  auto i = nets_.find(id);
  return i == nets_.end() ? 0 : i->second.bracket;
}

void search_rule::stop(uint64_t id, int64_t rung, std::string reason,
                       std::vector<search_decision>& out) {
  auto& n = nets_.at(id);
  n.alive = false;
  n.stopped = true;
  n.waiting = false;
  out.push_back({id, n.epoch, rung, search_action::stop, std::move(reason)});
}

void search_rule::go_on(uint64_t id, int64_t rung, search_action action,
                        std::string reason, std::vector<search_decision>& out) {
  auto& n = nets_.at(id);
  n.waiting = false;
  out.push_back({id, n.epoch, rung, action, std::move(reason)});
}

std::vector<search_decision> search_rule::report(uint64_t id, int64_t epoch,
                                                 double score) {
  std::vector<search_decision> out;
  auto i = nets_.find(id);
  if (i == nets_.end() || !i->second.alive || epoch <= i->second.epoch)
    return out;
  auto& n = i->second;
  if (!std::isfinite(score))
    score = -1e300; // an infinite loss ranks last, and stays comparable
  n.best = n.epoch == 0 ? score : std::max(n.best, score);
  n.sum += score;
  n.epoch = epoch;
  const auto& s = settings_;
  if (pbt()) {
    if (epoch % s.interval_epochs != 0 || epoch >= n.epochs)
      return out;
    n.last_interval = epoch;
    n.last_score = score;
    n.interval_lr = n.lr;
    recorded_[{0, epoch}][id] = score;
    if (s.deterministic) {
      n.waiting = true;
      n.waiting_at = epoch;
      out.push_back({id, epoch, epoch, search_action::wait,
                     fmt::format("reached interval epoch {} with {} {:.4g}",
                                 epoch, s.metric, value(score))});
      try_barriers(out);
      return out;
    }
    // Asynchronous: against every live network's latest interval score.
    std::vector<std::pair<double, uint64_t>> population;
    for (const auto& [other, m] : nets_)
      if (m.alive && m.last_interval > 0)
        population.emplace_back(m.last_score, other);
    exploit_or_go_on(id, epoch, std::move(population), search_action::go_on,
                     out);
    return out;
  }
  if (median()) {
    if (epoch < s.grace_epochs)
      return out;
    rung_key key{0, epoch};
    auto mean = n.sum / static_cast<double>(epoch);
    auto& rec = recorded_[key];
    if (s.deterministic) {
      rec[id] = mean;
      if (epoch < n.epochs) {
        n.waiting = true;
        n.waiting_at = epoch;
      }
      try_barriers(out);
      return out;
    }
    if (epoch < n.epochs && static_cast<int64_t>(rec.size()) >= s.min_samples) {
      std::vector<double> others;
      for (const auto& [other, m] : rec)
        others.push_back(m);
      auto med = percentile(others, 50);
      if (n.best < med)
        stop(id, epoch,
             fmt::format("best {} {:.4g} is worse than the median {:.4g} of "
                         "{} other networks' running means at epoch {}",
                         s.metric, value(n.best), value(med), others.size(),
                         epoch),
             out);
    }
    rec[id] = mean;
    return out;
  }
  if (std::find(n.rungs.begin(), n.rungs.end(), epoch) == n.rungs.end())
    return out;
  rung_key key{n.bracket, epoch};
  auto& rec = recorded_[key];
  if (pauses()) {
    rec[id] = score;
    n.waiting = true;
    n.waiting_at = epoch;
    out.push_back({id, epoch, epoch, search_action::wait,
                   fmt::format("reached rung {} with {} {:.4g}", epoch,
                               s.metric, value(score))});
    if (s.deterministic)
      try_barriers(out);
    else
      promotions(out);
    return out;
  }
  // Stopping (as Ray Tune's ASHA): the cut is the (1 - 1/eta) percentile of
  // the networks that reached this rung before.
  if (rec.empty()) {
    go_on(id, epoch, search_action::go_on,
          fmt::format("first at rung {} ({} {:.4g})", epoch, s.metric,
                      value(score)),
          out);
  } else {
    std::vector<double> values;
    for (const auto& [other, v] : rec)
      values.push_back(v);
    auto cut = percentile(
        values, (1.0 - 1.0 / static_cast<double>(s.reduction_factor)) * 100.0);
    auto text =
        fmt::format("{} {:.4g} {} the cut {:.4g} of rung {} (top "
                    "1/{} of the {} before it)",
                    s.metric, value(score), score < cut ? "misses" : "makes",
                    value(cut), epoch, s.reduction_factor, values.size());
    if (score < cut)
      stop(id, epoch, std::move(text), out);
    else
      go_on(id, epoch, search_action::go_on, std::move(text), out);
  }
  rec[id] = score;
  return out;
}

std::vector<search_decision> search_rule::done(uint64_t id) {
  std::vector<search_decision> out;
  auto i = nets_.find(id);
  if (i == nets_.end() || !i->second.alive)
    return out;
  i->second.alive = false;
  i->second.waiting = false;
  if (settings_.deterministic)
    try_barriers(out);
  return out;
}

bool search_rule::barrier_ready(const rung_key& key) const {
  auto rec = recorded_.find(key);
  if (rec == recorded_.end())
    return false;
  for (const auto& [id, n] : nets_) {
    if (!n.alive)
      continue;
    bool reaches = median() ? n.epochs >= key.second
                   : pbt()  ? n.epochs > key.second
                            : n.bracket == key.first &&
                                 std::find(n.rungs.begin(), n.rungs.end(),
                                           key.second) != n.rungs.end();
    if (reaches && rec->second.count(id) == 0)
      return false;
  }
  return true;
}

void search_rule::resolve(const rung_key& key,
                          std::vector<search_decision>& out) {
  resolved_[key] = true;
  const auto& rec = recorded_[key];
  auto rung = key.second;
  const auto& s = settings_;
  std::vector<search_decision> decided;
  if (pbt()) {
    // Every network at the barrier against the barrier's scores, in
    // network-id order.
    std::vector<std::pair<double, uint64_t>> population;
    for (const auto& [id, score] : rec)
      population.emplace_back(score, id);
    for (const auto& [id, score] : rec) {
      auto& n = nets_.at(id);
      if (n.alive && n.waiting && n.waiting_at == rung)
        exploit_or_go_on(id, rung, population, search_action::promote, decided);
    }
  } else if (median()) {
    for (const auto& [id, mean] : rec) {
      auto& n = nets_.at(id);
      if (!n.alive || !n.waiting || n.waiting_at != rung)
        continue;
      std::vector<double> others;
      for (const auto& [other, m] : rec)
        if (other != id)
          others.push_back(m);
      if (static_cast<int64_t>(others.size()) >= s.min_samples) {
        auto med = percentile(others, 50);
        if (n.best < med) {
          stop(id, rung,
               fmt::format("best {} {:.4g} is worse than the median {:.4g} "
                           "of {} other networks' running means at epoch {}",
                           s.metric, value(n.best), value(med), others.size(),
                           rung),
               decided);
          continue;
        }
      }
      n.waiting = false;
    }
  } else {
    // Synchronous successive halving: the top max(1, n/eta) go on, ties
    // broken by network id.
    std::vector<std::pair<double, uint64_t>> ranked;
    for (const auto& [id, score] : rec)
      ranked.emplace_back(score, id);
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    auto total = static_cast<int64_t>(ranked.size());
    auto keep = std::max<int64_t>(1, total / s.reduction_factor);
    for (int64_t r = 0; r < total; ++r) {
      auto [score, id] = ranked[static_cast<size_t>(r)];
      auto& n = nets_.at(id);
      if (!n.alive || !n.waiting || n.waiting_at != rung)
        continue;
      auto text = fmt::format("ranked {} of {} at rung {} ({} {:.4g}); the "
                              "top {} go on",
                              r + 1, total, rung, s.metric, value(score), keep);
      if (r < keep)
        go_on(id, rung, search_action::promote, std::move(text), decided);
      else
        stop(id, rung, std::move(text), decided);
    }
  }
  std::sort(decided.begin(), decided.end(), [](const auto& a, const auto& b) {
    return a.network_id < b.network_id;
  });
  for (auto& d : decided)
    out.push_back(std::move(d));
}

void search_rule::try_barriers(std::vector<search_decision>& out) {
  for (const auto& [key, rec] : recorded_)
    if (!resolved_[key] && barrier_ready(key))
      resolve(key, out);
}

void search_rule::promotions(std::vector<search_decision>& out) {
  // Higher rungs first, as in asynchronous successive halving: a slot goes
  // to the network furthest along that earned it.
  for (auto k = recorded_.rbegin(); k != recorded_.rend(); ++k) {
    const auto& [key, rec] = *k;
    auto total = static_cast<int64_t>(rec.size());
    auto keep = total / settings_.reduction_factor;
    if (keep == 0)
      continue;
    std::vector<std::pair<double, uint64_t>> ranked;
    for (const auto& [id, score] : rec)
      ranked.emplace_back(score, id);
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    for (int64_t r = 0; r < keep; ++r) {
      auto [score, id] = ranked[static_cast<size_t>(r)];
      auto& n = nets_.at(id);
      if (!n.alive || !n.waiting || n.waiting_at != key.second)
        continue;
      go_on(id, key.second, search_action::promote,
            fmt::format("ranked {} of {} at rung {} ({} {:.4g}); the top {} "
                        "are promoted",
                        r + 1, total, key.second, settings_.metric,
                        value(score), keep),
            out);
    }
  }
}

std::vector<search_decision> search_rule::idle() {
  std::vector<search_decision> out;
  if (settings_.deterministic) {
    // Only a network that never reported can hold a barrier now: decide
    // with whoever reached it.
    for (const auto& [key, rec] : recorded_)
      if (!resolved_[key])
        resolve(key, out);
    return out;
  }
  // PBT waits only for copies in flight: they end by themselves.
  if (pbt())
    return out;
  // No promotion can come any more: each rung decides as synchronous
  // successive halving would, over everyone who reached it. The top
  // max(1, n/eta) go on (so the best at the highest rung trains its full
  // budget), the others stop.
  for (const auto& [key, rec] : recorded_) {
    std::vector<std::pair<double, uint64_t>> ranked;
    for (const auto& [id, score] : rec)
      ranked.emplace_back(score, id);
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    auto total = static_cast<int64_t>(ranked.size());
    auto keep = std::max<int64_t>(1, total / settings_.reduction_factor);
    std::vector<search_decision> decided;
    for (int64_t r = 0; r < total; ++r) {
      auto [score, id] = ranked[static_cast<size_t>(r)];
      auto& n = nets_.at(id);
      if (!n.alive || !n.waiting || n.waiting_at != key.second)
        continue;
      auto text = fmt::format("ranked {} of {} at rung {} ({} {:.4g}) when "
                              "nothing else was left to train; the top {} go "
                              "on",
                              r + 1, total, key.second, settings_.metric,
                              value(score), keep);
      if (r < keep)
        go_on(id, key.second, search_action::promote, std::move(text), decided);
      else
        stop(id, key.second, std::move(text), decided);
    }
    std::sort(decided.begin(), decided.end(), [](const auto& a, const auto& b) {
      return a.network_id < b.network_id;
    });
    for (auto& d : decided)
      out.push_back(std::move(d));
  }
  return out;
}

} // namespace actortrain
