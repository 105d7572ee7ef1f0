// What crosses nodes arrives bit for bit: floating-point fields of messages
// survive CAF's binary serialization exactly, NaN ("no metric"),
// infinities, -0 and subnormal numbers included.

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <caf/deep_to_string.hpp>

#include "actortrain/experiment.hpp"
#include "actortrain/results.hpp"
#include "protocol/cluster_messages.hpp"
#include "protocol/messages.hpp"
#include "protocol/slot.hpp"
#include "test_support.hpp"

using namespace actortrain;

namespace {

/// `x` after a trip through CAF's binary serializer, as between nodes.
template <class T> T through_the_wire(T x) {
  auto got = test::through_the_wire(std::move(x));
  REQUIRE(static_cast<bool>(got));
  return std::move(*got);
}

template <class F> bool same_bits(F a, F b) {
  return std::memcmp(&a, &b, sizeof(F)) == 0;
}

/// The values CAF 0.17's own packing got wrong: NaN came back as -1, a
/// subnormal as a huge number, -0 as 0, and an infinity never returned.
template <class F> std::vector<F> awkward() {
  using limits = std::numeric_limits<F>;
  return {limits::quiet_NaN(),
          -limits::quiet_NaN(),
          limits::infinity(),
          -limits::infinity(),
          F(-0.0),
          limits::denorm_min(),
          -limits::min() / 4,
          limits::max(),
          limits::lowest(),
          F(0.1),
          F(1) / F(3)};
}

} // namespace

TEST_CASE("epoch metrics cross nodes bit for bit, NaN, infinities, -0 and "
          "subnormals included") {
  for (double v : awkward<double>()) {
    CAPTURE(v);
    epoch_metrics m;
    m.network_id = 7;
    m.epoch = 3;
    m.train_loss = v;
    m.test_loss = -v;
    m.test_accuracy = v;
    m.seconds = v;
    // No validation split: "no metric" stays "no metric".
    auto got = through_the_wire(m);
    CHECK(got.network_id == 7);
    CHECK(got.epoch == 3);
    CHECK(same_bits(got.train_loss, m.train_loss));
    CHECK(same_bits(got.test_loss, m.test_loss));
    CHECK(same_bits(got.test_accuracy, m.test_accuracy));
    CHECK(same_bits(got.seconds, m.seconds));
    CHECK(std::isnan(got.validation_loss));
    CHECK(std::isnan(got.validation_accuracy));
  }
}

TEST_CASE("a network's outcome crosses nodes with its predictions bit for "
          "bit") {
  network_outcome o;
  o.network_id = 4;
  o.test_predictions = awkward<float>();
  for (int i = 0; i < 1000; ++i)
    o.test_predictions.push_back(std::ldexp(1.0f, -130 - i % 19));
  o.weights = {'w', '\0', 'x'};
  auto got = through_the_wire(o);
  REQUIRE(got.test_predictions.size() == o.test_predictions.size());
  for (size_t i = 0; i < o.test_predictions.size(); ++i) {
    CAPTURE(i);
    CHECK(same_bits(got.test_predictions[i], o.test_predictions[i]));
  }
  CHECK(std::isnan(got.test_loss));
  CHECK(got.weights == o.weights);
  // An empty vector stays empty.
  CHECK(through_the_wire(network_outcome{}).test_predictions.empty());
}

TEST_CASE("progress, grants, the trainers' hints and a quantum's limits cross "
          "nodes bit for bit") {
  auto nan = std::numeric_limits<double>::quiet_NaN();
  auto tiny = std::numeric_limits<double>::denorm_min();
  progress_report p;
  p.loss = nan;
  p.seconds_per_step = tiny;
  p.hop_seconds = -0.0;
  auto gp = through_the_wire(p);
  CHECK(same_bits(gp.loss, nan));
  CHECK(same_bits(gp.seconds_per_step, tiny));
  CHECK(same_bits(gp.hop_seconds, -0.0));
  trainer_info t;
  t.member_lrs = awkward<double>();
  t.member_priorities = {-std::numeric_limits<double>::infinity(), 2.5};
  auto gt = through_the_wire(t);
  REQUIRE(gt.member_lrs.size() == t.member_lrs.size());
  for (size_t i = 0; i < t.member_lrs.size(); ++i)
    CHECK(same_bits(gt.member_lrs[i], t.member_lrs[i]));
  CHECK(gt.member_priorities == t.member_priorities);
  remote_quantum q;
  q.seconds = std::numeric_limits<double>::infinity();
  CHECK(through_the_wire(q).seconds == q.seconds);
  grant_record g;
  g.start = 1.0 / 3;
  g.end = tiny;
  auto gg = through_the_wire(g);
  CHECK(same_bits(gg.start, g.start));
  CHECK(same_bits(gg.end, g.end));
  // An experiment's numbers too (they are finite: validation refuses the
  // others), down to the last bit.
  experiment e;
  e.base.optimizer.lr = 1.0 / 3;
  e.search_space.push_back({"optimizer.lr", true, tiny, 0.1});
  auto ge = through_the_wire(e);
  CHECK(same_bits(ge.base.optimizer.lr, e.base.optimizer.lr));
  REQUIRE(ge.search_space.size() == 1);
  CHECK(same_bits(ge.search_space[0].lo, tiny));
}

TEST_CASE("messages still read as numbers in to_string") {
  epoch_metrics m;
  m.train_loss = 0.5;
  auto text = caf::deep_to_string(m);
  CAPTURE(text);
  CHECK(text.find("0.5") != std::string::npos);
}
