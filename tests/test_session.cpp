// A live session: networks submitted while others train, futures, cancel,
// the metrics stream, and the errors a program can run into.

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <doctest/doctest.h>
#include <fmt/format.h>

#include "actortrain/error.hpp"
#include "actortrain/session.hpp"
#include "actortrain/store.hpp"
#include "test_support.hpp"

using namespace actortrain;
using namespace std::chrono_literals;

namespace {

/// Two configurations, so a submission spans groups.
experiment two_configs(int64_t networks, int64_t epochs, int64_t fuse) {
  auto exp = test::tiny_experiment(networks, epochs);
  exp.base.train.fuse = fuse;
  auto slow = exp.base;
  slow.optimizer.lr = 0.05;
  slow.label = "slow";
  auto fast = exp.base;
  fast.label = "fast";
  exp.variants = {fast, slow};
  return exp;
}

std::unique_ptr<session> open_session(const experiment& setup,
                                      const std::string& dir) {
  session_options opts;
  opts.output_dir = dir;
  auto s = session::open(setup, opts);
  REQUIRE_MESSAGE(static_cast<bool>(s), to_string_pretty(s.error()));
  return std::move(*s);
}

/// Every field that a network's training decides, bit for bit.
void check_same(const network_result& a, const network_result& b) {
  CAPTURE(a.name);
  CHECK(a.id == b.id);
  CHECK(a.name == b.name);
  CHECK(a.seed == b.seed);
  CHECK(a.status == b.status);
  CHECK(a.epochs == b.epochs);
  CHECK(a.steps == b.steps);
  CHECK(a.train_loss == b.train_loss);
  CHECK(a.test_loss == b.test_loss);
  CHECK(a.test_accuracy == b.test_accuracy);
}

std::vector<uint64_t> ids_of(const std::vector<network_handle>& hs) {
  std::vector<uint64_t> ids;
  for (const auto& h : hs)
    ids.push_back(h.id());
  return ids;
}

} // namespace

TEST_CASE("session: futures resolve with the results of a batch run, "
          "unfused and fused") {
  for (auto fuse : {train_options::fuse_off, train_options::fuse_auto}) {
    CAPTURE(fuse);
    auto exp = two_configs(3, 3, fuse);
    test::temp_dir dir;
    run_options ro;
    ro.output_dir = dir / "batch";
    auto batch = run(exp, ro);
    REQUIRE_MESSAGE(static_cast<bool>(batch), to_string_pretty(batch.error()));

    auto s = open_session(exp, dir / "live");
    auto handles = s->submit(exp);
    REQUIRE(static_cast<bool>(handles));
    REQUIRE(handles->size() == 6);
    CHECK(ids_of(*handles) == std::vector<uint64_t>{0, 1, 2, 3, 4, 5});
    // A continuation sees the same result the future gives.
    std::atomic<int> continued{0};
    for (const auto& h : *handles)
      h.then([&](const caf::expected<network_result>& r) {
        if (r && r->status == network_status::finished)
          ++continued;
      });
    auto results = wait_all(*handles);
    REQUIRE(static_cast<bool>(results));
    for (size_t i = 0; i < results->size(); ++i) {
      check_same((*results)[i], batch->networks[i]);
      CHECK((*handles)[i].done());
      CHECK((*handles)[i].latest().epoch == 3);
    }
    auto closed = s->close();
    REQUIRE_MESSAGE(static_cast<bool>(closed),
                    to_string_pretty(closed.error()));
    CHECK(continued.load() == 6);
    // The store holds what a batch run's does: the same networks, the
    // same weights, the ensembles of both configurations.
    auto stored = read_results(dir / "live");
    REQUIRE(static_cast<bool>(stored));
    REQUIRE(stored->networks.size() == 6);
    for (size_t i = 0; i < 6; ++i)
      check_same(stored->networks[i], batch->networks[i]);
    CHECK(test::stored_weights(dir / "live") ==
          test::stored_weights(dir / "batch"));
    CHECK(stored->ensembles.size() == batch->ensembles.size());
    for (size_t i = 0; i < stored->ensembles.size(); ++i) {
      CHECK(stored->ensembles[i].accuracy == batch->ensembles[i].accuracy);
      CHECK(stored->ensembles[i].label == batch->ensembles[i].label);
    }
    CHECK(stored->status == "finished");
  }
}

