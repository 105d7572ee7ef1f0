#include "actortrain/experiment.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <type_traits>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>

#include "actortrain/error.hpp"
#include "actortrain/network_spec.hpp"
#include "config/resolved_metric.hpp"

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

caf::error invalid(std::string msg) {
  return make_error(errc::invalid_experiment, std::move(msg));
}

template <class T> struct is_vector : std::false_type {};
template <class T> struct is_vector<std::vector<T>> : std::true_type {};

/// A bound as a person writes it: 1000000000, not 1e+09.
std::string bound_text(double x) {
  if (x == std::floor(x) && std::abs(x) < 1e15)
    return std::to_string(static_cast<int64_t>(x));
  return fmt::format("{}", x);
}

std::string describe(const keys::bounds& b) {
  auto inf = std::numeric_limits<double>::infinity();
  if (b.hi == inf)
    return fmt::format("{} {}", b.lo_open ? ">" : ">=", bound_text(b.lo));
  if (b.lo == -inf)
    return fmt::format("{} {}", b.hi_open ? "<" : "<=", bound_text(b.hi));
  return fmt::format("in {}{}, {}{}", b.lo_open ? "(" : "[", bound_text(b.lo),
                     bound_text(b.hi), b.hi_open ? ")" : "]");
}

template <class Row> std::string words_of(const Row& row) {
  std::vector<std::string> xs;
  for (size_t i = 0; i < row.word_count; ++i)
    xs.push_back(fmt::format("\"{}\"", row.words[i].word));
  return fmt::format("{}", fmt::join(xs, ", "));
}

/// The rule of a key's row applied to one number; "" when it holds.
template <class Row, class T> std::string check_number(const Row& row, T x) {
  for (size_t i = 0; i < row.word_count; ++i)
    if (static_cast<int64_t>(x) == row.words[i].value)
      return {};
  auto v = static_cast<double>(x);
  if (!keys::contains(row.range, v)) {
    if (row.word_count > 0)
      return fmt::format("must be {} or {}, got {}", words_of(row),
                         describe(row.range), x);
    return fmt::format("must be {}, got {}", describe(row.range), x);
  }
  if (!std::isfinite(v))
    return fmt::format("must be finite, got {}", x);
  return {};
}

/// What is wrong with value `v` of a key, by its row; "" when nothing is.
template <class Row, class T>
std::string problem_with(const Row& row, const T& v) {
  std::string msg;
  if constexpr (is_choice<T>::value) {
    if (!is_known(v))
      msg = fmt::format("unknown {} #{} (expected {})", choice_names<T>::noun,
                        static_cast<int>(v), choice_list<T>());
  } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
    for (auto e : v)
      if (msg.empty())
        if (auto m = check_number(row, e); !m.empty())
          msg = "each value " + m;
  } else if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
    msg = check_number(row, v);
  }
  return msg;
}

/// Checks every field of a section against its row; the error names the key.
template <class Section>
caf::error check_rows(const Section& x, const std::string& where) {
  std::string problem;
  keys::for_each_row<Section>([&](const auto& row) {
    if (problem.empty())
      if (auto msg = problem_with(row, x.*(row.member)); !msg.empty())
        problem = fmt::format("{}.{}: {}{}", keys::section<Section>::name,
                              row.name, msg, where);
  });
  if (!problem.empty())
    return invalid(std::move(problem));
  return {};
}

