#include "actortrain/network_spec.hpp"

#include <fmt/format.h>

namespace actortrain {

uint64_t derive_seed(uint64_t root_seed, uint64_t network_id) {
  // SplitMix64 over (root, id): a bijective mix, so distinct ids of one root
  // never collide and neighbouring ids give unrelated streams.
  uint64_t z = root_seed + 0x9E3779B97F4A7C15ull * (network_id + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::vector<network_spec> expand(const experiment& exp, uint64_t first_id,
                                 int64_t first_group) {
  std::vector<network_spec> result;
  auto configs = exp.configs();
  uint64_t id = first_id;
  for (size_t group = 0; group < configs.size(); ++group) {
    const auto& cfg = configs[group];
    for (int64_t i = 0; i < cfg.train.networks; ++i, ++id) {
      network_spec spec;
      spec.id = id;
      spec.name = fmt::format("net-{:04}", id);
      spec.group = first_group + static_cast<int64_t>(group);
      spec.index_in_group = i;
      spec.seed = derive_seed(cfg.train.seed, id);
      spec.config = cfg;
      result.push_back(std::move(spec));
    }
  }
  return result;
}

} // namespace actortrain