TEST_CASE("session: networks submitted while others train join the queue "
          "and wait_any returns the first done") {
  auto exp = test::tiny_experiment(1, 30);
  exp.scheduler.slots = 2;
  exp.scheduler.quantum_steps = 4;
  test::temp_dir dir;
  auto s = open_session(exp, dir / "live");
  auto long_cfg = exp.base;
  long_cfg.train.networks = 2;
  auto first = s->submit(long_cfg);
  REQUIRE(static_cast<bool>(first));
  // Wait until the long ones train, then submit short ones.
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while ((*first)[0].latest().epoch < 1 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  REQUIRE((*first)[0].latest().epoch >= 1);
  REQUIRE_FALSE((*first)[0].done());
  auto short_cfg = exp.base;
  short_cfg.train.networks = 2;
  short_cfg.train.epochs = 1;
  short_cfg.label = "short";
  auto second = s->submit(short_cfg);
  REQUIRE(static_cast<bool>(second));
  CHECK(ids_of(*second) == std::vector<uint64_t>{2, 3});
  std::vector<network_handle> all = *first;
  all.insert(all.end(), second->begin(), second->end());
  auto any = wait_any(all, 120s);
  REQUIRE(static_cast<bool>(any));
  CHECK(all[*any].done());
  REQUIRE(static_cast<bool>(wait_all(all)));
  auto closed = s->close();
  REQUIRE(static_cast<bool>(closed));
  CHECK(closed->networks.size() == 4);
  CHECK(closed->count(network_status::finished) == 4);
  CHECK(closed->networks[2].group_label == "short");
  CHECK(closed->networks[0].group_label == "submission-0");
  // The short networks were granted slots before the long ones ended.
  auto store = results_store::open((dir / "live") + "/results.db");
  REQUIRE(static_cast<bool>(store));
  auto grants = (*store)->grants();
  REQUIRE(static_cast<bool>(grants));
  double last_long = 0;
  double first_short = 1e9;
  for (const auto& g : *grants) {
    if (g.network_id < 2)
      last_long = std::max(last_long, g.end);
    else
      first_short = std::min(first_short, g.start);
  }
  CHECK(first_short < last_long);
}

TEST_CASE("session: cancel ends a network at its quantum boundary and "
          "leaves the others' results unchanged") {
  for (auto fuse : {train_options::fuse_off, int64_t{3}}) {
    CAPTURE(fuse);
    // Far more epochs than the victim trains before its cancel arrives,
    // however slowly this test's thread is scheduled.
    auto exp = test::tiny_experiment(3, 400);
    exp.base.train.fuse = fuse;
    exp.scheduler.slots = 1;
    exp.scheduler.quantum_steps = 8;
    test::temp_dir dir;
    run_options ro;
    ro.output_dir = dir / "batch";
    auto batch = run(exp, ro);
    REQUIRE(static_cast<bool>(batch));

    auto s = open_session(exp, dir / "live");
    auto handles = s->submit(exp);
    REQUIRE(static_cast<bool>(handles));
    auto& victim = (*handles)[1];
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (victim.latest().epoch < 2 &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(1ms);
    REQUIRE(victim.latest().epoch >= 2);
    REQUIRE_FALSE(victim.done());
    CHECK_FALSE(static_cast<bool>(s->cancel(victim)));
    auto r = victim.wait_for(60s);
    REQUIRE(r.has_value());
    REQUIRE(static_cast<bool>(*r));
    CHECK((*r)->status == network_status::cancelled);
    CHECK((*r)->epochs < 400);
    CHECK(victim.status() == network_status::cancelled);
    // Cancelling again, or a network that is done, does nothing.
    CHECK_FALSE(static_cast<bool>(victim.cancel()));
    auto results = wait_all(*handles);
    REQUIRE(static_cast<bool>(results));
    check_same((*results)[0], batch->networks[0]);
    check_same((*results)[2], batch->networks[2]);
    auto closed = s->close();
    REQUIRE_MESSAGE(static_cast<bool>(closed),
                    to_string_pretty(closed.error()));
    CHECK(closed->count(network_status::cancelled) == 1);
    CHECK(closed->count(network_status::finished) == 2);
    CHECK(closed->networks[1].status == network_status::cancelled);
    // Its epochs until the cancel stay; it gets no grant after its end,
    // and no weights.
    auto store = results_store::open((dir / "live") + "/results.db");
    REQUIRE(static_cast<bool>(store));
    auto epochs = (*store)->epochs(1);
    REQUIRE(static_cast<bool>(epochs));
    CHECK(epochs->size() >= 2);
    CHECK(static_cast<int64_t>(epochs->size()) < 400);
    CHECK(test::stored_weights(dir / "live").count("net-0001.pt") == 0);
    // Only the finished networks are in the ensemble.
    REQUIRE_FALSE(closed->ensembles.empty());
    CHECK(closed->ensembles.back().networks == 2);
  }
}

TEST_CASE("session: cancel a network still waiting for its first slot") {
  auto exp = test::tiny_experiment(3, 20);
  exp.scheduler.slots = 1;
  exp.base.train.fuse = train_options::fuse_off;
  test::temp_dir dir;
  auto s = open_session(exp, dir / "live");
  auto handles = s->submit(exp);
  REQUIRE(static_cast<bool>(handles));
  // With one slot and fifo, network 2 waits behind the others.
  CHECK_FALSE(static_cast<bool>((*handles)[2].cancel()));
  auto r = (*handles)[2].wait_for(60s);
  REQUIRE(r.has_value());
  REQUIRE(static_cast<bool>(*r));
  CHECK((*r)->status == network_status::cancelled);
  CHECK((*r)->epochs == 0);
  REQUIRE(static_cast<bool>(wait_all(*handles)));
  auto closed = s->close();
  REQUIRE(static_cast<bool>(closed));
  CHECK(closed->count(network_status::finished) == 2);
}

TEST_CASE("session: the metrics stream delivers every epoch once, in "
          "order, to a slow reader too") {
  auto exp = test::tiny_experiment(4, 6);
  exp.scheduler.slots = 2;
  test::temp_dir dir;
  auto s = open_session(exp, dir / "live");
  auto fast = s->metrics();
  auto slow = s->metrics();
  REQUIRE(static_cast<bool>(fast));
  REQUIRE(static_cast<bool>(slow));
  auto handles = s->submit(exp);
  REQUIRE(static_cast<bool>(handles));
  std::map<uint64_t, std::vector<int64_t>> seen_fast;
  std::map<uint64_t, std::vector<int64_t>> seen_slow;
  // The fast reader keeps up while the run goes on.
  std::thread reader([&] {
    while (!fast->finished()) {
      auto batch = fast->next(256, 200ms);
      REQUIRE(static_cast<bool>(batch));
      for (const auto& m : *batch)
        seen_fast[m.network_id].push_back(m.epoch);
    }
  });
  // The slow one reads one epoch at a time, falling behind the run.
  for (int i = 0; i < 5; ++i) {
    auto batch = slow->next(1, 10s);
    REQUIRE(static_cast<bool>(batch));
    for (const auto& m : *batch)
      seen_slow[m.network_id].push_back(m.epoch);
    std::this_thread::sleep_for(20ms);
  }
  REQUIRE(static_cast<bool>(s->close()));
  reader.join();
  while (!slow->finished()) {
    auto batch = slow->next(1, 1s);
    REQUIRE(static_cast<bool>(batch));
    for (const auto& m : *batch)
      seen_slow[m.network_id].push_back(m.epoch);
  }
  std::vector<int64_t> every{1, 2, 3, 4, 5, 6};
  REQUIRE(seen_fast.size() == 4);
  REQUIRE(seen_slow.size() == 4);
  for (uint64_t id = 0; id < 4; ++id) {
    CAPTURE(id);
    CHECK(seen_fast[id] == every);
    CHECK(seen_slow[id] == every);
  }
  // A stream opened after the end reads the whole run, then says so.
  auto late = s->metrics();
  REQUIRE(static_cast<bool>(late));
  auto everything = late->next(1000, 1s);
  REQUIRE(static_cast<bool>(everything));
  CHECK(everything->size() == 24);
  auto rest = late->next(1000, 1s);
  REQUIRE(static_cast<bool>(rest));
  CHECK(rest->empty());
  CHECK(late->finished());
}

TEST_CASE("session: bad input gets a clear error and affects nothing else") {
  auto exp = test::tiny_experiment(2, 2);
  test::temp_dir dir;
  auto s = open_session(exp, dir / "live");
  auto good = s->submit(exp);
  REQUIRE(static_cast<bool>(good));

  // An invalid configuration names its key; nothing is submitted.
  auto bad = exp.base;
  bad.train.batch_size = 0;
  auto refused = s->submit(bad);
  REQUIRE_FALSE(static_cast<bool>(refused));
  CHECK(to_string_pretty(refused.error()).find("batch_size") !=
        std::string::npos);
  // A model that does not fit the session's data.
  auto misfit = exp.base;
  misfit.model.input = 5;
  auto refused_fit = s->submit(misfit);
  REQUIRE_FALSE(static_cast<bool>(refused_fit));
  CHECK(to_string_pretty(refused_fit.error()).find("model.input") !=
        std::string::npos);
  // Ids continue after the refusals.
  auto later = s->submit(exp.base);
  REQUIRE(static_cast<bool>(later));
  CHECK(ids_of(*later) == std::vector<uint64_t>{2, 3});

  // A handle of another session, and a handle of none.
  test::temp_dir other_dir;
  auto other = open_session(exp, other_dir / "other");
  auto theirs = other->submit(exp.base);
  REQUIRE(static_cast<bool>(theirs));
  auto err = s->cancel(theirs->front());
  CHECK(is(err, errc::invalid_handle));
  std::vector<network_handle> mixed{good->front(), theirs->front()};
  CHECK(is(wait_any(mixed).error(), errc::invalid_handle));
  network_handle none;
  CHECK(is(none.wait().error(), errc::invalid_handle));
  CHECK(is(none.cancel(), errc::invalid_handle));
  CHECK(is(wait_any({}).error(), errc::invalid_handle));
  REQUIRE(static_cast<bool>(other->close()));

  // The good networks trained regardless.
  auto all = *good;
  all.insert(all.end(), later->begin(), later->end());
  auto results = wait_all(all);
  REQUIRE(static_cast<bool>(results));
  for (const auto& r : *results)
    CHECK(r.status == network_status::finished);
  auto closed = s->close();
  REQUIRE(static_cast<bool>(closed));
  CHECK(closed->networks.size() == 4);

  // After close: submitting fails, the handles keep their results.
  auto after = s->submit(exp.base);
  REQUIRE_FALSE(static_cast<bool>(after));
  CHECK(is(after.error(), errc::session_closed));
  CHECK(good->front().status() == network_status::finished);
  CHECK(static_cast<bool>(good->front().wait()));
}

TEST_CASE("session: what it cannot open is refused before anything starts") {
  test::temp_dir dir;
  auto exp = test::tiny_experiment(2, 2);
  {
    auto searched = exp;
    searched.scheduler.search = search_kind::asha;
    session_options opts;
    opts.output_dir = dir / "a";
    auto s = session::open(searched, opts);
    REQUIRE_FALSE(static_cast<bool>(s));
    CHECK(to_string_pretty(s.error()).find("scheduler.search") !=
          std::string::npos);
  }
  {
    run_options ro;
    ro.output_dir = dir / "done";
    REQUIRE(static_cast<bool>(run(exp, ro)));
    // A folder of another setup (other data) is refused.
    auto other = exp;
    other.data.data_seed += 1;
    session_options opts;
    opts.output_dir = dir / "done";
    auto s = session::open(other, opts);
    REQUIRE_FALSE(static_cast<bool>(s));
    CHECK(to_string_pretty(s.error()).find("different experiment") !=
          std::string::npos);
    // The run there is untouched.
    auto r = read_results(dir / "done");
    REQUIRE(static_cast<bool>(r));
    CHECK(r->count(network_status::finished) == 2);
    CHECK(r->resumes == 0);
  }
  {
    // One session per folder at a time.
    auto s = open_session(exp, dir / "busy");
    session_options opts;
    opts.output_dir = dir / "busy";
    auto second = session::open(exp, opts);
    REQUIRE_FALSE(static_cast<bool>(second));
    CHECK(to_string_pretty(second.error()).find("in use") != std::string::npos);
  }
}

TEST_CASE("session: stop ends it with the finished networks kept") {
  // Far more epochs than the test lets run: the stop and the cancels below
  // must reach a network still training however slowly this test's thread
  // is scheduled (with 500 it finished first once under ctest -j2).
  auto exp = test::tiny_experiment(2, 1'000'000);
  exp.scheduler.slots = 1;
  exp.scheduler.quantum_steps = 8;
  exp.base.train.fuse = train_options::fuse_off;
  test::temp_dir dir;
  auto s = open_session(exp, dir / "live");
  auto quick = exp.base;
  quick.train.networks = 1;
  quick.train.epochs = 1;
  auto first = s->submit(quick);
  REQUIRE(static_cast<bool>(first));
  REQUIRE(static_cast<bool>(first->front().wait()));
  auto slow = s->submit(exp.base);
  REQUIRE(static_cast<bool>(slow));
  while (slow->front().latest().epoch < 1)
    std::this_thread::sleep_for(5ms);
  s->stop();
  auto closed = s->close();
  REQUIRE_FALSE(static_cast<bool>(closed));
  CHECK(is(closed.error(), errc::run_aborted));
  // The networks not done have no result, and say why.
  auto r = slow->front().wait();
  REQUIRE_FALSE(static_cast<bool>(r));
  CHECK(is(r.error(), errc::session_closed));
  CHECK(is(slow->front().set_priority(1), errc::session_closed));
  CHECK(first->front().status() == network_status::finished);
  auto stored = read_results(dir / "live");
  REQUIRE(static_cast<bool>(stored));
  CHECK(stored->count(network_status::finished) == 1);
  CHECK(stored->status == "interrupted");
  auto stopped_at = stored->networks[1].epochs;

  // Reopened: the finished network keeps its result, the stopped one
  // continues from its checkpoint; cancelled, it stays cancelled.
  auto again = open_session(exp, dir / "live");
  auto handles = again->networks();
  REQUIRE(handles.size() == 3);
  CHECK(handles[0].status() == network_status::finished);
  CHECK(handles[0].wait()->test_loss == stored->networks[0].test_loss);
  CHECK_FALSE(handles[1].done());
  while (handles[1].latest().epoch <= stopped_at)
    std::this_thread::sleep_for(5ms);
  CHECK_FALSE(static_cast<bool>(handles[1].cancel()));
  CHECK_FALSE(static_cast<bool>(handles[2].cancel()));
  auto cancelled = handles[1].wait();
  REQUIRE(static_cast<bool>(cancelled));
  CHECK(cancelled->status == network_status::cancelled);
  CHECK(cancelled->epochs > stopped_at);
  REQUIRE(static_cast<bool>(again->close()));
  again.reset();
  auto third = open_session(exp, dir / "live");
  auto last = third->networks();
  REQUIRE(last.size() == 3);
  CHECK(last[1].status() == network_status::cancelled);
  CHECK(last[2].status() == network_status::cancelled);
  auto closed_third = third->close();
  REQUIRE(static_cast<bool>(closed_third));
  CHECK(closed_third->resumes == 2);
  CHECK(closed_third->count(network_status::cancelled) == 2);
}

TEST_CASE("session: a closed session's folder reopens with its results, and "
          "takes more networks") {
  auto exp = two_configs(2, 2, train_options::fuse_auto);
  test::temp_dir dir;
  std::vector<network_result> first_results;
  {
    auto s = open_session(exp, dir / "live");
    auto handles = s->submit(exp);
    REQUIRE(static_cast<bool>(handles));
    auto closed = s->close();
    REQUIRE(static_cast<bool>(closed));
    first_results = closed->networks;
  }
  auto s = open_session(exp, dir / "live");
  auto known = s->networks();
  REQUIRE(known.size() == 4);
  for (size_t i = 0; i < known.size(); ++i) {
    REQUIRE(known[i].done());
    auto r = known[i].wait();
    REQUIRE(static_cast<bool>(r));
    check_same(*r, first_results[i]);
    CHECK(r->group_label == first_results[i].group_label);
  }
  auto cfg = exp.base;
  cfg.label = "more";
  auto more = s->submit(cfg);
  REQUIRE(static_cast<bool>(more));
  CHECK(ids_of(*more) == std::vector<uint64_t>{4, 5});
  auto closed = s->close();
  REQUIRE(static_cast<bool>(closed));
  REQUIRE(closed->networks.size() == 6);
  CHECK(closed->networks[4].group_label == "more");
  CHECK(closed->networks[0].group_label == "fast");
  for (size_t i = 0; i < 4; ++i)
    check_same(closed->networks[i], first_results[i]);
  // One ensemble per configuration and one of all, labelled as submitted.
  std::set<std::string> labels;
  for (const auto& e : closed->ensembles)
    labels.insert(e.label);
  CHECK(labels.count("fast") == 1);
  CHECK(labels.count("slow") == 1);
  CHECK(labels.count("more") == 1);
}

TEST_CASE("session: a live network's priority changes its place in the "
          "queue") {
  auto exp = test::tiny_experiment(1, 4);
  exp.scheduler.slots = 1;
  exp.scheduler.quantum_steps = 8;
  exp.scheduler.policy = policy_kind::priority;
  exp.base.train.fuse = train_options::fuse_off;
  test::temp_dir dir;
  auto s = open_session(exp, dir / "live");
  std::vector<network_handle> all;
  for (int i = 0; i < 3; ++i) {
    auto cfg = exp.base;
    cfg.label = fmt::format("n{}", i);
    // The first one long, so the others wait while it trains.
    if (i == 0)
      cfg.train.epochs = 400;
    auto h = s->submit(cfg);
    REQUIRE(static_cast<bool>(h));
    all.push_back(h->front());
    // Network 0 holds the slot before the others arrive (their trainers'
    // first requests could otherwise reach the scheduler before its own).
    while (i == 0 && all[0].latest().epoch < 1)
      std::this_thread::sleep_for(5ms);
  }
  // Equal priorities run in id order, each to its end (0, 1, 2); raised,
  // the last one goes next, at network 0's next quantum boundary.
  REQUIRE_FALSE(all[0].done());
  REQUIRE_FALSE(static_cast<bool>(all[2].set_priority(10)));
  REQUIRE(static_cast<bool>(wait_all(all)));
  CHECK(static_cast<bool>(all[0].set_priority(1)) == false); // done: no-op
  auto closed = s->close();
  REQUIRE(static_cast<bool>(closed));
  CHECK_FALSE(is(all[1].set_priority(1), errc::session_closed)); // done
  network_handle none;
  CHECK(is(none.set_priority(1), errc::invalid_handle));
  auto store = results_store::open((dir / "live") + "/results.db");
  REQUIRE(static_cast<bool>(store));
  auto grants = (*store)->grants();
  REQUIRE(static_cast<bool>(grants));
  std::map<uint64_t, std::pair<double, double>> span;
  for (const auto& g : *grants) {
    auto [it, fresh] =
        span.emplace(g.network_id, std::make_pair(g.start, g.end));
    if (!fresh) {
      it->second.first = std::min(it->second.first, g.start);
      it->second.second = std::max(it->second.second, g.end);
    }
  }
  REQUIRE(span.size() == 3);
  // Network 2 ended before network 1 began, and while network 0 trained.
  CHECK(span[2].second <= span[1].first);
  CHECK(span[2].second < span[0].second);
}

TEST_CASE("session: an actor of the program's drives it by typed messages, "
          "never blocking") {
  auto exp = test::tiny_experiment(2, 3);
  test::temp_dir dir;
  auto s = open_session(exp, dir / "live");
  {
    auto api = s->actor();
    caf::scoped_actor self{s->system()};
    std::vector<uint64_t> ids;
    self->request(api, caf::infinite, submit_atom_v, exp.base)
        .receive([&](std::vector<uint64_t>& got) { ids = std::move(got); },
                 [&](caf::error& err) { FAIL(to_string_pretty(err)); });
    REQUIRE(ids == std::vector<uint64_t>{0, 1});
    // An event-based actor asks for both results and passes them on as they
    // come.
    auto sink = caf::actor{self};
    s->system().spawn([api, ids, sink](caf::event_based_actor* me) {
      for (auto id : ids)
        me->request(api, caf::infinite, wait_atom_v, id)
            .then([me, sink](network_result& r) { me->send(sink, r); });
    });
    std::map<uint64_t, network_result> got;
    for (int i = 0; i < 2; ++i)
      self->receive([&](network_result& r) { got[r.id] = r; },
                    caf::after(std::chrono::seconds(120)) >>
                        [&] { FAIL("no result within 120 s"); });
    REQUIRE(got.size() == 2);
    for (auto id : ids) {
      auto h = s->handle(id);
      REQUIRE(static_cast<bool>(h));
      auto r = h->wait();
      REQUIRE(static_cast<bool>(r));
      check_same(got[id], *r);
      CHECK(got[id].status == network_status::finished);
    }
    // Done networks: nothing to cancel or reprioritise.
    self->request(api, caf::infinite, cancel_atom_v, ids[0])
        .receive([&](bool told) { CHECK_FALSE(told); },
                 [&](caf::error& err) { FAIL(to_string_pretty(err)); });
    self->request(api, caf::infinite, priority_atom_v, ids[1], 3.0)
        .receive([&](bool told) { CHECK_FALSE(told); },
                 [&](caf::error& err) { FAIL(to_string_pretty(err)); });
    // A live one can be cancelled by message.
    auto long_cfg = exp.base;
    long_cfg.train.networks = 1;
    long_cfg.train.epochs = 100000;
    std::vector<uint64_t> long_ids;
    self->request(api, caf::infinite, submit_atom_v, long_cfg)
        .receive([&](std::vector<uint64_t>& got_ids) { long_ids = got_ids; },
                 [&](caf::error& err) { FAIL(to_string_pretty(err)); });
    REQUIRE(long_ids.size() == 1);
    self->request(api, caf::infinite, cancel_atom_v, long_ids[0])
        .receive([&](bool told) { CHECK(told); },
                 [&](caf::error& err) { FAIL(to_string_pretty(err)); });
    self->request(api, caf::infinite, wait_atom_v, long_ids[0])
        .receive(
            [&](network_result& r) {
              CHECK(r.status == network_status::cancelled);
            },
            [&](caf::error& err) { FAIL(to_string_pretty(err)); });
    // Errors come back as errors: an unknown id, a bad configuration.
    std::string unknown_wait;
    self->request(api, caf::infinite, wait_atom_v, uint64_t{99})
        .receive(
            [&](network_result&) { FAIL("a result for network 99"); },
            [&](caf::error& err) { unknown_wait = to_string_pretty(err); });
    CHECK(unknown_wait.find("network 99") != std::string::npos);
    std::string unknown_cancel;
    self->request(api, caf::infinite, cancel_atom_v, uint64_t{99})
        .receive(
            [&](bool) { FAIL("network 99 cancelled"); },
            [&](caf::error& err) { unknown_cancel = to_string_pretty(err); });
    CHECK(unknown_cancel.find("network 99") != std::string::npos);
    auto bad = exp.base;
    bad.train.batch_size = 0;
    std::string refused;
    self->request(api, caf::infinite, submit_atom_v, bad)
        .receive([&](std::vector<uint64_t>&) { FAIL("a bad config taken"); },
                 [&](caf::error& err) { refused = to_string_pretty(err); });
    CHECK(refused.find("batch_size") != std::string::npos);
  }
  // Every actor of the session's system has ended (close() waits for
  // them), the scoped one above included.
  auto closed = s->close();
  REQUIRE(static_cast<bool>(closed));
  CHECK(closed->networks.size() == 3);
}
