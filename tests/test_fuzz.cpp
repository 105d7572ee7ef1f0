// Malformed input by the thousand: a seeded mutation loop over the experiment
// reader, the IDX reader and the CSV reader. Each case must end in a result
// or in an error that names the input; a crash or a hang fails the suite (a
// sanitizer build also catches what does not crash). CI runs 10,000 cases
// per reader; ACTORTRAIN_FUZZ_CASES=N runs more by hand, with
// ACTORTRAIN_FUZZ_SEED=S for another sequence.

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "actortrain/dataset.hpp"
#include "actortrain/error.hpp"
#include "actortrain/experiment.hpp"
#include "test_support.hpp"

using namespace actortrain;
using actortrain::test::temp_dir;
namespace fs = std::filesystem;

namespace {

int64_t env_number(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::stoll(v) : fallback;
}

std::string file_text(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, {}};
}

/// Mutates inputs as libFuzzer's default mutators do, without coverage:
/// bit flips, random bytes, inserted dictionary tokens and interesting
/// numbers, deleted, duplicated and truncated ranges, splices of two seeds.
class mutator {
public:
  mutator(uint64_t seed, std::vector<std::string> dictionary)
      : rng_(seed), dictionary_(std::move(dictionary)) {}

  std::string operator()(const std::vector<std::string>& corpus) {
    auto s = corpus[below(corpus.size())];
    auto n = 1 + below(5);
    for (size_t i = 0; i < n; ++i)
      mutate(s, corpus);
    return s;
  }

private:
  size_t below(size_t n) {
    return n == 0 ? 0 : static_cast<size_t>(rng_() % n);
  }

  void mutate(std::string& s, const std::vector<std::string>& corpus) {
    auto at = below(s.size() + 1);
    switch (below(9)) {
    case 0: // flip a bit
      if (!s.empty())
        s[below(s.size())] ^= static_cast<char>(1u << below(8));
      break;
    case 1: // a random byte
      if (!s.empty())
        s[below(s.size())] = static_cast<char>(rng_());
      break;
    case 2: // a token: a key, a value, TOML or CSV punctuation
      s.insert(at, dictionary_[below(dictionary_.size())]);
      break;
    case 3: { // delete a range
      auto len = below(std::min<size_t>(s.size() - std::min(at, s.size()), 64));
      s.erase(std::min(at, s.size()), len);
      break;
    }
    case 4: { // duplicate a range
      if (s.empty())
        break;
      auto from = below(s.size());
      auto len = 1 + below(std::min<size_t>(s.size() - from, 256));
      s.insert(at, s.substr(from, len));
      break;
    }
    case 5: // truncate
      s.resize(below(s.size() + 1));
      break;
    case 6: { // an interesting 32-bit value, big-endian (IDX dimensions)
      static const uint32_t values[] = {
          0, 1, 255, 256, 0x7fffffff, 0x80000000, 0xffffffff, 0x10000, 60000};
      auto v = values[below(std::size(values))];
      if (s.size() >= 4) {
        auto p = below(s.size() - 3);
        for (int k = 0; k < 4; ++k)
          s[p + k] = static_cast<char>((v >> (24 - 8 * k)) & 0xff);
      }
      break;
    }
    case 7: { // splice with another input
      const auto& other = corpus[below(corpus.size())];
      s = s.substr(0, at) + other.substr(below(other.size() + 1));
      break;
    }
    default: // an interesting number as text
    {
      static const char* numbers[] = {"0",
                                      "-1",
                                      "9223372036854775807",
                                      "-9223372036854775808",
                                      "1e309",
                                      "-0.0",
                                      "nan",
                                      "inf",
                                      "1e-320",
                                      "4294967296",
                                      "0x10",
                                      "18446744073709551616"};
      s.insert(at, numbers[below(std::size(numbers))]);
    }
    }
  }

  std::mt19937_64 rng_;
  std::vector<std::string> dictionary_;
};

/// Runs `cases` mutated inputs through `check`, which returns "" when the
/// case was handled (a result or a clear error) and else what went wrong;
/// inputs that were accepted join the corpus. Reports the first failures.
void fuzz(const char* reader, std::vector<std::string> corpus,
          std::vector<std::string> dictionary,
          const std::function<std::string(const std::string&, bool&)>& check) {
  auto cases = env_number("ACTORTRAIN_FUZZ_CASES", 10000);
  auto seed = static_cast<uint64_t>(env_number("ACTORTRAIN_FUZZ_SEED", 1));
  mutator mutate{seed, std::move(dictionary)};
  int64_t failures = 0;
  int64_t accepted = 0;
  for (int64_t i = 0; i < cases; ++i) {
    auto input = mutate(corpus);
    bool ok = false;
    auto problem = check(input, ok);
    if (!problem.empty()) {
      if (++failures <= 5)
        FAIL_CHECK(fmt::format("{} case {} (seed {}): {}; input of {} bytes: "
                               "{:?}",
                               reader, i, seed, problem, input.size(),
                               input.substr(0, 400)));
      continue;
    }
    if (ok) {
      ++accepted;
      if (corpus.size() < 256 && input.size() < 1 << 16)
        corpus.push_back(std::move(input));
    }
  }
  MESSAGE(fmt::format("{}: {} cases, {} accepted, {} failures", reader, cases,
                      accepted, failures));
  CHECK(failures == 0);
}