caf::error validate_config(const network_config& cfg) {
  auto where = cfg.label.empty() ? std::string{}
                                 : fmt::format(" (sweep point {})", cfg.label);
  for (auto err :
       {check_rows(cfg.model, where), check_rows(cfg.optimizer, where),
        check_rows(cfg.train, where)})
    if (err)
      return err;
  // What one row cannot say: rules that tie keys together.
  if (cfg.model.kind == model_kind::cnn && cfg.model.channels.empty())
    return invalid("model.channels: a cnn needs at least one convolution "
                   "block" +
                   where);
  const auto& m = cfg.model;
  if (m.kind == model_kind::torchscript && m.path.empty())
    return invalid("model.path: model.kind = 'torchscript' needs the "
                   "module's file (saved with torch.jit.save)" +
                   where);
  if (m.kind != model_kind::torchscript)
    for (auto [key, set] : {std::pair{"path", !m.path.empty()},
                            std::pair{"loss", m.loss != loss_kind::automatic},
                            std::pair{"input_shape", !m.input_shape.empty()}})
      if (set)
        return invalid(fmt::format("model.{}: only a TorchScript model "
                                   "(model.kind = 'torchscript') takes it, "
                                   "this one is '{}'{}",
                                   key, name_of(m.kind), where));
  if (cfg.train.replicas == 1)
    for (auto [key, set] :
         {std::pair{"sync", cfg.train.sync != sync_kind::allreduce},
          std::pair{"staleness",
                    cfg.train.staleness != train_options{}.staleness}})
      if (set)
        return invalid(fmt::format("train.{}: only replicated networks "
                                   "(train.replicas > 1) take it{}",
                                   key, where));
  if (auto r = cfg.train.replicas; r > 1) {
    if (cfg.train.sync == sync_kind::allreduce && cfg.train.batch_size % r != 0)
      return invalid(fmt::format(
          "train.batch_size = {} does not divide over train.replicas = {}: "
          "each replica computes an equal part of the global batch{}",
          cfg.train.batch_size, r, where));
  }
  if (cfg.train.patience > 0 && cfg.train.validation_fraction <= 0)
    return invalid("train.patience: early stopping needs a validation split; "
                   "set train.validation_fraction (e.g. 0.1)" +
                   where);
  return {};
}

caf::error validate_data(const data_options& d) {
  if (auto err = check_rows(d, ""))
    return err;
  if (d.partition == partition_scheme::stratified &&
      d.task != task_kind::classification)
    return invalid("data.partition: 'stratified' needs a classification task");
  if (d.format == data_format::idx) {
    if (d.task != task_kind::classification)
      return invalid("data.task: IDX data is always classification");
    for (auto [key, val] :
         {std::pair{"train", &d.train},
          std::pair{"train_labels", &d.train_labels},
          std::pair{"test", &d.test}, std::pair{"test_labels", &d.test_labels}})
      if (val->empty())
        return invalid(fmt::format("data.{}: required for format 'idx'", key));
  }
  if (d.format == data_format::csv && d.train.empty())
    return invalid("data.train: required for format 'csv'");
  if (d.format == data_format::synthetic &&
      d.task == task_kind::classification && d.classes == 1)
    return invalid("data.classes: synthetic classification needs >= 2 "
                   "classes");
  return {};
}

} // namespace

search_metric resolved_metric(const experiment& exp) {
  auto m = exp.scheduler.metric;
  if (m != search_metric::automatic)
    return m;
  return exp.data.task == task_kind::classification
             ? search_metric::validation_accuracy
             : search_metric::validation_loss;
}

