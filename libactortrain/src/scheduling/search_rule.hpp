#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "actortrain/choices.hpp"
#include "actortrain/results.hpp"

namespace actortrain {

struct experiment;

/// What an adaptive search is set to do (scheduler.search and its keys).
struct search_settings {
  search_kind kind = search_kind::none;
  asha_mode mode = asha_mode::stopping;
  bool deterministic = false;
  int64_t grace_epochs = 1;
  int64_t reduction_factor = 3;
  /// Resolved: at least 1.
  int64_t brackets = 1;
  int64_t min_samples = 3;
  /// The metric (resolved, never "auto"), its name for reasons, and
  /// whether lower values are better.
  search_metric source = search_metric::validation_accuracy;
  std::string metric = "validation_accuracy";
  bool minimize = false;
  // -- PBT (kind pbt) -------------------------------------------------------
  int64_t interval_epochs = 2;
  double quantile = 0.25;
  double resample_probability = 0.25;
  double perturb_down = 0.8;
  double perturb_up = 1.2;
  /// Seeds the search's own generator (train.seed): donors and learning
  /// rates are a function of it, the epoch and the network.
  uint64_t seed = 0;
  /// optimizer.lr's range in [search], for resampling (hi 0: none, PBT
  /// only perturbs).
  bool lr_log = false;
  double lr_lo = 0;
  double lr_hi = 0;
};

/// The search an experiment asks for, its metric resolved ("auto") and its
/// brackets counted.
search_settings search_settings_of(const experiment& exp);

/// What the search decided for one network.
enum class search_action : uint8_t {
  /// It goes on training (it passed a rung).
  go_on,
  /// It stops now: it finishes with its current weights.
  stop,
  /// It waits at a rung, holding no slot.
  wait,
  /// It was waiting and goes on.
  promote,
  /// PBT: it copies a better network's weights and optimizer state and
  /// trains on with a changed learning rate; it waits (holding no slot)
  /// until the copy is made (search_rule::exploited).
  exploit,
};

/// "continue", "stop", "wait", "promote", "exploit".
const char* name_of(search_action x);

struct search_decision {
  uint64_t network_id = 0;
  /// The epoch the network had reached.
  int64_t epoch = 0;
  /// The rung (in epochs) the decision is about; the median rule's is the
  /// epoch.
  int64_t rung = 0;
  search_action action = search_action::go_on;
  std::string reason;
  // -- An exploit: the donor, the epoch of its state to copy, the learning
  // rates before (the recipient's, the donor's) and after.
  uint64_t donor = 0;
  int64_t version = 0;
  double old_lr = 0;
  double donor_lr = 0;
  double new_lr = 0;
};

/// What a resumed run's search had seen before the interruption, so that
/// it replays it instead of starting over: each network's epochs up to the
/// state it continues from (every epoch of one that is done), and the
/// decisions the store holds, which are not recorded twice.
struct search_history {
  struct network {
    uint64_t id = 0;
    /// Its budget in epochs and learning rate (as search_rule::add takes).
    int64_t epochs = 0;
    double lr = 0;
    /// Finished, failed or cancelled: it trains no more.
    bool done = false;
    /// The epochs to replay, in order; the last one is where it continues.
    std::vector<epoch_metrics> reported;
  };
  std::vector<network> networks;
  /// (network, rung, action) of every stored decision.
  std::set<std::tuple<uint64_t, int64_t, std::string>> recorded;
};

/// The rules of an adaptive search, as a pure function of the metrics
/// reported: ASHA (stopping and promotion), HyperBand as ASHA over brackets,
/// and the median stopping rule; with `deterministic`, decisions wait for a
/// barrier (every network that reaches a rung has reported there) and are
/// taken in network-id order, so they depend on the metrics alone, never on
/// the order reports arrive in. No actor, no clock: the scheduler feeds it
/// and carries out what it returns.
///
/// Scores: the metric, negated when lower is better, so higher is better.
class search_rule {
public:
  explicit search_rule(search_settings settings);

  /// A network the search covers, with its budget in epochs and its
  /// learning rate (what PBT perturbs). Every network is added before any
  /// reports.
  void add(uint64_t id, int64_t epochs, double lr = 0);