/// "" when `err` names `where`, else why not.
std::string names(const caf::error& err, const std::string& where) {
  auto msg = to_string_pretty(err);
  if (msg.find(where) == std::string::npos)
    return fmt::format("the error does not name {}: {}", where, msg);
  return {};
}

} // namespace

TEST_CASE("fuzz: the experiment reader accepts or names what is wrong") {
  std::vector<std::string> corpus;
  for (const char* example : {"fashion_ensemble", "fashion_sweep",
                              "digits_swarm", "iris_csv", "replicated_cnn"})
    corpus.push_back(file_text(fmt::format("{}/examples/{}/experiment.toml",
                                           ACTORTRAIN_SOURCE_DIR, example)));
  corpus.push_back(R"(name = "s"
[data]
format = "synthetic"
samples = 64
test_samples = 16
[train]
networks = 2
epochs = 1
[sweep]
"optimizer.lr" = [0.1, 0.01]
"model.hidden" = [[8], [4, 4]]
)");
  std::vector<std::string> dictionary{"\n", "=", "[", "]",  "{",  "}", "\"",
                                      "'",  ",", ".", "[[", "]]", "#", "\\u"};
  for (const auto& key : experiment_keys()) {
    dictionary.push_back(key);
    auto dot = key.rfind('.');
    if (dot != std::string::npos) {
      dictionary.push_back("\n" + key.substr(dot + 1) + " = ");
      dictionary.push_back("\n[" + key.substr(0, dot) + "]\n");
    }
  }
  fuzz("experiment", corpus, dictionary,
       [](const std::string& text, bool& ok) -> std::string {
         auto exp = parse_experiment(text, "fuzz.toml");
         if (!exp)
           return names(exp.error(), "fuzz.toml");
         ok = true;
         if (auto err = exp->validate(); err && to_string_pretty(err).empty())
           return "validate() failed without a message";
         // What a run computes first from an experiment.
         (void)fingerprint(*exp);
         (void)exp->total_networks();
         return {};
       });
}

TEST_CASE("fuzz: the IDX reader accepts or names what is wrong") {
  temp_dir dir;
  auto images = torch::arange(5 * 4 * 3, torch::kInt64).reshape({5, 4, 3});
  std::vector<std::string> corpus;
  for (bool gz : {false, true})
    for (const auto& t : {images, torch::arange(5, torch::kInt64)}) {
      auto p = dir / "seed.idx";
      test::write_idx(p, t, gz);
      corpus.push_back(file_text(p));
    }
  auto path = dir / "fuzz.idx";
  fuzz("IDX", corpus, {std::string{"\x1f\x8b\x08", 3}, std::string(4, '\0')},
       [&](const std::string& bytes, bool& ok) -> std::string {
         test::write_text(path, bytes);
         auto t = read_idx(path);
         if (!t)
           return names(t.error(), path);
         ok = true;
         if (t->scalar_type() != torch::kUInt8 || t->dim() < 1 || t->dim() > 4)
           return "an accepted file gave a tensor of the wrong kind";
         return {};
       });
}

TEST_CASE("fuzz: the CSV reader accepts or names what is wrong") {
  temp_dir dir;
  std::vector<std::string> corpus{
      "sepal,petal,label\n5.1,3.5,0\n4.9,3.0,1\n6.2,2.9,2\n",
      "0.5, -1e3, 2\n1.5, 4e-2, 0\n\n2.5,7,1\r\n", "1,2,3,4,5,6,7,8,9,0\n"};
  auto path = dir / "fuzz.csv";
  int64_t label = 0;
  fuzz("CSV", corpus, {",", "\n", "\r\n", " ", "\t", "e", "-", ".", "label"},
       [&](const std::string& text, bool& ok) -> std::string {
         test::write_text(path, text);
         static const int64_t labels[] = {-1, 0, 2, -3};
         static const csv_header headers[] = {csv_header::automatic,
                                              csv_header::yes, csv_header::no};
         ++label;
         auto t = read_csv(path, labels[label % 4], headers[label % 3]);
         if (!t)
           return names(t.error(), path);
         ok = true;
         if (t->features.size(0) != t->labels.size(0) ||
             t->features.size(0) == 0)
           return "an accepted file gave features and labels of other rows";
         return {};
       });
}
