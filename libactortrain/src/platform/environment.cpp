#include "platform/environment.hpp"

#include <cstdio>
#include <cstdlib>

namespace actortrain {

double number_from_environment(const char* name, double least,
                               double fallback) {
  const char* text = std::getenv(name);
  double x = 0;
  if (text == nullptr || std::sscanf(text, "%lf", &x) != 1 || !(x >= least))
    return fallback;
  return x;
}

} // namespace actortrain
