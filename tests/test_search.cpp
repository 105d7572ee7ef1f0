// The adaptive search in real runs: trainers report epochs to the scheduler,
// which stops, holds and promotes networks by the search's decisions and
// stores every decision. Synthetic data, so the runs take seconds.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "actortrain/error.hpp"
#include "actortrain/run.hpp"
#include "actortrain/store.hpp"
#include "test_support.hpp"

using namespace actortrain;
using actortrain::test::temp_dir;
namespace fs = std::filesystem;

namespace {

/// Nine configurations that learn at very different speeds (learning
/// rates from 0.5 down to 1e-4), one network each, with a validation split,
/// so a search has something to tell apart. The best come first: networks
/// that reach a rung later are mostly worse, and below the cut.
experiment nine_learning_rates(int64_t epochs) {
  auto exp = test::tiny_experiment(1, epochs);
  exp.name = "search";
  exp.data.partition = partition_scheme::bootstrap;
  exp.base.train.validation_fraction = 0.25;
  double lr = 0.5;
  for (int i = 0; i < 9; ++i, lr /= 2.9) {
    auto cfg = exp.base;
    cfg.optimizer.lr = lr;
    cfg.label = fmt::format("optimizer.lr={:.3g}", lr);
    exp.variants.push_back(cfg);
  }
  return exp;
}

struct searched_run {
  run_result result;
  std::vector<decision_record> decisions;
  std::vector<grant_record> grants;
  std::map<uint64_t, std::vector<epoch_metrics>> epochs;
};

searched_run run_search(const std::string& dir, const experiment& exp) {
  run_options opts;
  opts.output_dir = dir;
  auto result = run(exp, opts);
  REQUIRE_MESSAGE(result, to_string_pretty(result.error()));
  auto store = results_store::open(dir + "/results.db");
  REQUIRE(store);
  auto decisions = (*store)->decisions();
  REQUIRE(static_cast<bool>(decisions));
  auto grants = (*store)->grants();
  REQUIRE(static_cast<bool>(grants));
  auto epochs = (*store)->all_epochs();
  REQUIRE(static_cast<bool>(epochs));
  searched_run r{*result, *decisions, *grants, {}};
  for (const auto& e : *epochs)
    r.epochs[e.network_id].push_back(e);
  return r;
}

const network_result& network(const run_result& r, uint64_t id) {
  auto i = std::find_if(r.networks.begin(), r.networks.end(),
                        [id](const network_result& n) { return n.id == id; });
  REQUIRE(i != r.networks.end());
  return *i;
}

/// "network epoch rung action" of every decision, in order: what must not
/// depend on timing (reasons and times may). Waits are recorded as networks
/// arrive at a rung, in an order that does depend on timing: they come
/// first, sorted.
std::vector<std::string> decided(const std::vector<decision_record>& ds) {
  std::vector<std::string> waits;
  std::vector<std::string> out;
  for (const auto& d : ds)
    (d.action == "wait" ? waits : out)
        .push_back(fmt::format("{} {} {} {}", d.network_id, d.epoch, d.rung,
                               d.action));
  std::sort(waits.begin(), waits.end());
  waits.insert(waits.end(), out.begin(), out.end());
  return waits;
}

/// Every stop decision ended its network there: finished, stopped by the
/// search, after exactly the rung's epochs; and no other network was.
void check_stops_carried_out(const searched_run& r) {
  std::map<uint64_t, int64_t> stopped;
  for (const auto& d : r.decisions)
    if (d.action == "stop") {
      CHECK(stopped.count(d.network_id) == 0);
      stopped[d.network_id] = d.rung;
    }
  for (const auto& n : r.result.networks) {
    CAPTURE(n.name);
    CHECK(n.status == network_status::finished);
    if (auto s = stopped.find(n.id); s != stopped.end()) {
      CHECK(n.stop_reason == stop_reason::search);
      CHECK(n.epochs == s->second);
    } else {
      CHECK(n.stop_reason == stop_reason::epochs);
    }
  }
}

} // namespace

