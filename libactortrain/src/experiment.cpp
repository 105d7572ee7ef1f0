#include "actortrain/experiment.hpp"

#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>

#include "actortrain/error.hpp"

namespace actortrain {

// -- experiment members -------------------------------------------------------

std::vector<network_config> experiment::configs() const {
  if (variants.empty())
    return {base};
  return variants;
}

int64_t experiment::total_networks() const {
  int64_t total = 0;
  for (const auto& cfg : configs())
    total += cfg.train.networks;
  return total;
}

namespace {

bool one_of(const std::string& x, std::initializer_list<const char*> xs) {
  for (auto* y : xs)
    if (x == y)
      return true;
  return false;
}

caf::error invalid(std::string msg) {
  return make_error(errc::invalid_experiment, std::move(msg));
}

caf::error validate_config(const network_config& cfg) {
  auto where = cfg.label.empty() ? std::string{}
                                 : fmt::format(" (sweep point {})", cfg.label);
  auto bad = [&](const std::string& what) {
    return invalid(what + where);
  };
  const auto& m = cfg.model;
  if (!one_of(m.kind, {"mlp", "cnn"}))
    return bad(fmt::format(
        "model.kind: unknown model '{}' (expected mlp or cnn)", m.kind));
  for (auto h : m.hidden)
    if (h <= 0)
      return bad(
          fmt::format("model.hidden: layer widths must be > 0, got {}", h));
  for (auto c : m.channels)
    if (c <= 0)
      return bad(
          fmt::format("model.channels: channel counts must be > 0, got {}", c));
  if (m.kind == "cnn" && m.channels.empty())
    return bad("model.channels: a cnn needs at least one convolution block");
  if (!one_of(m.activation, {"relu", "tanh", "sigmoid", "gelu"}))
    return bad(fmt::format("model.activation: unknown activation '{}' "
                           "(expected relu, tanh, sigmoid or gelu)",
                           m.activation));
  if (m.input < 0)
    return bad(fmt::format("model.input: must be >= 0, got {}", m.input));
  const auto& o = cfg.optimizer;
  if (!one_of(o.kind, {"sgd", "adam", "adamw"}))
    return bad(fmt::format("optimizer.kind: unknown optimizer '{}' (expected "
                           "sgd, adam or adamw)",
                           o.kind));
  if (!(o.lr > 0) || !std::isfinite(o.lr))
    return bad(fmt::format("optimizer.lr: must be > 0, got {}", o.lr));
  if (!(o.momentum >= 0 && o.momentum < 1))
    return bad(fmt::format("optimizer.momentum: must be in [0, 1), got {}",
                           o.momentum));
  if (!(o.weight_decay >= 0) || !std::isfinite(o.weight_decay))
    return bad(fmt::format("optimizer.weight_decay: must be >= 0, got {}",
                           o.weight_decay));
  const auto& t = cfg.train;
  if (t.networks < 1)
    return bad(fmt::format("train.networks: must be >= 1, got {}", t.networks));
  if (t.epochs < 1)
    return bad(fmt::format("train.epochs: must be >= 1, got {}", t.epochs));
  if (t.batch_size < 1)
    return bad(
        fmt::format("train.batch_size: must be >= 1, got {}", t.batch_size));
  if (t.eval_every < 0)
    return bad(
        fmt::format("train.eval_every: must be >= 0, got {}", t.eval_every));
  if (!(t.max_seconds >= 0))
    return bad(
        fmt::format("train.max_seconds: must be >= 0, got {}", t.max_seconds));
  if (!(t.target_accuracy >= 0 && t.target_accuracy <= 1))
    return bad(fmt::format("train.target_accuracy: must be in [0, 1], got {}",
                           t.target_accuracy));
  if (!(t.target_loss >= 0))
    return bad(
        fmt::format("train.target_loss: must be >= 0, got {}", t.target_loss));
  if (t.patience < 0)
    return bad(fmt::format("train.patience: must be >= 0, got {}", t.patience));
  if (!(t.validation_fraction >= 0 && t.validation_fraction < 1))
    return bad(fmt::format("train.validation_fraction: must be in [0, 1), "
                           "got {}",
                           t.validation_fraction));
  if (t.patience > 0 && t.validation_fraction <= 0)
    return bad("train.patience: early stopping needs a validation split; set "
               "train.validation_fraction (e.g. 0.1)");
  if (t.max_retries < 0)
    return bad(
        fmt::format("train.max_retries: must be >= 0, got {}", t.max_retries));
  if (!(t.retry_lr_factor > 0 && t.retry_lr_factor <= 1))
    return bad(fmt::format("train.retry_lr_factor: must be in (0, 1], got {}",
                           t.retry_lr_factor));
  if (t.checkpoint_every < 0)
    return bad(fmt::format("train.checkpoint_every: must be >= 0, got {}",
                           t.checkpoint_every));
  if (!std::isfinite(t.priority))
    return bad(
        fmt::format("train.priority: must be finite, got {}", t.priority));
  return {};
}

} // namespace

caf::error experiment::validate() const {
  if (name.empty())
    return invalid("name: must not be empty");
  if (name.find_first_of("/\\") != std::string::npos)
    return invalid(fmt::format("name: must not contain a path separator, got "
                               "'{}'",
                               name));
  const auto& d = data;
  if (!one_of(d.format, {"idx", "csv", "synthetic"}))
    return invalid(fmt::format(
        "data.format: unknown format '{}' (expected idx, csv or synthetic)",
        d.format));
  if (!one_of(d.partition,
              {"all", "contiguous", "strided", "stratified", "bootstrap"}))
    return invalid(fmt::format("data.partition: unknown scheme '{}' (expected "
                               "all, contiguous, strided, stratified or "
                               "bootstrap)",
                               d.partition));
  if (!one_of(d.task, {"classification", "regression"}))
    return invalid(fmt::format("data.task: unknown task '{}' (expected "
                               "classification or regression)",
                               d.task));
  if (d.partition == "stratified" && d.task != "classification")
    return invalid("data.partition: 'stratified' needs a classification task");
  if (!one_of(d.header, {"auto", "yes", "no"}))
    return invalid(fmt::format(
        "data.header: expected auto, yes or no, got '{}'", d.header));
  if (d.format == "idx") {
    if (d.task != "classification")
      return invalid("data.task: IDX data is always classification");
    for (auto [key, val] :
         {std::pair{"train", &d.train},
          std::pair{"train_labels", &d.train_labels},
          std::pair{"test", &d.test}, std::pair{"test_labels", &d.test_labels}})
      if (val->empty())
        return invalid(fmt::format("data.{}: required for format 'idx'", key));
  }
  if (d.format == "csv" && d.train.empty())
    return invalid("data.train: required for format 'csv'");
  if (!(d.test_fraction > 0 && d.test_fraction < 1))
    return invalid(fmt::format("data.test_fraction: must be in (0, 1), got {}",
                               d.test_fraction));
  if (d.classes < 0)
    return invalid(
        fmt::format("data.classes: must be >= 0, got {}", d.classes));
  if (d.format == "synthetic") {
    if (d.samples < 1 || d.test_samples < 1 || d.features < 1)
      return invalid("data.samples, data.test_samples and data.features must "
                     "be >= 1");
    if (d.task == "classification" && d.classes == 1)
      return invalid("data.classes: synthetic classification needs >= 2 "
                     "classes");
    if (!(d.noise >= 0))
      return invalid(fmt::format("data.noise: must be >= 0, got {}", d.noise));
  }
  auto cfgs = configs();
  for (const auto& cfg : cfgs)
    if (auto err = validate_config(cfg))
      return err;
  const auto& s = scheduler;
  if (s.slots < 0)
    return invalid(
        fmt::format("scheduler.slots: must be >= 0, got {}", s.slots));
  if (s.threads_per_slot < 1)
    return invalid(fmt::format("scheduler.threads_per_slot: must be >= 1, got "
                               "{}",
                               s.threads_per_slot));
  if (s.quantum_epochs < 1)
    return invalid(fmt::format("scheduler.quantum_epochs: must be >= 1, got {}",
                               s.quantum_epochs));
  if (s.quantum_steps < 0)
    return invalid(fmt::format("scheduler.quantum_steps: must be >= 0, got {}",
                               s.quantum_steps));
  if (!(s.quantum_seconds >= 0))
    return invalid(fmt::format("scheduler.quantum_seconds: must be >= 0, got "
                               "{}",
                               s.quantum_seconds));
  if (!one_of(s.policy, {"fifo", "round_robin", "shortest_remaining",
                         "longest_remaining", "priority"}))
    return invalid(fmt::format("scheduler.policy: unknown policy '{}' "
                               "(expected fifo, round_robin, "
                               "shortest_remaining, longest_remaining or "
                               "priority)",
                               s.policy));
  for (const auto& w : cluster.workers)
    if (!parse_address(w))
      return invalid(fmt::format("cluster.workers: '{}' is not host:port "
                                 "(e.g. 127.0.0.1:4242)",
                                 w));
  if (!cluster.local && cluster.workers.empty())
    return invalid("cluster.local = false needs cluster.workers: no slot "
                   "would be left to train on");
  return {};
}

std::optional<network_address> parse_address(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return std::nullopt;
  auto port_text = text.substr(colon + 1);
  if (port_text.find_first_not_of("0123456789") != std::string::npos ||
      port_text.size() > 5)
    return std::nullopt;
  auto port = std::stoul(port_text);
  if (port == 0 || port > 65535)
    return std::nullopt;
  return network_address{text.substr(0, colon), static_cast<uint16_t>(port)};
}

// -- TOML reading -------------------------------------------------------------

namespace {

std::string format_value(const toml::node& n);

/// Reads typed values from a TOML table and reports the first problem with
/// the file, line, column and dotted key.
class reader {
public:
  explicit reader(std::string origin) : origin_(std::move(origin)) {}

