#include "cluster/for_workers.hpp"

#include <filesystem>

#include "setup/run_context.hpp"

namespace fs = std::filesystem;

namespace actortrain {

namespace {

network_config with_absolute_paths(network_config cfg) {
  if (!cfg.model.path.empty())
    cfg.model.path = absolute_path(cfg.model.path);
  return cfg;
}

} // namespace

std::string absolute_path(const std::string& path) {
  return fs::absolute(path).lexically_normal().string();
}

experiment for_workers(experiment exp) {
  for (auto* p : {&exp.data.train, &exp.data.train_labels, &exp.data.test,
                  &exp.data.test_labels})
    if (!p->empty())
      *p = absolute_path(*p);
  exp.base = with_absolute_paths(std::move(exp.base));
  for (auto& cfg : exp.variants)
    cfg = with_absolute_paths(std::move(cfg));
  return exp;
}

std::map<std::string, std::string> model_hashes(const script_models& scripts) {
  std::map<std::string, std::string> result;
  for (const auto& [path, model] : scripts)
    result.emplace(absolute_path(path), model->hash);
  return result;
}

std::map<std::string, std::string> model_files(const script_models& scripts) {
  std::map<std::string, std::string> result;
  for (const auto& [path, model] : scripts)
    result.emplace(absolute_path(path), model->bytes);
  return result;
}

worker_submission for_workers(const submission& sub) {
  worker_submission result;
  for (const auto& cfg : sub.configs)
    result.configs.push_back(with_absolute_paths(cfg));
  result.first_id = sub.specs.empty() ? 0 : sub.specs.front().id;
  result.first_group = sub.first_group;
  result.model_hashes = model_hashes(sub.scripts);
  result.model_files = model_files(sub.scripts);
  return result;
}

} // namespace actortrain
