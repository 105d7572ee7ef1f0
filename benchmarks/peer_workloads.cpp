// The C++ systems of the peer benchmark suite (benchmarks/run_peers.py runs
// them side by side with the Python peers): a hand-written LibTorch loop,
// and actortrain's whole run() unfused and fused. Trains one workload of
// peers/workloads.json and prints one JSON line: network-steps, seconds,
// peak memory.
//
// usage: bench_peer_workloads {cpp|actortrain-unfused|actortrain-fused}
//                             WORKLOAD [threads=2] [keep_output_dir]
//                             [--device cpu|cuda:N] [--streams K]
//
// --device trains on a GPU (actortrain: scheduler.devices, K slots of their
// own streams; the C++ loop: data and network on it); `threads` is then the
// C++ loop's intra-op threads only.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

#include <actortrain/actortrain.hpp>
#include <actortrain/dataset.hpp>
#include <actortrain/learner.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "libtorch_layers.hpp"

using namespace actortrain;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
      .count();
}

double peak_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

data_options data_for(const std::string& name) {
  // Debian's packages' files; under ACTORTRAIN_BENCH_DATA_ROOT where the
  // packages were unpacked rather than installed (scripts/gpu-check.sh).
  const char* env = std::getenv("ACTORTRAIN_BENCH_DATA_ROOT");
  const std::string root = env ? env : "";
  data_options d;
  if (name == "digits") {
    d.format = data_format::csv;
    d.train = root + "/usr/lib/python3/dist-packages/sklearn/datasets/data/"
                     "digits.csv.gz";
    d.label_column = -1;
    d.header = csv_header::no;
    d.test_fraction = 0.2;
    return d;
  }
  const std::string dir = root + "/usr/share/datasets/fashion-mnist/";
  d.format = data_format::idx;
  d.train = dir + "train-images-idx3-ubyte.gz";
  d.train_labels = dir + "train-labels-idx1-ubyte.gz";
  d.test = dir + "t10k-images-idx3-ubyte.gz";
  d.test_labels = dir + "t10k-labels-idx1-ubyte.gz";
  return d;
}

network_config config_for(const json& w, const json& arch) {
  network_config c;
  c.model.kind =
      parse_choice<model_kind>(arch["kind"].get<std::string>()).value();
  c.model.hidden = arch["hidden"].get<std::vector<int64_t>>();
  if (arch.contains("channels"))
    c.model.channels = arch["channels"].get<std::vector<int64_t>>();
  c.optimizer.kind = optimizer_kind::adam;
  c.optimizer.lr = 1e-3;
  c.train.networks = arch["networks"];
  c.train.epochs = w["epochs"];
  c.train.batch_size = w["batch_size"];
  // As the peers: one test-set evaluation at the end, no checkpoints.
  c.train.eval_every = 0;
  c.train.checkpoint_every = 0;
  return c;
}

/// The workload through actortrain's run(): data loading, store, actors,
/// scheduling, weights files and results included.
/// Where a system trains: the CPU, or a GPU with `streams` slots.
struct placement {
  std::string device = "cpu";
  int64_t streams = 2;
};

json with_actortrain(const json& w, bool fuse, int64_t threads,
                     const std::string& keep, const placement& where) {
  experiment exp;
  exp.name = "peer-workload";
  exp.data = data_for(w["data"]);
  exp.data.partition =
      parse_choice<partition_scheme>(w["partition"].get<std::string>()).value();
  for (const auto& arch : w["archs"]) {
    auto c = config_for(w, arch);
    c.train.fuse = fuse ? train_options::fuse_auto : train_options::fuse_off;
    exp.variants.push_back(c);
  }
  exp.base = exp.variants.front();
  exp.scheduler.slots = threads;
  exp.scheduler.threads_per_slot = 1;
  exp.scheduler.devices = {where.device};
  exp.scheduler.streams_per_gpu = where.streams;
  auto dir = keep.empty() ? fs::temp_directory_path() /
                                fmt::format("actortrain-peers-{}", ::getpid())
                          : fs::path{keep};
  fs::remove_all(dir);
  run_options opts;
  opts.output_dir = dir.string();
  auto t0 = std::chrono::steady_clock::now();
  auto result = run(exp, opts);
  auto seconds = seconds_since(t0);
  if (keep.empty())
    fs::remove_all(dir);
  if (!result) {
    std::fprintf(stderr, "%s\n", to_string_pretty(result.error()).c_str());
    std::exit(1);
  }
  int64_t steps = 0;
  for (const auto& n : result->networks)
    steps += n.steps;
  return {{"network_steps", steps}, {"seconds", seconds}};
}