  caf::error error() const {
    return err_;
  }

  template <class Node> std::string where(const Node& node) const {
    auto src = node.source();
    if (src.begin.line == 0)
      return origin_;
    return fmt::format("{}:{}:{}", origin_, src.begin.line, src.begin.column);
  }

  template <class Node> void fail(const Node& node, const std::string& msg) {
    if (!err_)
      err_ = invalid(fmt::format("{}: {}", where(node), msg));
  }

  /// Checks that `tbl` only has `known` keys.
  void only(const toml::table& tbl, const std::string& section,
            std::initializer_list<const char*> known) {
    std::set<std::string> keys;
    for (auto* k : known)
      keys.emplace(k);
    for (auto&& [k, v] : tbl) {
      if (keys.count(std::string{k.str()}) == 0) {
        auto name = section.empty() ? std::string{k.str()}
                                    : fmt::format("{}.{}", section, k.str());
        fail(k, fmt::format("unknown key '{}' (expected one of: {})", name,
                            fmt::join(keys, ", ")));
      }
    }
  }

  const toml::table* table(const toml::table& parent, const char* key) {
    auto* node = parent.get(key);
    if (node == nullptr)
      return nullptr;
    if (!node->is_table()) {
      fail(*node, fmt::format("'{}' must be a table ([{}])", key, key));
      return nullptr;
    }
    return node->as_table();
  }

