// A search loop of one's own on a live session: 8 networks train at once;
// whenever one is done, a new configuration near the best so far takes its
// place, until a budget of 24 networks is spent.

#include <cmath>
#include <cstdio>
#include <random>

#include <actortrain/actortrain.hpp>

namespace atr = actortrain;

int main() {
  atr::experiment setup;
  setup.name = "session-search";
  setup.data.format = atr::data_format::synthetic;
  setup.data.features = 20;
  setup.data.classes = 6;
  setup.data.noise = 4.0;
  setup.base.model.hidden = {32};
  setup.base.optimizer.kind = atr::optimizer_kind::adam;
  setup.base.train.epochs = 4;
  setup.scheduler.slots = 2;
  auto opened = atr::session::open(setup);
  if (!opened) {
    std::fprintf(stderr, "%s\n", atr::to_string_pretty(opened.error()).c_str());
    return 1;
  }
  auto& session = **opened;

  std::mt19937_64 rng{7};
  auto submit = [&](double lr) -> std::optional<atr::network_handle> {
    auto cfg = setup.base;
    cfg.optimizer.lr = lr;
    auto handles = session.submit(cfg);
    if (!handles) {
      std::fprintf(stderr, "%s\n",
                   atr::to_string_pretty(handles.error()).c_str());
      return std::nullopt;
    }
    return handles->front();
  };
  std::vector<atr::network_handle> training;
  std::vector<double> lr_of;
  std::uniform_real_distribution<double> log_lr{std::log(1e-4), std::log(1e-1)};
  for (int i = 0; i < 8; ++i) {
    auto lr = std::exp(log_lr(rng));
    if (auto h = submit(lr)) {
      training.push_back(*h);
      lr_of.push_back(lr);
    }
  }
  int submitted = static_cast<int>(training.size());
  double best_accuracy = -1;
  double best_lr = 1e-3;
  while (!training.empty()) {
    auto i = atr::wait_any(training);
    if (!i)
      break;
    auto r = training[*i].wait();
    if (r && r->test_accuracy > best_accuracy) {
      best_accuracy = r->test_accuracy;
      best_lr = lr_of[*i];
    }
    if (r)
      std::printf("%s  lr %.5f  test accuracy %.3f\n", r->name.c_str(),
                  lr_of[*i], r->test_accuracy);
    training.erase(training.begin() + static_cast<long>(*i));
    lr_of.erase(lr_of.begin() + static_cast<long>(*i));
    if (submitted < 24) {
      // Near the best so far: a factor of up to 2 either way.
      std::uniform_real_distribution<double> near{-std::log(2.0),
                                                  std::log(2.0)};
      auto lr = best_lr * std::exp(near(rng));
      if (auto h = submit(lr)) {
        training.push_back(*h);
        lr_of.push_back(lr);
        ++submitted;
      }
    }
  }
  auto result = session.close();
  if (!result) {
    std::fprintf(stderr, "%s\n", atr::to_string_pretty(result.error()).c_str());
    return 1;
  }
  std::printf("best: lr %.5f, test accuracy %.3f of %d networks\n", best_lr,
              best_accuracy, submitted);
  std::printf("results: %s\n", result->database_path.c_str());
  return 0;
}
