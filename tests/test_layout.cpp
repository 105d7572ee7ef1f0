// The source layout is the architecture (docs/architecture.md): each folder
// of libactortrain/src may include only folders below it in this order, and
// public headers never include private ones or LibTorch needlessly.

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

// Lowest first. A folder may include its own headers and those of folders
// before it.
const std::vector<std::string> layers = {
    "platform", "config", "data",     "models",     "protocol",
    "store",    "fusion", "training", "scheduling", "setup",
    "cluster",  "actors", "run",      "session"};

std::vector<std::string> includes_of(const fs::path& file) {
  std::ifstream in{file};
  std::vector<std::string> out;
  std::regex inc{R"re(^\s*#\s*include\s+"([^"]+)")re"};
  std::smatch m;
  for (std::string line; std::getline(in, line);)
    if (std::regex_search(line, m, inc))
      out.push_back(m[1]);
  return out;
}

long rank_of(const std::string& folder) {
  auto i = std::find(layers.begin(), layers.end(), folder);
  return i == layers.end() ? -1 : i - layers.begin();
}

} // namespace

TEST_CASE("no source includes a header of a higher layer") {
  fs::path src = fs::path{ACTORTRAIN_SOURCE_DIR} / "libactortrain" / "src";
  size_t checked = 0;
  for (const auto& e : fs::recursive_directory_iterator{src}) {
    if (!e.is_regular_file())
      continue;
    auto rel = fs::relative(e.path(), src);
    auto folder = rel.has_parent_path() ? rel.begin()->string() : "";
    CAPTURE(rel.string());
    if (folder.empty()) {
      // Only the library's own basics (error, version) live at the root,
      // and they use only public headers.
      for (const auto& inc : includes_of(e.path()))
        CHECK(inc.rfind("actortrain/", 0) == 0);
      continue;
    }
    REQUIRE_MESSAGE(rank_of(folder) >= 0,
                    "a new folder: give it its place in the layers");
    for (const auto& inc : includes_of(e.path())) {
      if (inc.rfind("actortrain/", 0) == 0)
        continue;
      CAPTURE(inc);
      auto slash = inc.find('/');
      REQUIRE(slash != std::string::npos);
      auto target = inc.substr(0, slash);
      CHECK(rank_of(target) >= 0);
      CHECK(rank_of(target) <= rank_of(folder));
      ++checked;
    }
  }
  CHECK(checked > 50);
}

TEST_CASE("public headers include only public headers, and LibTorch only "
          "where tensors are the API") {
  fs::path inc = fs::path{ACTORTRAIN_SOURCE_DIR} / "libactortrain" / "include" /
                 "actortrain";
  const std::vector<std::string> tensor_headers = {"dataset.hpp",
                                                   "learner.hpp"};
  for (const auto& e : fs::directory_iterator{inc}) {
    auto name = e.path().filename().string();
    CAPTURE(name);
    std::ifstream in{e.path()};
    std::string text{std::istreambuf_iterator<char>{in}, {}};
    for (const auto& i : includes_of(e.path()))
      CHECK(i.rfind("actortrain/", 0) == 0);
    bool tensors = std::find(tensor_headers.begin(), tensor_headers.end(),
                             name) != tensor_headers.end();
    if (!tensors)
      CHECK(text.find("#include <torch/") == std::string::npos);
  }
}

TEST_CASE("no test case name holds a semicolon (CTest would run none of it)") {
  // doctest_discover_tests passes each name to CTest as a CMake list item:
  // a ';' splits it, the filter then matches no test case, and the test
  // "passes" having run nothing.
  fs::path tests = fs::path{ACTORTRAIN_SOURCE_DIR} / "tests";
  std::regex test_case{R"re(TEST_CASE\(((\s*"[^"]*")+))re"};
  std::regex literal{R"re("([^"]*)")re"};
  size_t names = 0;
  for (const auto& e : fs::directory_iterator{tests}) {
    if (e.path().extension() != ".cpp")
      continue;
    std::ifstream in{e.path()};
    std::string text{std::istreambuf_iterator<char>{in}, {}};
    for (std::sregex_iterator i{text.begin(), text.end(), test_case}, end;
         i != end; ++i) {
      std::string name;
      auto parts = (*i)[1].str();
      for (std::sregex_iterator j{parts.begin(), parts.end(), literal};
           j != std::sregex_iterator{}; ++j)
        name += (*j)[1].str();
      CAPTURE(e.path().filename().string());
      CAPTURE(name);
      CHECK(name.find(';') == std::string::npos);
      ++names;
    }
  }
  CHECK(names > 100);
}