TEST_CASE("ASHA stopping stops the networks below a rung's cut, at the rung") {
  temp_dir dir;
  auto exp = nine_learning_rates(4);
  exp.scheduler.search = search_kind::asha;
  exp.scheduler.slots = 2;
  // Rungs at 1 and 3 epochs (eta 3, budget 4).
  auto r = run_search(dir / "asha", exp);
  REQUIRE_FALSE(r.decisions.empty());
  check_stops_carried_out(r);
  auto stopped =
      std::count_if(r.result.networks.begin(), r.result.networks.end(),
                    [](const network_result& n) {
                      return n.stop_reason == stop_reason::search;
                    });
  CHECK(stopped > 0);
  CHECK(stopped < 9);
  for (const auto& d : r.decisions) {
    CHECK((d.action == "continue" || d.action == "stop"));
    CHECK((d.rung == 1 || d.rung == 3));
    CHECK(d.epoch == d.rung);
    CHECK(d.reason.find("validation_accuracy") != std::string::npos);
  }
  // Every network is decided on at rung 1; the first there always goes on.
  std::map<uint64_t, int> at_rung_1;
  for (const auto& d : r.decisions)
    if (d.rung == 1)
      ++at_rung_1[d.network_id];
  CHECK(at_rung_1.size() == 9);
  CHECK(r.decisions.front().action == "continue");

  // A stopped network's numbers are those it had at the rung in a run
  // without a search: the search only decides where a network stops.
  auto plain = exp;
  plain.scheduler.search = search_kind::none;
  auto full = run_search(dir / "plain", plain);
  for (const auto& n : r.result.networks) {
    CAPTURE(n.name);
    const auto& epochs = full.epochs.at(n.id);
    REQUIRE(static_cast<int64_t>(epochs.size()) >= n.epochs);
    const auto& at = epochs[static_cast<size_t>(n.epochs - 1)];
    CHECK(n.test_loss == at.test_loss);
    CHECK(n.test_accuracy == at.test_accuracy);
    // The search evaluated the validation split every epoch.
    for (const auto& e : r.epochs.at(n.id))
      CHECK(std::isfinite(e.validation_accuracy));
  }
}

TEST_CASE("deterministic ASHA makes the same decisions on 1 and 3 slots") {
  temp_dir dir;
  auto exp = nine_learning_rates(4);
  exp.scheduler.search = search_kind::asha;
  exp.scheduler.asha = asha_mode::promotion;
  exp.scheduler.deterministic = true;
  std::vector<searched_run> runs;
  for (int64_t slots : {1, 3}) {
    exp.scheduler.slots = slots;
    runs.push_back(run_search(dir / fmt::format("slots-{}", slots), exp));
  }
  REQUIRE_FALSE(runs[0].decisions.empty());
  CHECK(decided(runs[0].decisions) == decided(runs[1].decisions));
  for (const auto& r : runs) {
    check_stops_carried_out(r);
    // Synchronous successive halving: of 9 at rung 1 the top 3 go on, of
    // those 3 at rung 3 the top 1.
    std::map<int64_t, int64_t> promoted;
    std::map<int64_t, int64_t> waited;
    for (const auto& d : r.decisions) {
      if (d.action == "promote")
        ++promoted[d.rung];
      if (d.action == "wait")
        ++waited[d.rung];
    }
    CHECK(waited[1] == 9);
    CHECK(promoted[1] == 3);
    CHECK(waited[3] == 3);
    CHECK(promoted[3] == 1);
  }
  for (const auto& n : runs[0].result.networks) {
    CAPTURE(n.name);
    const auto& other = network(runs[1].result, n.id);
    CHECK(n.epochs == other.epochs);
    CHECK(n.test_loss == other.test_loss);
  }
}

TEST_CASE("a network waiting at a rung holds no slot until it is promoted") {
  temp_dir dir;
  auto exp = nine_learning_rates(4);
  exp.scheduler.search = search_kind::asha;
  exp.scheduler.asha = asha_mode::promotion;
  exp.scheduler.slots = 2;
  auto r = run_search(dir / "promotion", exp);
  check_stops_carried_out(r);
  // Waits and the promotion or stop that ends each wait, per network.
  std::map<uint64_t, std::vector<std::string>> story;
  for (const auto& d : r.decisions)
    story[d.network_id].push_back(d.action);
  CHECK(story.size() == 9);
  int64_t promoted_at_1 = 0;
  for (const auto& [id, actions] : story) {
    CAPTURE(id);
    REQUIRE(actions.size() >= 2);
    CHECK(actions[0] == "wait");
    CHECK((actions[1] == "promote" || actions[1] == "stop"));
    if (actions[1] == "promote")
      ++promoted_at_1;
  }
  // ASHA promotes only the top 1/eta of those at a rung (9 / 3).
  CHECK(promoted_at_1 <= 3);
  CHECK(promoted_at_1 >= 1);
  // No grant of a network between its wait and its promotion begins.
  for (const auto& d : r.decisions) {
    if (d.action != "wait")
      continue;
    double until = 1e300;
    for (const auto& e : r.decisions)
      if (e.network_id == d.network_id && e.time >= d.time &&
          (e.action == "promote" || e.action == "stop") && e.rung == d.rung) {
        until = e.time;
        break;
      }
    for (const auto& g : r.grants)
      if (g.network_id == d.network_id) {
        CAPTURE(d.network_id);
        CHECK_FALSE((g.start > d.time && g.start < until));
      }
  }
}

