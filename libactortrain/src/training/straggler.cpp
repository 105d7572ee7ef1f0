#include "training/straggler.hpp"

#include <cstdio>
#include <cstdlib>
#include <thread>

namespace actortrain {

const straggler& straggler::from_environment() {
  static const straggler s = [] {
    straggler result;
    const char* text = std::getenv("ACTORTRAIN_SLOW_REPLICA");
    size_t r = 0;
    double f = 1;
    if (text != nullptr && std::sscanf(text, "%zu:%lf", &r, &f) == 2 &&
        f >= 1) {
      result.replica = r;
      result.factor = f;
    }
    return result;
  }();
  return s;
}

void straggler::pace(size_t r,
                     std::chrono::steady_clock::time_point started) const {
  if (r != replica)
    return;
  auto took = std::chrono::steady_clock::now() - started;
  std::this_thread::sleep_for(took * (factor - 1));
}

} // namespace actortrain
