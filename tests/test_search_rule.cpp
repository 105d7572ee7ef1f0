// The search rules as pure functions: golden decision logs for ASHA
// (stopping, promotion, deterministic), HyperBand's brackets and the median
// rule, and their invariants.

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "actortrain/experiment.hpp"
#include "scheduling/search_rule.hpp"

using namespace actortrain;

namespace {

/// "id:action" for each decision, in order.
std::vector<std::string> log_of(const std::vector<search_decision>& ds) {
  std::vector<std::string> out;
  for (const auto& d : ds)
    out.push_back(std::to_string(d.network_id) + ":" + name_of(d.action));
  return out;
}

search_settings asha(asha_mode mode, bool deterministic = false) {
  search_settings s;
  s.kind = search_kind::asha;
  s.mode = mode;
  s.deterministic = deterministic;
  s.grace_epochs = 1;
  s.reduction_factor = 3;
  s.metric = "validation_accuracy";
  return s;
}

/// Scores at epoch 1 of networks 0..8.
const std::vector<double> scores{5, 3, 8, 1, 9, 2, 7, 4, 6};

std::vector<std::string> feed(search_rule& rule,
                              const std::vector<uint64_t>& order) {
  std::vector<std::string> all;
  for (auto id : order)
    for (auto& x : log_of(rule.report(id, 1, scores[id])))
      all.push_back(x);
  return all;
}

} // namespace

TEST_CASE("percentile interpolates as numpy does") {
  CHECK(percentile({3, 5}, 100.0 * 2 / 3) == doctest::Approx(13.0 / 3));
  CHECK(percentile({5, 3, 8}, 50) == 5);
  CHECK(percentile({1, 2, 3, 4}, 50) == doctest::Approx(2.5));
  CHECK(percentile({7}, 66) == 7);
}