TEST_CASE("the median rule stops networks worse than the median") {
  temp_dir dir;
  auto exp = nine_learning_rates(4);
  exp.scheduler.search = search_kind::median;
  exp.scheduler.metric = search_metric::validation_loss;
  exp.scheduler.slots = 1;
  // Every network's epoch in turn: each is compared with all the others.
  exp.scheduler.policy = policy_kind::round_robin;
  exp.base.train.fuse = train_options::fuse_off;
  for (auto& cfg : exp.variants)
    cfg.train.fuse = train_options::fuse_off;
  auto r = run_search(dir / "median", exp);
  check_stops_carried_out(r);
  CHECK_FALSE(r.decisions.empty());
  for (const auto& d : r.decisions) {
    CHECK(d.action == "stop");
    CHECK(d.reason.find("median") != std::string::npos);
  }
}

TEST_CASE("bad search settings are named before anything trains") {
  temp_dir dir;
  auto exp = nine_learning_rates(4);
  exp.scheduler.search = search_kind::asha;
  run_options opts;
  opts.output_dir = dir / "out";
  auto expect_error = [&](const experiment& e, const std::string& text) {
    auto result = run(e, opts);
    REQUIRE_FALSE(result);
    auto msg = to_string_pretty(result.error());
    CHECK_MESSAGE(msg.find(text) != std::string::npos, msg);
    CHECK_FALSE(fs::exists(dir / "out/results.db"));
  };
  SUBCASE("a validation metric without a validation split") {
    exp.variants[4].train.validation_fraction = 0;
    expect_error(exp, "scheduler.metric: 'auto' (validation_accuracy) is "
                      "measured on a validation split");
  }
  SUBCASE("accuracy on a regression") {
    exp.data.task = task_kind::regression;
    exp.data.classes = 1;
    exp.scheduler.metric = search_metric::test_accuracy;
    expect_error(exp, "scheduler.metric: 'test_accuracy' needs a "
                      "classification task");
  }
  SUBCASE("a grace period as long as the budget") {
    exp.scheduler.grace_epochs = 4;
    expect_error(exp, "scheduler.grace_epochs: 4 is not below the longest "
                      "train.epochs (4)");
  }
  SUBCASE("promotion with the median rule") {
    exp.scheduler.search = search_kind::median;
    exp.scheduler.asha = asha_mode::promotion;
    expect_error(exp, "scheduler.asha_mode: only 'asha' and 'hyperband'");
  }
  SUBCASE("brackets without hyperband") {
    exp.scheduler.brackets = 2;
    expect_error(exp, "scheduler.brackets: only 'hyperband' has brackets");
  }
  SUBCASE("a reduction factor below 2") {
    exp.scheduler.reduction_factor = 1;
    expect_error(exp, "scheduler.reduction_factor");
  }
}

namespace {

/// The learning rate in "optimizer.lr=0.001".
double lr_in(const std::string& text) {
  auto eq = text.find('=');
  REQUIRE(eq != std::string::npos);
  return std::stod(text.substr(eq + 1));
}

} // namespace

