// An ensemble that grows until it stops improving: on a live session, add
// bagging members (each on its own bootstrap sample of Fashion-MNIST) two at
// a time, and stop once the ensemble's accuracy on the held-out set has not
// improved by `--min-gain` for `--patience` rounds (or `--max` members).

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <actortrain/actortrain.hpp>

namespace atr = actortrain;

namespace {

struct options {
  int max_members = 24;
  int patience = 2;
  double min_gain = 0.002;
  int64_t epochs = 2;
  std::string output;
};

bool parse(int argc, char** argv, options& o) {
  for (int i = 1; i < argc; ++i) {
    auto flag = [&](const char* name) {
      return std::strcmp(argv[i], name) == 0 && i + 1 < argc;
    };
    if (flag("--max"))
      o.max_members = std::atoi(argv[++i]);
    else if (flag("--patience"))
      o.patience = std::atoi(argv[++i]);
    else if (flag("--min-gain"))
      o.min_gain = std::atof(argv[++i]);
    else if (flag("--epochs"))
      o.epochs = std::atoll(argv[++i]);
    else if (flag("--output"))
      o.output = argv[++i];
    else
      return false;
  }
  return o.max_members > 0 && o.patience > 0 && o.epochs > 0;
}

int fail(const caf::error& err) {
  std::fprintf(stderr, "%s\n", atr::to_string_pretty(err).c_str());
  return 1;
}

} // namespace

int main(int argc, char** argv) {
  options o;
  if (!parse(argc, argv, o)) {
    std::fprintf(stderr, "usage: session_bagging [--max N] [--patience R] "
                         "[--min-gain G] [--epochs E] [--output DIR]\n");
    return 2;
  }
  const std::string dir = "/usr/share/datasets/fashion-mnist/";
  atr::experiment setup;
  setup.name = "session-bagging";
  setup.data.format = atr::data_format::idx;
  setup.data.train = dir + "train-images-idx3-ubyte.gz";
  setup.data.train_labels = dir + "train-labels-idx1-ubyte.gz";
  setup.data.test = dir + "t10k-images-idx3-ubyte.gz";
  setup.data.test_labels = dir + "t10k-labels-idx1-ubyte.gz";
  // Every network (a new id, so a new seed) draws its own bootstrap sample.
  setup.data.partition = atr::partition_scheme::bootstrap;
  setup.base.model.hidden = {64};
  setup.base.optimizer.kind = atr::optimizer_kind::adam;
  setup.base.optimizer.lr = 1e-3;
  setup.base.train.epochs = o.epochs;
  setup.base.train.seed = 7;
  setup.scheduler.slots = 2;
  atr::session_options so;
  so.output_dir = o.output;
  auto opened = atr::session::open(setup, so);
  if (!opened)
    return fail(opened.error());
  auto& session = **opened;

  // A folder reopened after a crash already holds members: they count.
  auto members = session.networks();
  if (auto done = atr::wait_all(members); !done)
    return fail(done.error());
  double best = -1; // the accuracy the last real improvement reached
  double best_seen = -1;
  int stale = 0;
  if (!members.empty()) {
    auto e = session.ensemble(members);
    if (!e)
      return fail(e.error());
    best = best_seen = e->accuracy;
    std::printf("%2lld members from before: ensemble accuracy %.4f\n",
                static_cast<long long>(e->networks), e->accuracy);
  }
  while (static_cast<int>(members.size()) < o.max_members &&
         stale < o.patience) {
    auto round = setup.base;
    round.label = "bagging";
    round.train.networks =
        std::min<int64_t>(setup.scheduler.slots,
                          o.max_members - static_cast<int64_t>(members.size()));
    auto added = session.submit(round);
    if (!added)
      return fail(added.error());
    if (auto done = atr::wait_all(*added); !done)
      return fail(done.error());
    members.insert(members.end(), added->begin(), added->end());
    auto e = session.ensemble(members);
    if (!e)
      return fail(e.error());
    std::printf("%2lld members: ensemble accuracy %.4f\n",
                static_cast<long long>(e->networks), e->accuracy);
    best_seen = std::max(best_seen, e->accuracy);
    if (e->accuracy > best + o.min_gain) {
      best = e->accuracy;
      stale = 0;
    } else {
      ++stale;
    }
  }
  auto result = session.close();
  if (!result)
    return fail(result.error());
  std::printf("stopped at %zu members (best ensemble accuracy %.4f)\n",
              members.size(), best_seen);
  std::printf("results: %s\n", result->database_path.c_str());
  return 0;
}
