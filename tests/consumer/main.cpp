// A project outside the tree that finds the installed actortrain.
#include <cstdio>

#include <actortrain/actortrain.hpp>

int main() {
  actortrain::experiment exp;
  exp.data.format = actortrain::data_format::synthetic;
  auto specs = actortrain::expand(exp);
  std::printf("actortrain %s: %zu network(s), valid: %s\n",
              actortrain::version(), specs.size(),
              exp.validate() ? "no" : "yes");
  return specs.size() == 1 && !exp.validate() ? 0 : 1;
}
