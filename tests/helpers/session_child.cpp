// A live session in a process of its own, for the tests that kill one:
// opens a session on EXPERIMENT's setup in FOLDER, submits each of its
// configurations as a submission of its own (so the networks get the ids a
// batch run of EXPERIMENT gives them), waits for every network and closes.

#include <cstdio>

#include "actortrain/error.hpp"
#include "actortrain/session.hpp"

int main(int argc, char** argv) {
  using namespace actortrain;
  if (argc != 3) {
    std::fprintf(stderr, "usage: session_child EXPERIMENT FOLDER\n");
    return 2;
  }
  auto exp = load_experiment(argv[1]);
  if (!exp) {
    std::fprintf(stderr, "%s\n", to_string_pretty(exp.error()).c_str());
    return 3;
  }
  session_options opts;
  opts.output_dir = argv[2];
  auto s = session::open(*exp, opts);
  if (!s) {
    std::fprintf(stderr, "%s\n", to_string_pretty(s.error()).c_str());
    return 3;
  }
  std::vector<network_handle> all;
  for (const auto& cfg : exp->configs()) {
    auto handles = (*s)->submit(cfg);
    if (!handles) {
      std::fprintf(stderr, "%s\n", to_string_pretty(handles.error()).c_str());
      return 3;
    }
    all.insert(all.end(), handles->begin(), handles->end());
  }
  if (auto results = wait_all(all); !results) {
    std::fprintf(stderr, "%s\n", to_string_pretty(results.error()).c_str());
    return 4;
  }
  auto closed = (*s)->close();
  if (!closed) {
    std::fprintf(stderr, "%s\n", to_string_pretty(closed.error()).c_str());
    return 4;
  }
  std::printf("%zu networks done\n", closed->networks.size());
  return 0;
}