  void get(const toml::table& t, const std::string& sec, const char* key,
           std::string& out) {
    if (auto* n = t.get(key)) {
      if (auto v = n->value<std::string>(); v && n->is_string())
        out = *v;
      else
        fail(*n, fmt::format("{}.{} must be a string", sec, key));
    }
  }

  void get(const toml::table& t, const std::string& sec, const char* key,
           int64_t& out) {
    if (auto* n = t.get(key)) {
      if (n->is_integer())
        out = *n->value<int64_t>();
      else
        fail(*n, fmt::format("{}.{} must be an integer", sec, key));
    }
  }

  void get_strings(const toml::table& t, const std::string& sec,
                   const char* key, std::vector<std::string>& out) {
    auto* n = t.get(key);
    if (n == nullptr)
      return;
    auto* arr = n->as_array();
    if (arr == nullptr) {
      fail(*n, fmt::format("{}.{} must be an array of strings", sec, key));
      return;
    }
    out.clear();
    for (auto&& e : *arr) {
      if (!e.is_string()) {
        fail(e, fmt::format("{}.{} must be an array of strings", sec, key));
        return;
      }
      out.push_back(*e.value<std::string>());
    }
  }

  /// train.fuse: "auto", "off" or a group size >= 1.
  void get_fuse(const toml::table& t, int64_t& out) {
    auto* n = t.get("fuse");
    if (n == nullptr)
      return;
    if (n->is_string() && *n->value<std::string>() == "auto")
      out = train_options::fuse_auto;
    else if (n->is_string() && *n->value<std::string>() == "off")
      out = train_options::fuse_off;
    else if (n->is_integer() && *n->value<int64_t>() >= 1)
      out = *n->value<int64_t>();
    else
      fail(*n, fmt::format("train.fuse must be \"auto\", \"off\" or a "
                           "group size >= 1, got {}",
                           format_value(*n)));
  }

