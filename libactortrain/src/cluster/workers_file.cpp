#include <sstream>

#include <fmt/format.h>

#include "actortrain/cluster.hpp"
#include "actortrain/error.hpp"
#include "actortrain/experiment.hpp"
#include "data/read_file.hpp"

namespace actortrain {

caf::expected<std::vector<std::string>>
read_workers_file(const std::string& path) {
  auto text = read_file(path, "workers file");
  if (!text)
    return text.error();
  std::vector<std::string> workers;
  std::istringstream in{*text};
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#')
      continue;
    auto last = line.find_last_not_of(" \t\r");
    auto address = line.substr(first, last - first + 1);
    if (!parse_address(address))
      return make_error(errc::invalid_experiment,
                        fmt::format("{}:{}: '{}' is not host:port (one worker "
                                    "a line, e.g. node7:4242)",
                                    path, number, address));
    workers.push_back(std::move(address));
  }
  if (workers.empty())
    return make_error(
        errc::invalid_experiment,
        fmt::format("{} names no worker (one host:port a line)", path));
  return workers;
}

} // namespace actortrain