/// The hand-written loop: each network in turn, LibTorch's intra-op threads.
json hand_written(const json& w, int64_t threads, const placement& where) {
  auto opts = data_for(w["data"]);
  auto loaded = load_dataset(opts);
  if (!loaded) {
    std::fprintf(stderr, "%s\n", to_string_pretty(loaded.error()).c_str());
    std::exit(1);
  }
  torch::Device device{where.device};
  // On a GPU the data goes there once, as a hand-written loop would do.
  auto d = **loaded;
  for (auto* t : {&d.train_x, &d.train_y, &d.test_x, &d.test_y})
    *t = t->to(device);
  at::set_num_threads(static_cast<int>(threads));
  int64_t batch = w["batch_size"];
  int64_t epochs = w["epochs"];
  auto n_train = d.train_x.size(0);
  int64_t steps = 0;
  uint64_t seed = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (const auto& arch : w["archs"]) {
    int64_t n = arch["networks"];
    for (int64_t i = 0; i < n; ++i, ++seed) {
      torch::manual_seed(seed);
      auto shard = w["partition"] == "contiguous"
                       ? torch::arange(i * n_train / n, (i + 1) * n_train / n)
                   : w["partition"] == "bootstrap"
                       // n_train samples drawn with replacement, per network.
                       ? torch::randint(n_train, {n_train}, torch::kInt64)
                       : torch::arange(n_train);
      // The same layers as actortrain's, LibTorch's default initialisation,
      // as a hand-written loop would have.
      auto net =
          libtorch_layers(builtin_model_plan(config_for(w, arch).model, d));
      net->to(device);
      shard = shard.to(device);
      torch::optim::Adam opt(net->parameters(),
                             torch::optim::AdamOptions(1e-3));
      for (int64_t e = 0; e < epochs; ++e) {
        auto order =
            shard.index_select(0, torch::randperm(shard.size(0)).to(device));
        for (int64_t s = 0; s < order.size(0); s += batch) {
          auto idx = order.slice(0, s, s + batch);
          opt.zero_grad();
          auto loss = torch::nn::functional::cross_entropy(
              net->forward(d.train_x.index_select(0, idx)),
              d.train_y.index_select(0, idx));
          loss.backward();
          opt.step();
          ++steps;
        }
      }
      torch::NoGradGuard no_grad;
      net->forward(d.test_x).argmax(1).eq(d.test_y).to(torch::kFloat).mean();
    }
  }
  if (device.is_cuda())
    torch::cuda::synchronize();
  return {{"network_steps", steps}, {"seconds", seconds_since(t0)}};
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: %s {cpp|actortrain-unfused|actortrain-fused} "
                 "WORKLOAD [threads=2] [keep_output_dir]\n",
                 argv[0]);
    return 2;
  }
  std::vector<std::string> positional;
  placement where;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--device" && i + 1 < argc)
      where.device = argv[++i];
    else if (a == "--streams" && i + 1 < argc)
      where.streams = std::stoll(argv[++i]);
    else
      positional.push_back(a);
  }
  if (positional.size() < 2)
    return 2;
  std::string system = positional[0];
  std::string name = positional[1];
  int64_t threads = positional.size() > 2 ? std::stoll(positional[2]) : 2;
  // actortrain's results stay there for `actortrain results DIR`.
  std::string keep = positional.size() > 3 ? positional[3] : "";
  std::ifstream in{std::string{ACTORTRAIN_SOURCE_DIR} +
                   "/benchmarks/peers/workloads.json"};
  auto w = json::parse(in).at(name);
  json result;
  if (system == "cpp")
    result = hand_written(w, threads, where);
  else if (system == "actortrain-unfused" || system == "actortrain-fused")
    result =
        with_actortrain(w, system == "actortrain-fused", threads, keep, where);
  else
    return 2;
  result["system"] = system;
  result["workload"] = name;
  result["device"] = where.device;
  result["peak_mb"] = peak_mb();
  std::printf("%s\n", result.dump().c_str());
  return 0;
}