namespace {

/// The first model key on which two configurations differ ("" when none).
std::string model_difference(const model_options& a, const model_options& b) {
  std::string key;
  keys::for_each_row<model_options>([&](const auto& row) {
    if (key.empty() && !(a.*(row.member) == b.*(row.member)))
      key = fmt::format("model.{}", row.name);
  });
  return key;
}

/// PBT copies weights and optimizer state between any two networks: they
/// must all have the same model and optimizer kind.
caf::error validate_pbt_population(const experiment& exp) {
  auto cfgs = exp.configs();
  const auto& first = cfgs.front();
  for (const auto& cfg : cfgs) {
    auto key = model_difference(first.model, cfg.model);
    if (key.empty() && first.optimizer.kind != cfg.optimizer.kind)
      key = "optimizer.kind";
    if (!key.empty())
      return invalid(fmt::format(
          "scheduler.search = 'pbt' copies weights and optimizer state "
          "between networks, so every configuration must share the model "
          "and optimizer.kind: {} differs between '{}' and '{}' (search or "
          "sweep over optimizer.lr, optimizer.weight_decay, train.* keys "
          "instead, or use asha)",
          key, first.label.empty() ? "the base" : first.label, cfg.label));
  }
  return {};
}

/// The adaptive search's keys against each other and the configurations.
caf::error validate_search(const experiment& exp) {
  const auto& s = exp.scheduler;
  if (s.search == search_kind::none)
    return {};
  auto kind = name_of(s.search);
  if (s.search == search_kind::median && s.asha == asha_mode::promotion)
    return invalid("scheduler.asha_mode: only 'asha' and 'hyperband' take it "
                   "(scheduler.search = 'median' stops networks, it never "
                   "promotes)");
  if (s.search != search_kind::hyperband && s.brackets > 1)
    return invalid(fmt::format("scheduler.brackets: only 'hyperband' has "
                               "brackets, scheduler.search is '{}'",
                               kind));
  auto metric = resolved_metric(exp);
  auto shown = s.metric == search_metric::automatic
                   ? fmt::format("'auto' ({})", name_of(metric))
                   : fmt::format("'{}'", name_of(metric));
  bool accuracy = metric == search_metric::validation_accuracy ||
                  metric == search_metric::test_accuracy;
  if (accuracy && exp.data.task != task_kind::classification)
    return invalid(fmt::format("scheduler.metric: {} needs a classification "
                               "task; take a loss ('validation_loss', "
                               "'test_loss' or 'train_loss')",
                               shown));
  bool validation = metric == search_metric::validation_accuracy ||
                    metric == search_metric::validation_loss;
  int64_t longest = 0;
  for (const auto& cfg : exp.configs()) {
    longest = std::max(longest, cfg.train.epochs);
    if (validation && cfg.train.validation_fraction <= 0)
      return invalid(fmt::format(
          "scheduler.metric: {} is measured on a validation split; set "
          "train.validation_fraction (e.g. 0.1){}, or scheduler.metric = "
          "'{}' to compare on the test set",
          shown,
          cfg.label.empty() ? std::string{}
                            : fmt::format(" (sweep point {})", cfg.label),
          metric == search_metric::validation_accuracy ? "test_accuracy"
                                                       : "test_loss"));
  }
  if (s.search == search_kind::pbt) {
    if (s.asha == asha_mode::promotion)
      return invalid("scheduler.asha_mode: only 'asha' and 'hyperband' take "
                     "it (scheduler.search = 'pbt' exploits and explores, "
                     "it never promotes)");
    if (s.interval_epochs >= longest)
      return invalid(fmt::format("scheduler.interval_epochs: {} is not below "
                                 "the longest train.epochs ({}): PBT would "
                                 "never compare the networks",
                                 s.interval_epochs, longest));
    return validate_pbt_population(exp);
  }
  if (s.grace_epochs >= longest)
    return invalid(fmt::format("scheduler.grace_epochs: {} is not below the "
                               "longest train.epochs ({}): the search would "
                               "never decide anything",
                               s.grace_epochs, longest));
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
  if (auto err = validate_data(data))
    return err;
  auto cfgs = configs();
  double networks = 0;
  for (const auto& cfg : cfgs)
    networks += static_cast<double>(std::max<int64_t>(cfg.train.networks, 0));
  if (networks > static_cast<double>(keys::max_networks))
    return invalid(fmt::format("the experiment asks for {} networks ({} "
                               "configuration{}); one run trains at most {}",
                               bound_text(networks), cfgs.size(),
                               cfgs.size() == 1 ? "" : "s",
                               keys::max_networks));
  for (const auto& cfg : cfgs) {
    if (auto err = validate_config(cfg))
      return err;
    if (cfg.model.loss == loss_kind::cross_entropy &&
        data.task != task_kind::classification)
      return invalid("model.loss: 'cross_entropy' needs a classification task "
                     "(data.task = 'regression' takes 'mse')");
  }
  if (auto err = check_rows(scheduler, ""))
    return err;
  if (auto err = validate_search(*this))
    return err;
  if (auto err = check_rows(cluster, ""))
    return err;
  if (auto err = check_rows(output, ""))
    return err;
  for (const auto& w : cluster.workers)
    if (!parse_address(w))
      return invalid(fmt::format("cluster.workers: '{}' is not host:port "
                                 "(e.g. 127.0.0.1:4242)",
                                 w));
  if (auto problem =
          peer_timeout_problem(cluster.worker_timeout_seconds,
                               "cluster.worker_timeout_seconds", "workers");
      !problem.empty())
    return invalid(problem);
  if (!cluster.local && cluster.workers.empty())
    return invalid("cluster.local = false needs cluster.workers: no slot "
                   "would be left to train on");
  return {};
}

std::string peer_timeout_problem(double seconds, const std::string& what,
                                 const std::string& senders) {
  if (seconds == 0)
    return {};
  if (!(seconds >= 0 && seconds <= 86400))
    return fmt::format("{}: {:g} is not from 0 to 86400 s", what, seconds);
  if (seconds < shortest_peer_timeout_seconds)
    return fmt::format("{}: {:g} is below {:g} s ({} send a heartbeat every "
                       "{:g} s); 0 turns the timeout off",
                       what, seconds, shortest_peer_timeout_seconds, senders,
                       heartbeat_seconds);
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

/// A string such as "8" where a number may stand.
bool quoted_number(const toml::node& n) {
  if (!n.is_string())
    return false;
  const auto s = *n.value<std::string>();
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return c >= '0' && c <= '9'; });
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

/// Reads typed values from a TOML table by the key tables and reports the
/// first problem with the file, line, column and dotted key.
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
            const std::set<std::string>& known) {
    for (auto&& [k, v] : tbl) {
      if (known.count(std::string{k.str()}) == 0) {
        auto name = section.empty() ? std::string{k.str()}
                                    : fmt::format("{}.{}", section, k.str());
        fail(k, fmt::format("unknown key '{}' (expected one of: {})", name,
                            fmt::join(known, ", ")));
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

  /// Fills every field of `x` whose key the section's table in `root` holds.
  template <class Section> void section(const toml::table& root, Section& x) {
    const char* sec = keys::section<Section>::name;
    auto* t = table(root, sec);
    if (t == nullptr)
      return;
    std::set<std::string> known;
    keys::for_each_row<Section>(
        [&](const auto& row) { known.emplace(row.name); });
    only(*t, sec, known);
    keys::for_each_row<Section>([&](const auto& row) {
      auto* n = t->get(row.name);
      if (n == nullptr)
        return;
      auto key = fmt::format("{}.{}", sec, row.name);
      auto& field = x.*(row.member);
      auto before = field;
      value(*n, key, row, field);
      // Out of range: named here, with the line (validate() says it again
      // for experiments built in C++).
      if (auto msg = problem_with(row, field); !msg.empty()) {
        fail(*n, fmt::format("{}: {}", key, msg));
        field = before;
      }
    });
  }

  void text(const toml::node& n, const std::string& key, std::string& out) {
    if (n.is_string())
      out = *n.value<std::string>();
    else
      fail(n, key + " must be a string");
  }

  template <class Row>
  void value(const toml::node& n, const std::string& key, const Row&,
             std::string& out) {
    text(n, key, out);
  }

  template <class Row>
  void value(const toml::node& n, const std::string& key, const Row& row,
             int64_t& out) {
    if (n.is_integer() &&
        (row.word_count == 0 ||
         keys::contains(row.range, static_cast<double>(*n.value<int64_t>())))) {
      out = *n.value<int64_t>();
      return;
    }
    if (n.is_string())
      for (size_t i = 0; i < row.word_count; ++i)
        if (*n.value<std::string>() == row.words[i].word) {
          out = row.words[i].value;
          return;
        }
    if (row.word_count > 0)
      fail(n, fmt::format("{} must be {} or an integer {}, got {}{}", key,
                          words_of(row), describe(row.range),
                          n.is_string() ? fmt::format("\"{}\"", format_value(n))
                                        : format_value(n),
                          quoted_number(n)
                              ? " (a string: write the number without quotes)"
                              : ""));
    else
      fail(n, key + " must be an integer");
  }

  template <class Row>
  void value(const toml::node& n, const std::string& key, const Row& row,
             uint64_t& out) {
    int64_t tmp = 0;
    value(n, key, row, tmp);
    if (n.is_integer()) {
      if (tmp < 0)
        fail(n, fmt::format("{} must be >= 0, got {}", key, tmp));
      else
        out = static_cast<uint64_t>(tmp);
    }
  }

  template <class Row>
  void value(const toml::node& n, const std::string& key, const Row&,
             double& out) {
    if (n.is_number())
      out = *n.value<double>();
    else
      fail(n, key + " must be a number");
  }

  template <class Row>
  void value(const toml::node& n, const std::string& key, const Row&,
             bool& out) {
    if (n.is_boolean())
      out = *n.value<bool>();
    else
      fail(n, key + " must be true or false");
  }

  template <class Row, class E>
  std::enable_if_t<is_choice<E>::value>
  value(const toml::node& n, const std::string& key, const Row&, E& out) {
    if (!n.is_string()) {
      fail(n, fmt::format("{} must be a string: {}", key, choice_list<E>()));
      return;
    }
    auto text = *n.value<std::string>();
    if (auto x = parse_choice<E>(text))
      out = *x;
    else
      fail(n, fmt::format("{}: unknown {} '{}' (expected {})", key,
                          choice_names<E>::noun, text, choice_list<E>()));
  }

  template <class Row, class T>
  void value(const toml::node& n, const std::string& key, const Row& row,
             std::vector<T>& out) {
    constexpr auto what = std::is_same_v<T, std::string>
                              ? "an array of strings"
                              : "an array of integers";
    auto* arr = n.as_array();
    if constexpr (std::is_same_v<T, std::string>) {
      // One string stands for a list of one ("auto", a single worker).
      if (arr == nullptr && n.is_string()) {
        out = {*n.value<std::string>()};
        return;
      }
    }
    if (arr == nullptr) {
      fail(n, fmt::format("{} must be {}", key, what));
      return;
    }
    std::vector<T> xs;
    for (auto&& e : *arr) {
      bool ok = std::is_same_v<T, std::string> ? e.is_string() : e.is_integer();
      if (!ok) {
        fail(e, fmt::format("{} must be {}", key, what));
        return;
      }
      T x{};
      value(e, key, row, x);
      xs.push_back(std::move(x));
    }
    out = std::move(xs);
  }

private:
  std::string origin_;
  caf::error err_;
};

void read_config(reader& r, const toml::table& root, network_config& cfg) {
  r.section(root, cfg.model);
  r.section(root, cfg.optimizer);
  r.section(root, cfg.train);
}

/// Relative paths (data files, a TorchScript model) name files next to the
/// experiment file.
template <class Section>
void resolve_paths(const std::string& origin, Section& d) {
  auto pos = origin.find_last_of('/');
  if (pos == std::string::npos)
    return;
  auto dir = origin.substr(0, pos + 1);
  keys::for_each_row<Section>([&](const auto& row) {
    if constexpr (std::is_same_v<std::decay_t<decltype(d.*(row.member))>,
                                 std::string>) {
      auto& p = d.*(row.member);
      if (row.path && !p.empty() && p[0] != '/')
        p = dir + p;
    }
  });
}

/// One configuration's rewritten keys ("optimizer.lr") and their values,
/// and its label.
struct point {
  std::vector<std::string> keys;
  toml::array values;
  std::vector<std::string> label;

  /// `drawn`: a search's value, labelled to 4 significant digits (the
  /// configuration holds it whole) instead of as written.
  void set(const std::string& key, const toml::node& value,
           bool drawn = false) {
    keys.push_back(key);
    values.push_back(value);
    label.push_back(drawn && value.is_floating_point()
                        ? fmt::format("{}={:.4g}", key, *value.value<double>())
                        : fmt::format("{}={}", key, format_value(value)));
  }
};

/// Whether `key` names a model.*, optimizer.* or train.* key (the reader
/// then checks that the key exists and its value fits).
bool rewritable(const std::string& key) {
  auto dot = key.find('.');
  auto section = key.substr(0, dot);
  return dot != std::string::npos &&
         (section == "model" || section == "optimizer" || section == "train");
}

/// A search space's distribution of one key.
struct distribution {
  std::string key;
  enum kind_t { uniform, loguniform, integer, choice } kind = uniform;
  double lo = 0;
  double hi = 0;
  const toml::array* choices = nullptr;

  /// The value for `u` in [0, 1).
  toml::array draw(double u) const {
    toml::array out;
    switch (kind) {
    case uniform:
      out.push_back(lo + (hi - lo) * u);
      break;
    case loguniform:
      out.push_back(std::exp(std::log(lo) + (std::log(hi) - std::log(lo)) * u));
      break;
    case integer:
      out.push_back(std::min(static_cast<int64_t>(hi),
                             static_cast<int64_t>(lo) +
                                 static_cast<int64_t>(u * (hi - lo + 1))));
      break;
    case choice:
      out.push_back(*choices->get(std::min(
          choices->size() - 1, static_cast<size_t>(u * choices->size()))));
      break;
    }
    return out;
  }
};

/// Reads one `"key" = { kind = [...] }` of [search]; false (the reader
/// holds why) when it is not a distribution.
bool read_distribution(reader& r, const std::string& key, const toml::node& v,
                       distribution& d) {
  d.key = key;
  auto* t = v.as_table();
  if (t == nullptr || t->size() != 1) {
    r.fail(v, fmt::format("search '{}' must be one distribution: {{ uniform "
                          "= [a, b] }}, {{ loguniform = [a, b] }}, {{ int = "
                          "[a, b] }} or {{ choice = [...] }}",
                          key));
    return false;
  }
  // The iterator yields a pair of references by value: keep it.
  auto entry = *t->begin();
  const toml::key& name_key = entry.first;
  const toml::node& body = entry.second;
  std::string name{name_key.str()};
  auto* arr = body.as_array();
  if (name == "choice") {
    if (arr == nullptr || arr->empty()) {
      r.fail(body, fmt::format("search '{}': choice must be a non-empty "
                               "array of values",
                               key));
      return false;
    }
    d.kind = distribution::choice;
    d.choices = arr;
    return true;
  }
  if (name != "uniform" && name != "loguniform" && name != "int") {
    r.fail(name_key, fmt::format("search '{}': unknown distribution '{}' "
                                 "(expected uniform, loguniform, int or "
                                 "choice)",
                                 key, name));
    return false;
  }
  bool integers = name == "int";
  bool bounds = arr != nullptr && arr->size() == 2;
  for (size_t i = 0; bounds && i < 2; ++i)
    bounds = integers ? arr->get(i)->is_integer() : arr->get(i)->is_number();
  if (!bounds) {
    r.fail(body, fmt::format("search '{}': {} takes two {} [low, high]", key,
                             name, integers ? "integers" : "numbers"));
    return false;
  }
  d.kind = integers               ? distribution::integer
           : name == "loguniform" ? distribution::loguniform
                                  : distribution::uniform;
  d.lo = *arr->get(0)->value<double>();
  d.hi = *arr->get(1)->value<double>();
  if (!std::isfinite(d.lo) || !std::isfinite(d.hi) ||
      (integers ? d.lo > d.hi : d.lo >= d.hi)) {
    r.fail(body,
           fmt::format("search '{}': the range [{}, {}] is empty "
                       "(needs low {} high)",
                       key, format_value(*arr->get(0)),
                       format_value(*arr->get(1)), integers ? "<=" : "<"));
    return false;
  }
  if (d.kind == distribution::loguniform && d.lo <= 0) {
    r.fail(body, fmt::format("search '{}': loguniform needs bounds > 0 (the "
                             "log of {} is undefined)",
                             key, format_value(*arr->get(0))));
    return false;
  }
  return true;
}

/// The sweep's grid: every combination of its axes, in odometer order (the
/// last axis fastest); one empty point without a sweep.
caf::error read_grid(reader& r, const toml::table& root,
                     const std::string& origin, std::vector<point>& grid) {
  grid.assign(1, point{});
  auto* sweep = r.table(root, "sweep");
  if (sweep == nullptr)
    return r.error();
  std::vector<std::pair<std::string, const toml::array*>> axes;
  for (auto&& [k, v] : *sweep) {
    auto key = std::string{k.str()};
    if (!rewritable(key)) {
      r.fail(v, fmt::format("sweep key '{}' must name a model.*, "
                            "optimizer.* or train.* key, e.g. "
                            "\"optimizer.lr\"",
                            key));
      return r.error();
    }
    auto* arr = v.as_array();
    if (arr == nullptr || arr->empty()) {
      r.fail(v, fmt::format("sweep '{}' must be a non-empty array of values",
                            key));
      return r.error();
    }
    axes.emplace_back(key, arr);
  }
  // Count the points before making them: a sweep of millions would take
  // minutes to expand only to be refused.
  double points = 1;
  for (const auto& axis : axes)
    points *= static_cast<double>(axis.second->size());
  if (points > static_cast<double>(keys::max_networks))
    return invalid(fmt::format("{}: the sweep has {} points; one run trains "
                               "at most {} networks",
                               origin, bound_text(points), keys::max_networks));
  for (const auto& [key, arr] : axes) {
    std::vector<point> next;
    for (const auto& p : grid)
      for (const auto& value : *arr) {
        next.push_back(p);
        next.back().set(key, value);
      }
    grid = std::move(next);
  }
  return {};
}

/// A search space ([search]): `samples` configurations per grid point, each
/// key drawn from its distribution with a generator seeded by train.seed,
/// the point and the sample (so the same file draws the same values).
caf::error read_search(reader& r, const toml::table& root,
                       const std::string& origin, uint64_t seed,
                       std::vector<point>& points,
                       std::vector<search_range>& ranges) {
  auto* search = r.table(root, "search");
  if (search == nullptr)
    return r.error();
  int64_t samples = 0;
  std::vector<distribution> space;
  for (auto&& [k, v] : *search) {
    auto key = std::string{k.str()};
    if (key == "samples") {
      auto n = v.value<int64_t>();
      if (!v.is_integer() || *n < 1 || *n > keys::max_networks) {
        r.fail(v, fmt::format("search.samples must be an integer in [1, {}]",
                              keys::max_networks));
        return r.error();
      }
      samples = *n;
      continue;
    }
    if (!rewritable(key)) {
      r.fail(v, fmt::format("search key '{}' must name a model.*, "
                            "optimizer.* or train.* hyperparameter, e.g. "
                            "\"optimizer.lr\" (or be 'samples')",
                            key));
      return r.error();
    }
    space.emplace_back();
    if (!read_distribution(r, key, v, space.back()))
      return r.error();
  }
  if (samples == 0) {
    r.fail(*search, "search.samples: required, the number of configurations "
                    "to draw (per sweep point)");
    return r.error();
  }
  if (space.empty()) {
    r.fail(*search, "search: no key to draw; add e.g. \"optimizer.lr\" = { "
                    "loguniform = [1e-4, 1e-1] }");
    return r.error();
  }
  auto total =
      static_cast<double>(points.size()) * static_cast<double>(samples);
  if (total > static_cast<double>(keys::max_networks))
    return invalid(fmt::format("{}: {} sweep points x {} samples is {} "
                               "configurations; one run trains at most {} "
                               "networks",
                               origin, points.size(), samples,
                               bound_text(total), keys::max_networks));
  for (const auto& d : space)
    if (d.kind == distribution::uniform || d.kind == distribution::loguniform)
      ranges.push_back({d.key, d.kind == distribution::loguniform, d.lo, d.hi});
  std::vector<point> drawn;
  auto stream = derive_seed(seed, 0x5EA2C4ull);
  for (size_t g = 0; g < points.size(); ++g)
    for (int64_t s = 0; s < samples; ++s) {
      auto trial = derive_seed(stream, g * static_cast<uint64_t>(samples) +
                                           static_cast<uint64_t>(s));
      drawn.push_back(points[g]);
      for (size_t k = 0; k < space.size(); ++k) {
        auto bits = derive_seed(trial, k);
        auto u = static_cast<double>(bits >> 11) * 0x1.0p-53;
        drawn.back().set(space[k].key, *space[k].draw(u).get(0), true);
      }
      drawn.back().label.push_back(fmt::format("sample={}", s));
    }
  points = std::move(drawn);
  return {};
}

/// Every point of the sweep's grid (times the search's samples) is a
/// configuration: its keys rewrite the model, optimizer or train table,
/// which is re-read and validated like the file itself.
caf::error read_variants(reader& r, const toml::table& root,
                         const std::string& origin, experiment& exp) {
  std::vector<point> points;
  if (auto err = read_grid(r, root, origin, points))
    return err;
  if (auto err = read_search(r, root, origin, exp.base.train.seed, points,
                             exp.search_space))
    return err;
  if (points.size() == 1 && points.front().keys.empty())
    return {};
  for (const auto& p : points) {
    toml::table copy = root;
    for (size_t i = 0; i < p.keys.size(); ++i) {
      const auto& key = p.keys[i];
      auto dot = key.find('.');
      auto section = key.substr(0, dot);
      if (!copy.contains(section))
        copy.insert(section, toml::table{});
      auto* sec = copy.get(section)->as_table();
      if (sec == nullptr) {
        r.fail(*p.values.get(i),
               fmt::format("'{}': [{}] is not a table", key, section));
        return r.error();
      }
      sec->insert_or_assign(key.substr(dot + 1), *p.values.get(i));
    }
    network_config cfg = exp.base;
    reader sr{origin};
    read_config(sr, copy, cfg);
    resolve_paths(origin, cfg.model);
    cfg.label = fmt::format("{}", fmt::join(p.label, " "));
    if (auto err = sr.error())
      return invalid(
          fmt::format("{} (sweep point {})", to_string_pretty(err), cfg.label));
    exp.variants.push_back(std::move(cfg));
  }
  return {};
}

} // namespace

std::vector<std::string> experiment_keys() {
  std::vector<std::string> out{"name"};
  keys::for_each_section([&](auto tag) {
    using S = typename decltype(tag)::type;
    keys::for_each_row<S>([&](const auto& row) {
      out.push_back(fmt::format("{}.{}", keys::section<S>::name, row.name));
    });
  });
  return out;
}

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
  std::set<std::string> top{"name", "sweep", "search"};
  keys::for_each_section([&](auto tag) {
    top.emplace(keys::section<typename decltype(tag)::type>::name);
  });
  r.only(root, "", top);
  if (auto* n = root.get("name"))
    r.text(*n, "name", exp.name);
  r.section(root, exp.data);
  read_config(r, root, exp.base);
  r.section(root, exp.scheduler);
  r.section(root, exp.cluster);
  r.section(root, exp.output);
  resolve_paths(origin, exp.data);
  resolve_paths(origin, exp.base.model);
  if (auto err = r.error())
    return err;
  if (auto err = read_variants(r, root, origin, exp))
    return err;
  if (auto err = exp.validate())
    return invalid(fmt::format("{}: {}", origin, to_string_pretty(err)));
  return exp;
}