TEST_CASE("ASHA stopping: golden decisions against the cut of the networks "
          "before") {
  search_rule rule{asha(asha_mode::stopping)};
  for (uint64_t id = 0; id < 9; ++id)
    rule.add(id, 9);
  CHECK(rule.rungs(0) == std::vector<int64_t>{1, 3});
  CHECK_FALSE(rule.pauses());
  auto got = feed(rule, {0, 1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(got == std::vector<std::string>{"0:continue", "1:stop", "2:continue",
                                        "3:stop", "4:continue", "5:stop",
                                        "6:continue", "7:stop", "8:stop"});
  // Epochs between rungs decide nothing; a stopped network reports no more.
  CHECK(rule.report(0, 2, 1).empty());
  CHECK(rule.report(1, 2, 100).empty());
  CHECK(rule.stopped(1));
  CHECK_FALSE(rule.waiting(0));
}

TEST_CASE("ASHA promotion: only the top 1/eta of a rung is promoted, the "
          "rest wait holding no slot until the search ends") {
  search_rule rule{asha(asha_mode::promotion)};
  for (uint64_t id = 0; id < 9; ++id)
    rule.add(id, 9);
  REQUIRE(rule.pauses());
  auto got = feed(rule, {0, 1, 2, 3, 4, 5, 6, 7, 8});
  std::vector<std::string> promoted;
  for (const auto& x : got)
    if (x.find("promote") != std::string::npos)
      promoted.push_back(x);
  // After 3 reports the top 1 (network 2) may go on, after 5 network 4,
  // after 9 the third best (network 6): never more than n/eta.
  CHECK(promoted ==
        std::vector<std::string>{"2:promote", "4:promote", "6:promote"});
  CHECK(std::count_if(got.begin(), got.end(), [](const std::string& x) {
          return x.find("wait") != std::string::npos;
        }) == 9);
  for (uint64_t id : {0, 1, 3, 5, 7, 8})
    CHECK(rule.waiting(id));
  CHECK(log_of(rule.idle()) == std::vector<std::string>{"0:stop", "1:stop",
                                                        "3:stop", "5:stop",
                                                        "7:stop", "8:stop"});
  // Rung 3: the first promoted network waits alone until two more report.
  CHECK(log_of(rule.report(2, 3, 0.5)) == std::vector<std::string>{"2:wait"});
  CHECK(rule.report(2, 2, 0.5).empty());
}

TEST_CASE("deterministic ASHA decides at the barrier, the same in any "
          "report order") {
  std::vector<std::vector<uint64_t>> orders{{0, 1, 2, 3, 4, 5, 6, 7, 8},
                                            {8, 3, 5, 0, 7, 1, 6, 2, 4}};
  std::vector<std::vector<std::string>> logs;
  for (const auto& order : orders) {
    search_rule rule{asha(asha_mode::stopping, true)};
    for (uint64_t id = 0; id < 9; ++id)
      rule.add(id, 9);
    auto got = feed(rule, order);
    std::vector<std::string> decided;
    for (const auto& x : got)
      if (x.find("wait") == std::string::npos)
        decided.push_back(x);
    logs.push_back(decided);
  }
  CHECK(logs[0] == logs[1]);
  CHECK(logs[0] == std::vector<std::string>{"0:stop", "1:stop", "2:promote",
                                            "3:stop", "4:promote", "5:stop",
                                            "6:promote", "7:stop", "8:stop"});
}

TEST_CASE("a deterministic barrier does not wait for a network that "
          "finished or failed before the rung") {
  search_rule rule{asha(asha_mode::stopping, true)};
  for (uint64_t id = 0; id < 3; ++id)
    rule.add(id, 9);
  CHECK(log_of(rule.report(0, 1, 1)) == std::vector<std::string>{"0:wait"});
  CHECK(log_of(rule.report(1, 1, 2)) == std::vector<std::string>{"1:wait"});
  // Network 2 fails before epoch 1: the two that reached the rung are
  // decided; max(1, 2/3) = 1 goes on.
  CHECK(log_of(rule.done(2)) ==
        std::vector<std::string>{"0:stop", "1:promote"});
}

TEST_CASE("HyperBand: brackets start at grace x eta^s, the last trains in "
          "full") {
  experiment exp;
  exp.base.train.epochs = 9;
  exp.scheduler.search = search_kind::hyperband;
  exp.scheduler.grace_epochs = 1;
  exp.scheduler.reduction_factor = 3;
  auto s = search_settings_of(exp);
  CHECK(s.brackets == 3);
  CHECK(s.metric == "validation_accuracy");
  CHECK_FALSE(s.minimize);
  search_rule rule{s};
  for (uint64_t id = 0; id < 6; ++id)
    rule.add(id, 9);
  CHECK(rule.rungs(0) == std::vector<int64_t>{1, 3});
  CHECK(rule.rungs(1) == std::vector<int64_t>{3});
  CHECK(rule.rungs(2).empty());
  CHECK(rule.bracket(4) == 1);
  // Networks of different brackets never compete: 3 is bracket 0's second
  // at rung 1, compared with network 0 only.
  CHECK(log_of(rule.report(0, 1, 5)) == std::vector<std::string>{"0:continue"});
  CHECK(rule.report(1, 1, 9).empty());
  CHECK(log_of(rule.report(3, 1, 1)) == std::vector<std::string>{"3:stop"});
  exp.data.task = task_kind::regression;
  exp.scheduler.search = search_kind::asha;
  s = search_settings_of(exp);
  CHECK(s.brackets == 1);
  CHECK(s.metric == "validation_loss");
  CHECK(s.minimize);
}

TEST_CASE("median stopping rule: best so far against the median of the "
          "others' running means") {
  search_settings s;
  s.kind = search_kind::median;
  s.grace_epochs = 2;
  s.min_samples = 2;
  s.metric = "validation_accuracy";
  search_rule rule{s};
  for (uint64_t id = 0; id < 4; ++id)
    rule.add(id, 5);
  // Before the grace epochs nothing is decided.
  for (uint64_t id = 0; id < 4; ++id)
    CHECK(rule.report(id, 1, 0.1 * static_cast<double>(id + 1)).empty());
  CHECK(rule.report(0, 2, 0.5).empty()); // no others yet
  CHECK(rule.report(1, 2, 0.6).empty()); // one other
  // Running means at 2: network 0 0.3, network 1 0.4; median 0.35. Network
  // 2's best is 0.3: stopped. Network 3's best 0.9 goes on.
  CHECK(log_of(rule.report(2, 2, 0.3)) == std::vector<std::string>{"2:stop"});
  CHECK(rule.report(3, 2, 0.9).empty());
  CHECK(rule.stopped(2));
  CHECK_FALSE(rule.stopped(3));
}

TEST_CASE("deterministic median rule waits for every network at each "
          "epoch") {
  search_settings s;
  s.kind = search_kind::median;
  s.deterministic = true;
  s.grace_epochs = 1;
  s.min_samples = 2;
  s.metric = "validation_loss";
  s.minimize = true;
  search_rule rule{s};
  for (uint64_t id = 0; id < 3; ++id)
    rule.add(id, 4);
  // Losses 0.5, 0.9, 0.4 as scores (negated).
  CHECK(rule.report(1, 1, -0.9).empty());
  CHECK(rule.waiting(1));
  CHECK(rule.report(0, 1, -0.5).empty());
  auto last = rule.report(2, 1, -0.4);
  CHECK(log_of(last) == std::vector<std::string>{"1:stop"});
  CHECK(last.front().reason.find("validation_loss 0.9") != std::string::npos);
  CHECK_FALSE(rule.waiting(0));
  CHECK_FALSE(rule.waiting(2));
}

TEST_CASE("ASHA promotion when nothing else is left: the best at the highest "
          "rung goes on, the others stop") {
  search_rule rule{asha(asha_mode::promotion)};
  for (uint64_t id = 0; id < 3; ++id)
    rule.add(id, 9);
  feed(rule, {0, 1, 2});
  // Network 2 (score 8) was promoted at rung 1 and alone reached rung 3.
  CHECK(log_of(rule.report(2, 3, 0.5)) == std::vector<std::string>{"2:wait"});
  CHECK(log_of(rule.idle()) ==
        std::vector<std::string>{"0:stop", "1:stop", "2:promote"});
  CHECK_FALSE(rule.waiting(2));
  CHECK(rule.idle().empty());
}

namespace {

search_settings pbt(bool deterministic) {
  search_settings s;
  s.kind = search_kind::pbt;
  s.deterministic = deterministic;
  s.interval_epochs = 2;
  s.quantile = 0.25;
  s.resample_probability = 0;
  s.seed = 7;
  s.metric = "validation_accuracy";
  return s;
}

} // namespace

TEST_CASE("deterministic PBT: at each interval the bottom quantile copies "
          "the top quantile, the same in any report order") {
  std::vector<std::vector<search_decision>> runs;
  for (auto order : {std::vector<uint64_t>{0, 1, 2, 3, 4, 5, 6, 7},
                     std::vector<uint64_t>{7, 3, 5, 1, 0, 6, 2, 4}}) {
    search_rule rule{pbt(true)};
    for (uint64_t id = 0; id < 8; ++id)
      rule.add(id, 6, 0.01 * static_cast<double>(id + 1));
    std::vector<search_decision> all;
    // Epoch 1 is not an interval: nothing is decided.
    for (auto id : order)
      CHECK(rule.report(id, 1, 0).empty());
    for (size_t k = 0; k < order.size(); ++k) {
      auto ds = rule.report(order[k], 2, static_cast<double>(order[k]));
      // Only the last report completes the barrier.
      if (k + 1 < order.size()) {
        REQUIRE(ds.size() == 1);
        CHECK(ds[0].action == search_action::wait);
        continue;
      }
      for (auto& d : ds)
        if (d.action != search_action::wait)
          all.push_back(d);
    }
    runs.push_back(all);
    // Scores are the ids: 0 and 1 (bottom ceil(8 x 0.25) = 2) copy 6 or 7.
    REQUIRE(all.size() == 8);
    for (const auto& d : all) {
      CAPTURE(d.network_id);
      CHECK(d.rung == 2);
      if (d.network_id < 2) {
        CHECK(d.action == search_action::exploit);
        CHECK((d.donor == 6 || d.donor == 7));
        CHECK(d.version == 2);
        CHECK(d.donor_lr == doctest::Approx(0.01 * (d.donor + 1)));
        bool perturbed = d.new_lr == doctest::Approx(d.donor_lr * 0.8) ||
                         d.new_lr == doctest::Approx(d.donor_lr * 1.2);
        CHECK(perturbed);
        // It holds no slot until the copy is made or refused.
        CHECK(rule.waiting(d.network_id));
      } else {
        CHECK(d.action == search_action::promote);
        CHECK_FALSE(rule.waiting(d.network_id));
      }
    }
    // Made: the new rate holds; refused: the old one stays.
    auto made = std::find_if(all.begin(), all.end(),
                             [](const auto& d) { return d.network_id == 0; });
    rule.exploited(0, true);
    rule.exploited(1, false);
    CHECK_FALSE(rule.waiting(0));
    CHECK_FALSE(rule.waiting(1));
    CHECK(rule.learning_rate(0) == made->new_lr);
    CHECK(rule.learning_rate(1) == doctest::Approx(0.02));
  }
  REQUIRE(runs[0].size() == runs[1].size());
  for (size_t i = 0; i < runs[0].size(); ++i) {
    CHECK(runs[0][i].network_id == runs[1][i].network_id);
    CHECK(runs[0][i].donor == runs[1][i].donor);
    CHECK(runs[0][i].new_lr == runs[1][i].new_lr);
  }
}

TEST_CASE("asynchronous PBT compares with every network's latest interval "
          "and resamples from the space") {
  auto s = pbt(false);
  s.resample_probability = 1;
  s.lr_log = true;
  s.lr_lo = 1e-4;
  s.lr_hi = 1e-1;
  search_rule rule{s};
  for (uint64_t id = 0; id < 4; ++id)
    rule.add(id, 8, 0.01);
  // Alone, or one of two (ceil(2 x 0.25) = 1 at each end): the first goes
  // on; the second is ranked against it.
  auto first = rule.report(3, 2, 0.9);
  REQUIRE(first.size() == 1);
  CHECK(first[0].action == search_action::go_on);
  auto second = rule.report(0, 2, 0.1);
  REQUIRE(second.size() == 1);
  CHECK(second[0].action == search_action::exploit);
  CHECK(second[0].donor == 3);
  CHECK(second[0].new_lr >= 1e-4);
  CHECK(second[0].new_lr <= 1e-1);
  // The best of three goes on.
  auto third = rule.report(1, 2, 0.95);
  REQUIRE(third.size() == 1);
  CHECK(third[0].action == search_action::go_on);
  // A network past its last interval is not compared; nor between
  // intervals.
  CHECK(rule.report(3, 3, 0.9).empty());
  CHECK(rule.pauses());
  // Idle with a copy in flight decides nothing: the copy ends by itself.
  CHECK(rule.idle().empty());
  CHECK(rule.waiting(0));
}