  void get(const toml::table& t, const std::string& sec, const char* key,
           uint64_t& out) {
    int64_t tmp = static_cast<int64_t>(out);
    get(t, sec, key, tmp);
    if (auto* n = t.get(key); n && n->is_integer()) {
      if (tmp < 0)
        fail(*n, fmt::format("{}.{} must be >= 0, got {}", sec, key, tmp));
      else
        out = static_cast<uint64_t>(tmp);
    }
  }

  void get(const toml::table& t, const std::string& sec, const char* key,
           double& out) {
    if (auto* n = t.get(key)) {
      if (n->is_number())
        out = *n->value<double>();
      else
        fail(*n, fmt::format("{}.{} must be a number", sec, key));
    }
  }

  void get(const toml::table& t, const std::string& sec, const char* key,
           bool& out) {
    if (auto* n = t.get(key)) {
      if (n->is_boolean())
        out = *n->value<bool>();
      else
        fail(*n, fmt::format("{}.{} must be true or false", sec, key));
    }
  }

  void get(const toml::table& t, const std::string& sec, const char* key,
           std::vector<int64_t>& out) {
    if (auto* n = t.get(key)) {
      auto* arr = n->as_array();
      if (arr == nullptr) {
        fail(*n, fmt::format("{}.{} must be an array of integers", sec, key));
        return;
      }
      std::vector<int64_t> xs;
      for (auto&& x : *arr) {
        if (!x.is_integer()) {
          fail(x, fmt::format("{}.{} must be an array of integers", sec, key));
          return;
        }
        xs.push_back(*x.value<int64_t>());
      }
      out = std::move(xs);
    }
  }

private:
  std::string origin_;
  caf::error err_;
};

void read_config(reader& r, const toml::table& root, network_config& cfg) {
  if (auto* t = r.table(root, "model")) {
    r.only(*t, "model", {"kind", "hidden", "channels", "activation", "input"});
    r.get(*t, "model", "kind", cfg.model.kind);
    r.get(*t, "model", "hidden", cfg.model.hidden);
    r.get(*t, "model", "channels", cfg.model.channels);
    r.get(*t, "model", "activation", cfg.model.activation);
    r.get(*t, "model", "input", cfg.model.input);
  }
  if (auto* t = r.table(root, "optimizer")) {
    r.only(*t, "optimizer", {"kind", "lr", "momentum", "weight_decay"});
    r.get(*t, "optimizer", "kind", cfg.optimizer.kind);
    r.get(*t, "optimizer", "lr", cfg.optimizer.lr);
    r.get(*t, "optimizer", "momentum", cfg.optimizer.momentum);
    r.get(*t, "optimizer", "weight_decay", cfg.optimizer.weight_decay);
  }
  if (auto* t = r.table(root, "train")) {
    r.only(*t, "train",
           {"networks", "epochs", "batch_size", "seed", "eval_every",
            "max_seconds", "target_accuracy", "target_loss", "patience",
            "validation_fraction", "priority", "max_retries",
            "checkpoint_every", "retry_lr_factor", "fuse"});
    r.get(*t, "train", "networks", cfg.train.networks);
    r.get(*t, "train", "epochs", cfg.train.epochs);
    r.get(*t, "train", "batch_size", cfg.train.batch_size);
    r.get(*t, "train", "seed", cfg.train.seed);
    r.get(*t, "train", "eval_every", cfg.train.eval_every);
    r.get(*t, "train", "max_seconds", cfg.train.max_seconds);
    r.get(*t, "train", "target_accuracy", cfg.train.target_accuracy);
    r.get(*t, "train", "target_loss", cfg.train.target_loss);
    r.get(*t, "train", "patience", cfg.train.patience);
    r.get(*t, "train", "validation_fraction", cfg.train.validation_fraction);
    r.get(*t, "train", "priority", cfg.train.priority);
    r.get(*t, "train", "max_retries", cfg.train.max_retries);
    r.get(*t, "train", "checkpoint_every", cfg.train.checkpoint_every);
    r.get(*t, "train", "retry_lr_factor", cfg.train.retry_lr_factor);
    r.get_fuse(*t, cfg.train.fuse);
  }
}

std::string format_value(const toml::node& n) {
  if (auto* arr = n.as_array()) {
    std::vector<std::string> xs;
    for (auto&& x : *arr)
      xs.push_back(format_value(x));
    return fmt::format("[{}]", fmt::join(xs, ","));
  }
  if (n.is_string())
    return *n.value<std::string>();
  if (n.is_integer())
    return std::to_string(*n.value<int64_t>());
  if (n.is_floating_point())
    return fmt::format("{}", *n.value<double>());
  if (n.is_boolean())
    return *n.value<bool>() ? "true" : "false";
  return "?";
}

} // namespace

caf::expected<experiment> parse_experiment(const std::string& text,
                                           const std::string& origin) {
  toml::table root;
  try {
    root = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    auto src = e.source();
    return invalid(fmt::format("{}:{}:{}: malformed TOML: {}", origin,
                               src.begin.line, src.begin.column,
                               e.description()));
  }
  reader r{origin};
  experiment exp;
  exp.source_text = text;
  exp.source_path = origin;
  r.only(root, "",
         {"name", "data", "model", "optimizer", "train", "scheduler", "cluster",
          "sweep"});
  r.get(root, "experiment", "name", exp.name);
  if (auto* t = r.table(root, "data")) {
    auto& d = exp.data;
    r.only(*t, "data",
           {"format", "train", "train_labels", "test", "test_labels",
            "partition", "label_column", "header", "test_fraction", "task",
            "classes", "normalize", "samples", "test_samples", "features",
            "noise", "seed"});
    r.get(*t, "data", "format", d.format);
    r.get(*t, "data", "train", d.train);
    r.get(*t, "data", "train_labels", d.train_labels);
    r.get(*t, "data", "test", d.test);
    r.get(*t, "data", "test_labels", d.test_labels);
    r.get(*t, "data", "partition", d.partition);
    r.get(*t, "data", "label_column", d.label_column);
    r.get(*t, "data", "header", d.header);
    r.get(*t, "data", "test_fraction", d.test_fraction);
    r.get(*t, "data", "task", d.task);
    r.get(*t, "data", "classes", d.classes);
    r.get(*t, "data", "normalize", d.normalize);
    r.get(*t, "data", "samples", d.samples);
    r.get(*t, "data", "test_samples", d.test_samples);
    r.get(*t, "data", "features", d.features);
    r.get(*t, "data", "noise", d.noise);
    r.get(*t, "data", "seed", d.data_seed);
  }
  read_config(r, root, exp.base);
  if (auto* t = r.table(root, "scheduler")) {
    auto& s = exp.scheduler;
    r.only(*t, "scheduler",
           {"slots", "threads_per_slot", "quantum_epochs", "quantum_steps",
            "quantum_seconds", "policy"});
    r.get(*t, "scheduler", "slots", s.slots);
    r.get(*t, "scheduler", "threads_per_slot", s.threads_per_slot);
    r.get(*t, "scheduler", "quantum_epochs", s.quantum_epochs);
    r.get(*t, "scheduler", "quantum_steps", s.quantum_steps);
    r.get(*t, "scheduler", "quantum_seconds", s.quantum_seconds);
    r.get(*t, "scheduler", "policy", s.policy);
  }
  if (auto* t = r.table(root, "cluster")) {
    auto& c = exp.cluster;
    r.only(*t, "cluster", {"workers", "local"});
    r.get_strings(*t, "cluster", "workers", c.workers);
    r.get(*t, "cluster", "local", c.local);
  }
  // Data paths are relative to the experiment file.
  if (auto pos = origin.find_last_of('/'); pos != std::string::npos) {
    auto dir = origin.substr(0, pos + 1);
    for (auto* p : {&exp.data.train, &exp.data.train_labels, &exp.data.test,
                    &exp.data.test_labels})
      if (!p->empty() && (*p)[0] != '/')
        *p = dir + *p;
  }
  if (auto err = r.error())
    return err;
  if (auto* sweep = r.table(root, "sweep")) {
    // Every combination of the axes is a configuration; each axis rewrites one
    // key of the model, optimizer or train table and is re-read and validated
    // like the file itself.
    std::vector<std::pair<std::string, const toml::array*>> axes;
    for (auto&& [k, v] : *sweep) {
      auto key = std::string{k.str()};
      auto dot = key.find('.');
      auto section = key.substr(0, dot);
      if (dot == std::string::npos ||
          !one_of(section, {"model", "optimizer", "train"})) {
        r.fail(v, fmt::format("sweep key '{}' must name a model.*, "
                              "optimizer.* or train.* key, e.g. "
                              "\"optimizer.lr\"",
                              key));
        break;
      }
      auto* arr = v.as_array();
      if (arr == nullptr || arr->empty()) {
        r.fail(v, fmt::format("sweep '{}' must be a non-empty array of values",
                              key));
        break;
      }
      axes.emplace_back(key, arr);
    }
    if (auto err = r.error())
      return err;
    std::vector<size_t> pos(axes.size(), 0);
    for (bool more = !axes.empty(); more;) {
      toml::table copy = root;
      std::vector<std::string> label;
      for (size_t i = 0; i < axes.size(); ++i) {
        auto& [key, arr] = axes[i];
        auto dot = key.find('.');
        auto section = key.substr(0, dot);
        auto field = key.substr(dot + 1);
        if (!copy.contains(section))
          copy.insert(section, toml::table{});
        auto* sec = copy.get(section)->as_table();
        if (sec == nullptr) {
          r.fail(*arr,
                 fmt::format("sweep '{}': [{}] is not a table", key, section));
          return r.error();
        }
        sec->insert_or_assign(field, *arr->get(pos[i]));
        label.push_back(
            fmt::format("{}={}", key, format_value(*arr->get(pos[i]))));
      }
      network_config cfg = exp.base;
      reader sr{origin};
      read_config(sr, copy, cfg);
      cfg.label = fmt::format("{}", fmt::join(label, " "));
      if (auto err = sr.error())
        return invalid(fmt::format("{} (sweep point {})", to_string_pretty(err),
                                   cfg.label));
      exp.variants.push_back(std::move(cfg));
      // Advance the odometer over all axes.
      more = false;
      for (size_t i = axes.size(); i-- > 0;) {
        if (++pos[i] < axes[i].second->size()) {
          more = true;
          break;
        }
        pos[i] = 0;
      }
    }
  }
  if (auto err = exp.validate())
    return invalid(fmt::format("{}: {}", origin, to_string_pretty(err)));
  return exp;
}

std::string fingerprint(const experiment& exp) {
  // A canonical text of the fields that matter, hashed with FNV-1a (64 bits):
  // stable across builds and platforms, unlike std::hash.
  std::string text;
  auto add = [&](const auto& x) {
    text += fmt::format("{}|", x);
  };
  const auto& d = exp.data;
  for (const auto* p : {&d.format, &d.train, &d.train_labels, &d.test,
                        &d.test_labels, &d.partition, &d.header, &d.task})
    add(*p);
  add(d.label_column);
  add(d.test_fraction);
  add(d.classes);
  add(d.normalize);
  add(d.samples);
  add(d.test_samples);
  add(d.features);
  add(d.noise);
  add(d.data_seed);
  for (const auto& c : exp.configs()) {
    add(c.model.kind);
    text += fmt::format("{}|{}|", fmt::join(c.model.hidden, ","),
                        fmt::join(c.model.channels, ","));
    add(c.model.activation);
    add(c.optimizer.kind);
    add(c.optimizer.lr);
    add(c.optimizer.momentum);
    add(c.optimizer.weight_decay);
    const auto& t = c.train;
    add(t.networks);
    add(t.epochs);
    add(t.batch_size);
    add(t.seed);
    add(t.eval_every);
    add(t.max_seconds);
    add(t.target_accuracy);
    add(t.target_loss);
    add(t.patience);
    add(t.validation_fraction);
    // Fused and unfused steps round differently (docs/fusion.md).
    add(t.fuse);
  }
  uint64_t h = 14695981039346656037ull;
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return fmt::format("{:016x}", h);
}

caf::expected<experiment> load_experiment(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return invalid(fmt::format("{}: cannot open experiment file", path));
  std::stringstream buf;
  buf << in.rdbuf();
  return parse_experiment(buf.str(), path);
}

} // namespace actortrain