// -- fingerprint --------------------------------------------------------------

namespace {

template <class T> std::string canonical(const T& x) {
  if constexpr (is_choice<T>::value)
    return name_of(x);
  else if constexpr (is_vector<T>::value)
    return fmt::format("[{}]", fmt::join(x, ","));
  else
    return fmt::format("{}", x);
}

/// "section.key=value|" for every key of `x` that changes numbers.
template <class Section> void add_numbers(std::string& text, const Section& x) {
  keys::for_each_row<Section>([&](const auto& row) {
    if (row.changes == keys::effect::numbers)
      text += fmt::format("{}.{}={}|", keys::section<Section>::name, row.name,
                          canonical(x.*(row.member)));
  });
}

/// The same for the keys that differ from their defaults: sections whose
/// keys came to change numbers later (the adaptive search, which decides
/// where networks stop) leave the fingerprints of runs that use none as
/// they were.
template <class Section>
void add_changed_numbers(std::string& text, const Section& x) {
  const Section defaults{};
  keys::for_each_row<Section>([&](const auto& row) {
    if (row.changes == keys::effect::numbers &&
        !(x.*(row.member) == defaults.*(row.member)))
      text += fmt::format("{}.{}={}|", keys::section<Section>::name, row.name,
                          canonical(x.*(row.member)));
  });
}

} // namespace