  /// PBT: the exploit decided for `id` was carried out (`ok`: the donor's
  /// state was copied, the new learning rate holds) or refused (the network
  /// keeps its own state and rate); either way it trains on.
  void exploited(uint64_t id, bool ok);

  /// A network's current learning rate as the search knows it.
  double learning_rate(uint64_t id) const;

  /// A network's score after `epoch` epochs (reported for every epoch, in
  /// order). Returns the decisions this makes, for it and for others.
  std::vector<search_decision> report(uint64_t id, int64_t epoch, double score);

  /// The network finished or failed: it no longer holds a barrier back.
  std::vector<search_decision> done(uint64_t id);

  /// Nothing trains and nothing is queued while some networks wait: no
  /// promotion can come, so each rung keeps the top max(1, n/eta) of all
  /// that reached it and stops the other waiting networks (deterministic
  /// mode: resolves the barriers with whoever reached them).
  std::vector<search_decision> idle();

  /// The score of an epoch's metrics: the metric, negated when lower is
  /// better.
  double score(const epoch_metrics& m) const noexcept;

  const search_settings& settings() const noexcept {
    return settings_;
  }

  /// Whether the network waits at a rung (holds no slot).
  bool waiting(uint64_t id) const;
  /// Whether the network was stopped by the search.
  bool stopped(uint64_t id) const;
  /// Whether networks may wait at all (promotion or deterministic mode):
  /// then each network must have a trainer of its own.
  bool pauses() const noexcept;

  /// The network's rungs in epochs (ASHA, HyperBand) and its bracket.
  std::vector<int64_t> rungs(uint64_t id) const;
  int64_t bracket(uint64_t id) const;

private:
  struct network {
    int64_t epochs = 0;
    int64_t bracket = 0;
    std::vector<int64_t> rungs;
    bool alive = true;
    bool stopped = false;
    bool waiting = false;
    int64_t waiting_at = 0;
    int64_t epoch = 0;
    double best = 0;
    double sum = 0;
    double lr = 0;
    double pending_lr = 0;
    /// Its learning rate when it reached `last_interval`: the rate its
    /// state of that epoch trains with.
    double interval_lr = 0;
    /// PBT: its latest interval epoch and score there (0: none yet).
    int64_t last_interval = 0;
    double last_score = 0;
  };
  /// A rung of a bracket (the median rule: bracket 0, an epoch).
  using rung_key = std::pair<int64_t, int64_t>;

  bool median() const noexcept {
    return settings_.kind == search_kind::median;
  }
  bool pbt() const noexcept {
    return settings_.kind == search_kind::pbt;
  }
  /// PBT: compares `id` at `epoch` with `population` (score, id): in the
  /// bottom quantile it exploits one of the top quantile, else it goes on.
  void exploit_or_go_on(uint64_t id, int64_t epoch,
                        std::vector<std::pair<double, uint64_t>> population,
                        search_action keep, std::vector<search_decision>& out);
  std::vector<int64_t> rungs_of(int64_t bracket, int64_t epochs) const;
  /// Whether every live network that reaches `key` has reported there.
  bool barrier_ready(const rung_key& key) const;
  void resolve(const rung_key& key, std::vector<search_decision>& out);
  void try_barriers(std::vector<search_decision>& out);
  void promotions(std::vector<search_decision>& out);
  void stop(uint64_t id, int64_t rung, std::string reason,
            std::vector<search_decision>& out);
  void go_on(uint64_t id, int64_t rung, search_action action,
             std::string reason, std::vector<search_decision>& out);
  /// The metric's value for a score, for reasons.
  double value(double score) const noexcept {
    return settings_.minimize ? -score : score;
  }

  search_settings settings_;
  std::map<uint64_t, network> nets_;
  /// Scores recorded at each rung (the median rule: running means).
  std::map<rung_key, std::map<uint64_t, double>> recorded_;
  std::map<rung_key, bool> resolved_;
};

/// numpy's linear percentile (0..100) of `xs` (not empty).
double percentile(std::vector<double> xs, double p);

} // namespace actortrain