TEST_CASE("deterministic PBT copies the best networks into the worst, the "
          "same on 1 and 3 slots") {
  temp_dir dir;
  auto exp = nine_learning_rates(4);
  exp.scheduler.search = search_kind::pbt;
  exp.scheduler.deterministic = true;
  exp.scheduler.interval_epochs = 2;
  std::vector<searched_run> runs;
  for (int64_t slots : {1, 3}) {
    exp.scheduler.slots = slots;
    runs.push_back(run_search(dir / fmt::format("slots-{}", slots), exp));
  }
  CHECK(decided(runs[0].decisions) == decided(runs[1].decisions));
  for (const auto& r : runs) {
    // At epoch 2 the bottom ceil(9 x 0.25) = 3 copy one of the top 3.
    std::map<uint64_t, double> accuracy_at_2;
    for (const auto& [id, es] : r.epochs)
      accuracy_at_2[id] = es.at(1).validation_accuracy;
    std::vector<double> ranked;
    for (const auto& [id, a] : accuracy_at_2)
      ranked.push_back(a);
    std::sort(ranked.rbegin(), ranked.rend());
    int exploits = 0;
    for (const auto& d : r.decisions) {
      CHECK(d.action != "refused");
      if (d.action != "exploit")
        continue;
      ++exploits;
      CAPTURE(d.reason);
      CHECK(d.rung == 2);
      REQUIRE(d.donor >= 0);
      auto donor = static_cast<uint64_t>(d.donor);
      CHECK(accuracy_at_2[donor] >= ranked[2]);
      CHECK(accuracy_at_2[d.network_id] <= ranked[6]);
      // Explore: the donor's rate times 0.8 or 1.2 (no [search] range). The
      // labels hold the rates to 3 digits.
      auto own_lr = lr_in(network(r.result, d.network_id).group_label);
      CHECK(lr_in(d.old_hyperparameters) ==
            doctest::Approx(own_lr).epsilon(1e-2));
      auto donor_lr = lr_in(network(r.result, donor).group_label);
      auto lr = lr_in(d.new_hyperparameters);
      bool perturbed = lr == doctest::Approx(donor_lr * 0.8).epsilon(1e-2) ||
                       lr == doctest::Approx(donor_lr * 1.2).epsilon(1e-2);
      CHECK(perturbed);
    }
    CHECK(exploits == 3);
    // PBT stops nobody: every network trains its whole budget.
    for (const auto& n : r.result.networks) {
      CHECK(n.status == network_status::finished);
      CHECK(n.epochs == 4);
    }
  }
  for (const auto& n : runs[0].result.networks) {
    CAPTURE(n.name);
    CHECK(n.test_loss == network(runs[1].result, n.id).test_loss);
  }
}

TEST_CASE("asynchronous PBT trains every network to its budget and records "
          "each copy") {
  temp_dir dir;
  auto exp = nine_learning_rates(6);
  exp.scheduler.search = search_kind::pbt;
  exp.scheduler.interval_epochs = 2;
  auto r = run_search(dir / "out", exp);
  int exploits = 0;
  std::map<uint64_t, int64_t> open;
  for (const auto& d : r.decisions) {
    if (d.action == "exploit") {
      ++exploits;
      CHECK(d.donor >= 0);
      CHECK(d.donor != static_cast<int64_t>(d.network_id));
      CHECK(d.new_hyperparameters.find("optimizer.lr=") == 0);
    }
    // A refusal names the exploit it answers.
    if (d.action == "refused") {
      bool answered = std::any_of(r.decisions.begin(), r.decisions.end(),
                                  [&](const decision_record& e) {
                                    return e.action == "exploit" &&
                                           e.network_id == d.network_id &&
                                           e.rung == d.rung;
                                  });
      CHECK(answered);
    }
  }
  CHECK(exploits > 0);
  for (const auto& n : r.result.networks) {
    CAPTURE(n.name);
    CHECK(n.status == network_status::finished);
    CHECK(n.epochs == 6);
  }
}

TEST_CASE("bad PBT settings are named before anything trains") {
  temp_dir dir;
  auto exp = nine_learning_rates(4);
  exp.scheduler.search = search_kind::pbt;
  run_options opts;
  opts.output_dir = dir / "out";
  auto expect_error = [&](const experiment& e, const std::string& text) {
    auto result = run(e, opts);
    REQUIRE_FALSE(result);
    auto msg = to_string_pretty(result.error());
    CHECK_MESSAGE(msg.find(text) != std::string::npos, msg);
    CHECK_FALSE(fs::exists(dir / "out/results.db"));
  };
  SUBCASE("an interval as long as the budget") {
    exp.scheduler.interval_epochs = 4;
    expect_error(exp, "scheduler.interval_epochs: 4 is not below the longest "
                      "train.epochs (4)");
  }
  SUBCASE("promotion") {
    exp.scheduler.asha = asha_mode::promotion;
    expect_error(exp, "scheduler.asha_mode: only 'asha' and 'hyperband'");
  }
  SUBCASE("networks of different models cannot copy each other") {
    exp.variants[3].model.hidden = {32};
    expect_error(exp, "every configuration must share the model and "
                      "optimizer.kind: model.hidden differs");
  }
  SUBCASE("a quantile above one half") {
    exp.scheduler.quantile = 0.6;
    expect_error(exp, "scheduler.quantile");
  }
}