std::string fingerprint(const experiment& exp) {
  // A canonical text of the keys that change numbers, hashed with FNV-1a
  // (64 bits): stable across builds and platforms, unlike std::hash.
  std::string text;
  add_numbers(text, exp.data);
  for (const auto& c : exp.configs()) {
    add_numbers(text, c.model);
    add_numbers(text, c.optimizer);
    add_numbers(text, c.train);
  }
  add_changed_numbers(text, exp.scheduler);
  // PBT draws learning rates again from the space during training.
  if (exp.scheduler.search == search_kind::pbt)
    for (const auto& range : exp.search_space)
      text += fmt::format("search.{}={}:{}:{}|", range.key,
                          range.log ? "log" : "linear", range.lo, range.hi);
  uint64_t h = 14695981039346656037ull;
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return fmt::format("{:016x}", h);
}

caf::expected<experiment> load_experiment(const std::string& path) {
  // Experiment files are small: a FIFO, a device or a huge file is a
  // mistake, and reading one would block or never end.
  constexpr uintmax_t max_bytes = 16u << 20;
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (!ec && std::filesystem::exists(status) &&
      !std::filesystem::is_regular_file(status))
    return invalid(fmt::format("{}: not a regular file", path));
  if (auto size = std::filesystem::file_size(path, ec); !ec && size > max_bytes)
    return invalid(fmt::format("{}: {} bytes is too large for an experiment "
                               "file (at most {})",
                               path, size, max_bytes));
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return invalid(fmt::format("{}: cannot open experiment file", path));
  std::stringstream buf;
  buf << in.rdbuf();
  return parse_experiment(buf.str(), path);
}

} // namespace actortrain
